//! Broadcast groups: [`FlowNode::join`] a name, and every member of the
//! group reads what any other member writes.
//!
//! A group is a full mesh of ordinary flows. Its members publish themselves
//! through the names a node already uses (`spec/flow.md`, 5.3): member `k`
//! of the group `NAME` registers the name `NAME#k`, for the lowest `k` below
//! [`MAX_MEMBERS`] that no live member holds. A node joining looks every
//! slot up, allocates a flow to each member it finds (with the QoS it
//! joins with), then registers its own slot; flows that later members
//! allocate to that slot join the group without an accept.
//!
//! A write queues the SDU on the flow to every member (a member that left
//! misses it); a read returns the next SDU from any member. A member whose
//! flow goes down or is deallocated leaves the group.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use redgiant_base::Peer;

use super::{names, FlowInfo, FlowNetError, FlowNode, GroupState, Inner, Result, State, Status};
use crate::endpoint::{FlowError, QueueLens};
use crate::qos::{Layers, QoS};
use crate::wire::{FlowId, MAX_NAME_LEN};

/// Most members a group has (slots `NAME#0` to `NAME#63`).
pub const MAX_MEMBERS: usize = 64;

/// The name of slot `k` of the group `name`.
pub fn slot_name(name: &str, k: usize) -> String {
    format!("{name}#{k}")
}

impl State {
    /// Forgets the members of `gid` whose flows ended.
    fn prune_group(&mut self, now: redgiant_base::Instant, gid: u64) {
        let Some(g) = self.groups.get_mut(&gid) else {
            return;
        };
        let mut gone = Vec::new();
        g.members.retain(|id| {
            let live = self.flows.get(id).is_some_and(|f| {
                matches!(f.status, Status::Up | Status::Allocating) || self.ep.held(*id) > 0
            });
            if !live {
                gone.push(*id);
            }
            live
        });
        for id in gone {
            let _ = self.ep.dealloc(now, id);
            self.flows.remove(&id);
        }
    }
}

impl FlowNode {
    /// Joins the broadcast group `name` with `qos`: finds the members that
    /// are there (waiting up to `timeout` for their flows to come up; those
    /// that do not answer are left out), then publishes this node as a
    /// member. See the [module docs](self).
    pub fn join(&self, name: &str, qos: QoS, timeout: Duration) -> Result<Group> {
        names::check_name(name)?;
        let longest = slot_name(name, MAX_MEMBERS - 1);
        if longest.len() > MAX_NAME_LEN {
            return Err(FlowNetError::BadName(format!(
                "a group name has at most {} bytes (its members add \"#{}\"); {name:?} has {}",
                MAX_NAME_LEN - (longest.len() - name.len()),
                MAX_MEMBERS - 1,
                name.len()
            )));
        }
        let deadline = StdInstant::now() + timeout;
        let mut found: Vec<(String, SocketAddr)> = Vec::new();
        let mut free = None;
        for k in 0..MAX_MEMBERS {
            let slot = slot_name(name, k);
            match self.inner.names.lookup(&slot) {
                Ok(addr) if !self.is_me(addr) => found.push((slot, addr)),
                Ok(_) => {}
                Err(FlowNetError::UnknownName { .. }) => {
                    if free.is_none() {
                        free = Some(k);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let Some(free) = free else {
            return Err(FlowNetError::Io(std::io::Error::other(format!(
                "the group {name:?} has {MAX_MEMBERS} members already, the most it may have"
            ))));
        };
        let layers = Layers::for_qos(&qos);
        let gid = {
            let mut st = self.inner.lock();
            st.check_node()?;
            let gid = st.next_group;
            st.next_group += 1;
            st.groups.insert(
                gid,
                GroupState {
                    slot: slot_name(name, free),
                    members: Vec::new(),
                    next: 0,
                    nonblocking: false,
                    closed: false,
                },
            );
            let now = self.inner.clock.now();
            for (slot, addr) in &found {
                let Ok(id) = st.ep.alloc(now, Peer::Ip(*addr), slot, qos) else {
                    continue;
                };
                st.flows.insert(
                    id,
                    FlowInfo {
                        status: Status::Allocating,
                        nonblocking: false,
                        set: None,
                        name: slot.clone(),
                        peer: *addr,
                    },
                );
                if let Some(g) = st.groups.get_mut(&gid) {
                    g.members.push(id);
                }
            }
            self.inner.wake(&mut st);
            gid
        };
        let group = Group {
            inner: self.inner.clone(),
            id: gid,
            name: name.to_owned(),
            qos,
            layers,
        };
        self.register(&slot_name(name, free))?;
        // Wait for the members found to answer; the silent ones are dropped.
        let mut st = self.inner.lock();
        loop {
            st.check_node()?;
            let waiting = st.groups.get(&gid).is_some_and(|g| {
                g.members
                    .iter()
                    .any(|id| st.flows.get(id).map(|f| f.status) == Some(Status::Allocating))
            });
            if !waiting {
                break;
            }
            let (s, more) = self.inner.wait(st, Some(deadline));
            st = s;
            if !more {
                let now = self.inner.clock.now();
                let late: Vec<FlowId> = st.groups[&gid]
                    .members
                    .iter()
                    .copied()
                    .filter(|id| st.flows.get(id).map(|f| f.status) == Some(Status::Allocating))
                    .collect();
                for id in late {
                    if let Some(f) = st.flows.get_mut(&id) {
                        f.status = Status::Down;
                    }
                    let _ = st.ep.dealloc(now, id);
                }
                break;
            }
        }
        let now = self.inner.clock.now();
        st.prune_group(now, gid);
        drop(st);
        Ok(group)
    }

    /// Whether `addr` is this node's own address.
    fn is_me(&self, addr: SocketAddr) -> bool {
        let local = self.inner.local;
        addr.port() == local.port()
            && (local.ip().is_unspecified() || addr.ip() == local.ip() || addr.ip().is_loopback())
    }
}

/// This node's membership of a broadcast group (see the [module
/// docs](self)). Calls take `&self`; dropping it leaves the group.
#[derive(Debug)]
pub struct Group {
    inner: Arc<Inner>,
    id: u64,
    name: String,
    qos: QoS,
    layers: Layers,
}

impl Group {
    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The QoS of the flows to the other members.
    pub fn qos(&self) -> QoS {
        self.qos
    }

    /// The layers those flows run.
    pub fn layers(&self) -> Layers {
        self.layers
    }

    /// The other members this node has a live flow to.
    pub fn members(&self) -> usize {
        let mut st = self.inner.lock();
        let now = self.inner.clock.now();
        st.prune_group(now, self.id);
        st.groups.get(&self.id).map_or(0, |g| {
            g.members
                .iter()
                .filter(|id| st.flows.get(id).map(|f| f.status) == Some(Status::Up))
                .count()
        })
    }

    /// [`Flow::queue_lens`](super::Flow::queue_lens) summed over the flows to
    /// the other members.
    pub fn queue_lens(&self) -> QueueLens {
        let st = self.inner.lock();
        let mut sum = QueueLens::default();
        for id in st.groups.get(&self.id).map_or(&[][..], |g| &g.members[..]) {
            if let Some(q) = st.ep.queue_lens(*id) {
                sum.rx += q.rx;
                sum.tx += q.tx;
            }
        }
        sum
    }

    /// Makes calls that would wait fail with [`FlowNetError::WouldBlock`].
    pub fn set_nonblocking(&self, nonblocking: bool) {
        let mut st = self.inner.lock();
        if let Some(g) = st.groups.get_mut(&self.id) {
            g.nonblocking = nonblocking;
        }
    }

    /// Whether the group fails instead of waiting.
    pub fn is_nonblocking(&self) -> bool {
        let st = self.inner.lock();
        st.groups.get(&self.id).is_some_and(|g| g.nonblocking)
    }

    fn check(&self, st: &State) -> Result<bool> {
        st.check_node()?;
        match st.groups.get(&self.id) {
            Some(g) if !g.closed => Ok(g.nonblocking),
            _ => Err(FlowNetError::Deallocated),
        }
    }

    /// Queues `sdu` to every other member. A blocking group waits while a
    /// member's send buffer is full; a non-blocking one skips that member,
    /// and fails with [`FlowNetError::WouldBlock`] only if every member was
    /// full. With no other member, the SDU goes nowhere.
    pub fn write(&self, sdu: &[u8]) -> Result<()> {
        self.write_timeout(sdu, None)
    }

    /// As [`write`](Self::write), waiting for room at most `timeout` per
    /// member (None: without limit); a member still full then misses the
    /// SDU, and if every member was, the call fails with
    /// [`FlowNetError::TimedOut`].
    pub fn write_timeout(&self, sdu: &[u8], timeout: Option<Duration>) -> Result<()> {
        let mut st = self.inner.lock();
        let nonblocking = self.check(&st)?;
        let max = st.ep.config().max_sdu;
        if sdu.len() > max {
            return Err(FlowNetError::TooLarge {
                len: sdu.len(),
                max,
            });
        }
        let now = self.inner.clock.now();
        st.prune_group(now, self.id);
        let members: Vec<FlowId> = st.groups[&self.id]
            .members
            .iter()
            .copied()
            .filter(|id| st.flows.get(id).map(|f| f.status) == Some(Status::Up))
            .collect();
        let mut full = 0;
        let mut timed_out = 0;
        for id in &members {
            let deadline = timeout.map(|t| StdInstant::now() + t);
            loop {
                self.check(&st)?;
                if st.flows.get(id).map(|f| f.status) != Some(Status::Up) {
                    break;
                }
                let now = self.inner.clock.now();
                match st.ep.write(now, *id, sdu) {
                    Ok(()) => break,
                    Err(FlowError::WouldBlock) if nonblocking => {
                        full += 1;
                        break;
                    }
                    Err(FlowError::WouldBlock) => {
                        self.inner.wake(&mut st);
                        st.blocked_writers += 1;
                        let (s, more) = self.inner.wait(st, deadline);
                        st = s;
                        st.blocked_writers -= 1;
                        if !more {
                            timed_out += 1;
                            break;
                        }
                    }
                    Err(FlowError::NoSuchFlow) => break,
                    Err(e) => return Err(super::flow_error(e, &self.name)),
                }
            }
        }
        self.inner.wake(&mut st);
        if full > 0 && full == members.len() {
            return Err(FlowNetError::WouldBlock);
        }
        if timed_out > 0 && timed_out == members.len() {
            return Err(FlowNetError::TimedOut {
                what: "room in the send buffers of the group's flows",
                after: timeout.unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// The next SDU from any member, waiting up to `timeout` (None: without
    /// limit; a non-blocking group never waits).
    pub fn read(&self, timeout: Option<Duration>) -> Result<Vec<u8>> {
        self.read_from(timeout).map(|(sdu, _)| sdu)
    }

    /// As [`read`](Self::read), with the address of the member that sent it.
    pub fn read_from(&self, timeout: Option<Duration>) -> Result<(Vec<u8>, SocketAddr)> {
        let deadline = timeout.map(|t| StdInstant::now() + t);
        let mut st = self.inner.lock();
        loop {
            let nonblocking = self.check(&st)?;
            let g = &st.groups[&self.id];
            let n = g.members.len();
            let start = g.next;
            let order: Vec<FlowId> = (0..n).map(|i| g.members[(start + i) % n]).collect();
            for (i, id) in order.into_iter().enumerate() {
                if let Some(sdu) = st.ep.read(id) {
                    let peer = st.flows.get(&id).map(|f| f.peer);
                    if let Some(g) = st.groups.get_mut(&self.id) {
                        g.next = (start + i + 1) % n.max(1);
                    }
                    if let Some(peer) = peer {
                        return Ok((sdu, peer));
                    }
                }
            }
            let now = self.inner.clock.now();
            st.prune_group(now, self.id);
            if nonblocking {
                return Err(FlowNetError::WouldBlock);
            }
            let (s, more) = self.inner.wait(st, deadline);
            st = s;
            if !more {
                return Err(FlowNetError::TimedOut {
                    what: "a message from a member of the group",
                    after: timeout.unwrap_or_default(),
                });
            }
        }
    }

    /// Leaves the group: ends the flows to the other members, withdraws this
    /// node's slot and wakes every thread waiting on the group. Doing it
    /// again does nothing.
    pub fn dealloc(&self) -> Result<()> {
        let mut st = self.inner.lock();
        let Some(g) = st.groups.get_mut(&self.id) else {
            return Ok(());
        };
        if g.closed {
            return Ok(());
        }
        g.closed = true;
        let slot = g.slot.clone();
        let members = std::mem::take(&mut g.members);
        let now = self.inner.clock.now();
        for id in members {
            let _ = st.ep.dealloc(now, id);
            st.flows.remove(&id);
        }
        st.ep.unregister(&slot);
        st.registered.retain(|n| n != &slot);
        self.inner.wake(&mut st);
        drop(st);
        self.inner.cond.notify_all();
        super::withdraw(&self.inner, &slot);
        Ok(())
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = self.dealloc();
        self.inner.lock().groups.remove(&self.id);
    }
}
