//! An exposure set served and fetched in one process through `rgtp::files`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rgtp::files::{self, ErrorKind, FilesEvent, FilesProgress, GetOptions, SendOptions};

#[derive(Default)]
struct Record(Mutex<Vec<String>>);

impl FilesProgress for Record {
    fn on_event(&self, ev: &FilesEvent<'_>) {
        let line = match ev {
            FilesEvent::Catalog { files, bytes, .. } => format!("catalog {files} {bytes}"),
            FilesEvent::FileStarted { path, size, .. } => format!("start {path} {size}"),
            FilesEvent::FileBytes { path, done, .. } => format!("bytes {path} {done}"),
            FilesEvent::FileDone {
                path,
                bytes,
                total_done,
                ..
            } => format!("done {path} {bytes} {total_done}"),
            FilesEvent::FileRetry { path, .. } => format!("retry {path}"),
            FilesEvent::FileFailed { path, .. } => format!("failed {path}"),
        };
        self.0.lock().unwrap().push(line);
    }
}

#[test]
fn a_tree_is_fetched_with_its_events_in_order() {
    let src = tempfile::tempdir().unwrap();
    let tree = src.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(tree.join("big.bin"), &big).unwrap();
    std::fs::write(tree.join("empty"), b"").unwrap();
    std::fs::write(tree.join("sub/note.txt"), b"nested").unwrap();

    let mut o = SendOptions::new(vec![tree.clone()]);
    o.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    let p = files::prepare(&o).unwrap();
    assert_eq!((p.files, p.bytes), (3, big.len() as u64 + 6));
    let ticket = p.ticket.to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let server = {
        let stop = stop.clone();
        std::thread::spawn(move || files::serve(p, None, &stop))
    };

    let dest = tempfile::tempdir().unwrap();
    let rec = Record::default();
    let got = files::fetch(
        &GetOptions::new(&ticket, dest.path()),
        &rec,
        &AtomicBool::new(false),
    )
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap().unwrap();

    assert_eq!(got.files, 3);
    assert_eq!(got.bytes, big.len() as u64 + 6);
    let out = dest.path().join("tree");
    assert_eq!(std::fs::read(out.join("big.bin")).unwrap(), big);
    assert_eq!(std::fs::read(out.join("empty")).unwrap(), b"");
    assert_eq!(std::fs::read(out.join("sub/note.txt")).unwrap(), b"nested");

    let ev = rec.0.into_inner().unwrap();
    assert_eq!(ev[0], format!("catalog 3 {}", big.len() + 6));
    let done: Vec<&String> = ev.iter().filter(|l| l.starts_with("done ")).collect();
    assert_eq!(done.len(), 3);
    assert!(
        done[2].ends_with(&format!(" {}", big.len() + 6)),
        "{done:?}"
    );
    // One file at a time: each file's events are started, bytes…, done, and the
    // byte counts never go back.
    let big_events: Vec<&String> = ev.iter().filter(|l| l.contains("big.bin")).collect();
    assert_eq!(big_events[0], &format!("start tree/big.bin {}", big.len()));
    assert!(big_events.last().unwrap().starts_with("done tree/big.bin"));
    let counts: Vec<u64> = big_events
        .iter()
        .filter_map(|l| l.strip_prefix("bytes tree/big.bin "))
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(!counts.is_empty());
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
}

#[test]
fn a_bad_ticket_is_a_usage_error() {
    let e = files::fetch(
        &GetOptions::new("rgtp://nonsense", "."),
        &files::NoProgress,
        &AtomicBool::new(false),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Usage);
    assert!(e.message.starts_with("bad ticket"), "{e}");
}
