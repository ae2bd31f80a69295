//! A deliberately faulty exposer: after every Manifest it sends, it pushes a burst of
//! chunks nobody asked for (as upstream's C library does when a puller connects). The
//! chunks are genuine, so a puller can still complete; the exposer cases catch it, and
//! exactly these fail: EXP-001, EXP-002, EXP-010 and EXP-062 (each sends a Pull_Request,
//! EXP-062's with RATE_CAP, and expects its Manifest and nothing more), EXP-006
//! (a Pull_Request answered with Chunk_Data), EXP-043 and EXP-044 (the burst is far more
//! than 3× the 36-byte Pull_Request it follows). The proof-run cases EXP-063 and EXP-064
//! pass: each starts from a quiet socket once its handshake is done, so the burst is
//! never taken for an answer to a NAK. `tests/faults.rs` runs the exposer cases against
//! it and the `faulty-exposer` example serves a file with it, for the interop matrix.

use std::net::SocketAddr;
use std::sync::Arc;

use rgtp::Prepared;
use rgtp_proto::ExposerConfig;

use crate::adversary::{self, Mangle, Out};

/// Chunks pushed after each Manifest by [`serve_pushing`].
pub const BURST: u32 = 8;

/// After every Manifest it sends, pushes `burst`, unrequested.
pub struct PushAfterManifest {
    /// The datagrams pushed after each Manifest.
    pub burst: Vec<Vec<u8>>,
}

impl Mangle for PushAfterManifest {
    fn outbound(&mut self, _to: SocketAddr, d: &[u8], out: &mut Vec<Out>) {
        out.push(Out::real(d.to_vec()));
        if d.get(1) == Some(&2) {
            out.extend(self.burst.iter().cloned().map(Out::real));
        }
    }
}

/// The first `count` Chunk_Data datagrams of `prepared` (at most its chunk count), as its
/// exposers send them to anybody (drawn from a second exposer of the same exposure that
/// serves unvalidated NAKs).
pub fn chunks_of(prepared: &Prepared, count: u32) -> Vec<Vec<u8>> {
    let count = count.min(prepared.exposure.chunk_count());
    let config = ExposerConfig {
        dangerous_serve_unvalidated: true,
        ..prepared.config.clone()
    };
    let mut exposer = rgtp_proto::Exposer::new(Arc::clone(&prepared.exposure), config);
    let clock = rgtp::driver::Clock::new();
    let id = *prepared.exposure.id();
    let entries: Vec<u32> = (0..count).collect();
    let nak = crate::net::nak(id, &entries, rgtp_wire::NakFlags::empty(), None);
    let peer = rgtp_proto::Peer::Ip("127.0.0.1:9".parse().expect("literal"));
    exposer.handle_datagram(clock.now(), peer, &nak);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while let Some(t) = exposer.poll_transmit(clock.now(), &mut buf) {
        out.extend(t.datagrams(&buf).map(<[u8]>::to_vec));
    }
    out
}

/// Serves `prepared` on `bind` through the harness's loop, pushing its first [`BURST`]
/// chunks after every Manifest, until the returned handle is dropped.
pub fn serve_pushing(prepared: &Prepared, bind: SocketAddr) -> std::io::Result<adversary::Served> {
    let burst = chunks_of(prepared, BURST);
    adversary::spawn(
        prepared.exposer(),
        bind,
        Box::new(PushAfterManifest { burst }),
    )
}
