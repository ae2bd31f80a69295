//! What `rgtp expose` reads and where `rgtp pull -o -` writes: files, pipes and
//! standard input and output.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use rgtp_cli::exit;

/// The bytes an exposure is sealed from: a regular file mapped, or anything that
/// reads as a stream (`-` for standard input, a pipe such as `<(cmd)`, a character
/// device) read to its end, since sealing needs them all at once.
pub enum Input {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl std::ops::Deref for Input {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Input::Mapped(m) => m,
            Input::Read(v) => v,
        }
    }
}

/// Reads `path` (`-`: standard input) for sealing, with its length; a directory is
/// a usage error that names `rgtp send`.
pub fn input(path: &Path) -> Result<(Input, u64), (u8, String)> {
    if path == Path::new("-") {
        return read_all(io::stdin().lock(), "standard input");
    }
    let file = File::open(path).map_err(|e| {
        (
            exit::IO,
            format!(
                "cannot open {}: {e} (check the path and its permissions)",
                path.display()
            ),
        )
    })?;
    let meta = file
        .metadata()
        .map_err(|e| (exit::IO, format!("{}: {e}", path.display())))?;
    if meta.is_dir() {
        return Err((
            exit::USAGE,
            format!(
                "{} is a directory: `rgtp expose` serves one file; `rgtp send {}` serves a \
                 directory tree",
                path.display(),
                path.display()
            ),
        ));
    }
    if !meta.is_file() {
        return read_all(file, &path.display().to_string());
    }
    if meta.len() == 0 {
        return Ok((Input::Read(Vec::new()), 0));
    }
    // SAFETY: the map is read once, at expose time; a concurrent writer could change what
    // we seal but cannot make us read out of bounds.
    let map = unsafe { memmap2::Mmap::map(&file) }
        .map_err(|e| (exit::IO, format!("cannot map {}: {e}", path.display())))?;
    let len = map.len() as u64;
    Ok((Input::Mapped(map), len))
}

fn read_all(mut from: impl Read, name: &str) -> Result<(Input, u64), (u8, String)> {
    let mut data = Vec::new();
    from.read_to_end(&mut data)
        .map_err(|e| (exit::IO, format!("cannot read {name}: {e}")))?;
    let len = data.len() as u64;
    Ok((Input::Read(data), len))
}

/// Where `rgtp pull -o -` holds the pull until its root is checked: a directory
/// of its own (mode 0700) under `$TMPDIR`, removed when the spool is dropped. Only
/// a verified whole reaches standard output.
pub struct Spool {
    dir: PathBuf,
    out: PathBuf,
}

impl Spool {
    pub fn new() -> Result<Spool, (u8, String)> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = base.join(format!("rgtp-pull-{}-{stamp:x}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| {
                (
                    exit::IO,
                    format!(
                        "cannot make a directory in {} to hold the pull until it is \
                         verified: {e} (set TMPDIR to a writable directory with room for it)",
                        base.display()
                    ),
                )
            })?;
        Ok(Spool {
            out: dir.join("pulled"),
            dir,
        })
    }

    /// The file the pull is written to.
    pub fn path(&self) -> &Path {
        &self.out
    }

    /// Copies the verified file to standard output. The file is unlinked first, so
    /// nothing is left behind if the reader goes away (SIGPIPE ends the process).
    pub fn send(self) -> Result<u64, (u8, String)> {
        let mut file = File::open(&self.out).map_err(|e| {
            (
                exit::IO,
                format!("reading back {}: {e}", self.out.display()),
            )
        })?;
        let _ = std::fs::remove_dir_all(&self.dir);
        let mut stdout = io::stdout().lock();
        io::copy(&mut file, &mut stdout)
            .and_then(|n| stdout.flush().map(|()| n))
            .map_err(|e| (exit::IO, format!("writing to standard output: {e}")))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
