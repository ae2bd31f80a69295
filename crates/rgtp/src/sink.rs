//! Where pulled chunks go: memory, or a file that only gets its final name
//! once the whole is verified.

use std::cell::RefCell;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rgtp_proto::puller::ManifestInfo;

/// Receives verified chunks at their offsets.
pub trait Sink {
    /// The Manifest was accepted: the output will be `info.total_size` bytes.
    fn manifest(&mut self, info: &ManifestInfo) -> io::Result<()>;
    /// Writes verified plaintext at `offset`.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Everything written so far, for the end-of-transfer Merkle check.
    fn contents(&self) -> io::Result<&[u8]>;
    /// Puts everything written so far where a later run can read it (a file sink
    /// holding writes back hands them to the file); before a record of what the
    /// output holds is saved.
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
    /// False for a sink that keeps nothing, whose [`Sink::contents`] is an error: the
    /// pull then hashes every chunk's leaf as it lands and never reads the output back.
    fn retains(&self) -> bool {
        true
    }
    /// Hands over the part that writes the output, for the caller to run on another
    /// thread and give back with [`Sink::attach_writer`]; meanwhile [`Sink::write_at`]
    /// fails and [`Sink::flush`] covers nothing of what the writer holds. `None`
    /// where there is no such part (in memory, or nothing kept) or no Manifest yet.
    fn detach_writer(&mut self) -> Option<FileWriter> {
        None
    }
    /// Takes back what [`Sink::detach_writer`] handed over.
    fn attach_writer(&mut self, writer: FileWriter) {
        let _ = writer;
    }
}

impl<K: Sink + ?Sized> Sink for &mut K {
    fn manifest(&mut self, info: &ManifestInfo) -> io::Result<()> {
        (**self).manifest(info)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        (**self).write_at(offset, data)
    }
    fn contents(&self) -> io::Result<&[u8]> {
        (**self).contents()
    }
    fn flush(&self) -> io::Result<()> {
        (**self).flush()
    }
    fn retains(&self) -> bool {
        (**self).retains()
    }
    fn detach_writer(&mut self) -> Option<FileWriter> {
        (**self).detach_writer()
    }
    fn attach_writer(&mut self, writer: FileWriter) {
        (**self).attach_writer(writer)
    }
}

/// Keeps nothing: each chunk is verified as in any pull (its leaf hashed on another
/// core as it lands, the root checked at the end) and then dropped. For a pull that
/// only checks an exposure, or measures the path without a disk in the way
/// (`rgtp pull --discard`, or `-o /dev/null`).
#[derive(Debug, Default)]
pub struct DiscardSink;

impl Sink for DiscardSink {
    fn manifest(&mut self, _: &ManifestInfo) -> io::Result<()> {
        Ok(())
    }

    fn write_at(&mut self, _: u64, _: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn contents(&self) -> io::Result<&[u8]> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a discarding sink keeps nothing to read back",
        ))
    }

    fn retains(&self) -> bool {
        false
    }
}

/// True if `path` is the null device (`/dev/null`, or another node of it): writing
/// there means keeping nothing, which a [`DiscardSink`] does without the rename a
/// file output ends with.
pub fn is_null_device(path: &Path) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    fs::metadata(path)
        .is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == libc::makedev(1, 3))
}

/// Collects the output in memory (an anonymous map, [`anon_map`]).
#[derive(Default)]
pub struct MemSink {
    map: Option<memmap2::MmapMut>,
}

impl MemSink {
    /// The output so far.
    pub fn data(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// The output, copied out.
    pub fn to_vec(&self) -> Vec<u8> {
        self.data().to_vec()
    }
}

impl core::fmt::Debug for MemSink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemSink")
            .field("len", &self.data().len())
            .finish()
    }
}

/// An anonymous read-write map of `len` bytes, its pages committed as they are written.
///
/// Not advised for transparent huge pages. Where the kernel has free huge pages they
/// fault in faster (1 GiB in 0.1 s against 0.4 s of small pages), but a virtual machine
/// that hands freed memory back to its host (free page reporting) must have each huge
/// page backed again first: 1 GiB then took 4.5–4.9 s, where small pages, taken from
/// memory the guest kept, still took 0.4–0.6 s.
pub fn anon_map(len: usize) -> io::Result<memmap2::MmapMut> {
    memmap2::MmapMut::map_anon(len.max(1))
}

impl Sink for MemSink {
    fn manifest(&mut self, info: &ManifestInfo) -> io::Result<()> {
        let len = usize::try_from(info.total_size).map_err(|_| {
            io::Error::new(io::ErrorKind::OutOfMemory, "exposure too large for memory")
        })?;
        self.map = if len == 0 { None } else { Some(anon_map(len)?) };
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let start = offset as usize;
        self.map
            .as_deref_mut()
            .and_then(|m| m.get_mut(start..start + data.len()))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "chunk past the end"))?
            .copy_from_slice(data);
        Ok(())
    }

    fn contents(&self) -> io::Result<&[u8]> {
        Ok(self.data())
    }
}

/// A sink for an output known beforehand (the demo, benchmarks): each chunk is
/// compared with the expected bytes as it lands and nothing else is kept, so a
/// pull of any size costs no memory for its output. Its contents, for the root
/// check, are the expected bytes, which is what was pulled as long as every chunk
/// matched; a chunk that did not is an error there.
pub struct CheckSink<'a> {
    expected: &'a [u8],
    chunk_size: u64,
    /// One bit per chunk written.
    have: Vec<u64>,
    mismatched: u64,
}

impl<'a> CheckSink<'a> {
    /// A sink expecting exactly `expected`.
    pub fn new(expected: &'a [u8]) -> CheckSink<'a> {
        CheckSink {
            expected,
            chunk_size: 0,
            have: Vec::new(),
            mismatched: 0,
        }
    }

    /// Chunks written that differed from the expected bytes.
    pub fn mismatched(&self) -> u64 {
        self.mismatched
    }

    /// True once every chunk was written and each matched.
    pub fn is_complete(&self) -> bool {
        if self.mismatched > 0 || (self.chunk_size == 0 && !self.expected.is_empty()) {
            return false;
        }
        let n = (self.expected.len() as u64).div_ceil(self.chunk_size.max(1));
        (0..n).all(|i| self.have[(i / 64) as usize] & (1 << (i % 64)) != 0)
    }
}

impl Sink for CheckSink<'_> {
    fn manifest(&mut self, info: &ManifestInfo) -> io::Result<()> {
        if info.total_size != self.expected.len() as u64 || info.chunk_size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the exposure declares {} bytes in chunks of {}; {} bytes were expected",
                    info.total_size,
                    info.chunk_size,
                    self.expected.len()
                ),
            ));
        }
        self.chunk_size = u64::from(info.chunk_size);
        let n = info.total_size.div_ceil(self.chunk_size);
        self.have = vec![0; n.div_ceil(64) as usize];
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let past = || io::Error::new(io::ErrorKind::InvalidData, "chunk past the end");
        let start = usize::try_from(offset).map_err(|_| past())?;
        let want = start
            .checked_add(data.len())
            .and_then(|end| self.expected.get(start..end))
            .ok_or_else(past)?;
        if want != data {
            self.mismatched += 1;
        }
        let i = offset / self.chunk_size.max(1);
        if let Some(w) = self.have.get_mut((i / 64) as usize) {
            *w |= 1 << (i % 64);
        }
        Ok(())
    }

    fn contents(&self) -> io::Result<&[u8]> {
        if self.mismatched > 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} chunks differ from the expected bytes", self.mismatched),
            ));
        }
        Ok(self.expected)
    }
}

/// Writes into `NAME.rgtp-partial` beside the target, renamed to the target by
/// [`FileSink::finish`] and removed if dropped unfinished.
///
/// Chunks are gathered while they arrive in order, up to [`WRITE_BATCH`] bytes (or
/// up to a gap, or a [`Sink::flush`]), and written with one `pwrite` per aligned
/// [`WRITE_PIECE`]: written whole, fresh page-cache pages are never zeroed first,
/// which a fault on a writable map of a new file costs every page. The part that
/// writes, a [`FileWriter`], can be lent to another thread ([`Sink::detach_writer`]):
/// a pull lends it to the thread that hashes the leaves. The output is read back
/// through a read-only map, which the page cache keeps coherent with the writes.
///
/// The Manifest's Total_Size is a peer's claim, so nothing is reserved on its word
/// alone (spec §8.11): a Total_Size beyond the file system's free space is refused
/// at once, with an error naming both; otherwise the file is sized sparse and space
/// is reserved one [`RESERVE_EXTENT`] at a time as verified chunks land in it, so a
/// disk that fills up meanwhile is an error on a write, never a crash on the map.
pub struct FileSink {
    target: PathBuf,
    partial: PathBuf,
    file: Option<File>,
    /// A read-only view of the output (after the Manifest, for a non-empty one).
    view: Option<memmap2::Mmap>,
    /// What writes the output, once the Manifest gave its size; `None` before, and
    /// while it is out on another thread ([`Sink::detach_writer`]).
    writer: RefCell<Option<FileWriter>>,
    /// The writer is out on another thread.
    detached: bool,
    finished: bool,
    /// Left in place when dropped unfinished, for a later run to resume.
    keep: bool,
}

/// The part of a [`FileSink`] that writes the output: it gathers writes made in
/// order, reserves space as they land and hands them to the file. A pull can take
/// it to the thread that hashes the chunks' leaves ([`Sink::detach_writer`]), so
/// the copy into the file is made there, off the receive path.
pub struct FileWriter {
    /// A second handle on the partial file.
    file: File,
    /// The output's size.
    size: u64,
    /// Bytes written in order and not yet handed to the file.
    pending: Pending,
    /// One bit per extent already reserved.
    reserved: Vec<u64>,
    /// The file system cannot reserve space: the file stays sparse.
    no_fallocate: bool,
}

impl core::fmt::Debug for FileWriter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FileWriter")
            .field("size", &self.size)
            .field("pending", &self.pending.bytes.len())
            .finish()
    }
}

/// Disk space is reserved in extents of this many bytes as chunks arrive.
pub const RESERVE_EXTENT: u64 = 64 << 20;

/// A [`FileSink`] gathers up to this many bytes written in order into one write.
pub const WRITE_BATCH: usize = 1 << 20;

/// Contiguous bytes waiting to be written at `offset`.
#[derive(Default)]
struct Pending {
    offset: u64,
    bytes: Vec<u8>,
    /// Bytes written since the file's write-back was last started.
    unstarted: u64,
}

/// A [`FileSink`] starts the kernel writing its output to disk after this many
/// bytes, so the sync before the rename finds little left to do.
pub const WRITE_BACK_EVERY: u64 = 16 << 20;

impl Pending {
    /// Writes the bytes out and empties the batch; on an error they are kept, to
    /// be tried again (and fail again) with the next write.
    fn write_to(&mut self, file: &File) -> io::Result<()> {
        if !self.bytes.is_empty() {
            write_in_pieces(file, &self.bytes, self.offset)?;
            self.wrote(file, self.bytes.len());
            self.bytes.clear();
        }
        Ok(())
    }

    /// Counts `n` bytes written to `file`, starting its write-back every
    /// [`WRITE_BACK_EVERY`] bytes.
    fn wrote(&mut self, file: &File, n: usize) {
        self.unstarted += n as u64;
        if self.unstarted >= WRITE_BACK_EVERY {
            self.unstarted = 0;
            start_write_back(file);
        }
    }
}

impl FileSink {
    /// Creates the partial file (fails early on an unwritable directory); it is removed
    /// if the sink is dropped unfinished.
    pub fn create(target: &Path) -> io::Result<FileSink> {
        Self::open(target, false, false)
    }

    /// Opens the partial file for a pull that can be resumed: kept as it is when
    /// `existing` (an earlier run's, whose chunks a [`ResumeState`](crate::resume::ResumeState)
    /// records), emptied otherwise; left in place if the sink is dropped unfinished.
    pub fn resumable(target: &Path, existing: bool) -> io::Result<FileSink> {
        Self::open(target, existing, true)
    }

    fn open(target: &Path, existing: bool, keep: bool) -> io::Result<FileSink> {
        let name = target.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "output path has no file name")
        })?;
        let mut partial_name = name.to_os_string();
        partial_name.push(".rgtp-partial");
        let partial = target.with_file_name(partial_name);
        // The finished output is renamed over the target: never over a device, a
        // pipe or a directory (run as root, `-o /dev/null` would replace the device).
        if let Ok(meta) = std::fs::metadata(target) {
            if !meta.is_file() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} is not a regular file: the output is written to {} and renamed over it once verified; name a file to write",
                        target.display(),
                        partial.display()
                    ),
                ));
            }
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(!existing)
            .open(&partial)?;
        Ok(FileSink {
            target: target.to_path_buf(),
            partial,
            file: Some(file),
            view: None,
            writer: RefCell::new(None),
            detached: false,
            finished: false,
            keep,
        })
    }

    /// The temporary path being written.
    pub fn partial_path(&self) -> &Path {
        &self.partial
    }

    /// Flushes, syncs and renames the partial file to the target.
    pub fn finish(mut self) -> io::Result<()> {
        self.flush()?;
        self.view = None;
        if let Some(file) = self.file.take() {
            file.sync_all()?;
        }
        fs::rename(&self.partial, &self.target)?;
        self.finished = true;
        Ok(())
    }
}

impl Sink for FileSink {
    fn manifest(&mut self, info: &ManifestInfo) -> io::Result<()> {
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| io::Error::other("sink closed"))?;
        let len = info.total_size;
        if len == 0 {
            return Ok(());
        }
        let free = free_space(file)?;
        if len > free {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "the exposure declares {len} bytes but only {free} bytes are free for {}",
                    self.partial.display()
                ),
            ));
        }
        if usize::try_from(len).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the exposure declares {len} bytes, more than this machine can map"),
            ));
        }
        // Sparse: costs no space until written; extents are reserved in `write_at`.
        file.set_len(len)?;
        // SAFETY: the file was created by us and sized above, and is not resized or
        // truncated while mapped; it is only written through `pwrite`, which the
        // page cache makes visible through the map.
        let view = unsafe { memmap2::Mmap::map(file)? };
        let writer = FileWriter {
            file: file.try_clone()?,
            size: len,
            pending: Pending {
                bytes: Vec::with_capacity(WRITE_BATCH),
                ..Pending::default()
            },
            reserved: vec![0; len.div_ceil(RESERVE_EXTENT).div_ceil(64) as usize],
            no_fallocate: false,
        };
        self.view = Some(view);
        *self.writer.get_mut() = Some(writer);
        self.detached = false;
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.view.is_none() {
            return Err(io::Error::other("no Manifest yet"));
        }
        match self.writer.get_mut() {
            Some(w) => w.write_at(offset, data),
            None => Err(io::Error::other(
                "the output's writer is out on another thread",
            )),
        }
    }

    fn contents(&self) -> io::Result<&[u8]> {
        self.flush()?;
        Ok(self.view.as_deref().unwrap_or(&[]))
    }

    fn flush(&self) -> io::Result<()> {
        match self.writer.borrow_mut().as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }

    fn detach_writer(&mut self) -> Option<FileWriter> {
        let w = self.writer.get_mut().take()?;
        self.detached = true;
        Some(w)
    }

    fn attach_writer(&mut self, writer: FileWriter) {
        if self.detached {
            *self.writer.get_mut() = Some(writer);
            self.detached = false;
        }
    }
}

impl FileWriter {
    /// Checks that `[offset, offset + len)` lies inside the output.
    fn check(&self, offset: u64, len: usize) -> io::Result<()> {
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > self.size)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "chunk past the end",
            ));
        }
        Ok(())
    }

    /// Writes verified plaintext at `offset`, gathered with the writes before it
    /// while they follow each other (up to [`WRITE_BATCH`] bytes).
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check(offset, data.len())?;
        self.reserve_for(offset, data.len() as u64)?;
        let p = &mut self.pending;
        let follows = p.offset + p.bytes.len() as u64 == offset;
        if !follows || p.bytes.len() + data.len() > WRITE_BATCH {
            p.write_to(&self.file)?;
        }
        if data.len() >= WRITE_BATCH {
            write_in_pieces(&self.file, data, offset)?;
            p.wrote(&self.file, data.len());
            return Ok(());
        }
        if p.bytes.is_empty() {
            p.offset = offset;
        }
        p.bytes.extend_from_slice(data);
        Ok(())
    }

    /// Writes `data` at `offset` at once, without gathering it: for a caller that
    /// hands over runs of chunks already gathered.
    pub fn write_now(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check(offset, data.len())?;
        self.reserve_for(offset, data.len() as u64)?;
        self.pending.write_to(&self.file)?;
        write_in_pieces(&self.file, data, offset)?;
        self.pending.wrote(&self.file, data.len());
        Ok(())
    }

    /// Hands everything gathered to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.pending.write_to(&self.file)
    }

    /// Reserves the extents `[offset, offset + len)` touches that are not reserved yet.
    fn reserve_for(&mut self, offset: u64, len: u64) -> io::Result<()> {
        if self.no_fallocate || len == 0 {
            return Ok(());
        }
        let size = self.size;
        let first = offset / RESERVE_EXTENT;
        let last = (offset.saturating_add(len) - 1).min(size.saturating_sub(1)) / RESERVE_EXTENT;
        for e in first..=last {
            let (word, bit) = ((e / 64) as usize, 1u64 << (e % 64));
            let Some(w) = self.reserved.get_mut(word) else {
                break;
            };
            if *w & bit != 0 {
                continue;
            }
            let start = e * RESERVE_EXTENT;
            let end = (start + RESERVE_EXTENT).min(size);
            if !reserve(&self.file, start, end - start)? {
                self.no_fallocate = true;
                return Ok(());
            }
            *w |= bit;
        }
        Ok(())
    }
}

/// Bytes per `pwrite`: a batch goes out in pieces this long, aligned to it in the
/// file. Larger writes make the page cache take larger folios, which on the VMs
/// this was measured on cost several times more to fill (eight `dd` of 256 MiB at
/// once: 1,340–1,660 MB/s with 16 KiB writes, 380–410 MB/s with 1 MiB writes).
pub const WRITE_PIECE: usize = 16 << 10;

/// Writes `data` at `offset` with one `pwrite` per [`WRITE_PIECE`]-aligned piece.
fn write_in_pieces(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    let mut at = offset;
    let mut rest = data;
    while !rest.is_empty() {
        let to_boundary = WRITE_PIECE - (at % WRITE_PIECE as u64) as usize;
        let (piece, tail) = rest.split_at(to_boundary.min(rest.len()));
        file.write_all_at(piece, at)?;
        at += piece.len() as u64;
        rest = tail;
    }
    Ok(())
}

/// Starts writing `file`'s dirty pages to disk without waiting for them (advice:
/// the sync in [`FileSink::finish`] is what makes the output durable).
fn start_write_back(file: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: plain syscall on a valid descriptor we own; offset 0 and length 0
        // mean the whole file.
        let _ =
            unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// Bytes an unprivileged writer may still use on `file`'s file system.
fn free_space(file: &File) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero statvfs is a valid value to be overwritten.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: plain syscall on a valid descriptor we own, into a struct we own.
    if unsafe { libc::fstatvfs(file.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::useless_conversion)] // the field widths differ between platforms
    Ok(u64::from(st.f_bavail).saturating_mul(u64::from(st.f_frsize)))
}

/// Reserves `[offset, offset + len)`; `Ok(false)` where the file system cannot (the
/// file then stays sparse).
fn reserve(file: &File, offset: u64, len: u64) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let too_large = || io::Error::new(io::ErrorKind::InvalidInput, "exposure too large");
    let offset = libc::off_t::try_from(offset).map_err(|_| too_large())?;
    let len = libc::off_t::try_from(len).map_err(|_| too_large())?;
    // SAFETY: plain syscall on a valid descriptor we own.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), offset, len) };
    match rc {
        0 => Ok(true),
        libc::EOPNOTSUPP | libc::EINVAL => Ok(false),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        // Whatever was gathered must reach the file.
        let _ = self.flush();
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if !self.finished {
            // Whatever the next run resumes must be in the file.
            let _ = self.flush();
            self.view = None;
            self.file.take();
            if !self.keep {
                let _ = fs::remove_file(&self.partial);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rgtp_proto::SuiteId;

    fn info(total_size: u64) -> ManifestInfo {
        ManifestInfo {
            exposure_id: [0; 16],
            total_size,
            chunk_count: 1,
            chunk_size: 1,
            merkle_root: [0; 32],
            suite: SuiteId::default(),
            rate_cap: None,
        }
    }

    /// A device, a pipe or a directory is never replaced by the output.
    #[test]
    fn an_output_that_is_not_a_regular_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        for target in [Path::new("/dev/null"), dir.path()] {
            let err = FileSink::create(target).err().expect("refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains("not a regular file"), "{err}");
        }
        assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
        assert!(std::fs::metadata(dir.path()).unwrap().is_dir());
    }

    /// Written in pieces, at offsets on and off [`WRITE_PIECE`] boundaries, every
    /// byte lands where it belongs.
    #[test]
    fn writes_in_aligned_pieces_put_every_byte_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pieces");
        let file = File::create(&path).unwrap();
        let size = 5 * WRITE_PIECE + 777;
        let mut expected = vec![0u8; size];
        for (offset, len) in [
            (0, 1),
            (1, WRITE_PIECE),
            (WRITE_PIECE - 3, 7),
            (2 * WRITE_PIECE, WRITE_PIECE),
            (1200 * 7, 3 * WRITE_PIECE + 5),
            (size - 10, 10),
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 + offset) as u8).collect();
            write_in_pieces(&file, &data, offset as u64).unwrap();
            expected[offset..offset + len].copy_from_slice(&data);
        }
        drop(file);
        assert!(std::fs::read(&path).unwrap() == expected);
    }

    #[test]
    fn a_size_beyond_the_free_space_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sink = FileSink::create(&dir.path().join("out")).expect("create");
        let declared = 1u64 << 62;
        let e = sink.manifest(&info(declared)).expect_err("refused");
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert!(e.to_string().contains(&declared.to_string()), "{e}");
        let partial = sink.partial_path().to_path_buf();
        assert_eq!(fs::metadata(&partial).expect("partial").len(), 0);
        drop(sink);
        assert!(!partial.exists());
    }

    #[test]
    fn space_is_reserved_as_chunks_arrive_not_up_front() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out");
        let mut sink = FileSink::create(&target).expect("create");
        let len = 3 * RESERVE_EXTENT + 5;
        sink.manifest(&info(len)).expect("manifest");
        let meta = fs::metadata(sink.partial_path()).expect("partial");
        assert_eq!(meta.len(), len);
        assert!(meta.blocks() * 512 < RESERVE_EXTENT, "{}", meta.blocks());
        sink.write_at(len - 5, b"tail!").expect("write");
        sink.write_at(7, b"head").expect("write");
        let blocks = fs::metadata(sink.partial_path()).expect("partial").blocks() * 512;
        assert!(blocks <= 2 * RESERVE_EXTENT + (1 << 20), "{blocks}");
        assert_eq!(&sink.contents().expect("contents")[7..11], b"head");
        sink.finish().expect("finish");
        let out = fs::read(&target).expect("target");
        assert_eq!(&out[out.len() - 5..], b"tail!");
    }

    #[test]
    fn gathered_writes_reach_the_file_on_flush_and_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out");
        let mut sink = FileSink::resumable(&target, false).expect("create");
        let len = 3 * WRITE_BATCH as u64;
        sink.manifest(&info(len)).expect("manifest");
        let partial = sink.partial_path().to_path_buf();
        let on_disk = |at: u64, n: usize| {
            use std::os::unix::fs::FileExt;
            let mut b = vec![0u8; n];
            File::open(&partial)
                .expect("partial")
                .read_exact_at(&mut b, at)
                .expect("read");
            b
        };
        // In order: gathered, not written yet.
        sink.write_at(0, &[1; 1000]).expect("write");
        sink.write_at(1000, &[2; 1000]).expect("write");
        assert_eq!(on_disk(0, 2000), vec![0; 2000]);
        sink.flush().expect("flush");
        assert_eq!(on_disk(0, 1000), vec![1; 1000]);
        assert_eq!(on_disk(1000, 1000), vec![2; 1000]);
        // A gap writes out what was gathered; more than a batch in order writes too.
        sink.write_at(5000, &[3; 10]).expect("write");
        sink.write_at(100, &[4; 10]).expect("write");
        assert_eq!(on_disk(5000, 10), vec![3; 10]);
        let big = vec![5u8; WRITE_BATCH - 7];
        sink.write_at(WRITE_BATCH as u64, &big).expect("write");
        sink.write_at(2 * WRITE_BATCH as u64 - 7, &[6; 20])
            .expect("write");
        assert_eq!(on_disk(WRITE_BATCH as u64, 4), vec![5; 4]);
        // Past the end is refused, whatever is gathered.
        let e = sink.write_at(len - 1, &[7; 2]).expect_err("past the end");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // The view sees everything written, gathered or not.
        assert_eq!(&sink.contents().expect("contents")[100..110], &[4; 10]);
        sink.write_at(len - 3, &[8; 3]).expect("write");
        drop(sink);
        // Dropped unfinished: kept for a resume, with every write in it.
        assert_eq!(on_disk(100, 10), vec![4; 10]);
        assert_eq!(on_disk(2 * WRITE_BATCH as u64 - 7, 20), vec![6; 20]);
        assert_eq!(on_disk(len - 3, 3), vec![8; 3]);
    }

    #[test]
    fn a_file_sink_lends_its_writer_only_after_the_manifest_and_takes_it_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out");
        let mut sink = FileSink::create(&target).expect("create");
        assert!(sink.detach_writer().is_none(), "no Manifest yet");
        sink.manifest(&info(100)).expect("manifest");
        let mut w = sink.detach_writer().expect("the writer");
        let e = sink.write_at(0, b"x").expect_err("the writer is out");
        assert!(e.to_string().contains("another thread"), "{e}");
        assert!(sink.detach_writer().is_none(), "lent once");
        w.write_now(10, b"lent").expect("write");
        w.write_at(90, b"gathered").expect("write");
        assert!(w.write_now(99, b"xy").is_err(), "past the end");
        sink.attach_writer(w);
        sink.write_at(0, b"back").expect("write");
        sink.finish().expect("finish");
        let out = fs::read(&target).expect("target");
        assert_eq!(&out[..4], b"back");
        assert_eq!(&out[10..14], b"lent");
        assert_eq!(&out[90..98], b"gathered");
    }

    #[test]
    fn a_check_sink_compares_each_chunk_and_keeps_nothing() {
        let expected: Vec<u8> = (0..10u8).collect();
        let chunked = |size| ManifestInfo {
            chunk_size: 4,
            chunk_count: 3,
            ..info(size)
        };
        let mut sink = CheckSink::new(&expected);
        assert!(
            sink.manifest(&chunked(11)).is_err(),
            "another size is refused"
        );
        sink.manifest(&chunked(10)).expect("manifest");
        sink.write_at(8, &[8, 9]).expect("write");
        sink.write_at(0, &[0, 1, 2, 3]).expect("write");
        assert!(!sink.is_complete(), "chunk 1 is missing");
        sink.write_at(4, &[4, 5, 6, 7]).expect("write");
        assert!(sink.is_complete());
        assert_eq!(sink.contents().expect("contents"), &expected[..]);
        assert!(sink.write_at(8, &[8, 9, 10]).is_err(), "past the end");
        // A chunk that differs: counted, and the contents are refused.
        sink.write_at(4, &[4, 5, 6, 0]).expect("write");
        assert_eq!(sink.mismatched(), 1);
        assert!(!sink.is_complete());
        let e = sink.contents().expect_err("a chunk differed");
        assert!(e.to_string().contains("1 chunks differ"), "{e}");
    }
}
