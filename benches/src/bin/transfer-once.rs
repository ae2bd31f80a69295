//! One whole transfer, for instruction counting: `transfer-once MODE SIZE`.
//!
//! MODE `sim` pulls SIZE bytes (default 8 MiB, the default suite) in the
//! deterministic simulator over a perfect network, so the instructions it
//! executes are the same on every run of the same build; MODE `udp` pulls over
//! loopback UDP with the exposer on its own thread (the count then varies
//! slightly with timing). Prints the goodput of the run, which under
//! `valgrind --tool=callgrind` means nothing: `benches/icount.sh` counts the
//! instructions of `sim_transfer` / `udp_transfer` and compares two builds.

use rgtp_benches::{data, prepare, sim_transfer, udp_transfer, Choice, SEED};

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "sim".into());
    let size = match args.next().map(|s| s.parse::<usize>()) {
        None => 8 << 20,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("transfer-once: SIZE must be a positive number of bytes");
            std::process::exit(2);
        }
    };
    let input = data(size, SEED);
    let prepared = prepare(&input, Choice::defaults());
    let took = match mode.as_str() {
        "sim" => sim_transfer(&prepared, &input),
        "udp" => udp_transfer(&prepared, &input),
        other => {
            eprintln!("transfer-once: unknown mode {other:?}; use sim or udp");
            std::process::exit(2);
        }
    };
    let secs = took.as_secs_f64();
    println!(
        "{mode} {size} B in {secs:.6} s: {:.1} MB/s",
        size as f64 / secs / 1e6
    );
}
