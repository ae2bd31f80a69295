//! Network namespaces for tests: two namespaces joined by a veth pair, MTU
//! changes, and running code or commands inside a namespace. Everything is removed when the values are dropped, also while a
//! test panics.
//!
//! Needs root (creating namespaces needs `CAP_SYS_ADMIN`) and the `ip` command
//! from iproute2; without them the helpers fail with a message saying so, they
//! never skip. Names carry the process id and a counter, so tests running in
//! parallel, in one process or several, do not collide.
//!
//! Self-contained (std and libc only), so other crates' tests can include it:
//!
//! ```ignore
//! #[path = "../../rgtp-link/tests/netns/mod.rs"]
//! mod netns;
//! ```
#![allow(dead_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Distinguishes the namespaces one process creates.
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Runs `ip ARGS`; `Err` carries a message with the command and its standard error.
pub fn try_ip(args: &[&str]) -> Result<String, String> {
    let output = run(Command::new("ip").args(args), "ip");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "`ip {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Runs `ip ARGS`, panicking with its standard error if it fails; returns its standard output.
pub fn ip(args: &[&str]) -> String {
    try_ip(args).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `command`, panicking with an install hint if `program` is missing.
fn run(command: &mut Command, program: &str) -> Output {
    match command.output() {
        Ok(output) => output,
        Err(e) if e.kind() == io::ErrorKind::NotFound && program == "ip" => panic!(
            "the `ip` command is missing: install iproute2 (`apt-get install iproute2`) \
             to run the network-namespace tests"
        ),
        Err(e) => panic!("cannot run `{program}`: {e}"),
    }
}

/// A named network namespace (`ip netns add`), deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace named `rgtp-LABEL-PID-N`, with its loopback up.
    pub fn new(label: &str) -> Netns {
        let name = format!(
            "rgtp-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        if let Err(e) = try_ip(&["netns", "add", &name]) {
            panic!("{e}\n(creating network namespaces needs root, or CAP_SYS_ADMIN)");
        }
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file that stands for the namespace.
    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }

    /// Runs `ip -n NAME ARGS` (panicking on failure); returns its standard output.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// Runs `ip -n NAME ARGS`; `Err` carries a message with the command and its standard error.
    pub fn try_ip(&self, args: &[&str]) -> Result<String, String> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        try_ip(&full)
    }

    /// A command that runs `program` inside the namespace (`ip netns exec NAME program`);
    /// add arguments and run it as usual.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Runs `f` on a new thread that has entered the namespace (`setns`), and returns
    /// what it returns; a panic in `f` is passed on. Sockets opened in `f` stay in
    /// the namespace, so they can be returned and used from any thread.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = self.path();
        std::thread::scope(|scope| {
            let handle = scope.spawn(|| {
                let file = File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
                // SAFETY: `file` is an open namespace file; setns changes the network
                // namespace of this thread only, which ends when `f` returns.
                let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                if r != 0 {
                    panic!(
                        "cannot enter network namespace {path}: {}",
                        io::Error::last_os_error()
                    );
                }
                f()
            });
            match handle.join() {
                Ok(value) => value,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Brings interface `iface` up.
    pub fn up(&self, iface: &str) {
        self.ip(&["link", "set", "dev", iface, "up"]);
    }

    /// Sets the MTU of `iface`.
    pub fn set_mtu(&self, iface: &str, mtu: u32) {
        self.ip(&["link", "set", "dev", iface, "mtu", &mtu.to_string()]);
    }

    /// The MAC address of `iface`.
    pub fn mac(&self, iface: &str) -> [u8; 6] {
        let out = self.ip(&["-o", "link", "show", "dev", iface]);
        let text = out
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap_or_else(|| panic!("no link/ether address for {iface} in: {out}"));
        parse_mac(text).unwrap_or_else(|| panic!("bad MAC address {text:?} for {iface}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Devices inside (the veth ends) go with the namespace. Never panic here:
        // this may run while a test is already panicking.
        if let Err(e) = try_ip(&["netns", "del", &self.name]) {
            eprintln!("warning: {e}");
        }
    }
}

/// Two namespaces `a` and `b` joined by a veth pair: `a_if` in `a`, `b_if` in `b`, both up.
#[derive(Debug)]
pub struct VethPair {
    /// The first namespace.
    pub a: Netns,
    /// The second namespace.
    pub b: Netns,
    /// The veth end in `a`.
    pub a_if: String,
    /// The veth end in `b`.
    pub b_if: String,
}

impl VethPair {
    /// Creates both namespaces and the pair (created right inside them, so names
    /// never clash with other tests' devices).
    pub fn new() -> VethPair {
        let a = Netns::new("a");
        let b = Netns::new("b");
        let (a_if, b_if) = ("veth-a".to_string(), "veth-b".to_string());
        a.ip(&[
            "link",
            "add",
            &a_if,
            "type",
            "veth",
            "peer",
            "name",
            &b_if,
            "netns",
            b.name(),
        ]);
        a.up(&a_if);
        b.up(&b_if);
        VethPair { a, b, a_if, b_if }
    }

    /// Sets the MTU of both ends.
    pub fn set_mtu(&self, mtu: u32) {
        self.a.set_mtu(&self.a_if, mtu);
        self.b.set_mtu(&self.b_if, mtu);
    }

    /// The MAC address of the end in `a`.
    pub fn a_mac(&self) -> [u8; 6] {
        self.a.mac(&self.a_if)
    }

    /// The MAC address of the end in `b`.
    pub fn b_mac(&self) -> [u8; 6] {
        self.b.mac(&self.b_if)
    }
}

impl Default for VethPair {
    fn default() -> Self {
        VethPair::new()
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}
