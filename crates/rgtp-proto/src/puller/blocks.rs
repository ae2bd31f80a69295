//! The FEC blocks being collected: the shards of each block with missing data.
//!
//! State only: the behaviour that uses it is `reassembly.rs`.

use std::collections::HashMap;

/// The shards of one block collected so far.
pub(super) struct Block {
    pub(super) shards: Vec<Option<Vec<u8>>>,
    pub(super) have: usize,
    pub(super) missing_data: usize,
}

/// Blocks with missing data shards, by block number.
pub(super) struct Reassembly {
    pub(super) blocks: HashMap<u32, Block>,
}

impl Reassembly {
    pub(super) fn new() -> Self {
        Reassembly {
            blocks: HashMap::new(),
        }
    }

    /// Drops every block (the transfer is over).
    pub(super) fn clear(&mut self) {
        self.blocks.clear();
    }
}
