//! Flows over real UDP, blocking, with names (feature `net`).
//!
//! A [`FlowNode`] is one UDP socket and one thread running the base
//! [`Driver`] over the sans-IO [`FlowEndpoint`], which application threads
//! share under a mutex. Each [`Driver::step`] runs under the lock: it hands
//! in what arrived, fires due timers, sends what is due and routes the
//! endpoint's events; each [`Driver::wait`] on the socket (no longer than
//! the endpoint's next deadline) runs without it. Application threads wait
//! on a condition variable; a command that gives the driver work while it
//! waits wakes it with an empty datagram sent to the node's own socket from
//! a private one.
//!
//! - [`FlowNode::register`] a name and [`FlowNode::accept`] flows to it;
//! - [`FlowNode::alloc`] a flow to a name (looked up as [`names`] says) or
//!   to `NAME@HOST:PORT`, with a [`QoS`];
//! - [`Flow::write`] and [`Flow::read`] whole messages (SDUs); a flow is
//!   blocking unless [`Flow::set_nonblocking`], when calls that would wait
//!   fail with [`FlowNetError::WouldBlock`];
//! - [`Flow::dealloc`] (or dropping the flow) ends it; a thread blocked on
//!   the flow wakes with [`FlowNetError::Deallocated`];
//! - a [`FlowSet`] gathers the events of many flows (and of allocations
//!   waiting to be accepted) so one thread serves them all.
//!
//! If `RGTP_FLOW_BIND` names a name (as `rgtp flow bind NAME -- COMMAND`
//! sets it), every node built from the environment registers it as it binds.

pub mod directory;
pub mod error;
pub mod join;
pub mod names;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant as StdInstant};

use redgiant_base::driver::{Application, Driver, DriverConfig, Step};
use redgiant_base::endpoint::{DatagramEndpoint, Endpoint};
use redgiant_base::link::Link;
use redgiant_base::{Peer, SystemClock};
use rgtp_capture::Recorder;
use rgtp_link::udp::UdpLink;

/// The node's link: its UDP socket, recorded or not.
type NodeLink = Box<dyn Link + Send>;

/// The environment variable naming a pcap file [`FlowNode::bind`] records into.
pub const RECORD_ENV: &str = "RGTP_FLOW_RECORD";

pub use self::error::FlowNetError;
pub use self::names::Names;
use crate::endpoint::{Config, Event, FlowEndpoint, FlowError, QueueLens};
use crate::qos::{Layers, QoS};
use crate::seal::FlowKey;
use crate::wire::{FlowId, Reason};

/// Results of this module.
pub type Result<T> = std::result::Result<T, FlowNetError>;

/// Allocations waiting for [`FlowNode::accept`] beyond which new ones are refused.
pub const MAX_PENDING: usize = 1024;

/// Most transmits sent in one driver step before reading the socket again.
const TRANSMIT_BUDGET: usize = 256;

/// Longest sleep of the driver when nothing is due (it wakes for commands).
const IDLE_WAIT: Duration = Duration::from_secs(10);

/// How a [`FlowNode`] is set up.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The endpoint's limits and timers.
    pub endpoint: Config,
    /// Where names are looked up and registered.
    pub names: Names,
}

impl NodeConfig {
    /// Names from the environment ([`Names::from_env`]), the flow key from
    /// `RGTP_FLOW_KEY` or `RGTP_FLOW_KEY_FILE` ([`FlowKey::from_env`]) and
    /// the default limits, with room for 4096 flows.
    pub fn from_env() -> Result<NodeConfig> {
        Ok(NodeConfig {
            endpoint: Config {
                max_flows: 4096,
                key: FlowKey::from_env().map_err(|e| FlowNetError::Io(std::io::Error::other(e)))?,
                ..Config::default()
            },
            names: Names::from_env()?,
        })
    }
}

/// What happened to a flow of a [`FlowSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Messages wait: read until [`FlowNetError::WouldBlock`] (non-blocking
    /// flow) or until a read would wait.
    Packet,
    /// A peer asks for a flow to a registered name (the event's flow is the
    /// new one): [`FlowNode::accept`] gives it.
    Alloc,
    /// A flow allocated without waiting came up.
    Up,
    /// A flow allocated without waiting was refused.
    Refused,
    /// The peer stayed silent past the QoS timeout; the flow is down.
    Down,
    /// The peer deallocated the flow.
    Dealloc,
}

/// One event of a [`FlowSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowEvent {
    /// The flow it concerns.
    pub flow: FlowId,
    /// What happened.
    pub kind: EventKind,
}

/// Where a flow is, as the runtime sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Allocating,
    Pending,
    Up,
    Refused(Reason),
    Down,
    Closed,
    Deallocated,
}

#[derive(Debug)]
struct FlowInfo {
    status: Status,
    nonblocking: bool,
    set: Option<u64>,
    name: String,
    peer: SocketAddr,
}

#[derive(Debug, Default)]
struct SetQueue {
    members: HashSet<FlowId>,
    events: VecDeque<FlowEvent>,
    allocs: bool,
}

#[derive(Debug)]
struct State {
    ep: FlowEndpoint,
    flows: HashMap<FlowId, FlowInfo>,
    pending: VecDeque<FlowId>,
    registered: Vec<String>,
    sets: HashMap<u64, SetQueue>,
    next_set: u64,
    groups: HashMap<u64, GroupState>,
    next_group: u64,
    /// The driver waits on the socket (a command must wake it).
    sleeping: bool,
    /// A wake-up datagram is on its way.
    woken: bool,
    stop: bool,
    failed: Option<String>,
    blocked_writers: usize,
    /// The address of the node's waker, whose datagrams only wake the driver.
    waker: Option<Peer>,
    /// Datagrams from peers handed to the endpoint since the driver last looked.
    heard: usize,
    /// Wake-up datagrams sent.
    wakes: u64,
}

impl State {
    fn push_set_event(&mut self, flow: FlowId, kind: EventKind) {
        let Some(set) = self.flows.get(&flow).and_then(|f| f.set) else {
            return;
        };
        if let Some(q) = self.sets.get_mut(&set) {
            q.events.push_back(FlowEvent { flow, kind });
        }
    }

    /// Routes one endpoint event; true if a waiter may care.
    fn on_event(&mut self, now: redgiant_base::Instant, ev: Event) {
        match ev {
            Event::Alloc {
                flow, peer, name, ..
            } => {
                let Peer::Ip(peer) = peer else {
                    let _ = self.ep.refuse(now, flow);
                    return;
                };
                if self.join_member(now, flow, peer, &name) {
                    return;
                }
                if self.pending.len() >= MAX_PENDING {
                    let _ = self.ep.refuse(now, flow);
                    return;
                }
                self.flows.insert(
                    flow,
                    FlowInfo {
                        status: Status::Pending,
                        nonblocking: false,
                        set: None,
                        name,
                        peer,
                    },
                );
                self.pending.push_back(flow);
                for q in self.sets.values_mut().filter(|q| q.allocs) {
                    q.events.push_back(FlowEvent {
                        flow,
                        kind: EventKind::Alloc,
                    });
                }
            }
            Event::Up(flow) => self.set_status(flow, Status::Up, EventKind::Up),
            Event::Refused { flow, reason } => {
                self.set_status(flow, Status::Refused(reason), EventKind::Refused)
            }
            Event::Readable(flow) => self.push_set_event(flow, EventKind::Packet),
            Event::Drained(_) => {}
            Event::Down(flow) => {
                if !self.forget_pending(flow) {
                    self.set_status(flow, Status::Down, EventKind::Down)
                }
            }
            Event::Closed(flow) => {
                if !self.forget_pending(flow) {
                    self.set_status(flow, Status::Closed, EventKind::Dealloc)
                }
            }
        }
    }

    /// Forgets `flow` if it still waited to be accepted (no handle has it).
    fn forget_pending(&mut self, flow: FlowId) -> bool {
        let pending = self
            .flows
            .get(&flow)
            .is_some_and(|f| f.status == Status::Pending);
        if pending {
            self.pending.retain(|&f| f != flow);
            self.flows.remove(&flow);
        }
        pending
    }

    fn set_status(&mut self, flow: FlowId, status: Status, kind: EventKind) {
        let Some(info) = self.flows.get_mut(&flow) else {
            return;
        };
        if info.status == Status::Deallocated {
            return;
        }
        info.status = status;
        self.push_set_event(flow, kind);
    }

    fn check_node(&self) -> Result<()> {
        match &self.failed {
            Some(why) => Err(FlowNetError::NodeStopped(why.clone())),
            None if self.stop => Err(FlowNetError::NodeStopped("the node was dropped".into())),
            None => Ok(()),
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    cond: Condvar,
    clock: SystemClock,
    local: SocketAddr,
    waker: UdpSocket,
    wake_target: SocketAddr,
    names: Names,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the driver look at the endpoint again soon.
    fn wake(&self, st: &mut State) {
        if st.sleeping && !st.woken {
            st.woken = true;
            st.wakes += 1;
            let _ = self.waker.send_to(&[], self.wake_target);
        }
    }

    /// Waits on the condition variable until `deadline` (None: no limit);
    /// false once the deadline passed.
    fn wait<'a>(
        &self,
        st: MutexGuard<'a, State>,
        deadline: Option<StdInstant>,
    ) -> (MutexGuard<'a, State>, bool) {
        match deadline {
            None => (self.cond.wait(st).unwrap_or_else(|p| p.into_inner()), true),
            Some(d) => {
                let left = d.saturating_duration_since(StdInstant::now());
                if left.is_zero() {
                    return (st, false);
                }
                let (st, _) = self
                    .cond
                    .wait_timeout(st, left)
                    .unwrap_or_else(|p| p.into_inner());
                (st, true)
            }
        }
    }
}

/// One UDP socket carrying flows, with a driver thread. See the
/// [module docs](self).
#[derive(Debug)]
pub struct FlowNode {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl FlowNode {
    /// Binds `addr` with [`NodeConfig::from_env`] (and registers
    /// `RGTP_FLOW_BIND` if set).
    pub fn bind(addr: SocketAddr) -> Result<FlowNode> {
        let config = NodeConfig::from_env()?;
        match std::env::var_os(RECORD_ENV) {
            Some(path) if !path.is_empty() => {
                FlowNode::bind_recording(addr, config, Path::new(&path))
            }
            _ => FlowNode::bind_with(addr, config),
        }
    }

    /// Binds `addr` with `config`; registers `config.names.bind` if set.
    pub fn bind_with(addr: SocketAddr, config: NodeConfig) -> Result<FlowNode> {
        FlowNode::open(addr, config, None)
    }

    /// [`FlowNode::bind_with`], recording every datagram the node sends and
    /// receives into a new pcap file at `pcap` (the stack's capture recorder:
    /// UDP in Ethernet/IP frames, wall-clock timestamps; `rgtp inspect` and
    /// Wireshark read it). [`FlowNode::bind`] does this when
    /// `RGTP_FLOW_RECORD` names a file.
    pub fn bind_recording(addr: SocketAddr, config: NodeConfig, pcap: &Path) -> Result<FlowNode> {
        FlowNode::open(addr, config, Some(pcap))
    }

    fn open(addr: SocketAddr, config: NodeConfig, record: Option<&Path>) -> Result<FlowNode> {
        let ep = FlowEndpoint::seeded(config.endpoint, crate::seal::random_seed()?)
            .map_err(|e| FlowNetError::Io(std::io::Error::other(e.to_string())))?;
        let udp = UdpLink::bind(addr)?;
        let local = udp.local_addr();
        let recv_buffer = udp.recommended_recv_buffer_len();
        let link: NodeLink = match record {
            Some(path) => Box::new(Recorder::create(udp, path)?),
            None => Box::new(udp),
        };
        let wake_target = wake_target(local);
        let waker = UdpSocket::bind(SocketAddr::new(wake_target.ip(), 0))?;
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                ep,
                flows: HashMap::new(),
                pending: VecDeque::new(),
                registered: Vec::new(),
                sets: HashMap::new(),
                next_set: 1,
                groups: HashMap::new(),
                next_group: 1,
                sleeping: false,
                woken: false,
                stop: false,
                failed: None,
                blocked_writers: 0,
                waker: None,
                heard: 0,
                wakes: 0,
            }),
            cond: Condvar::new(),
            clock: SystemClock::new(),
            local,
            wake_target,
            names: config.names,
            waker,
        });
        inner.lock().waker = Some(Peer::Ip(inner.waker.local_addr()?));
        let refresher = match inner.names.server {
            Some(s) => Some(directory::Refresher::new(s)?),
            None => None,
        };
        let config = DriverConfig {
            max_wait: IDLE_WAIT,
            transmit_budget: TRANSMIT_BUDGET,
            recv_buffer,
            ..DriverConfig::default()
        };
        let driver = Driver::with_clock(link, inner.clock, config);
        let shared = inner.clone();
        let thread = std::thread::Builder::new()
            .name(format!("flow-node-{}", local.port()))
            .spawn(move || drive(&shared, driver, refresher))?;
        let node = FlowNode {
            inner,
            thread: Some(thread),
        };
        if let Some(name) = node.inner.names.bind.clone() {
            node.register(&name)?;
        }
        Ok(node)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// Where this node looks names up.
    pub fn names(&self) -> &Names {
        &self.inner.names
    }

    /// Accepts allocations for `name` from now on, and publishes it: a file
    /// in the file directory, and a registration with the directory server
    /// when one is set (refreshed until the node ends).
    pub fn register(&self, name: &str) -> Result<()> {
        names::check_name(name)?;
        if let Some(dir) = &self.inner.names.dir {
            names::write_entry(dir, name, names::reachable(self.inner.local))?;
        }
        if let Some(server) = self.inner.names.server {
            directory::register(server, name, self.inner.local, self.inner.names.ttl())?;
        }
        let mut st = self.inner.lock();
        st.ep
            .register(name)
            .map_err(|_| FlowNetError::BadName(format!("{name:?} cannot be registered")))?;
        if !st.registered.iter().any(|n| n == name) {
            st.registered.push(name.to_owned());
        }
        self.inner.wake(&mut st);
        Ok(())
    }

    /// Stops accepting allocations for `name` and withdraws it.
    pub fn unregister(&self, name: &str) {
        let mut st = self.inner.lock();
        st.ep.unregister(name);
        st.registered.retain(|n| n != name);
        drop(st);
        withdraw(&self.inner, name);
    }

    /// Where `name` is served (see [`names`]).
    pub fn resolve(&self, name: &str) -> Result<SocketAddr> {
        self.inner.names.lookup(name)
    }

    /// The next flow a peer allocated to a registered name, accepted;
    /// waits up to `timeout` (None: without limit).
    pub fn accept(&self, timeout: Option<Duration>) -> Result<Flow> {
        let deadline = timeout.map(|t| StdInstant::now() + t);
        let mut st = self.inner.lock();
        loop {
            st.check_node()?;
            while let Some(id) = st.pending.pop_front() {
                let now = self.inner.clock.now();
                if st.ep.accept(now, id).is_err() {
                    st.flows.remove(&id);
                    continue;
                }
                if let Some(info) = st.flows.get_mut(&id) {
                    info.status = Status::Up;
                }
                self.inner.wake(&mut st);
                return Ok(self.handle(&st, id));
            }
            let (s, more) = self.inner.wait(st, deadline);
            st = s;
            if !more {
                return Err(FlowNetError::TimedOut {
                    what: "a peer to allocate a flow",
                    after: timeout.unwrap_or_default(),
                });
            }
        }
    }

    /// Allocates a flow to `target` with `qos`, waiting up to `timeout` for
    /// the peer's answer. `target` is a name, looked up as [`names`] says,
    /// or `NAME@HOST:PORT`.
    pub fn alloc(&self, target: &str, qos: QoS, timeout: Duration) -> Result<Flow> {
        let (name, addr) = match target.split_once('@') {
            Some((name, hostport)) => {
                names::check_name(name)?;
                let addr = names::resolve(hostport).map_err(|e| {
                    FlowNetError::BadName(format!(
                        "{hostport:?} in {target:?} does not resolve: {e}"
                    ))
                })?;
                (name.to_owned(), addr)
            }
            None => (target.to_owned(), self.inner.names.lookup(target)?),
        };
        let deadline = StdInstant::now() + timeout;
        let mut st = self.inner.lock();
        st.check_node()?;
        let now = self.inner.clock.now();
        let id = st
            .ep
            .alloc(now, Peer::Ip(addr), &name, qos)
            .map_err(|e| flow_error(e, &name))?;
        st.flows.insert(
            id,
            FlowInfo {
                status: Status::Allocating,
                nonblocking: false,
                set: None,
                name: name.clone(),
                peer: addr,
            },
        );
        self.inner.wake(&mut st);
        loop {
            let status = st.flows.get(&id).map(|f| f.status);
            match status {
                Some(Status::Up) => return Ok(self.handle(&st, id)),
                Some(Status::Refused(reason)) => {
                    st.flows.remove(&id);
                    return Err(FlowNetError::Refused {
                        name,
                        peer: addr,
                        reason,
                    });
                }
                Some(Status::Allocating) => {}
                _ => {
                    st.flows.remove(&id);
                    return Err(FlowNetError::TimedOut {
                        what: "the peer to answer the allocation",
                        after: timeout,
                    });
                }
            }
            if let Err(e) = st.check_node() {
                st.flows.remove(&id);
                return Err(e);
            }
            let (s, more) = self.inner.wait(st, Some(deadline));
            st = s;
            if !more && st.flows.get(&id).map(|f| f.status) == Some(Status::Allocating) {
                let now = self.inner.clock.now();
                let _ = st.ep.dealloc(now, id);
                st.flows.remove(&id);
                return Err(FlowNetError::TimedOut {
                    what: "the peer to answer the allocation",
                    after: timeout,
                });
            }
        }
    }

    /// A new, empty flow set on this node.
    pub fn flow_set(&self) -> FlowSet {
        let mut st = self.inner.lock();
        let id = st.next_set;
        st.next_set += 1;
        st.sets.insert(id, SetQueue::default());
        FlowSet {
            inner: self.inner.clone(),
            id,
        }
    }

    fn handle(&self, st: &State, id: FlowId) -> Flow {
        let info = &st.flows[&id];
        Flow {
            inner: self.inner.clone(),
            id,
            name: info.name.clone(),
            peer: info.peer,
            qos: st.ep.qos(id).unwrap_or_default(),
            layers: st.ep.layers(id).unwrap_or_default(),
        }
    }
}

impl Drop for FlowNode {
    fn drop(&mut self) {
        let mut st = self.inner.lock();
        st.stop = true;
        self.inner.wake(&mut st);
        let names = std::mem::take(&mut st.registered);
        drop(st);
        self.inner.cond.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for name in names {
            withdraw(&self.inner, &name);
        }
    }
}

/// Removes `name`'s file and asks the directory server to forget it.
fn withdraw(inner: &Inner, name: &str) {
    if let Some(dir) = &inner.names.dir {
        names::remove_entry(dir, name, names::reachable(inner.local));
    }
    if let Some(server) = inner.names.server {
        let _ = directory::unregister(server, name, inner.local);
    }
}

/// The address the waker sends to: the node's, loopback if unspecified.
fn wake_target(local: SocketAddr) -> SocketAddr {
    let ip: IpAddr = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V6(ip) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

fn flow_error(e: FlowError, name: &str) -> FlowNetError {
    match e {
        FlowError::TooLarge { len, max } => FlowNetError::TooLarge { len, max },
        FlowError::WouldBlock => FlowNetError::WouldBlock,
        FlowError::BadName => {
            FlowNetError::BadName(format!("{name:?}: a flow name has 1 to 255 bytes"))
        }
        FlowError::Unsupported(layer) => FlowNetError::Unsupported(layer),
        FlowError::NoSuchFlow => FlowNetError::NoSuchFlow,
        FlowError::TooManyFlows => FlowNetError::Io(std::io::Error::other(
            "this node holds as many flows as its Config::max_flows allows; deallocate some",
        )),
        other => FlowNetError::Io(std::io::Error::other(other.to_string())),
    }
}

/// The node's state as the driver sees it: the flow endpoint, with the
/// wake-up datagrams of the node's own waker dropped on the way in.
impl Endpoint for State {
    type Event = Event;
    type Delivery<'d> = core::convert::Infallible;

    fn handle_timeout(&mut self, now: redgiant_base::Instant) {
        self.ep.handle_timeout(now);
    }

    fn poll_transmit(
        &mut self,
        now: redgiant_base::Instant,
        buf: &mut Vec<u8>,
    ) -> Option<redgiant_base::Transmit> {
        self.ep.poll_transmit(now, buf)
    }

    fn poll_timeout(&self) -> Option<redgiant_base::Instant> {
        self.ep.poll_timeout()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.ep.poll_event()
    }
}

impl DatagramEndpoint for State {
    fn handle_datagram<'d>(
        &mut self,
        now: redgiant_base::Instant,
        from: Peer,
        data: &'d mut [u8],
    ) -> Option<Self::Delivery<'d>> {
        if Some(from) == self.waker {
            return None;
        }
        self.heard += 1;
        self.ep.handle_datagram(now, from, data)
    }
}

/// Routes the endpoint's events into the node's state, counting them.
#[derive(Debug, Default)]
struct Router {
    events: usize,
}

impl Application<State> for Router {
    type Output = std::convert::Infallible;
    type Error = std::io::Error;

    fn deliver(&mut self, d: std::convert::Infallible) -> std::io::Result<()> {
        match d {}
    }

    fn event(
        &mut self,
        st: &mut State,
        ev: Event,
    ) -> std::io::Result<Option<std::convert::Infallible>> {
        let now = st.ep.now();
        st.on_event(now, ev);
        self.events += 1;
        Ok(None)
    }
}

/// The driver thread: the base driver's steps under the state's lock, its
/// waits on the socket outside it. See the module docs.
fn drive(inner: &Inner, mut driver: Driver<NodeLink>, refresher: Option<directory::Refresher>) {
    let ttl = inner.names.ttl();
    let refresh_every = ttl / 3;
    let mut next_refresh = StdInstant::now() + refresh_every;
    loop {
        let wait = {
            let mut st = inner.lock();
            st.sleeping = false;
            if st.stop {
                // Tell the peers, then go.
                let now = inner.clock.now();
                let ids: Vec<FlowId> = st.flows.keys().copied().collect();
                for id in ids {
                    let _ = st.ep.dealloc(now, id);
                }
            }
            let mut max_wait = IDLE_WAIT;
            if refresher.is_some() {
                max_wait = max_wait.min(next_refresh.saturating_duration_since(StdInstant::now()));
            }
            let mut router = Router::default();
            let wait = match driver.step(&mut *st, &mut router, max_wait) {
                Ok(Step::Wait(wait)) => wait,
                Ok(Step::Done(never)) => match never {},
                Err(e) => {
                    st.failed = Some(format!("sending on {}: {e}", inner.local));
                    Duration::ZERO
                }
            };
            // Only a peer's datagram (an acknowledgement) frees room for a
            // blocked writer: the waker's own must not wake it, or writer
            // and driver would wake each other without end.
            let heard = std::mem::take(&mut st.heard);
            if router.events > 0 || (heard > 0 && st.blocked_writers > 0) || st.failed.is_some() {
                inner.cond.notify_all();
            }
            if st.stop || st.failed.is_some() {
                inner.cond.notify_all();
                return;
            }
            if let Some(r) = &refresher {
                if StdInstant::now() >= next_refresh {
                    r.refresh(&st.registered, inner.local, ttl);
                    next_refresh = StdInstant::now() + refresh_every;
                }
            }
            st.sleeping = true;
            st.woken = false;
            wait
        };
        match driver.wait(wait) {
            Ok(_) => {}
            Err(e) => {
                let mut st = inner.lock();
                st.failed = Some(format!("receiving on {}: {e}", inner.local));
                inner.cond.notify_all();
                return;
            }
        }
    }
}

/// One flow of a [`FlowNode`]. Calls take `&self`: one thread may read
/// while another writes or deallocates. Dropping it deallocates it.
#[derive(Debug)]
pub struct Flow {
    inner: Arc<Inner>,
    id: FlowId,
    name: String,
    peer: SocketAddr,
    qos: QoS,
    layers: Layers,
}

impl Flow {
    /// The flow's id on this node (as [`FlowEvent::flow`] names it).
    pub fn id(&self) -> FlowId {
        self.id
    }

    /// The name the flow was allocated to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The QoS the flow was allocated with.
    pub fn qos(&self) -> QoS {
        self.qos
    }

    /// The layers the flow runs.
    pub fn layers(&self) -> Layers {
        self.layers
    }

    /// Makes calls that would wait fail with [`FlowNetError::WouldBlock`]
    /// instead (or wait again, with `false`).
    pub fn set_nonblocking(&self, nonblocking: bool) {
        let mut st = self.inner.lock();
        if let Some(f) = st.flows.get_mut(&self.id) {
            f.nonblocking = nonblocking;
        }
    }

    /// Whether the flow ended: deallocated here, by the peer, or down.
    pub fn is_ended(&self) -> bool {
        let st = self.inner.lock();
        st.flows.get(&self.id).map_or(true, |f| {
            !matches!(f.status, Status::Up | Status::Allocating | Status::Pending)
        })
    }

    /// SDUs waiting to be read and fragments not yet sent (or acknowledged);
    /// zero for both once the flow is gone.
    pub fn queue_lens(&self) -> QueueLens {
        let st = self.inner.lock();
        st.ep.queue_lens(self.id).unwrap_or_default()
    }

    /// Whether the flow fails instead of waiting.
    pub fn is_nonblocking(&self) -> bool {
        let st = self.inner.lock();
        st.flows.get(&self.id).is_some_and(|f| f.nonblocking)
    }

    /// Checks the flow can still carry messages; returns whether it is
    /// non-blocking.
    fn check(&self, st: &State) -> Result<bool> {
        st.check_node()?;
        let info = st.flows.get(&self.id).ok_or(FlowNetError::Deallocated)?;
        match info.status {
            Status::Deallocated => Err(FlowNetError::Deallocated),
            Status::Closed | Status::Down | Status::Refused(_) => Err(FlowNetError::PeerGone),
            Status::Up | Status::Allocating | Status::Pending => Ok(info.nonblocking),
        }
    }

    /// Queues `sdu` as one message. Waits while the send buffer is full
    /// (non-blocking: [`FlowNetError::WouldBlock`]).
    pub fn write(&self, sdu: &[u8]) -> Result<()> {
        self.write_timeout(sdu, None)
    }

    /// As [`write`](Self::write), waiting for room at most `timeout` (None:
    /// without limit), then failing with [`FlowNetError::TimedOut`].
    pub fn write_timeout(&self, sdu: &[u8], timeout: Option<Duration>) -> Result<()> {
        let deadline = timeout.map(|t| StdInstant::now() + t);
        let mut st = self.inner.lock();
        loop {
            let nonblocking = self.check(&st)?;
            let now = self.inner.clock.now();
            match st.ep.write(now, self.id, sdu) {
                Ok(()) => {
                    self.inner.wake(&mut st);
                    return Ok(());
                }
                Err(FlowError::WouldBlock) if !nonblocking => {
                    // No new work for the driver: what fills the buffer is
                    // already due or waits for its retransmission timer.
                    st.blocked_writers += 1;
                    let (s, more) = self.inner.wait(st, deadline);
                    st = s;
                    st.blocked_writers -= 1;
                    if !more {
                        return Err(FlowNetError::TimedOut {
                            what: "room in the flow's send buffer",
                            after: timeout.unwrap_or_default(),
                        });
                    }
                }
                Err(e) => return Err(flow_error(e, &self.name)),
            }
        }
    }

    /// The next message, waiting up to `timeout` (None: without limit;
    /// non-blocking flows never wait). Messages that arrived before the peer
    /// left are still handed out; after them, [`FlowNetError::PeerGone`].
    pub fn read(&self, timeout: Option<Duration>) -> Result<Vec<u8>> {
        let deadline = timeout.map(|t| StdInstant::now() + t);
        let mut st = self.inner.lock();
        loop {
            if let Some(sdu) = st.ep.read(self.id) {
                return Ok(sdu);
            }
            if self.check(&st)? {
                return Err(FlowNetError::WouldBlock);
            }
            let (s, more) = self.inner.wait(st, deadline);
            st = s;
            if !more {
                return Err(FlowNetError::TimedOut {
                    what: "a message on the flow",
                    after: timeout.unwrap_or_default(),
                });
            }
        }
    }

    /// Waits until everything written was sent (and, on a flow with
    /// retransmission, acknowledged), up to `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        let deadline = StdInstant::now() + timeout;
        let mut st = self.inner.lock();
        loop {
            self.check(&st)?;
            if st.ep.unsent(self.id) == 0 {
                return Ok(());
            }
            st.blocked_writers += 1;
            let (s, more) = self.inner.wait(st, Some(deadline));
            st = s;
            st.blocked_writers -= 1;
            if !more {
                return Err(FlowNetError::TimedOut {
                    what: "the peer to acknowledge what was written",
                    after: timeout,
                });
            }
        }
    }

    /// Ends the flow: tells the peer and wakes every thread waiting on it.
    /// Doing it again does nothing.
    pub fn dealloc(&self) -> Result<()> {
        let mut st = self.inner.lock();
        let Some(info) = st.flows.get_mut(&self.id) else {
            return Ok(());
        };
        if info.status == Status::Deallocated {
            return Ok(());
        }
        info.status = Status::Deallocated;
        let now = self.inner.clock.now();
        let _ = st.ep.dealloc(now, self.id);
        self.inner.wake(&mut st);
        drop(st);
        self.inner.cond.notify_all();
        Ok(())
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        let _ = self.dealloc();
        let mut st = self.inner.lock();
        if let Some(info) = st.flows.remove(&self.id) {
            if let Some(q) = info.set.and_then(|s| st.sets.get_mut(&s)) {
                q.members.remove(&self.id);
            }
        }
    }
}

/// Flows whose events one thread waits for together.
#[derive(Debug)]
pub struct FlowSet {
    inner: Arc<Inner>,
    id: u64,
}

impl FlowSet {
    /// Adds `flow` (taking it from any other set). Messages or an ending
    /// that came before are reported at the next [`wait`](Self::wait).
    pub fn add(&self, flow: &Flow) {
        let mut st = self.inner.lock();
        let Some(info) = st.flows.get_mut(&flow.id) else {
            return;
        };
        let old = info.set.replace(self.id);
        let status = info.status;
        if let Some(q) = old.and_then(|s| st.sets.get_mut(&s)) {
            q.members.remove(&flow.id);
        }
        let held = st.ep.held(flow.id) > 0;
        let Some(q) = st.sets.get_mut(&self.id) else {
            return;
        };
        q.members.insert(flow.id);
        if held {
            q.events.push_back(FlowEvent {
                flow: flow.id,
                kind: EventKind::Packet,
            });
        }
        let ended = match status {
            Status::Closed => Some(EventKind::Dealloc),
            Status::Down => Some(EventKind::Down),
            _ => None,
        };
        if let Some(kind) = ended {
            q.events.push_back(FlowEvent {
                flow: flow.id,
                kind,
            });
        }
    }

    /// Removes `flow`; its pending events stay.
    pub fn remove(&self, flow: &Flow) {
        let mut st = self.inner.lock();
        if let Some(info) = st.flows.get_mut(&flow.id) {
            if info.set == Some(self.id) {
                info.set = None;
            }
        }
        if let Some(q) = st.sets.get_mut(&self.id) {
            q.members.remove(&flow.id);
        }
    }

    /// Flows in the set.
    pub fn len(&self) -> usize {
        let st = self.inner.lock();
        st.sets.get(&self.id).map_or(0, |q| q.members.len())
    }

    /// True if no flow is in the set.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reports allocations to the node's registered names
    /// ([`EventKind::Alloc`]) too, or stops reporting them.
    pub fn watch_allocs(&self, on: bool) {
        let mut st = self.inner.lock();
        let pending: Vec<FlowId> = st.pending.iter().copied().collect();
        if let Some(q) = st.sets.get_mut(&self.id) {
            if on && !q.allocs {
                q.events.extend(pending.into_iter().map(|flow| FlowEvent {
                    flow,
                    kind: EventKind::Alloc,
                }));
            }
            q.allocs = on;
        }
    }

    /// Every event that happened since the last call, waiting up to
    /// `timeout` (None: without limit) for at least one. Empty when the
    /// time ran out.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Vec<FlowEvent>> {
        let deadline = timeout.map(|t| StdInstant::now() + t);
        let mut st = self.inner.lock();
        loop {
            st.check_node()?;
            if let Some(q) = st.sets.get_mut(&self.id) {
                if !q.events.is_empty() {
                    return Ok(q.events.drain(..).collect());
                }
            }
            let (s, more) = self.inner.wait(st, deadline);
            st = s;
            if !more {
                return Ok(Vec::new());
            }
        }
    }
}

impl Drop for FlowSet {
    fn drop(&mut self) {
        let mut st = self.inner.lock();
        if let Some(q) = st.sets.remove(&self.id) {
            for id in q.members {
                if let Some(info) = st.flows.get_mut(&id) {
                    info.set = None;
                }
            }
        }
    }
}

/// The runtime's view of a group this node joined.
#[derive(Debug)]
struct GroupState {
    /// The slot name this node registered (`NAME#k`).
    slot: String,
    /// Flows to the other members.
    members: Vec<FlowId>,
    /// Where the next read starts looking, so no member starves the others.
    next: usize,
    nonblocking: bool,
    closed: bool,
}

impl State {
    /// Takes an allocation to one of this node's group slots into its group;
    /// false if `name` is no slot of a group here.
    fn join_member(
        &mut self,
        now: redgiant_base::Instant,
        flow: FlowId,
        peer: SocketAddr,
        name: &str,
    ) -> bool {
        let Some((&gid, _)) = self
            .groups
            .iter()
            .find(|(_, g)| !g.closed && g.slot == name)
        else {
            return false;
        };
        if self.ep.accept(now, flow).is_err() {
            return true;
        }
        self.flows.insert(
            flow,
            FlowInfo {
                status: Status::Up,
                nonblocking: false,
                set: None,
                name: name.to_owned(),
                peer,
            },
        );
        if let Some(g) = self.groups.get_mut(&gid) {
            g.members.push(flow);
        }
        true
    }
}

#[cfg(test)]
mod tests;
