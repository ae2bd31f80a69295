//! What a user would pick instead of RGTP, for `benches/peers.sh`: one file
//! served over plain TCP, TLS 1.3 over TCP, or QUIC, and fetched into a file.
//!
//! ```text
//! peers serve --proto tcp|tls|quic --file F --port P [--bind ADDR] [--cert C] [--cpu-out FILE]
//! peers get   --proto tcp|tls|quic --addr HOST:PORT --out OUT [--cert C]
//! ```
//!
//! `serve` reads F into memory, prints `listening ADDR` once it accepts, and
//! sends all of F to every connection (a thread per TCP or TLS connection; a
//! tokio runtime with one task per QUIC connection, which carries one
//! bidirectional stream) until SIGTERM or SIGINT; it then prints
//! `cpu_seconds S` (getrusage of the whole process) and writes S to
//! `--cpu-out` if given. TLS and QUIC use TLS 1.3 with AES-256-GCM only
//! (QUIC's Initial packets keep the AES-128-GCM its version mandates) and a
//! fresh self-signed certificate for `localhost`, whose DER `serve` writes to
//! `--cert` and `get` trusts as its only root. QUIC runs on quinn's defaults
//! (GSO and GRO where the kernel has them).
//!
//! `get` writes what it receives to `OUT.partial`, syncs it and renames it to
//! OUT, as `rgtp pull` does, then prints `BYTES bytes in SECS s: RATE MB/s`
//! (from before connecting until the rename).

use std::error::Error;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rustls::crypto::{ring as provider, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Bytes per read on the receiving side.
const READ_BUF: usize = 256 << 10;
/// The name the certificate is issued to and the client asks for.
const SERVER_NAME: &str = "localhost";

#[derive(Clone, Copy, PartialEq)]
enum Proto {
    Tcp,
    Tls,
    Quic,
}

const USAGE: &str = "usage:
  peers serve --proto tcp|tls|quic --file F --port P [--bind ADDR] [--cert C] [--cpu-out FILE]
  peers get   --proto tcp|tls|quic --addr HOST:PORT --out OUT [--cert C]
(--cert is required for tls and quic: serve writes the certificate there, get trusts it)";

struct Opts {
    proto: Proto,
    file: Option<PathBuf>,
    port: Option<u16>,
    bind: String,
    addr: Option<String>,
    out: Option<PathBuf>,
    cert: Option<PathBuf>,
    cpu_out: Option<PathBuf>,
}

fn usage_exit(msg: &str) -> ! {
    eprintln!("peers: {msg}\n{USAGE}");
    std::process::exit(2);
}

fn parse(args: &[String]) -> Opts {
    let mut o = Opts {
        proto: Proto::Tcp,
        file: None,
        port: None,
        bind: "127.0.0.1".into(),
        addr: None,
        out: None,
        cert: None,
        cpu_out: None,
    };
    let mut proto = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else {
            usage_exit(&format!("{flag} needs a value"));
        };
        match flag.as_str() {
            "--proto" => {
                proto = Some(match value.as_str() {
                    "tcp" => Proto::Tcp,
                    "tls" => Proto::Tls,
                    "quic" => Proto::Quic,
                    other => usage_exit(&format!("unknown protocol {other:?}")),
                })
            }
            "--file" => o.file = Some(value.into()),
            "--port" => {
                o.port = Some(
                    value
                        .parse()
                        .unwrap_or_else(|_| usage_exit(&format!("bad port {value:?}"))),
                )
            }
            "--bind" => o.bind = value.clone(),
            "--addr" => o.addr = Some(value.clone()),
            "--out" => o.out = Some(value.into()),
            "--cert" => o.cert = Some(value.into()),
            "--cpu-out" => o.cpu_out = Some(value.into()),
            other => usage_exit(&format!("unknown option {other:?}")),
        }
    }
    o.proto = proto.unwrap_or_else(|| usage_exit("--proto is required"));
    if o.proto != Proto::Tcp && o.cert.is_none() {
        usage_exit("--cert is required for tls and quic");
    }
    o
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => {
            let o = parse(&args[1..]);
            serve(&o)
        }
        Some("get") => {
            let o = parse(&args[1..]);
            get(&o)
        }
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return;
        }
        _ => usage_exit("expected serve or get"),
    };
    if let Err(e) = result {
        eprintln!("peers: {e}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------- TLS set-up

/// The ring provider restricted to TLS 1.3 with AES-256-GCM.
fn pinned_provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        cipher_suites: vec![provider::cipher_suite::TLS13_AES_256_GCM_SHA384],
        ..provider::default_provider()
    })
}

fn server_tls(cert_out: &Path) -> Res<rustls::ServerConfig> {
    let made = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()])?;
    let cert: CertificateDer<'static> = made.cert.der().clone();
    fs::write(cert_out, cert.as_ref())?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key_pair.serialize_der()));
    Ok(
        rustls::ServerConfig::builder_with_provider(pinned_provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)?,
    )
}

fn client_tls(cert_in: &Path) -> Res<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(fs::read(cert_in)?))?;
    Ok(
        rustls::ClientConfig::builder_with_provider(pinned_provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// QUIC Initial packets are always AES-128-GCM (RFC 9001 §5.2), whatever the
/// suite negotiated for the rest of the connection.
fn quic_initial_suite() -> rustls::quic::Suite {
    provider::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .and_then(|s| s.quic_suite())
        .expect("ring's AES-128-GCM suite supports QUIC")
}

// --------------------------------------------------------------------- serve

/// CPU seconds (user + system) of this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// Blocks SIGTERM and SIGINT in this thread (and so in every thread spawned
/// after it) and waits for them on a thread of their own, which reports the
/// CPU time and exits.
fn report_cpu_on_signal(cpu_out: Option<PathBuf>) -> Res<()> {
    // SAFETY: plain signal-mask calls on a set built here.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc).into());
        }
        set
    };
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: waits on the set blocked above.
        unsafe { libc::sigwait(&set, &mut sig) };
        let cpu = cpu_seconds();
        println!("cpu_seconds {cpu:.3}");
        if let Some(path) = cpu_out {
            if let Err(e) = fs::write(&path, format!("{cpu:.3}\n")) {
                eprintln!("peers: writing {}: {e}", path.display());
            }
        }
        std::process::exit(0);
    });
    Ok(())
}

fn serve(o: &Opts) -> Res<()> {
    let file = o
        .file
        .as_ref()
        .unwrap_or_else(|| usage_exit("serve needs --file"));
    let port = o.port.unwrap_or_else(|| usage_exit("serve needs --port"));
    report_cpu_on_signal(o.cpu_out.clone())?;
    let data: Arc<[u8]> = fs::read(file)?.into();
    let addr: SocketAddr = (o.bind.as_str(), port)
        .to_socket_addrs()?
        .next()
        .ok_or("--bind resolves to no address")?;
    match o.proto {
        Proto::Tcp => serve_tcp(addr, data, None),
        Proto::Tls => {
            let config = Arc::new(server_tls(o.cert.as_ref().unwrap())?);
            serve_tcp(addr, data, Some(config))
        }
        Proto::Quic => {
            let tls = server_tls(o.cert.as_ref().unwrap())?;
            let crypto = quinn::crypto::rustls::QuicServerConfig::with_initial(
                Arc::new(tls),
                quic_initial_suite(),
            )?;
            let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(serve_quic(addr, data, config))
        }
    }
}

fn listening(addr: SocketAddr) {
    println!("listening {addr}");
    let _ = io::stdout().flush();
}

fn serve_tcp(addr: SocketAddr, data: Arc<[u8]>, tls: Option<Arc<rustls::ServerConfig>>) -> Res<()> {
    let listener = TcpListener::bind(addr)?;
    listening(listener.local_addr()?);
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                eprintln!("peers: accept: {e}");
                continue;
            }
        };
        let data = data.clone();
        let tls = tls.clone();
        std::thread::spawn(move || {
            let sent = match tls {
                None => send_tcp(stream, &data),
                Some(config) => send_tls(stream, config, &data),
            };
            if let Err(e) = sent {
                eprintln!("peers: sending: {e}");
            }
        });
    }
    Ok(())
}

fn send_tcp(mut stream: TcpStream, data: &[u8]) -> Res<()> {
    stream.write_all(data)?;
    stream.shutdown(std::net::Shutdown::Write)?;
    Ok(())
}

fn send_tls(stream: TcpStream, config: Arc<rustls::ServerConfig>, data: &[u8]) -> Res<()> {
    let conn = rustls::ServerConnection::new(config)?;
    let mut tls = rustls::StreamOwned::new(conn, stream);
    tls.write_all(data)?;
    tls.conn.send_close_notify();
    tls.flush()?;
    tls.sock.shutdown(std::net::Shutdown::Write)?;
    Ok(())
}

async fn serve_quic(addr: SocketAddr, data: Arc<[u8]>, config: quinn::ServerConfig) -> Res<()> {
    let endpoint = quinn::Endpoint::server(config, addr)?;
    listening(endpoint.local_addr()?);
    while let Some(incoming) = endpoint.accept().await {
        let data = data.clone();
        tokio::spawn(async move {
            if let Err(e) = send_quic(incoming, &data).await {
                eprintln!("peers: sending: {e}");
            }
        });
    }
    Ok(())
}

async fn send_quic(incoming: quinn::Incoming, data: &[u8]) -> Res<()> {
    let conn = incoming.await?;
    let (mut send, mut recv) = conn.accept_bi().await?;
    recv.read_to_end(64).await?;
    send.write_all(data).await?;
    send.finish()?;
    // The client closes the connection once it has read everything.
    conn.closed().await;
    Ok(())
}

// ----------------------------------------------------------------------- get

/// Where the bytes go: OUT.partial, synced and renamed to OUT at the end.
struct Output {
    file: File,
    partial: PathBuf,
    target: PathBuf,
    bytes: u64,
}

impl Output {
    fn create(target: &Path) -> Res<Output> {
        let mut name = target
            .file_name()
            .ok_or("--out has no file name")?
            .to_os_string();
        name.push(".partial");
        let partial = target.with_file_name(name);
        // Renamed over at the end: never over a device (`--out /dev/null` as root).
        if fs::metadata(target).is_ok_and(|m| !m.is_file()) {
            return Err(format!("--out {} is not a regular file", target.display()).into());
        }
        Ok(Output {
            file: File::create(&partial)?,
            partial,
            target: target.to_path_buf(),
            bytes: 0,
        })
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        self.bytes += buf.len() as u64;
        self.file.write_all(buf)
    }

    fn finish(self) -> Res<u64> {
        self.file.sync_all()?;
        fs::rename(&self.partial, &self.target)?;
        Ok(self.bytes)
    }
}

fn get(o: &Opts) -> Res<()> {
    let addr = o
        .addr
        .as_ref()
        .unwrap_or_else(|| usage_exit("get needs --addr"));
    let out = o
        .out
        .as_ref()
        .unwrap_or_else(|| usage_exit("get needs --out"));
    let started = Instant::now();
    let addr: SocketAddr = addr
        .to_socket_addrs()?
        .next()
        .ok_or("--addr resolves to no address")?;
    let mut output = Output::create(out)?;
    match o.proto {
        Proto::Tcp => {
            let mut stream = TcpStream::connect(addr)?;
            copy_to(&mut stream, &mut output)?;
        }
        Proto::Tls => {
            let config = Arc::new(client_tls(o.cert.as_ref().unwrap())?);
            let conn = rustls::ClientConnection::new(config, ServerName::try_from(SERVER_NAME)?)?;
            let mut tls = rustls::StreamOwned::new(conn, TcpStream::connect(addr)?);
            // A close_notify ends the stream; an EOF without one is an error.
            copy_to(&mut tls, &mut output)?;
        }
        Proto::Quic => {
            let tls = client_tls(o.cert.as_ref().unwrap())?;
            let crypto = quinn::crypto::rustls::QuicClientConfig::with_initial(
                Arc::new(tls),
                quic_initial_suite(),
            )?;
            let config = quinn::ClientConfig::new(Arc::new(crypto));
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(get_quic(addr, config, &mut output))?;
        }
    }
    let bytes = output.finish()?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{bytes} bytes in {secs:.6} s: {:.1} MB/s",
        bytes as f64 / secs / 1e6
    );
    Ok(())
}

fn copy_to(from: &mut impl Read, to: &mut Output) -> Res<()> {
    let mut buf = vec![0u8; READ_BUF];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => to.write(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

async fn get_quic(addr: SocketAddr, config: quinn::ClientConfig, out: &mut Output) -> Res<()> {
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let mut endpoint = quinn::Endpoint::client(local)?;
    endpoint.set_default_client_config(config);
    let conn = endpoint.connect(addr, SERVER_NAME)?.await?;
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_all(b"get").await?;
    send.finish()?;
    let mut buf = vec![0u8; READ_BUF];
    while let Some(n) = recv.read(&mut buf).await? {
        out.write(&buf[..n])?;
    }
    conn.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    Ok(())
}
