//! `slow-retry-puller TICKET OUT`: a deliberately faulty puller for the interop
//! matrix. Its layers are ours and right, but it waits a minute before asking
//! again for anything lost (a retransmission timeout far above any RTT) and gives
//! up after 3 s without progress: it pulls a clean path byte-exact and fails
//! wherever a datagram is lost — the shape of a failed matrix cell.

use std::time::Duration;

use rgtp::Ticket;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [ticket, out] = args.as_slice() else {
        eprintln!("usage: slow-retry-puller TICKET OUT");
        std::process::exit(2);
    };
    let ticket: Ticket = ticket.parse().unwrap_or_else(|e| {
        eprintln!("slow-retry-puller: bad ticket: {e}");
        std::process::exit(2)
    });
    let pulled = rgtp_conformance::reference::pull_configured(
        &ticket,
        rgtp::DynSuite,
        Duration::from_secs(5),
        Duration::from_secs(3),
        |c| c.min_rto = Duration::from_secs(60),
    );
    match pulled {
        Ok(data) => {
            if let Err(e) = std::fs::write(out, data) {
                eprintln!("slow-retry-puller: {out}: {e}");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("slow-retry-puller: {e}");
            std::process::exit(3);
        }
    }
}
