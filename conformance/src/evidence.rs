//! Evidence (`--evidence DIR`): for every case, what the spec expects, what was observed
//! and the traffic it is judged on.
//!
//! While [`record`] runs, the case runner opens a [`CaseScope`] around each case and
//! everything the harness sends or receives through a [`crate::net::Probe`] or the
//! harness's exposer ([`crate::adversary`]) during that case lands in the case's [`Tap`].
//! [`write()`] then lays out, per case, `ID/case.txt` (the expectation with its spec
//! citation, the verdict, the detail, a summary of the traffic and a packet log),
//! `ID/case.json` (the same, structured) and `ID/traffic.pcap` when the case exchanged
//! datagrams; beside them `index.html` (the matrix, [`crate::html`]) and `results.json`.
//!
//! The pcap files are classic pcap, link type Ethernet, written by `rgtp-capture`: UDP
//! datagrams become Ethernet/IP/UDP frames between the real addresses and ports (the MAC
//! addresses are synthetic), raw-Ethernet ones the frames as sent. `rgtp inspect FILE
//! --ticket T` and the Wireshark dissector read them.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rgtp_capture::CaptureWriter;
use rgtp_proto::Peer;
use rgtp_wire::Repr;

use crate::html::{self, Link};
use crate::report::{self, json_str};
use crate::verdict::{Outcome, Target};

/// Packet lines a case log lists before it stops.
pub const LOG_LINES: usize = 2000;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// One datagram the harness sent or received.
#[derive(Debug, Clone)]
pub struct Packet {
    /// When, µs since the Unix epoch.
    pub ts_us: u64,
    /// Sender.
    pub src: Peer,
    /// Receiver.
    pub dst: Peer,
    /// True when the harness sent it.
    pub sent: bool,
    /// The RGTP datagram.
    pub data: Vec<u8>,
}

/// The traffic of one case.
#[derive(Debug)]
pub struct Tap {
    id: String,
    started_us: u64,
    ended_us: AtomicU64,
    packets: Mutex<Vec<Packet>>,
    tickets: Mutex<Vec<String>>,
}

impl Tap {
    fn new(id: &str) -> Tap {
        Tap {
            id: id.to_string(),
            started_us: now_us(),
            ended_us: AtomicU64::new(0),
            packets: Mutex::new(Vec::new()),
            tickets: Mutex::new(Vec::new()),
        }
    }

    /// Notes a datagram the harness (at `harness`) sent to (`sent`) or received from `peer`.
    pub fn harness(&self, harness: Peer, peer: Peer, sent: bool, data: &[u8]) {
        let (src, dst) = if sent {
            (harness, peer)
        } else {
            (peer, harness)
        };
        let p = Packet {
            ts_us: now_us(),
            src,
            dst,
            sent,
            data: data.to_vec(),
        };
        self.packets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(p);
    }

    /// The tickets of the harness's own exposures in this case ([`note_ticket`]).
    pub fn tickets(&self) -> Vec<String> {
        self.tickets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The case id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When the case started, µs since the Unix epoch.
    pub fn started_us(&self) -> u64 {
        self.started_us
    }

    /// When the case ended (0 while it runs).
    pub fn ended_us(&self) -> u64 {
        self.ended_us.load(Ordering::Relaxed)
    }

    /// The datagrams so far, in the order they were noted.
    pub fn packets(&self) -> Vec<Packet> {
        let mut v = self
            .packets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        v.sort_by_key(|p| p.ts_us);
        v
    }
}

struct Session {
    taps: Vec<Arc<Tap>>,
    current: Option<Arc<Tap>>,
    /// Traffic outside any case: the target's setup (the exposer cases' first handshake).
    setup: Arc<Tap>,
}

impl Default for Session {
    fn default() -> Session {
        Session {
            taps: Vec::new(),
            current: None,
            setup: Arc::new(Tap::new(SETUP)),
        }
    }
}

/// The name of the directory holding the traffic outside any case (the setup).
pub const SETUP: &str = "setup";

thread_local! {
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

/// The running case's tap when a [`record`] is on in this thread (the setup's between
/// cases).
pub fn current_tap() -> Option<Arc<Tap>> {
    SESSION.with(|s| {
        s.borrow()
            .as_ref()
            .map(|s| Arc::clone(s.current.as_ref().unwrap_or(&s.setup)))
    })
}

/// Notes the ticket of an exposure the harness itself serves in the running case (the
/// puller cases), so that the case's pcap can be decoded with it. The harness's own
/// exposures are made for the case: their keys are no secret.
pub fn note_ticket(ticket: &str) {
    if let Some(t) = current_tap() {
        let mut v = t.tickets.lock().unwrap_or_else(|p| p.into_inner());
        if !v.iter().any(|x| x == ticket) {
            v.push(ticket.to_string());
        }
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// How to decode a case's pcap: with the tickets the case noted, else the run's advice.
fn decode_lines(info: &RunInfo, tap: Option<&Tap>) -> Vec<String> {
    let tickets = tap.map(Tap::tickets).unwrap_or_default();
    if tickets.is_empty() {
        return info.decode.iter().cloned().collect();
    }
    tickets
        .iter()
        .map(|t| format!("rgtp inspect {PCAP} --ticket {}", quote(t)))
        .collect()
}

/// Marks one case running (see [`crate::cases::run_cases`]); a case run inside another
/// (the ABI cases run exposer cases) belongs to the outer one.
pub struct CaseScope {
    active: bool,
}

impl CaseScope {
    /// Starts case `id`'s tap if a recording is on.
    pub fn begin(id: &str) -> CaseScope {
        let active = SESSION.with(|s| match s.borrow_mut().as_mut() {
            Some(sess) if sess.current.is_none() => {
                let t = Arc::new(Tap::new(id));
                sess.taps.push(Arc::clone(&t));
                sess.current = Some(t);
                true
            }
            _ => false,
        });
        CaseScope { active }
    }
}

impl Drop for CaseScope {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        SESSION.with(|s| {
            if let Some(sess) = s.borrow_mut().as_mut() {
                if let Some(t) = sess.current.take() {
                    t.ended_us.store(now_us(), Ordering::Relaxed);
                }
            }
        });
    }
}

/// Per-case traffic of a recorded run.
#[derive(Debug, Default)]
pub struct Traffic {
    taps: Vec<Arc<Tap>>,
    setup: Option<Arc<Tap>>,
}

impl Traffic {
    /// The traffic outside any case (the setup), if there was any.
    pub fn setup(&self) -> Option<&Tap> {
        self.setup.as_deref().filter(|t| !t.packets().is_empty())
    }

    /// Case `id`'s tap (the last, if it ran more than once).
    pub fn case(&self, id: &str) -> Option<&Tap> {
        self.taps.iter().rev().find(|t| t.id == id).map(|t| &**t)
    }
}

struct Restore(Option<Session>);

impl Drop for Restore {
    fn drop(&mut self) {
        let prev = self.0.take();
        SESSION.with(|s| *s.borrow_mut() = prev);
    }
}

/// Runs `f` (a run of cases, in this thread) recording each case's traffic.
pub fn record<R>(f: impl FnOnce() -> R) -> (R, Traffic) {
    let prev = SESSION.with(|s| s.borrow_mut().replace(Session::default()));
    let restore = Restore(prev);
    let r = f();
    let sess = SESSION.with(|s| s.borrow_mut().take()).unwrap_or_default();
    drop(restore);
    sess.setup.ended_us.store(now_us(), Ordering::Relaxed);
    (
        r,
        Traffic {
            taps: sess.taps,
            setup: Some(sess.setup),
        },
    )
}

/// What [`write()`] says about the run beyond the outcomes.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// Target name, as on the command line.
    pub target: String,
    /// What was tested (an address, a command, a library, a file).
    pub subject: String,
    /// The capture judged (pcap target): every case points to it.
    pub input: Option<PathBuf>,
    /// How to decode the pcap files (e.g. the `rgtp inspect` command).
    pub decode: Option<String>,
}

/// A datagram's type name, or `unparsable`.
fn type_of(d: &[u8]) -> &'static str {
    match Repr::parse(d, rgtp_cli::inspect::MAX_PAYLOAD) {
        Ok(r) => rgtp_cli::inspect::type_name(r.packet_type()),
        Err(_) => "unparsable",
    }
}

/// Datagrams and bytes of each type, one direction.
type TypeCounts = BTreeMap<&'static str, (usize, usize)>;

/// What a case's traffic held: per direction, datagrams and bytes of each type.
#[derive(Debug, Default, Clone)]
pub struct TrafficSummary {
    /// Sent by the harness.
    pub sent: TypeCounts,
    /// Received by the harness.
    pub received: TypeCounts,
    /// Distinct addresses the harness used.
    pub harness_addresses: Vec<String>,
    /// Distinct addresses of the other side.
    pub peer_addresses: Vec<String>,
}

/// Summarises `packets`.
pub fn summarize(packets: &[Packet]) -> TrafficSummary {
    let mut s = TrafficSummary::default();
    for p in packets {
        let (counts, harness, peer) = if p.sent {
            (&mut s.sent, p.src, p.dst)
        } else {
            (&mut s.received, p.dst, p.src)
        };
        let e = counts.entry(type_of(&p.data)).or_default();
        e.0 += 1;
        e.1 += p.data.len();
        for (list, a) in [
            (&mut s.harness_addresses, harness),
            (&mut s.peer_addresses, peer),
        ] {
            let a = a.to_string();
            if !list.contains(&a) {
                list.push(a);
            }
        }
    }
    s
}

fn counts_text(c: &TypeCounts) -> String {
    if c.is_empty() {
        return "nothing".into();
    }
    c.iter()
        .map(|(t, (n, b))| format!("{t} x{n} ({b} B)"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn counts_json(c: &TypeCounts) -> String {
    let v: Vec<String> = c
        .iter()
        .map(|(t, (n, b))| format!("{}:{{\"packets\":{n},\"bytes\":{b}}}", json_str(t)))
        .collect();
    format!("{{{}}}", v.join(","))
}

fn list_json(v: &[String]) -> String {
    let v: Vec<String> = v.iter().map(|s| json_str(s)).collect();
    format!("[{}]", v.join(","))
}

/// The directory name of case `id`: its id, with anything but letters, digits, `-`
/// and `_` replaced.
pub fn case_dir(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The file name of a case's capture.
pub const PCAP: &str = "traffic.pcap";
/// The file name of a case's log.
pub const LOG: &str = "case.txt";
/// The file name of a case's structured record.
pub const CASE_JSON: &str = "case.json";

fn write_pcap(path: &Path, packets: &[Packet]) -> io::Result<()> {
    let mut w = CaptureWriter::new(BufWriter::new(File::create(path)?))?;
    for p in packets {
        w.write_datagram(p.ts_us, p.src, p.dst, None, &p.data)?;
    }
    w.into_inner()?.flush()
}

fn expectation(o: &Outcome) -> String {
    format!(
        "{} (spec/rgtp-v1.md {}): {}",
        o.info.level.name(),
        o.info.section,
        o.info.title
    )
}

fn log_text(o: &Outcome, info: &RunInfo, tap: Option<&Tap>, packets: &[Packet]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}  {}", o.info.id, o.info.title);
    let _ = writeln!(s);
    let _ = writeln!(s, "target       {}", o.info.target.name());
    if !info.subject.is_empty() {
        let _ = writeln!(s, "tested       {}", info.subject);
    }
    let _ = writeln!(s, "expectation  {}", expectation(o));
    let _ = writeln!(
        s,
        "verdict      {} ({})",
        o.verdict.name(),
        html::verdict_text(o.verdict)
    );
    let _ = writeln!(s, "observed     {}", o.detail);
    let _ = writeln!(s, "time         {:.3} s", o.seconds);
    if let Some(input) = &info.input {
        let _ = writeln!(
            s,
            "input        {} (the capture every case of this run judged)",
            input.display()
        );
    }
    if packets.is_empty() && (o.info.target == Target::Abi || o.info.target == Target::Python) {
        let _ = writeln!(
            s,
            "traffic      not recorded: the case drives the library in process"
        );
    }
    if tap.is_some() && !packets.is_empty() {
        let sum = summarize(packets);
        let _ = writeln!(
            s,
            "traffic      {} datagrams; the harness sent {}; received {}",
            packets.len(),
            counts_text(&sum.sent),
            counts_text(&sum.received)
        );
        let _ = writeln!(
            s,
            "addresses    harness {}; other side {}",
            sum.harness_addresses.join(", "),
            sum.peer_addresses.join(", ")
        );
        let _ = writeln!(s, "pcap         {PCAP}");
        for d in decode_lines(info, tap) {
            let _ = writeln!(s, "decode       {d}");
        }
        let t0 = tap.map_or(0, Tap::started_us);
        let _ = writeln!(s);
        let _ = writeln!(s, "packets (time from the case's start):");
        for p in packets.iter().take(LOG_LINES) {
            let _ = writeln!(
                s,
                "  +{:>10.6} s  {} {} -> {}  {} {} B",
                p.ts_us.saturating_sub(t0) as f64 / 1e6,
                if p.sent { "sent" } else { "recv" },
                p.src,
                p.dst,
                type_of(&p.data),
                p.data.len()
            );
        }
        if packets.len() > LOG_LINES {
            let _ = writeln!(s, "  … {} more in {PCAP}", packets.len() - LOG_LINES);
        }
    } else if tap.is_some() {
        let _ = writeln!(s, "traffic      none");
    }
    s
}

fn case_json(o: &Outcome, info: &RunInfo, tap: Option<&Tap>, packets: &[Packet]) -> String {
    let traffic = match tap {
        None => "null".to_string(),
        Some(t) => {
            let sum = summarize(packets);
            format!(
                "{{\"packets\":{},\"started_us\":{},\"ended_us\":{},\"sent\":{},\"received\":{},\"harness_addresses\":{},\"peer_addresses\":{},\"pcap\":{}}}",
                packets.len(),
                t.started_us(),
                t.ended_us(),
                counts_json(&sum.sent),
                counts_json(&sum.received),
                list_json(&sum.harness_addresses),
                list_json(&sum.peer_addresses),
                if packets.is_empty() {
                    "null".to_string()
                } else {
                    json_str(PCAP)
                }
            )
        }
    };
    format!(
        "{{\"id\":{},\"title\":{},\"target\":{},\"expectation\":{{\"spec\":\"spec/rgtp-v1.md\",\"section\":{},\"level\":{},\"requirement\":{}}},\"verdict\":{},\"observed\":{{\"detail\":{},\"seconds\":{:.3},\"traffic\":{traffic}}},\"input\":{},\"decode\":{},\"tickets\":{}}}\n",
        json_str(o.info.id),
        json_str(o.info.title),
        json_str(o.info.target.name()),
        json_str(o.info.section),
        json_str(o.info.level.name()),
        json_str(o.info.title),
        json_str(o.verdict.name()),
        json_str(&o.detail),
        o.seconds,
        info.input
            .as_ref()
            .map_or("null".to_string(), |p| json_str(&p.display().to_string())),
        match (decode_lines(info, tap).first(), packets.is_empty()) {
            (Some(d), false) => json_str(d),
            _ => "null".to_string(),
        },
        list_json(&tap.map(Tap::tickets).unwrap_or_default())
    )
}

/// Each case's links, and the run's (the setup's traffic), relative to the evidence directory.
pub type Links = (Vec<Vec<Link>>, Vec<Link>);

/// Writes the evidence of `outcomes` into `dir` (created if need be): one directory per
/// case, `setup/` when there was traffic outside the cases, `index.html` and
/// `results.json`. Returns the links, relative to `dir`.
pub fn write(
    dir: &Path,
    info: &RunInfo,
    outcomes: &[Outcome],
    traffic: &Traffic,
) -> io::Result<Links> {
    std::fs::create_dir_all(dir)?;
    let mut all = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        let name = case_dir(o.info.id);
        let cdir = dir.join(&name);
        std::fs::create_dir_all(&cdir)?;
        let tap = traffic.case(o.info.id);
        let packets = tap.map(Tap::packets).unwrap_or_default();
        let mut links = vec![Link {
            label: "log".into(),
            path: format!("{name}/{LOG}"),
        }];
        let pcap = cdir.join(PCAP);
        if packets.is_empty() {
            // A stale capture from an earlier run into the same directory would mislead.
            let _ = std::fs::remove_file(&pcap);
        } else {
            write_pcap(&pcap, &packets)?;
            links.push(Link {
                label: "pcap".into(),
                path: format!("{name}/{PCAP}"),
            });
        }
        let mut log = log_text(o, info, tap, &packets);
        if tap.is_none() && traffic.setup().is_some() {
            // The case never ran (the target could not be set up): the setup's traffic
            // is what there is to see.
            let _ = writeln!(
                log,
                "traffic      none of its own (the case did not run); the setup's: ../{SETUP}/{PCAP}"
            );
            links.push(Link {
                label: "setup pcap".into(),
                path: format!("{SETUP}/{PCAP}"),
            });
        }
        std::fs::write(cdir.join(LOG), log)?;
        std::fs::write(cdir.join(CASE_JSON), case_json(o, info, tap, &packets))?;
        links.push(Link {
            label: "json".into(),
            path: format!("{name}/{CASE_JSON}"),
        });
        all.push(links);
    }
    let notes = write_setup(dir, info, traffic)?;
    std::fs::write(
        dir.join("results.json"),
        report::json(&info.target, outcomes),
    )?;
    std::fs::write(
        dir.join("index.html"),
        html::render(&info.target, outcomes, &all, &notes),
    )?;
    Ok((all, notes))
}

/// The setup's traffic (outside any case) into `DIR/setup/`: what the harness exchanged
/// before the first case, e.g. the handshake that learns the Manifest, or the requests
/// that went unanswered when every case fails with `setup: …`.
fn write_setup(dir: &Path, info: &RunInfo, traffic: &Traffic) -> io::Result<Vec<Link>> {
    let sdir = dir.join(SETUP);
    let Some(tap) = traffic.setup() else {
        let _ = std::fs::remove_dir_all(&sdir);
        return Ok(Vec::new());
    };
    std::fs::create_dir_all(&sdir)?;
    let packets = tap.packets();
    write_pcap(&sdir.join(PCAP), &packets)?;
    let sum = summarize(&packets);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "setup: the traffic outside any case (before the first, between cases)\n"
    );
    if !info.subject.is_empty() {
        let _ = writeln!(s, "tested       {}", info.subject);
    }
    let _ = writeln!(
        s,
        "traffic      {} datagrams; the harness sent {}; received {}",
        packets.len(),
        counts_text(&sum.sent),
        counts_text(&sum.received)
    );
    let _ = writeln!(s, "pcap         {PCAP}");
    if let Some(d) = &info.decode {
        let _ = writeln!(s, "decode       {d}");
    }
    std::fs::write(sdir.join(LOG), s)?;
    Ok(vec![
        Link {
            label: "setup log".into(),
            path: format!("{SETUP}/{LOG}"),
        },
        Link {
            label: "setup pcap".into(),
            path: format!("{SETUP}/{PCAP}"),
        },
    ])
}

fn absolute(p: &Path) -> PathBuf {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// `links` (relative to the evidence directory `evidence`) made relative to the directory
/// the page `page` is written in.
pub fn relink(links: &[Vec<Link>], evidence: &Path, page: &Path) -> Vec<Vec<Link>> {
    let from = absolute(page.parent().unwrap_or(Path::new(".")));
    let to = absolute(evidence);
    let fc: Vec<_> = from.components().collect();
    let tc: Vec<_> = to.components().collect();
    let common = fc.iter().zip(&tc).take_while(|(a, b)| a == b).count();
    let mut prefix = String::new();
    for _ in common..fc.len() {
        prefix.push_str("../");
    }
    for c in &tc[common..] {
        prefix.push_str(&c.as_os_str().to_string_lossy());
        prefix.push('/');
    }
    links
        .iter()
        .map(|v| {
            v.iter()
                .map(|l| Link {
                    label: l.label.clone(),
                    path: format!("{prefix}{}", l.path),
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_scopes_split_traffic_and_nest() {
        let a = Peer::Ip("127.0.0.1:1000".parse().unwrap());
        let b = Peer::Ip("127.0.0.1:2000".parse().unwrap());
        assert!(current_tap().is_none());
        let ((), traffic) = record(|| {
            current_tap().unwrap().harness(a, b, true, b"setup");
            {
                let _s = CaseScope::begin("X-1");
                current_tap().unwrap().harness(a, b, true, b"one");
                let _inner = CaseScope::begin("X-9");
                current_tap().unwrap().harness(a, b, false, b"two");
            }
            assert_eq!(current_tap().unwrap().id(), SETUP);
            let _s = CaseScope::begin("X-2");
            current_tap().unwrap().harness(a, b, true, b"three");
        });
        assert!(current_tap().is_none());
        let one = traffic.case("X-1").unwrap().packets();
        assert_eq!(one.len(), 2);
        assert_eq!((one[0].src, one[0].dst, one[0].sent), (a, b, true));
        assert_eq!((one[1].src, one[1].dst, one[1].sent), (b, a, false));
        assert!(traffic.case("X-9").is_none());
        assert_eq!(traffic.case("X-2").unwrap().packets().len(), 1);
        assert!(traffic.case("X-1").unwrap().ended_us() > 0);
        assert_eq!(traffic.setup().unwrap().packets().len(), 1);
    }

    #[test]
    fn links_follow_the_page() {
        let l = vec![vec![Link {
            label: "log".into(),
            path: "EXP-001/case.txt".into(),
        }]];
        let r = relink(
            &l,
            Path::new("/tmp/run/ev"),
            Path::new("/tmp/run/report.html"),
        );
        assert_eq!(r[0][0].path, "ev/EXP-001/case.txt");
        let r = relink(&l, Path::new("/tmp/run/ev"), Path::new("/tmp/out/x/r.html"));
        assert_eq!(r[0][0].path, "../../run/ev/EXP-001/case.txt");
        assert_eq!(case_dir("EXP-001/../x"), "EXP-001____x");
    }
}
