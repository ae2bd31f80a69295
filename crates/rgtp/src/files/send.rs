//! Sealing trees into an exposure set and serving it.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use rgtp_link::udp::UdpLink;
use rgtp_link::Link;
use rgtp_proto::{CipherId, ExposerStats, HashId, Key};

use super::types::{catalog_error, ErrorKind, FilesError, ServeCaps};
use crate::catalog::{self, Catalog, Entry, FoundKind, Kind};
use crate::driver::{self, Clock};
use crate::router::Router;
use crate::{Backend, ExposerBuilder, FecSpec, Ticket};

/// How to seal and serve a set.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Files and directories; each is named in the set by its last component, and a
    /// directory brings everything under it.
    pub paths: Vec<PathBuf>,
    /// Address and UDP port to serve on (port 0: any free port).
    pub bind: SocketAddr,
    /// Host to write into the ticket (default: the bound address, or 127.0.0.1).
    pub advertise: Option<String>,
    /// Pre-shared key (default: a fresh random key). With a key, the same files give
    /// the same ticket after a restart and receivers resume.
    pub key: Option<[u8; 32]>,
    /// AEAD.
    pub cipher: CipherId,
    /// Merkle hash.
    pub hash: HashId,
    /// FEC.
    pub fec: FecSpec,
    /// Plaintext bytes per chunk.
    pub chunk_size: u32,
    /// Send symbolic links as links (the default refuses them).
    pub keep_symlinks: bool,
    /// Serving rate caps.
    pub caps: ServeCaps,
    /// Serve each file at most this many bytes per second to each puller.
    pub max_rate_per_file: Option<u64>,
}

impl SendOptions {
    /// `paths` on any free port of every IPv4 interface, AES-256-GCM, SHA-256, no
    /// FEC, 1200-byte chunks, a random key, no caps.
    pub fn new(paths: Vec<PathBuf>) -> Self {
        Self {
            paths,
            bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            advertise: None,
            key: None,
            cipher: CipherId::Aes256Gcm,
            hash: HashId::Sha256,
            fec: FecSpec::None,
            chunk_size: 1200,
            keep_symlinks: false,
            caps: ServeCaps::default(),
            max_rate_per_file: None,
        }
    }
}

/// A set sealed and bound, ready to serve.
pub struct Prepared {
    /// Every exposure of the set, the catalog's among them.
    pub router: Router,
    /// The bound socket.
    pub link: UdpLink,
    /// The catalog's ticket, with the host to advertise.
    pub ticket: Ticket,
    /// Regular files in the set.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Catalog entries (files, directories, links).
    pub entries: usize,
}

/// The file's bytes, mapped (empty files need no map).
fn map(path: &Path) -> Result<Option<memmap2::Mmap>, FilesError> {
    let f = File::open(path).map_err(|e| {
        FilesError::new(
            ErrorKind::Io,
            format!(
                "cannot open {}: {e} (check its permissions)",
                path.display()
            ),
        )
    })?;
    if f.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return Ok(None);
    }
    // SAFETY: the map is read once, while sealing; a concurrent writer could change what
    // is sealed but cannot make us read out of bounds.
    unsafe { memmap2::Mmap::map(&f) }
        .map(Some)
        .map_err(|e| FilesError::new(ErrorKind::Io, format!("cannot map {}: {e}", path.display())))
}

/// Scans and seals the trees of `o` and binds the socket they will be served on.
pub fn prepare(o: &SendOptions) -> Result<Prepared, FilesError> {
    let found = catalog::scan(&o.paths, o.keep_symlinks).map_err(catalog_error)?;
    let key = o
        .key
        .map(Key::from_bytes)
        .unwrap_or_else(rgtp_providers::cipher::random_key);
    let addr = o.bind;
    let mut link = UdpLink::bind(addr).map_err(|e| {
        FilesError::new(
            ErrorKind::Io,
            format!("cannot bind UDP {addr}: {e} (is the port in use? try --port 0)"),
        )
    })?;
    let caps = link.capabilities();
    let config = rgtp_proto::ExposerConfig {
        rate_cap: o.caps.advertised(o.max_rate_per_file),
        ..rgtp_proto::ExposerConfig::for_link(&caps)
    };
    let builder = || {
        ExposerBuilder::new()
            .with_cipher((o.cipher, Backend::preferred()))
            .with_hash(o.hash)
            .with_fec(o.fec)
            .with_chunk_size(o.chunk_size)
            .with_key(key.clone())
            .with_stable_exposure_id()
            .with_config(config.clone())
    };
    let usage = |m: String| FilesError::new(ErrorKind::Usage, m);
    let mut router = Router::new();
    let mut entries = Vec::with_capacity(found.len());
    let (mut files, mut bytes) = (0u64, 0u64);
    for f in &found {
        let kind = match &f.kind {
            FoundKind::Dir => Kind::Dir,
            FoundKind::Symlink(t) => Kind::Symlink { target: t.clone() },
            FoundKind::File(_) => {
                let m = map(&f.source)?;
                let data: &[u8] = m.as_deref().unwrap_or(&[]);
                let p = builder()
                    .expose(data)
                    .map_err(|e| usage(format!("{}: {e}", f.source.display())))?;
                files += 1;
                bytes += data.len() as u64;
                let k = Kind::File {
                    size: data.len() as u64,
                    id: hex::encode(p.exposure.id()),
                    root: hex::encode(p.exposure.manifest().merkle_root),
                };
                router.add(p.exposer());
                // Each file's chunks leave from its sealed store's own pages.
                if let Some(store) = p.lent_store() {
                    link.lend(store);
                }
                k
            }
        };
        entries.push(Entry {
            path: f.path.clone(),
            kind,
            mode: f.mode,
            mtime: f.mtime,
        });
    }
    let cat = Catalog {
        version: catalog::VERSION,
        entries,
    };
    let p = builder()
        .expose(&cat.to_bytes())
        .map_err(|e| usage(format!("the catalog: {e}")))?;
    router.add(p.exposer());
    let local = link.local_addr();
    let mut ticket = p.ticket(local);
    ticket.host = match &o.advertise {
        Some(h) => h.clone(),
        None if local.ip().is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
        None => ticket.host,
    };
    Ok(Prepared {
        router,
        link,
        ticket,
        files,
        bytes,
        entries: cat.entries.len(),
    })
}

/// Serves a prepared set until `stop` is set, everything sent paced to `max_rate`
/// bytes per second if given.
pub fn serve(p: Prepared, max_rate: Option<u64>, stop: &AtomicBool) -> Result<(), FilesError> {
    serve_with(p, max_rate, stop, |_| {})
}

/// [`serve`], handing `tick` the counters of everything served so far (every
/// exposure of the set summed, see [`Router::stats`]) about every 200 ms and once
/// when serving ends.
pub fn serve_with(
    p: Prepared,
    max_rate: Option<u64>,
    stop: &AtomicBool,
    mut tick: impl FnMut(&ExposerStats),
) -> Result<(), FilesError> {
    let Prepared {
        router, mut link, ..
    } = p;
    let clock = Clock::new();
    driver::serve_capped(router, &mut link, &clock, stop, max_rate, |r| {
        tick(&r.stats())
    })
    .map(|_| ())
    .map_err(|e| FilesError::new(ErrorKind::Io, format!("serving failed: {e}")))
}
