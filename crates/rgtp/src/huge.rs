//! A sealed store moved onto transparent huge pages ([`Prepared::huge_pages`]).
//!
//! An exposer that lends its store to the UDP link sends each batch of chunks
//! from the store's own pages: the kernel pins every page a send covers, so a
//! 64 KiB batch costs 16 or 17 page lookups and reference counts on 4 KiB pages,
//! and one on a 2 MiB page. The store is written once, while it is sealed, and
//! only read after, so once sealed it can be moved onto huge pages for good.
//!
//! It is not sealed on huge pages in the first place: on a virtual machine that
//! hands free memory back to its host, a huge page fresh from the host must be
//! backed again first, which made sealing several times slower
//! ([`crate::sink::anon_map`]). Moving the store afterwards costs about as much,
//! but while the exposer already serves, from a thread that runs when a CPU is
//! idle (`rgtp expose` does so), and a piece at a time: each 2 MiB piece is
//! copied into a huge page by the kernel (`MADV_COLLAPSE`, Linux 6.1), which
//! changes none of its bytes. A piece the kernel cannot move just now (a page of
//! it in a send) is tried once more at the end; any other refusal (no huge page
//! to be had, a kernel without the call) ends the run, and the rest of the store
//! stays on the pages it was sealed on.
//!
//! [`Prepared::huge_pages`]: crate::Prepared::huge_pages

use std::sync::Arc;

use rgtp_proto::exposer::Exposure;

/// The size of a transparent huge page (the kernel's PMD size), if the kernel has
/// them.
fn huge_page_size() -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        let text =
            std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size").ok()?;
        text.trim()
            .parse::<usize>()
            .ok()
            .filter(|s| s.is_power_of_two())
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// What moving a store onto huge pages did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moved {
    /// Whole huge pages the store spans (the part of it before its first huge-page
    /// boundary, and after its last, stays on small pages).
    pub pieces: usize,
    /// Those the kernel moved onto a huge page (or found on one already).
    pub moved: usize,
    /// Bytes in each piece.
    pub piece_bytes: usize,
    /// Why the rest stayed where they were, if the kernel said: `None` when every
    /// piece moved or the run was stopped.
    pub refused: Option<std::io::ErrorKind>,
}

/// Moves a sealed store onto transparent huge pages: see the [module](self).
/// Made by [`Prepared::huge_pages`](crate::Prepared::huge_pages); it holds the
/// exposure, so it may run on a thread of its own while the exposer serves.
pub struct HugePages {
    exposure: Arc<Exposure>,
}

impl HugePages {
    pub(crate) fn new(exposure: Arc<Exposure>) -> Self {
        HugePages { exposure }
    }

    /// Moves the store, a huge page at a time, checking `stop` before each one
    /// (a stopped run leaves the rest as it was). Where the kernel has no
    /// transparent huge pages, or no way to move memory onto them, nothing
    /// changes and `pieces` or `moved` says so.
    pub fn run(&self, stop: impl Fn() -> bool) -> Moved {
        let Some(size) = huge_page_size() else {
            return Moved::default();
        };
        let bytes = self.exposure.store_bytes();
        let start = bytes.as_ptr() as usize;
        let first = start.next_multiple_of(size);
        let end = (start + bytes.len()) & !(size - 1);
        let pieces = end.saturating_sub(first) / size;
        let mut done = Moved {
            pieces,
            piece_bytes: size,
            ..Moved::default()
        };
        let mut again = Vec::new();
        for piece in (0..pieces).map(|i| first + i * size) {
            if stop() {
                return done;
            }
            match collapse(piece, size) {
                Ok(()) => done.moved += 1,
                // Transient: a page of it pinned by a send, or locked for a moment.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => again.push(piece),
                Err(e) => {
                    done.refused = Some(e.kind());
                    return done;
                }
            }
        }
        for piece in again {
            if stop() {
                return done;
            }
            match collapse(piece, size) {
                Ok(()) => done.moved += 1,
                Err(e) => done.refused = Some(e.kind()),
            }
        }
        done
    }
}

/// Asks the kernel to back `[at, at + len)`, one whole huge page of the store,
/// with a huge page.
#[cfg(target_os = "linux")]
fn collapse(at: usize, len: usize) -> std::io::Result<()> {
    // SAFETY: `[at, at + len)` lies within the exposure's store, a private
    // anonymous mapping the `HugePages` keeps alive. MADV_COLLAPSE copies the
    // pages' bytes into a huge page and maps it in their place: no byte of the
    // range changes, which is what every reader of the store (and every send still
    // in the kernel, holding the old pages) relies on. A kernel without it
    // refuses with EINVAL and changes nothing.
    let r = unsafe { libc::madvise(at as *mut libc::c_void, len, libc::MADV_COLLAPSE) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn collapse(_: usize, _: usize) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}
