//! The leaf hash of every chunk accepted, kept when the root is checked here
//! without proofs, so that a root mismatch can be traced to the chunks that
//! caused it (`repair.rs`).
//!
//! State only. Leaves are stored in pages allocated as the first leaf of each
//! page arrives: memory follows what was accepted (32 bytes a chunk plus one
//! page pointer per [`PAGE`] chunks declared), never the Chunk_Count alone
//! (spec §8.11).

use rgtp_wire::{Hash, HASH_LEN};

/// Leaves per page.
pub(super) const PAGE: usize = 4096;

/// Leaf hashes by chunk index, allocated a page at a time.
#[derive(Debug)]
pub(super) struct LeafStore {
    count: u32,
    pages: Vec<Option<Box<[Hash]>>>,
}

impl LeafStore {
    /// A store for `count` leaves, holding none.
    pub(super) fn new(count: u32) -> Self {
        let mut pages = Vec::new();
        pages.resize_with((count as usize).div_ceil(PAGE), || None);
        LeafStore { count, pages }
    }

    /// Records leaf `idx` (`idx < count`).
    pub(super) fn set(&mut self, idx: u32, leaf: Hash) {
        let (page, at) = (idx as usize / PAGE, idx as usize % PAGE);
        if let Some(p) = self.pages.get_mut(page) {
            p.get_or_insert_with(|| vec![[0u8; HASH_LEN]; PAGE].into_boxed_slice())[at] = leaf;
        }
    }

    /// Every leaf in index order (a leaf never set reads as zeros).
    pub(super) fn into_leaves(self) -> Vec<Hash> {
        let mut out = Vec::with_capacity(self.count as usize);
        for page in self.pages {
            let left = self.count as usize - out.len();
            match page {
                Some(p) => out.extend_from_slice(&p[..left.min(PAGE)]),
                None => out.resize(out.len() + left.min(PAGE), [0; HASH_LEN]),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_appear_only_where_leaves_do() {
        let mut s = LeafStore::new(3 * PAGE as u32 + 5);
        s.set(1, [1; 32]);
        s.set(3 * PAGE as u32 + 4, [2; 32]);
        assert_eq!(s.pages.iter().filter(|p| p.is_some()).count(), 2);
        let all = s.into_leaves();
        assert_eq!(all.len(), 3 * PAGE + 5);
        assert_eq!(all[1], [1; 32]);
        assert_eq!(all[3 * PAGE + 4], [2; 32]);
        assert_eq!(all[PAGE], [0; 32]);
    }
}
