//! Chunks judged an aligned run at a time (proof runs, spec §3.6 and §8.11).
//!
//! Under NakFlags `PROOF_RUNS` only the first chunk of each aligned run of 64
//! carries its proof. A chunk without one cannot be judged alone: its run is
//! judged once every chunk of it is in, by building the run's root from the 64
//! leaves and checking it with whichever member's proof arrived (or against the
//! hash a verified proof of a neighbouring run showed for it). Chunks that do carry
//! proofs are held the same way, so a run of chunks that all carry proofs costs one
//! proof check too. When a run does not pass whole (a wrong chunk in it, or no
//! proof to check it with), its chunks are judged one by one: those with a proof
//! by it, those without by the verified hashes around them, alone or as aligned
//! parts of the run (a part whose root contradicts a verified hash fails whole:
//! some chunk in it is wrong); the rest are unproven and requested again, with
//! their proofs.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use rgtp_wire::{Hash, HASH_LEN};

use super::event::Verdict;
use super::inflight::IndexHasher;
use super::tree::{level_start, ProofChecker, SUBTREE_MAX, SUBTREE_NODES};
use crate::merkle::{proof_depth, MerkleScheme};

/// Runs held open at most (each ~2 KiB of leaves plus its proofs); past this the
/// lowest is judged as it stands. Open runs follow the chunks lost and not yet
/// re-requested, never the Chunk_Count a Manifest declared.
pub const MAX_OPEN_RUNS: usize = 4096;

/// The chunks of one run that are in and wait for a verdict.
#[derive(Debug)]
struct Run {
    leaves: [Hash; 1 << SUBTREE_MAX],
    /// Members in, waiting (bit = index within the run).
    present: u64,
    /// Members that came with a proof: (index within the run, start in `proofs`).
    with_proof: Vec<(u8, usize)>,
    proofs: Vec<u8>,
}

impl Run {
    fn new() -> Box<Run> {
        Box::new(Run {
            leaves: [[0; HASH_LEN]; 1 << SUBTREE_MAX],
            present: 0,
            with_proof: Vec::new(),
            proofs: Vec::new(),
        })
    }

    fn proof(&self, slot: u8, len: usize) -> Option<&[u8]> {
        self.with_proof
            .iter()
            .rev()
            .find(|&&(s, _)| s == slot)
            .map(|&(_, at)| &self.proofs[at..at + len])
    }
}

/// Judges chunks handed out unverified ([`PullerConfig::offload_proofs`]), with or
/// without a proof of their own, a run at a time; folds the tree over those that
/// pass, so the root at the end costs nothing more. What a driver runs on its
/// checking thread.
///
/// [`PullerConfig::offload_proofs`]: super::PullerConfig::offload_proofs
#[derive(Debug)]
pub struct RunChecker {
    checker: ProofChecker,
    count: u32,
    /// log2 of the run length: [`SUBTREE_MAX`], or the tree's depth if smaller.
    height: usize,
    proof_len: usize,
    /// One bit per chunk that passed.
    passed: Vec<u64>,
    open: HashMap<u32, Box<Run>, BuildHasherDefault<IndexHasher>>,
    /// Every node of the run being judged.
    levels: Box<[Hash; SUBTREE_NODES]>,
    /// Emptied runs, reused. Boxed: a run moves between here and `open` as a
    /// pointer, not as its 2 KiB of leaves.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Run>>,
}

impl RunChecker {
    /// A checker for `count` chunks (`count >= 1`) under Merkle root `root`.
    pub fn new<M: MerkleScheme + ?Sized>(scheme: &M, count: u32, root: Hash) -> Self {
        let depth = proof_depth(count);
        RunChecker {
            checker: ProofChecker::new(scheme, count, root, true),
            count,
            height: depth.min(SUBTREE_MAX),
            proof_len: depth * HASH_LEN,
            passed: vec![0; (count as usize).div_ceil(64)],
            open: HashMap::default(),
            levels: Box::new([[0; HASH_LEN]; SUBTREE_NODES]),
            spare: Vec::new(),
        }
    }

    fn has_passed(&self, idx: u32) -> bool {
        self.passed
            .get(idx as usize / 64)
            .is_some_and(|w| w & (1 << (idx % 64)) != 0)
    }

    fn pass(&mut self, idx: u32, out: &mut Vec<(u32, Verdict)>) {
        self.passed[idx as usize / 64] |= 1 << (idx % 64);
        out.push((idx, Verdict::Verified));
    }

    /// Takes chunk `idx` (its `leaf`, and its `proof` if it came with one) and
    /// appends to `out` the verdicts this settles: none while its run is not
    /// complete, the whole run's once it is. A chunk that already passed passes
    /// again at once; an index past the last chunk is ignored.
    pub fn add<M: MerkleScheme + ?Sized>(
        &mut self,
        scheme: &M,
        idx: u32,
        leaf: Hash,
        proof: Option<&[u8]>,
        out: &mut Vec<(u32, Verdict)>,
    ) {
        if idx >= self.count {
            return;
        }
        if self.has_passed(idx) {
            out.push((idx, Verdict::Verified));
            return;
        }
        let r = idx >> self.height;
        let slot = (idx & ((1 << self.height) - 1)) as u8;
        if let Some(p) = proof {
            if self.any_passed(r) {
                // Part of its run passed already (the rest was requested again,
                // with proofs): nothing to gain by waiting.
                let v = self.checker.judge(scheme, idx, leaf, Some(p));
                match v {
                    Some(Verdict::Verified) => self.pass(idx, out),
                    _ => out.push((idx, Verdict::Failed)),
                }
                if let Some(run) = self.open.get_mut(&r) {
                    run.present &= !(1 << slot);
                }
                if self.complete(r) {
                    self.judge(scheme, r, out);
                }
                return;
            }
        }
        if !self.open.contains_key(&r) && self.open.len() >= MAX_OPEN_RUNS {
            if let Some(&lowest) = self.open.keys().min() {
                self.judge(scheme, lowest, out);
            }
        }
        let spare = &mut self.spare;
        let run = self
            .open
            .entry(r)
            .or_insert_with(|| spare.pop().unwrap_or_else(Run::new));
        run.leaves[slot as usize] = leaf;
        run.present |= 1 << slot;
        if let Some(p) = proof.filter(|p| p.len() == self.proof_len) {
            run.with_proof.push((slot, run.proofs.len()));
            run.proofs.extend_from_slice(p);
        } else if proof.is_some() {
            // A proof of the wrong length fails at once (spec §6.4).
            run.present &= !(1 << slot);
            out.push((idx, Verdict::Failed));
            return;
        }
        if self.complete(r) {
            self.judge(scheme, r, out);
        }
    }

    /// True if some chunk of run `r` passed.
    fn any_passed(&self, r: u32) -> bool {
        let (first, n) = self.members(r);
        let (word, shift) = (first as usize / 64, first % 64);
        let mask = if n == 64 { u64::MAX } else { (1 << n) - 1 };
        self.passed
            .get(word)
            .is_some_and(|w| (w >> shift) & mask != 0)
    }

    /// The members of run `r`: (first index, how many).
    fn members(&self, r: u32) -> (u32, u32) {
        let first = r << self.height;
        (first, (self.count - first).min(1 << self.height))
    }

    /// True when every member of run `r` is in or has passed.
    fn complete(&self, r: u32) -> bool {
        let Some(run) = self.open.get(&r) else {
            return false;
        };
        let (first, n) = self.members(r);
        (0..n).all(|s| run.present & (1 << s) != 0 || self.has_passed(first + s))
    }

    /// Judges open run `r` as it stands and closes it.
    fn judge<M: MerkleScheme + ?Sized>(
        &mut self,
        scheme: &M,
        r: u32,
        out: &mut Vec<(u32, Verdict)>,
    ) {
        let Some(mut run) = self.open.remove(&r) else {
            return;
        };
        let (first, n) = self.members(r);
        let full = if n == 64 { u64::MAX } else { (1 << n) - 1 };
        if run.present == full && self.height > 0 {
            // Whole: one root over the run, checked with a member's proof, or
            // against what a neighbour's proof showed; every member's own proof
            // must lead to that root too.
            let h = self.height;
            let leaves = &run.leaves[..n as usize];
            let levels = &mut self.levels;
            let root = self.checker.subtree_levels(scheme, h, r, leaves, levels);
            // A member's proof below the run's height must name the run's own nodes.
            let consistent = run.with_proof.iter().all(|&(slot, at)| {
                let below = run.proofs[at..at + h * HASH_LEN].chunks_exact(HASH_LEN);
                below.enumerate().all(|(k, sibling)| {
                    let node = level_start(h, k) + ((usize::from(slot) >> k) ^ 1);
                    levels[node][..] == *sibling
                })
            });
            if let (Some(root), true) = (root, consistent) {
                let above = run
                    .with_proof
                    .first()
                    .map(|&(_, at)| &run.proofs[at + h * HASH_LEN..at + self.proof_len]);
                match self.checker.judge_node(scheme, h, r, root, above) {
                    Some(true) => {
                        for s in 0..n {
                            self.pass(first + s, out);
                        }
                        self.recycle(run);
                        return;
                    }
                    None => {
                        // No proof among them (a head rebuilt by FEC) and nothing
                        // verified vouches for the run yet: its first chunk is asked
                        // for again, and comes with its proof; the others wait.
                        run.present &= !1;
                        out.push((first, Verdict::Unproven));
                        self.open.insert(r, run);
                        return;
                    }
                    Some(false) => {}
                }
            }
        }
        // One by one: first those with a proof, then those without, again while
        // any passes (each that passes completes a subtree the next may need).
        for s in 0..n {
            if run.present & (1 << s) == 0 {
                continue;
            }
            let Some(proof) = run.proof(s as u8, self.proof_len) else {
                continue;
            };
            let v = self
                .checker
                .judge(scheme, first + s, run.leaves[s as usize], Some(proof));
            run.present &= !(1 << s);
            match v {
                Some(Verdict::Verified) => self.pass(first + s, out),
                _ => out.push((first + s, Verdict::Failed)),
            }
        }
        // Those without, alone or as aligned parts of the run whose true hash a
        // verified proof showed, smallest first (so a part that fails is as small
        // as what is known allows); again while anything is settled.
        loop {
            let before = run.present;
            for k in 0..=self.height {
                let size = 1u32 << k;
                for part in (0..n).step_by(size as usize) {
                    let len = size.min(n - part);
                    let mask = if len == 64 {
                        u64::MAX
                    } else {
                        ((1u64 << len) - 1) << part
                    };
                    if run.present & mask != mask {
                        continue;
                    }
                    let at = first + part;
                    let judged = if k == 0 {
                        self.checker
                            .judge(scheme, at, run.leaves[part as usize], None)
                            .map(|v| v == Verdict::Verified)
                    } else {
                        let leaves = &run.leaves[part as usize..(part + len) as usize];
                        match self.checker.subtree_root(scheme, k, at >> k, leaves) {
                            Some(root) => self.checker.judge_node(scheme, k, at >> k, root, None),
                            None => None,
                        }
                    };
                    let Some(passed) = judged else { continue };
                    run.present &= !mask;
                    for i in at..at + len {
                        if passed {
                            self.pass(i, out);
                        } else {
                            out.push((i, Verdict::Failed));
                        }
                    }
                }
            }
            if run.present == before {
                break;
            }
        }
        for s in 0..n {
            if run.present & (1 << s) != 0 {
                out.push((first + s, Verdict::Unproven));
            }
        }
        self.recycle(run);
    }

    fn recycle(&mut self, mut run: Box<Run>) {
        run.present = 0;
        run.with_proof.clear();
        run.proofs.clear();
        self.spare.push(run);
    }

    /// The root over every chunk that passed, once all have.
    pub fn root(&self) -> Option<Hash> {
        self.checker.root()
    }

    /// Runs held open, waiting for members.
    pub fn open_runs(&self) -> usize {
        self.open.len()
    }

    /// Hashes the underlying [`ProofChecker`] holds.
    pub fn held(&self) -> usize {
        self.checker.held()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{MerkleTree, TestingHash};

    fn leaves(n: u32) -> Vec<Hash> {
        (0..n).map(|i| TestingHash.leaf(&i.to_le_bytes())).collect()
    }

    fn proof_of(tree: &MerkleTree, i: u32) -> Vec<u8> {
        let mut p = vec![0u8; tree.depth() * HASH_LEN];
        tree.write_proof(i, &mut p);
        p
    }

    /// A checker for `n` leaves, the leaves and their tree.
    fn setup(n: u32) -> (RunChecker, Vec<Hash>, MerkleTree) {
        let l = leaves(n);
        let tree = MerkleTree::from_leaves(&TestingHash, l.clone());
        (RunChecker::new(&TestingHash, n, tree.root()), l, tree)
    }

    /// Adds chunk `i`, with its proof when `proof`; returns the verdicts settled.
    fn add(
        c: &mut RunChecker,
        tree: &MerkleTree,
        i: u32,
        leaf: Hash,
        proof: bool,
    ) -> Vec<(u32, Verdict)> {
        let mut out = Vec::new();
        let p = proof.then(|| proof_of(tree, i));
        c.add(&TestingHash, i, leaf, p.as_deref(), &mut out);
        out
    }

    #[test]
    fn proofs_on_run_heads_alone_verify_every_chunk_in_any_order() {
        for n in [1u32, 2, 5, 63, 64, 65, 100, 128, 1000] {
            for reverse in [false, true] {
                let (mut c, l, tree) = setup(n);
                let mut order: Vec<u32> = (0..n).collect();
                if reverse {
                    order.reverse();
                }
                let mut verdicts = Vec::new();
                for i in order {
                    verdicts.extend(add(&mut c, &tree, i, l[i as usize], i % 64 == 0));
                }
                verdicts.sort_unstable_by_key(|v| v.0);
                let want: Vec<_> = (0..n).map(|i| (i, Verdict::Verified)).collect();
                assert_eq!(verdicts, want, "n {n} reverse {reverse}");
                assert_eq!(c.root(), Some(tree.root()), "n {n}");
                assert_eq!((c.open_runs(), c.held()), (0, 0), "n {n}");
            }
        }
    }

    #[test]
    fn a_run_waits_for_its_last_chunk() {
        let (mut c, l, tree) = setup(200);
        for i in 0..63 {
            assert!(add(&mut c, &tree, i, l[i as usize], i == 0).is_empty());
        }
        assert_eq!(c.open_runs(), 1);
        assert_eq!(add(&mut c, &tree, 63, l[63], false).len(), 64);
        assert_eq!(c.open_runs(), 0);
        // A chunk that passed passes again, and changes nothing.
        assert_eq!(
            add(&mut c, &tree, 5, l[5], false),
            vec![(5, Verdict::Verified)]
        );
    }

    #[test]
    fn a_run_without_proofs_passes_on_what_a_neighbours_proof_showed() {
        let (mut c, l, tree) = setup(256);
        // Run 1 first, no proof: nothing vouches for it yet. Its first chunk is
        // asked for again; the others wait.
        let mut out = Vec::new();
        for i in 64..128 {
            out.extend(add(&mut c, &tree, i, l[i as usize], false));
        }
        assert_eq!(out, vec![(64, Verdict::Unproven)]);
        assert_eq!(c.open_runs(), 1);
        // Run 0 with its head's proof shows run 1's root: run 1 passes once its first
        // chunk is back, even without a proof (rebuilt by FEC, say).
        for i in 0..64 {
            add(&mut c, &tree, i, l[i as usize], i == 0);
        }
        let out = add(&mut c, &tree, 64, l[64], false);
        assert!(out.iter().all(|v| v.1 == Verdict::Verified) && out.len() == 64);
        // Run 3 the same way, its first chunk back with its proof: it passes too.
        for i in 193..256 {
            assert!(add(&mut c, &tree, i, l[i as usize], false).is_empty());
        }
        assert_eq!(
            add(&mut c, &tree, 192, l[192], false),
            vec![(192, Verdict::Unproven)]
        );
        assert_eq!(add(&mut c, &tree, 192, l[192], true).len(), 64);
        assert_eq!(c.open_runs(), 0);
    }

    #[test]
    fn a_wrong_chunk_fails_the_smallest_part_known_and_the_rest_pass() {
        let (mut c, l, tree) = setup(128);
        let mut out = Vec::new();
        for i in 0..64u32 {
            let leaf = if i == 45 { l[3] } else { l[i as usize] };
            out.extend(add(&mut c, &tree, i, leaf, i == 0));
        }
        // Chunk 0's proof shows the true hashes of 1, 2..4, 4..8, 8..16, 16..32 and
        // 32..64: the part 32..64 holding chunk 45 fails, everything else passes.
        out.sort_unstable_by_key(|v| v.0);
        for &(i, v) in &out {
            let want = if (32..64).contains(&i) {
                Verdict::Failed
            } else {
                Verdict::Verified
            };
            assert_eq!(v, want, "chunk {i}");
        }
        assert_eq!(out.len(), 64);
        // Fetched again with their proofs, they pass one by one; the tree completes.
        for i in 32..64 {
            assert_eq!(
                add(&mut c, &tree, i, l[i as usize], true),
                vec![(i, Verdict::Verified)]
            );
        }
        for i in 64..128 {
            add(&mut c, &tree, i, l[i as usize], i == 64);
        }
        assert_eq!(c.root(), Some(tree.root()));
        assert_eq!((c.open_runs(), c.held()), (0, 0));
    }

    #[test]
    fn a_wrong_head_fails_by_its_proof_and_its_run_waits_for_a_good_one() {
        let (mut c, l, tree) = setup(64);
        let mut out = Vec::new();
        out.extend(add(&mut c, &tree, 0, l[9], true));
        for i in 1..64 {
            out.extend(add(&mut c, &tree, i, l[i as usize], false));
        }
        assert!(out.contains(&(0, Verdict::Failed)), "{out:?}");
        assert!(!out.iter().any(|v| v.1 == Verdict::Verified));
        assert_eq!(out.len(), 64);
        // Again, all with proofs (re-requested chunks carry theirs).
        let mut out = Vec::new();
        for i in 0..64 {
            out.extend(add(&mut c, &tree, i, l[i as usize], true));
        }
        assert_eq!(out.len(), 64);
        assert!(out.iter().all(|v| v.1 == Verdict::Verified));
        assert_eq!(c.root(), Some(tree.root()));
    }

    #[test]
    fn a_member_whose_own_proof_is_wrong_fails_though_its_run_is_right() {
        let (mut c, l, tree) = setup(128);
        let mut out = Vec::new();
        for i in 64..128u32 {
            // Chunk 70 with chunk 71's proof: the same hashes from the run up.
            let p = match i {
                64 => Some(proof_of(&tree, 64)),
                70 => Some(proof_of(&tree, 71)),
                _ => None,
            };
            c.add(&TestingHash, i, l[i as usize], p.as_deref(), &mut out);
        }
        assert_eq!(out.len(), 64);
        // 70 fails by its own proof; the part 68..72 chunk 64's proof showed is no
        // longer whole, so 68, 69 and 71 are unproven (asked for again, with proofs).
        for &(i, v) in &out {
            let want = match i {
                70 => Verdict::Failed,
                68 | 69 | 71 => Verdict::Unproven,
                _ => Verdict::Verified,
            };
            assert_eq!(v, want, "chunk {i}");
        }
    }

    #[test]
    fn a_proof_of_the_wrong_length_fails_at_once() {
        let (mut c, l, tree) = setup(100);
        let mut out = Vec::new();
        let short = proof_of(&tree, 3);
        c.add(&TestingHash, 3, l[3], Some(&short[32..]), &mut out);
        assert_eq!(out, vec![(3, Verdict::Failed)]);
        assert_eq!(c.open_runs(), 1, "the run was opened, chunk 3 is not in it");
    }

    #[test]
    fn open_runs_are_bounded() {
        let n = (MAX_OPEN_RUNS as u32 + 2) * 64;
        let (mut c, l, tree) = setup(n);
        let mut out = Vec::new();
        // One chunk without a proof in each run: none completes.
        for r in 0..MAX_OPEN_RUNS as u32 + 2 {
            let i = r * 64 + 1;
            out.extend(add(&mut c, &tree, i, l[i as usize], false));
        }
        assert_eq!(c.open_runs(), MAX_OPEN_RUNS);
        // The lowest runs were judged as they stood: nothing vouched, unproven.
        assert_eq!(out, vec![(1, Verdict::Unproven), (65, Verdict::Unproven)]);
    }
}
