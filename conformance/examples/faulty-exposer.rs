//! `faulty-exposer FILE PORT`: serves FILE on 127.0.0.1:PORT (0: any free port) with the
//! deliberately faulty exposer of `rgtp_conformance::faulty` (it pushes unrequested chunks
//! after every Manifest), prints the ticket on the first line of standard output and
//! serves until killed. An exposer command for `rgtp-conformance exposer --cmd` and the
//! interop matrix.

use std::io::Write;
use std::net::SocketAddr;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, port] = args.as_slice() else {
        eprintln!("usage: faulty-exposer FILE PORT");
        std::process::exit(2);
    };
    let data = std::fs::read(file).unwrap_or_else(|e| {
        eprintln!("faulty-exposer: {file}: {e}");
        std::process::exit(1)
    });
    let port: u16 = port.parse().unwrap_or_else(|_| {
        eprintln!("faulty-exposer: bad port {port:?}");
        std::process::exit(2)
    });
    let prepared = rgtp::ExposerBuilder::new()
        .expose(&data)
        .unwrap_or_else(|e| {
            eprintln!("faulty-exposer: {e}");
            std::process::exit(1)
        });
    let bind = SocketAddr::from(([127, 0, 0, 1], port));
    let served = rgtp_conformance::faulty::serve_pushing(&prepared, bind).unwrap_or_else(|e| {
        eprintln!("faulty-exposer: cannot bind {bind}: {e}");
        std::process::exit(1)
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", prepared.ticket(served.addr));
    let _ = out.flush();
    drop(out);
    loop {
        std::thread::park();
    }
}
