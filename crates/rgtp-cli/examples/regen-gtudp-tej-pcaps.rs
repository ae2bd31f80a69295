//! Regenerates the gtUDP and TEJ captures of `pcaps/` (deterministic).
//!
//! `cargo run -p rgtp-cli --example regen-gtudp-tej-pcaps [DIR]`

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pcaps"));
    for name in rgtp_cli::pcaps_gtudp_tej::generate(&dir)? {
        println!("{}", dir.join(format!("{name}.pcap")).display());
    }
    Ok(())
}
