//! Where pulled chunks go: memory, or a file that only gets its final name
//! once the whole is verified.

use std::fs::{self, File, OpenOptions};
use std::io;
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
}

/// Collects the output in memory (an anonymous map advised for huge pages, so a
/// large output costs few page faults).
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

/// An anonymous read-write map of `len` bytes, advised for transparent huge pages.
pub fn anon_map(len: usize) -> io::Result<memmap2::MmapMut> {
    let map = memmap2::MmapMut::map_anon(len.max(1))?;
    // Advice only; kernels without THP simply ignore it.
    let _ = map.advise(memmap2::Advice::HugePage);
    Ok(map)
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

/// Writes into `NAME.rgtp-partial` beside the target, renamed to the target by
/// [`FileSink::finish`] and removed if dropped unfinished. Space is reserved up
/// front so a full disk is an error at the start, not a crash in the middle.
pub struct FileSink {
    target: PathBuf,
    partial: PathBuf,
    file: Option<File>,
    map: Option<memmap2::MmapMut>,
    finished: bool,
}

impl FileSink {
    /// Creates the partial file (fails early on an unwritable directory).
    pub fn create(target: &Path) -> io::Result<FileSink> {
        let name = target.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "output path has no file name")
        })?;
        let mut partial_name = name.to_os_string();
        partial_name.push(".rgtp-partial");
        let partial = target.with_file_name(partial_name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&partial)?;
        Ok(FileSink {
            target: target.to_path_buf(),
            partial,
            file: Some(file),
            map: None,
            finished: false,
        })
    }

    /// The temporary path being written.
    pub fn partial_path(&self) -> &Path {
        &self.partial
    }

    /// Flushes, syncs and renames the partial file to the target.
    pub fn finish(mut self) -> io::Result<()> {
        if let Some(map) = self.map.take() {
            map.flush()?;
        }
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
        reserve(file, len)?;
        // SAFETY: the file was created by us, sized and reserved above, and is not
        // resized or truncated while mapped.
        let map = unsafe { memmap2::MmapMut::map_mut(file)? };
        self.map = Some(map);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let map = self
            .map
            .as_mut()
            .ok_or_else(|| io::Error::other("no Manifest yet"))?;
        let start = offset as usize;
        map.get_mut(start..start + data.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "chunk past the end"))?
            .copy_from_slice(data);
        Ok(())
    }

    fn contents(&self) -> io::Result<&[u8]> {
        Ok(self.map.as_deref().unwrap_or(&[]))
    }
}

fn reserve(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len_i = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "exposure too large"))?;
    // SAFETY: plain syscall on a valid descriptor we own.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len_i) };
    match rc {
        0 => Ok(()),
        // Filesystems without fallocate: fall back to a sparse file.
        libc::EOPNOTSUPP | libc::EINVAL => file.set_len(len),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if !self.finished {
            self.map.take();
            self.file.take();
            let _ = fs::remove_file(&self.partial);
        }
    }
}
