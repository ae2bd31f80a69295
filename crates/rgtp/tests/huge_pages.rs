//! The sealed store moved onto transparent huge pages while it is lent to the
//! link: no byte of it changes, the kernel's own count agrees with what the move
//! reports, and a pull over loopback UDP, its batches sent from the store's
//! pages, delivers every chunk verified.
#![cfg(target_os = "linux")]

mod common;

use rgtp::ExposerBuilder;

/// The kB of huge pages `/proc/self/smaps` counts in the mapping that holds `at`.
fn huge_kb_at(at: usize) -> usize {
    let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
    let mut inside = false;
    for line in smaps.lines() {
        let range = line.split_once(' ').map_or(line, |(r, _)| r);
        if let Some((lo, hi)) = range.split_once('-') {
            if let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = (lo..hi).contains(&at);
                continue;
            }
        }
        if let Some(kb) = line.strip_prefix("AnonHugePages:").filter(|_| inside) {
            return kb.trim().trim_end_matches("kB").trim().parse().expect("kB");
        }
    }
    0
}

#[test]
fn a_lent_store_moves_onto_huge_pages_unchanged_and_serves() {
    let data = common::data(9 << 20, 11);
    let link = common::loopback(false);
    let prepared = common::prepare(ExposerBuilder::new(), &link, &data);
    let job = prepared.huge_pages().expect("a store of 9 MiB is mapped");
    let store = prepared.exposure.store_bytes();
    let before = store.to_vec();
    let server = common::Server::start(&prepared, link);

    // Stopped before its first piece: nothing moves.
    let stopped = job.run(|| true);
    assert_eq!(stopped.moved, 0, "{stopped:?}");

    // Moved while the exposer serves a first pull.
    let moved = std::thread::scope(|s| {
        let mover = s.spawn(|| job.run(|| false));
        let (out, _) = common::pull(&prepared, server.addr, |_| {});
        assert!(out.expect("first pull") == data);
        mover.join().expect("mover")
    });
    if moved.pieces == 0 {
        // No transparent huge pages on this kernel: nothing to check but the rest.
        assert_eq!(moved.moved, 0);
    } else {
        // 9 MiB spans at least three whole huge pages of up to 2 MiB wherever it starts.
        assert!(moved.piece_bytes.is_power_of_two());
        assert!(moved.pieces >= (store.len() / moved.piece_bytes).saturating_sub(1));
        assert!(moved.moved <= moved.pieces);
        assert_eq!(
            moved.moved == moved.pieces,
            moved.refused.is_none(),
            "{moved:?}"
        );
        let huge = huge_kb_at(store.as_ptr() as usize) * 1024;
        assert!(
            huge >= moved.moved * moved.piece_bytes,
            "{moved:?}, {huge} B huge"
        );
    }
    assert!(store == &before[..], "moving changed the store");

    // A second pull after the move: every batch from the store's pages, verified.
    let (out, stats) = common::pull(&prepared, server.addr, |_| {});
    let (_, link) = server.stop_with_link();
    assert!(out.expect("second pull") == data);
    assert_eq!(stats.auth_failures, 0);
    assert!(link.lent_batches > 0, "{link:?}");
    assert_eq!(link.lend_fallbacks, 0, "{link:?}");
}
