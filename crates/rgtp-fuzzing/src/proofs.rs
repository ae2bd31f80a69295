//! `proofs`: proof requests and proof verification, both ends.
//!
//! An [`Exposer`] answers arbitrary NAKs carrying `PROOFS` (from a fixture of each
//! shape): every chunk it sends must carry a proof that verifies the real plaintext
//! against the Manifest root. Those answers, possibly mutated, go to a puller that
//! negotiated proofs, which must hand out only real plaintext. Then a local tree
//! built from arbitrary leaves has arbitrary leaves replaced: its nodes must stay
//! those of the tree built over the new leaves (the tree the puller's repair keeps).

use arbitrary::{Arbitrary, Unstructured};
use rgtp::DynSuite;
use rgtp_proto::merkle::{self, root_of};
use rgtp_proto::{
    Exposer, ExposerConfig, HashId, Instant, MerkleScheme, MerkleTree, Peer, Puller, PullerConfig,
};
use rgtp_providers::AnyHash;
use rgtp_wire::{Hash, IndexList, Nak, NakFlags, Repr, HASH_LEN};

use crate::fixtures;

const EXPOSER: Peer = Peer::Mem(1);
const PULLER: Peer = Peer::Mem(2);

#[derive(Debug, Arbitrary)]
enum Change {
    Keep,
    FlipProof { at: u16, bit: u8 },
    FlipPayload { at: u16, bit: u8 },
    Reindex(u16),
    DropProof,
}

/// See the module documentation.
pub fn proofs(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = exchange(&mut u);
    let _ = local_tree(&mut u);
}

fn exchange(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let all = fixtures::all();
    let fx = &all[usize::from(u.arbitrary::<u8>()?) % all.len()];
    let count = fx.exposure.chunk_count();
    let m = fx.exposure.manifest();
    let mut exposer = Exposer::new(
        fx.exposure.clone(),
        ExposerConfig {
            dangerous_serve_unvalidated: true,
            ..Default::default()
        },
    );
    let mut cfg = PullerConfig::new(*fx.exposure.id(), EXPOSER, fx.key.clone());
    cfg.want_proofs = true;
    let now = Instant::from_millis(1_000);
    let mut puller = Puller::new(cfg, DynSuite, now);
    let mut buf = Vec::new();
    while puller.poll_transmit(now, &mut buf).is_some() {}
    let mut manifest = fixtures::manifest_packet_with_proofs(fx);
    puller.handle_datagram(now, EXPOSER, &mut manifest);
    let n = u.int_in_range(0..=64usize)?;
    let indices: Vec<u32> = (0..n)
        .map(|_| u.arbitrary::<u32>())
        .collect::<Result<Vec<u32>, _>>()?
        .into_iter()
        .map(|i| {
            if count > 0 && i & 1 == 0 {
                i % count
            } else {
                i
            }
        })
        .collect();
    let nak = fixtures::emit(&Repr::Nak(Nak {
        exposure_id: *fx.exposure.id(),
        flags: NakFlags::PROOFS,
        indices: IndexList::Slice(&indices),
        token: None,
    }));
    exposer.handle_datagram(now, PULLER, &nak);
    let hash = AnyHash::new(fx.shape.hash).expect("fixture hash");
    let mut out = Vec::new();
    while let Some(t) = exposer.poll_transmit(now, &mut out) {
        for d in t.datagrams(&out) {
            let mut d = d.to_vec();
            if let Ok(Repr::ChunkDataWithProof(c)) = Repr::parse(&d, 65_507) {
                let siblings = c
                    .proof
                    .chunks_exact(HASH_LEN)
                    .map(|s| <&Hash>::try_from(s).expect("32 bytes"));
                assert!(
                    merkle::verify_proof(
                        &hash,
                        &hash.leaf(fx.plain(c.chunk_index)),
                        c.chunk_index,
                        count,
                        siblings,
                        &m.merkle_root,
                    ),
                    "the exposer sent chunk {} with a proof that does not verify",
                    c.chunk_index
                );
            } else if let Ok(Repr::ChunkData(c)) = Repr::parse(&d, 65_507) {
                panic!("chunk {} without a proof asked for", c.chunk_index);
            }
            change(&mut d, u.arbitrary()?);
            if let Some(c) = puller.handle_datagram(now, EXPOSER, &mut d) {
                assert!(
                    c.data == fx.plain(c.index),
                    "chunk {} handed out with other bytes",
                    c.index
                );
            }
        }
    }
    Ok(())
}

fn change(d: &mut Vec<u8>, c: Change) {
    let Ok(Repr::ChunkDataWithProof(p)) = Repr::parse(d, 65_507) else {
        return;
    };
    let (proof_len, payload_len) = (p.proof.len(), p.payload.len());
    // Header 25 bytes (type, version, flags, Exposure_ID, index, depth), then the proof.
    match c {
        Change::Keep => {}
        Change::FlipProof { at, bit } if proof_len > 0 => {
            d[25 + usize::from(at) % proof_len] ^= 1 << (bit % 8);
        }
        Change::FlipPayload { at, bit } if payload_len > 0 => {
            let len = d.len();
            d[len - payload_len + usize::from(at) % payload_len] ^= 1 << (bit % 8);
        }
        Change::Reindex(i) => d[20..24].copy_from_slice(&u32::from(i).to_be_bytes()),
        Change::DropProof => {
            let (id, index, payload) = (p.exposure_id, p.chunk_index, p.payload.to_vec());
            *d = fixtures::emit(&Repr::ChunkData(rgtp_wire::ChunkData {
                exposure_id: id,
                chunk_index: index,
                payload: &payload,
            }));
        }
        _ => {}
    }
}

fn local_tree(u: &mut Unstructured<'_>) -> arbitrary::Result<()> {
    let ids = [HashId::Blake2b256, HashId::Sha256, HashId::Blake3];
    let hash = AnyHash::new(ids[usize::from(u.arbitrary::<u8>()?) % 3]).expect("hash");
    let n = u.int_in_range(1..=200usize)?;
    let mut leaves: Vec<Hash> = (0..n)
        .map(|i| hash.leaf(&(i as u32).to_le_bytes()))
        .collect();
    let mut tree = MerkleTree::from_leaves(&hash, leaves.clone());
    for _ in 0..u.int_in_range(0..=16usize)? {
        let i = u.int_in_range(0..=n - 1)?;
        let leaf: Hash = u.arbitrary()?;
        leaves[i] = leaf;
        tree.replace_leaf(&hash, i as u32, leaf);
    }
    let fresh = MerkleTree::from_leaves(&hash, leaves.clone());
    assert_eq!(tree.root(), root_of(&hash, &leaves), "replace_leaf root");
    for h in 0..=tree.depth() {
        let width = n.div_ceil(1 << h).max(1) as u32;
        for p in 0..width {
            assert_eq!(tree.node(h, p), fresh.node(h, p), "node ({h}, {p})");
        }
    }
    Ok(())
}
