//! `pcap`: capture replay on arbitrary capture bytes.
//!
//! Input: one selector byte, then a capture file (pcap or pcapng). The selector
//! picks a scenario of the canonical corpus (`rgtp_cli::corpus`), whose ticket
//! and dataset are known, so a mutated recording of that transfer can be
//! judged, not just survived:
//! - reading, [`rgtp_cli::inspect::inspect`] (text and JSON) never panic;
//! - replaying into a puller never yields wrong bytes: a pull that completes
//!   gives exactly the scenario's dataset;
//! - replaying into the rebuilt exposer never breaks the amplification bound
//!   (unvalidated bytes out ≤ 3 × unvalidated bytes in).

use std::sync::OnceLock;

use rgtp::replay::{replay_expose, replay_pull, Pace, PullVerdict};
use rgtp::{Prepared, Ticket};
use rgtp_cli::corpus::{self, Scenario};

struct Known {
    scenario: Scenario,
    prepared: Prepared,
    ticket: Ticket,
    data: Vec<u8>,
}

fn known() -> &'static [Known] {
    static KNOWN: OnceLock<Vec<Known>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        corpus::scenarios()
            .into_iter()
            .map(|s| {
                let prepared = corpus::prepare(&s);
                let ticket = prepared.ticket_for(s.exposer);
                let data = corpus::dataset(&s);
                Known {
                    scenario: s,
                    prepared,
                    ticket,
                    data,
                }
            })
            .collect()
    })
}

/// The body of the `pcap` target.
pub fn pcap(data: &[u8]) {
    let Some((&selector, file)) = data.split_first() else {
        return;
    };
    let Ok(capture) = rgtp_capture::read(file) else {
        return;
    };
    for r in &capture.records {
        if let Ok(d) = &r.content {
            assert!(
                d.payload.len() <= r.captured_len,
                "a datagram larger than its frame"
            );
        }
    }
    let k = &known()[usize::from(selector) % known().len()];
    let report = rgtp_cli::inspect::inspect(&capture, Some(&k.ticket));
    let _ = report.to_string();
    let _ = report.to_json().to_string();
    let replay = replay_pull(&capture, &k.ticket, None, Pace::Fast, |c| {
        c.want_proofs = k.scenario.proofs;
    });
    if let PullVerdict::Complete(bytes) = &replay.verdict {
        assert!(
            bytes == &k.data,
            "a replayed pull completed with bytes that are not the exposure's"
        );
    }
    if let Some(recovered) = &report.recovered {
        assert!(recovered == &k.data, "inspect recovered wrong bytes");
    }
    if let Ok(exposer) = k.ticket.peer() {
        let x = replay_expose(&capture, &k.prepared, exposer, Pace::Fast);
        let s = x.stats;
        assert!(
            s.unvalidated_bytes_out <= 3 * s.unvalidated_bytes_in,
            "amplification bound broken: {} out for {} in",
            s.unvalidated_bytes_out,
            s.unvalidated_bytes_in
        );
        assert!(x.produced.len() as u64 <= s.datagrams_out);
    }
}
