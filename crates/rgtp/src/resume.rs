//! Resuming a pull: which chunks of a partial output are already in, kept beside it.
//!
//! A pull writes its output into `OUT.rgtp-partial`; [`ResumeState`] is the record
//! of which chunks that file holds, saved as `OUT.rgtp-state` (atomically: a
//! temporary file renamed over the old one) while the pull runs and when it stops.
//! The next run of the same pull reads it, checks that the exposer's Manifest names
//! the same exposure (Exposure_ID, Merkle root, sizes) and hands the chunks it
//! records to the puller ([`rgtp_proto::Puller::resume_chunk`]), which then asks only for the
//! rest. The record is a hint, never trusted: the root check at the end covers
//! every chunk, resumed or not, and a chunk that does not hash right (a torn write,
//! a disk error, an edit) is found and fetched again (spec §8.12).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use rgtp_proto::puller::ManifestInfo;
use rgtp_proto::Pull;
use rgtp_wire::{ExposureId, Hash};

const MAGIC: &[u8; 8] = b"RGTPRSM1";
const HEADER: usize = 8 + 16 + 32 + 8 + 4 + 4;

/// The chunks a partial output holds, and the exposure they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeState {
    /// The exposure.
    pub exposure_id: ExposureId,
    /// Its Merkle root.
    pub merkle_root: Hash,
    /// Plaintext bytes.
    pub total_size: u64,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    /// Chunks.
    pub chunk_count: u32,
    /// One bit per chunk held (bit `i % 64` of word `i / 64`).
    pub bitmap: Vec<u64>,
}

/// `puller`'s accepted chunks and its kept ones not judged yet, one bit each.
fn held_bitmap(puller: &impl Pull) -> Vec<u64> {
    let mut bits = puller.received_bitmap().to_vec();
    for (w, k) in bits.iter_mut().zip(puller.kept_bitmap()) {
        *w |= k;
    }
    bits
}

/// Where the state of a pull into `output` is kept: `OUTPUT.rgtp-state`.
pub fn state_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".rgtp-state");
    output.with_file_name(name)
}

impl ResumeState {
    /// What `puller` holds so far, once it has a Manifest: the chunks it accepted,
    /// and those it took from an earlier run that wait for their verdict (still in
    /// the output as that run left them).
    pub fn of(puller: &impl Pull) -> Option<ResumeState> {
        let m = puller.manifest()?;
        Some(ResumeState {
            exposure_id: m.exposure_id,
            merkle_root: m.merkle_root,
            total_size: m.total_size,
            chunk_size: m.chunk_size,
            chunk_count: m.chunk_count,
            bitmap: held_bitmap(puller),
        })
    }

    /// Chunks recorded as held.
    pub fn held(&self) -> u64 {
        self.bitmap.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// True if this records the exposure `m` describes.
    pub fn matches(&self, m: &ManifestInfo) -> bool {
        self.exposure_id == m.exposure_id
            && self.merkle_root == m.merkle_root
            && self.total_size == m.total_size
            && self.chunk_size == m.chunk_size
            && self.chunk_count == m.chunk_count
    }

    /// The chunk indices recorded as held, in order.
    pub fn chunks(&self) -> impl Iterator<Item = u32> + '_ {
        let count = self.chunk_count;
        self.bitmap.iter().enumerate().flat_map(move |(w, &bits)| {
            (0..64u32)
                .filter(move |b| bits & (1 << b) != 0)
                .map(move |b| w as u32 * 64 + b)
                .filter(move |&i| i < count)
        })
    }

    /// Hands every recorded chunk that `data` (the partial output, mapped) holds to
    /// `puller`, which must just have accepted the Manifest this state matches.
    /// Returns how many it took.
    pub fn resume(&self, puller: &mut impl Pull, data: &[u8]) -> u64 {
        let Some(m) = puller.manifest() else { return 0 };
        if !self.matches(&m) || data.len() as u64 != m.total_size {
            return 0;
        }
        let mut taken = 0;
        for i in self.chunks() {
            let start = u64::from(i) * u64::from(m.chunk_size);
            let end = (start + u64::from(m.chunk_size)).min(m.total_size);
            if puller.resume_chunk(i, &data[start as usize..end as usize]) {
                taken += 1;
            }
        }
        taken
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER + self.bitmap.len() * 8);
        v.extend_from_slice(MAGIC);
        v.extend_from_slice(&self.exposure_id);
        v.extend_from_slice(&self.merkle_root);
        v.extend_from_slice(&self.total_size.to_be_bytes());
        v.extend_from_slice(&self.chunk_size.to_be_bytes());
        v.extend_from_slice(&self.chunk_count.to_be_bytes());
        for w in &self.bitmap {
            v.extend_from_slice(&w.to_le_bytes());
        }
        v
    }

    /// Parses [`ResumeState::encode`]'s bytes; `None` for anything else.
    pub fn decode(b: &[u8]) -> Option<ResumeState> {
        if b.len() < HEADER || &b[..8] != MAGIC {
            return None;
        }
        let id: [u8; 16] = b[8..24].try_into().ok()?;
        let merkle_root: Hash = b[24..56].try_into().ok()?;
        let total_size = u64::from_be_bytes(b[56..64].try_into().ok()?);
        let chunk_size = u32::from_be_bytes(b[64..68].try_into().ok()?);
        let chunk_count = u32::from_be_bytes(b[68..72].try_into().ok()?);
        let words = (chunk_count as usize).div_ceil(64);
        let rest = &b[HEADER..];
        if chunk_size == 0
            || total_size.div_ceil(u64::from(chunk_size)) != u64::from(chunk_count)
            || rest.len() != words * 8
        {
            return None;
        }
        let bitmap = rest
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("8")))
            .collect();
        Some(ResumeState {
            exposure_id: id,
            merkle_root,
            total_size,
            chunk_size,
            chunk_count,
            bitmap,
        })
    }

    /// Reads the state at `path`: `Ok(None)` if there is none or it is not a state file.
    ///
    /// The header is read first, and the rest only if the file is exactly as long as
    /// a record of the chunk count it declares: whatever else lies at that path, it
    /// is not read into memory.
    pub fn load(path: &Path) -> io::Result<Option<ResumeState>> {
        let mut f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut b = vec![0u8; HEADER];
        match f.read_exact(&mut b) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let count = u32::from_be_bytes(b[68..72].try_into().expect("4"));
        let rest = u64::from(count).div_ceil(64) * 8;
        if &b[..8] != MAGIC || f.metadata()?.len() != HEADER as u64 + rest {
            return Ok(None);
        }
        f.take(rest).read_to_end(&mut b)?;
        Ok(ResumeState::decode(&b))
    }

    /// Writes the state to `path` atomically (a temporary file beside it, synced, then
    /// renamed over it): a crash leaves the old state or the new one, never half.
    pub fn save(&self, path: &Path) -> io::Result<()> {
        let mut tmp = path.as_os_str().to_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&self.encode())?;
            f.sync_data()?;
        }
        fs::rename(&tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ResumeState {
        ResumeState {
            exposure_id: [7; 16],
            merkle_root: [9; 32],
            total_size: 130 * 1200 - 5,
            chunk_size: 1200,
            chunk_count: 130,
            bitmap: vec![u64::MAX, 0b1011, 1 << 1],
        }
    }

    #[test]
    fn round_trips_and_refuses_anything_else() {
        let s = state();
        let b = s.encode();
        assert_eq!(ResumeState::decode(&b), Some(s.clone()));
        assert_eq!(s.held(), 64 + 3 + 1);
        let chunks: Vec<u32> = s.chunks().collect();
        assert_eq!(&chunks[62..], &[62, 63, 64, 65, 67, 129]);
        // Truncated, extended, wrong magic, sizes that disagree.
        assert_eq!(ResumeState::decode(&b[..b.len() - 1]), None);
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(ResumeState::decode(&longer), None);
        let mut magic = b.clone();
        magic[0] ^= 1;
        assert_eq!(ResumeState::decode(&magic), None);
        let mut count = b.clone();
        count[71] ^= 1;
        assert_eq!(ResumeState::decode(&count), None);
        assert_eq!(ResumeState::decode(&[]), None);
    }

    #[test]
    fn bits_past_the_last_chunk_are_not_chunks() {
        let mut s = state();
        s.bitmap[2] = u64::MAX;
        assert_eq!(s.chunks().last(), Some(129));
    }

    #[test]
    fn saves_atomically_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.bin");
        let p = state_path(&out);
        assert_eq!(p.file_name().unwrap(), "out.bin.rgtp-state");
        assert_eq!(ResumeState::load(&p).unwrap(), None);
        state().save(&p).unwrap();
        assert_eq!(ResumeState::load(&p).unwrap(), Some(state()));
        fs::write(&p, b"not a state").unwrap();
        assert_eq!(ResumeState::load(&p).unwrap(), None);
        assert!(!dir.path().join("out.bin.rgtp-state.tmp").exists());
        // A record's header with more after it than its chunk count needs: not
        // a record, and not read (4 GiB, sparse).
        let f = File::create(&p).unwrap();
        (&f).write_all(&state().encode()).unwrap();
        f.set_len(4 << 30).unwrap();
        assert_eq!(ResumeState::load(&p).unwrap(), None);
        // Exactly a record's length, but the header is not one.
        let mut b = state().encode();
        b[0] ^= 1;
        fs::write(&p, &b).unwrap();
        assert_eq!(ResumeState::load(&p).unwrap(), None);
    }
}
