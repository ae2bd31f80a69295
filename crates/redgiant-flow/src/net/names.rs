//! Names: where a flow server registered under a name listens.
//!
//! A name is looked up, in this order, in
//! 1. the static entries of `RGTP_FLOW_NAMES` (`name=host:port,name2=host:port`);
//! 2. the file directory: one small file per name under `RGTP_FLOW_DIR`
//!    (default `$XDG_RUNTIME_DIR/rgtp-flow`, else `/tmp/rgtp-flow-$UID`),
//!    holding `HOST:PORT` on its first line and the owner's process id on
//!    the second; a file whose process is gone is stale and ignored;
//! 3. the directory server at `RGTP_FLOW_DIRECTORY` (see
//!    [`directory`]), when set.
//!
//! A node that registers a name writes its file (and registers it with the
//! directory server when one is set), and removes both when it ends.

use std::fs;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::directory;
use super::error::FlowNetError;
use crate::wire::MAX_NAME_LEN;

/// Where a node looks names up and registers them. [`Names::from_env`]
/// reads the environment; tests and embedders build one directly.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Names {
    /// Static entries, looked up first.
    pub statics: Vec<(String, String)>,
    /// The file directory; `None`: none.
    pub dir: Option<PathBuf>,
    /// The directory server; `None`: none.
    pub server: Option<SocketAddr>,
    /// A name every node built with this registers as it binds
    /// (`RGTP_FLOW_BIND`, set by `rgtp flow bind NAME -- COMMAND`).
    pub bind: Option<String>,
    /// How long the directory server keeps a registration unless refreshed
    /// (a node refreshes every third of it); `None`: [`REGISTRATION_TTL`].
    pub registration_ttl: Option<Duration>,
}

/// The environment variable of the static entries.
pub const ENV_NAMES: &str = "RGTP_FLOW_NAMES";
/// The environment variable of the file directory.
pub const ENV_DIR: &str = "RGTP_FLOW_DIR";
/// The environment variable of the directory server's address.
pub const ENV_DIRECTORY: &str = "RGTP_FLOW_DIRECTORY";
/// The environment variable naming what a node registers as it binds.
pub const ENV_BIND: &str = "RGTP_FLOW_BIND";

/// How long a directory server keeps a registration unless refreshed.
pub const REGISTRATION_TTL: Duration = Duration::from_secs(30);

impl Names {
    /// Names as the environment sets them (module docs). A malformed
    /// `RGTP_FLOW_NAMES` or `RGTP_FLOW_DIRECTORY` is an error naming it.
    pub fn from_env() -> Result<Names, FlowNetError> {
        let statics = match std::env::var(ENV_NAMES) {
            Ok(s) => parse_statics(&s)?,
            Err(_) => Vec::new(),
        };
        let server = match std::env::var(ENV_DIRECTORY) {
            Ok(s) if !s.trim().is_empty() => Some(resolve(s.trim()).map_err(|e| {
                FlowNetError::Directory(format!(
                    "{ENV_DIRECTORY}={s:?} is not a HOST:PORT this machine resolves ({e})"
                ))
            })?),
            _ => None,
        };
        let bind = std::env::var(ENV_BIND).ok().filter(|s| !s.is_empty());
        Ok(Names {
            statics,
            dir: Some(default_dir()),
            server,
            bind,
            registration_ttl: None,
        })
    }

    /// The registration lifetime asked of the directory server.
    pub fn ttl(&self) -> Duration {
        self.registration_ttl.unwrap_or(REGISTRATION_TTL)
    }

    /// Where `name` is served, or [`FlowNetError::UnknownName`] listing
    /// every place looked in.
    pub fn lookup(&self, name: &str) -> Result<SocketAddr, FlowNetError> {
        check_name(name)?;
        let mut searched = Vec::new();
        if let Some((_, addr)) = self.statics.iter().find(|(n, _)| n == name) {
            return resolve(addr).map_err(|e| {
                FlowNetError::BadName(format!(
                    "{ENV_NAMES} gives {name:?} the address {addr:?}, which does not resolve: {e}"
                ))
            });
        }
        searched.push(ENV_NAMES.to_string());
        if let Some(dir) = &self.dir {
            if let Some(addr) = read_entry(dir, name)? {
                return Ok(addr);
            }
            searched.push(dir.display().to_string());
        }
        if let Some(server) = self.server {
            if let Some(addr) = directory::lookup(server, name)? {
                return Ok(addr);
            }
            searched.push(format!("directory server {server}"));
        }
        Err(FlowNetError::UnknownName {
            name: name.to_owned(),
            searched,
        })
    }
}

/// `$RGTP_FLOW_DIR`, else `$XDG_RUNTIME_DIR/rgtp-flow`, else `/tmp/rgtp-flow-$UID`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(ENV_DIR).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("rgtp-flow");
    }
    PathBuf::from(format!("/tmp/rgtp-flow-{}", uid()))
}

/// This process's user id (from `/proc/self`), or the user's name.
fn uid() -> String {
    use std::os::unix::fs::MetadataExt;
    match fs::metadata("/proc/self") {
        Ok(m) => m.uid().to_string(),
        Err(_) => std::env::var("USER").unwrap_or_else(|_| "user".into()),
    }
}

/// Parses `name=host:port,name2=host:port` (spaces around items ignored).
pub fn parse_statics(s: &str) -> Result<Vec<(String, String)>, FlowNetError> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((name, addr)) = item.split_once('=') else {
            return Err(FlowNetError::BadName(format!(
                "{ENV_NAMES} entry {item:?} has no '=': write name=host:port"
            )));
        };
        let (name, addr) = (name.trim(), addr.trim());
        check_name(name)?;
        if addr.rsplit_once(':').is_none() {
            return Err(FlowNetError::BadName(format!(
                "{ENV_NAMES} entry {item:?} has no port: write {name}=host:port"
            )));
        }
        out.push((name.to_owned(), addr.to_owned()));
    }
    Ok(out)
}

/// The first address `hostport` resolves to.
pub fn resolve(hostport: &str) -> io::Result<SocketAddr> {
    hostport.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{hostport} resolves to no address"),
        )
    })
}

/// Checks `name` fits an ALLOC.
pub fn check_name(name: &str) -> Result<(), FlowNetError> {
    if name.is_empty() {
        return Err(FlowNetError::BadName("a flow name may not be empty".into()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(FlowNetError::BadName(format!(
            "a flow name has at most {MAX_NAME_LEN} bytes; this one has {}",
            name.len()
        )));
    }
    Ok(())
}

/// The file name that stores `name`: bytes outside `[A-Za-z0-9._-]` as
/// `%XX`, and a leading `.` too, so every name maps to one plain file.
pub fn file_name(name: &str) -> Result<String, FlowNetError> {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.len() > 250 {
        return Err(FlowNetError::BadName(format!(
            "the name {name:?} is too long for the file directory once escaped ({} bytes of \
             file name, 250 at most); use a shorter name",
            out.len()
        )));
    }
    Ok(out)
}

/// The address to write for a node bound to `local`: loopback for an
/// unspecified address (the file directory is one machine's).
pub fn reachable(local: SocketAddr) -> SocketAddr {
    match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), local.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), local.port())
        }
        _ => local,
    }
}

/// Writes `dir/<name>` naming `addr` and this process, atomically (a
/// temporary file renamed over it). Creates `dir` (mode 0700) if needed.
pub fn write_entry(dir: &Path, name: &str, addr: SocketAddr) -> Result<PathBuf, FlowNetError> {
    let file = file_name(name)?;
    create_dir(dir)?;
    let path = dir.join(&file);
    let tmp = dir.join(format!(".{file}.{}.tmp", std::process::id()));
    let mut f = fs::File::create(&tmp)?;
    writeln!(f, "{addr}")?;
    writeln!(f, "{}", std::process::id())?;
    drop(f);
    fs::rename(&tmp, &path)?;
    Ok(path)
}

fn create_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The address in `dir/<name>`, `None` if there is no file or its process
/// is gone (the stale file is then removed).
pub fn read_entry(dir: &Path, name: &str) -> Result<Option<SocketAddr>, FlowNetError> {
    let path = dir.join(file_name(name)?);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut lines = text.lines();
    let addr = lines.next().unwrap_or("").trim();
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        return Err(FlowNetError::BadName(format!(
            "{} does not hold HOST:PORT on its first line; remove it",
            path.display()
        )));
    };
    if let Some(pid) = lines.next().and_then(|l| l.trim().parse::<u32>().ok()) {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_file(&path);
            return Ok(None);
        }
    }
    Ok(Some(addr))
}

/// Removes `dir/<name>` if it still names `addr` (a later node may have
/// taken the name over).
pub fn remove_entry(dir: &Path, name: &str, addr: SocketAddr) {
    let Ok(file) = file_name(name) else { return };
    let path = dir.join(file);
    let ours = fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
        == Some(addr);
    if ours {
        let _ = fs::remove_file(&path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_statics() {
        let s = parse_statics(" echo=127.0.0.1:9000, b=localhost:1 ,").unwrap();
        assert_eq!(
            s,
            vec![
                ("echo".to_string(), "127.0.0.1:9000".to_string()),
                ("b".to_string(), "localhost:1".to_string())
            ]
        );
        assert!(parse_statics("echo").is_err());
        assert!(parse_statics("echo=host").is_err());
        assert!(parse_statics("=h:1").is_err());
    }

    #[test]
    fn test_file_name() {
        assert_eq!(file_name("echo.v1").unwrap(), "echo.v1");
        assert_eq!(file_name("../x").unwrap(), "%2E.%2Fx");
        assert_eq!(file_name("a b/é").unwrap(), "a%20b%2F%C3%A9");
        assert!(file_name(&"é".repeat(100)).is_err());
    }
}
