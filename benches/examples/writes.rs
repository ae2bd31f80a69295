//! What writing a pull's output costs, without the pull: the floor under every
//! receiver that keeps a file, RGTP's and its peers' alike.
//!
//! Writes SIZE bytes (default 256 MiB) into a new file in DIR (default `/dev/shm`)
//! the way `rgtp pull`'s file sink does, 16 KiB `pwrite`s at increasing offsets from
//! a buffer in cache, a few rounds, and reports per round:
//! - `write`: the `pwrite` calls alone, in seconds per GB (on tmpfs this is the
//!   copy into the page cache, which any receiver pays);
//! - `sync`: the `fsync` after them;
//! - `hinted`: both again, asking the kernel to start writing back every 16 MiB
//!   (`sync_file_range`, as the sink does), so the `fsync` finds less left.
//!
//! With `--pace SECONDS` the writes are spread over that long, as a pull's are
//! (a pull at 850 MB/s writes 256 MiB in about 0.3 s); the writing back then has
//! time to run behind them. Wall times, so quote medians: the machine is shared.
//!
//! `cargo run --release -p rgtp-benches --example writes -- [DIR] [SIZE_MIB] [ROUNDS] [--pace SECONDS]`

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

const PIECE: usize = 16 << 10;
const HINT_EVERY: usize = 16 << 20;

fn main() {
    let mut pos = Vec::new();
    let mut pace = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--pace" {
            let s: f64 = args
                .next()
                .and_then(|s| s.parse().ok())
                .expect("--pace SECONDS");
            pace = Some(Duration::from_secs_f64(s));
        } else {
            pos.push(a);
        }
    }
    let dir = pos.first().map_or("/dev/shm", String::as_str).to_string();
    let mib: usize = pos.get(1).map_or(256, |a| a.parse().expect("SIZE_MIB"));
    let rounds: usize = pos.get(2).map_or(3, |a| a.parse().expect("ROUNDS"));
    let size = mib << 20;
    let path = Path::new(&dir).join(format!("rgtp-writes.{}", std::process::id()));
    let buf = rgtp_benches::data(1 << 20, rgtp_benches::SEED);
    let gb = size as f64 / 1e9;
    println!(
        "{mib} MiB into {} in {} KiB pieces{}, s/GB",
        path.display(),
        PIECE >> 10,
        pace.map_or(String::new(), |p| format!(
            ", paced over {:.2} s",
            p.as_secs_f64()
        ))
    );
    println!(
        "{:>5} {:>8} {:>8} {:>8} {:>8}",
        "round", "write", "sync", "hinted", "sync"
    );
    for round in 1..=rounds {
        let (w, s) = write_file(&path, &buf, size, pace, false);
        let (hw, hs) = write_file(&path, &buf, size, pace, true);
        println!(
            "{round:>5} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
            w.as_secs_f64() / gb,
            s.as_secs_f64() / gb,
            hw.as_secs_f64() / gb,
            hs.as_secs_f64() / gb
        );
    }
}

/// Writes `size` bytes into a new file at `path`, then syncs it and removes it;
/// returns the time of the writes and of the sync.
fn write_file(
    path: &Path,
    buf: &[u8],
    size: usize,
    pace: Option<Duration>,
    hint: bool,
) -> (Duration, Duration) {
    let f: File = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .expect("create the file");
    let t0 = Instant::now();
    let mut since = 0;
    for off in (0..size).step_by(PIECE) {
        let from = off % buf.len();
        let piece = &buf[from..from + PIECE.min(size - off)];
        f.write_all_at(piece, off as u64).expect("pwrite");
        since += piece.len();
        if hint && since >= HINT_EVERY {
            since = 0;
            // SAFETY: a plain syscall on a descriptor this function owns.
            unsafe {
                libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
            }
        }
        if let Some(p) = pace {
            let due = t0 + p.mul_f64((off + PIECE) as f64 / size as f64);
            while Instant::now() < due {
                std::hint::spin_loop();
            }
        }
    }
    let written = t0.elapsed();
    let t1 = Instant::now();
    f.sync_all().expect("fsync");
    let synced = t1.elapsed();
    drop(f);
    let _ = fs::remove_file(path);
    (written, synced)
}
