//! Manifest validation: a Manifest is accepted once, in the handshake, if its
//! suite is one the ticket allows and the factory builds, and its sizes are
//! consistent and within the configured bounds. In the transfer, a Manifest
//! describing the same exposure only refreshes the address-validation token.

use super::layers::Layers;
use super::{Phase, Puller, PullerEvent, SuiteFactory};
use crate::crypto::TAG_LEN;
use crate::fec::FecScheme;
use crate::suite::SuiteId;
use redgiant_base::Instant;
use rgtp_wire::{Manifest, ManifestFlags};

impl<S: SuiteFactory> Puller<S> {
    pub(super) fn on_manifest(&mut self, now: Instant, m: &Manifest) {
        if self.phase == Phase::Transfer {
            // A refresh: same exposure description, new token.
            let same = self.manifest.is_some_and(|cur| {
                cur.total_size == m.total_size
                    && cur.chunk_count == m.chunk_count
                    && cur.chunk_size == m.chunk_size
                    && cur.merkle_root == m.merkle_root
                    && cur.fec_n == m.fec_n
                    && cur.fec_k == m.fec_k
                    && cur.flags - ManifestFlags::TOKEN == m.flags - ManifestFlags::TOKEN
            });
            if same {
                if m.token.is_some() {
                    self.token = m.token;
                }
            } else {
                self.stats.bad_manifests += 1;
            }
            return;
        }
        if self.phase != Phase::Handshake {
            return;
        }
        if m.total_size > self.cfg.max_total_size {
            // Refused like any unacceptable Manifest (it is not authenticated, so it
            // does not end the pull at once); reported if nothing better arrives.
            self.stats.bad_manifests += 1;
            self.too_large = Some(m.total_size);
            return;
        }
        let Some(layers_suite) = self.validate_manifest(m) else {
            self.stats.bad_manifests += 1;
            return;
        };
        let (layers, suite) = layers_suite;
        // Proofs are negotiated when the puller asked and the Manifest says the
        // exposer sends them; from then on they are mandatory (spec §8.11). A
        // puller that checks proofs off the receive path takes up those an
        // exposure sends unasked, and asks for them from its first NAK on.
        let proofs_required = m.flags.contains(ManifestFlags::PROOFS)
            && (self.cfg.want_proofs || (self.cfg.offload_proofs && self.cfg.take_offered_proofs));
        self.output.size_for(
            &layers.hash,
            m.chunk_count,
            m.merkle_root,
            self.cfg.deferred_root,
            proofs_required,
            self.cfg.offload_proofs,
        );
        self.output.runs = self.output.offload
            && self.cfg.proof_runs
            && m.flags.contains(ManifestFlags::PROOF_RUNS);
        self.layers = Some(layers);
        self.suite = suite;
        self.manifest = Some(Manifest { token: None, ..*m });
        self.token = m.token;
        self.phase = Phase::Transfer;
        // The lower of our cap and the exposer's (spec §8.3.3).
        self.pacing
            .start(self.rate_limit(), u64::from(m.chunk_size), now);
        self.timers.last_progress = now;
        self.timers.manifest_turn = Some(now);
        // Karn: only an unambiguous handshake gives an RTT sample.
        if self.timers.handshake_tries == 1 {
            self.sample_rtt(
                now,
                now.saturating_since(self.timers.last_pull_request),
                None,
            );
        }
        self.timers.next_token_refresh = now + self.cfg.token_refresh;
        self.events
            .push_back(PullerEvent::Manifest(self.manifest().expect("just set")));
        if m.chunk_count == 0 {
            self.finish(now);
        }
    }

    fn validate_manifest(&self, m: &Manifest) -> Option<(Layers<S>, SuiteId)> {
        if m.rate_cap == Some(0) {
            return None;
        }
        let suite = SuiteId::from_manifest(m).ok()?;
        if self.cfg.expected_cipher.is_some_and(|c| c != suite.cipher)
            || self.cfg.expected_hash.is_some_and(|h| h != suite.hash)
        {
            return None;
        }
        // Parity entries carry the block number in 23 bits.
        if suite.fec.scheme != FecScheme::None
            && m.chunk_count.div_ceil(u32::from(suite.fec.k)) >= 1 << 23
        {
            return None;
        }
        if m.total_size == 0 {
            if m.chunk_count != 0 {
                return None;
            }
        } else {
            if m.chunk_size == 0 || m.chunk_size as usize + TAG_LEN > self.cfg.max_payload {
                return None;
            }
            if m.total_size.div_ceil(u64::from(m.chunk_size)) != u64::from(m.chunk_count) {
                return None;
            }
        }
        if m.chunk_count > self.cfg.max_chunks {
            return None;
        }
        let key = suite.key_mode.chunk_key(&self.cfg.key, &m.exposure_id);
        let cipher = self.factory.cipher(suite.cipher, &key)?;
        let hash = self.factory.hash(suite.hash)?;
        let fec = if self.cfg.use_fec && suite.fec.scheme != FecScheme::None {
            Some(self.factory.fec(suite.fec)?)
        } else {
            None
        };
        let min_shards = self.factory.min_shards(suite.fec);
        Some((
            Layers {
                cipher,
                hash,
                fec,
                min_shards,
            },
            suite,
        ))
    }
}
