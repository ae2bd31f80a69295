//! The gtUDP endpoint: a sans-IO [`DatagramEndpoint`] that both sends and
//! receives.
//!
//! # Exchanges
//!
//! Sending a payload opens an exchange under a fresh identity: the DATA is
//! repeated until a RECV with that identity comes back from the peer, which
//! is answered with an ACK and reported as [`Event::Confirmed`]. A DATA
//! received is handed out once (the [`Datagram`] returned by
//! `handle_datagram`, followed by [`Event::Received`]) and answered with
//! RECV, repeated until the peer's ACK arrives. A RECV for no exchange of
//! ours is answered with an ACK all the same (the peer may have missed our
//! first one), as the reference implementation does.
//!
//! # Duplicate rule
//!
//! Every DATA received is remembered under its sender and identity. A DATA
//! whose (peer, identity) is remembered is never handed out again, before or
//! after the ACK; while the ACK has not come it is answered with a RECV at
//! once. An entry is held only while its sender may still send a copy:
//!
//! - until its ACK arrives, [`Config::dedup_ttl`] after the last copy of its
//!   DATA (by default the longest a sender with this configuration goes on
//!   repeating one DATA, plus [`Config::dedup_linger`]: see
//!   [`Config::repeat_span`]), and at least a linger past the next
//!   repetition of its RECV;
//! - once the ACK arrived, [`Config::dedup_linger`] after the later of the
//!   ACK and the last copy. A sender sends the ACK only after it stopped
//!   repeating, so only copies still in the network can follow it, and the
//!   linger covers their delay.
//!
//! The table holds at most [`Config::dedup_capacity`] entries: when it is
//! full of live entries, a new DATA is dropped unanswered (counted in
//! [`Stats::refused_full`]) and its sender will repeat it later, so a full
//! table costs delay, never a second delivery. Confirmed exchanges cost an
//! entry for the linger only, so the defaults admit some 500 000 new
//! datagrams per second from peers that answer with ACKs.
//!
//! Keys are hashed with the standard library's keyed SipHash rather than a
//! cheap fixed mix: identities are chosen by the peer, and a fixed hash
//! would let one peer aim every identity at one probe sequence. The key
//! only spreads entries; no outcome depends on it.
//!
//! The sender side keeps each identity it used towards a peer as long as
//! that peer may remember it (the linger after a RECV for it, which every
//! RECV for it renews; `dedup_ttl` after a failure), and never reuses one
//! of them, so a receiver with the same setting never mistakes a new
//! payload for an old one.
//!
//! # Authenticated profile
//!
//! With [`Config::auth`] set, every datagram is sealed under the shared key
//! ([`crate::auth`], `spec/gtudp.md` §8). A datagram whose tag fails, whose
//! counter was seen or is older than the replay window, or whose new session
//! finds the session table full is dropped unanswered and counted
//! ([`Stats::auth_failed`], [`Stats::replayed`], [`Stats::sessions_full`]),
//! so a forged RECV confirms nothing and a forged ACK cancels nothing.
//!
//! # Timers
//!
//! [`Timers::Reference`] repeats after a fixed 0.5 s. [`Timers::Rtt`] keeps
//! an RFC 6298 estimate per peer (smoothed RTT and variance, sampled from a
//! RECV answering a DATA sent once, or an ACK answering a RECV sent once:
//! Karn's rule) and doubles the timeout with each repetition. Either way a
//! DATA is sent at most [`Config::max_data_sends`] times (unless the exchange
//! has a deadline, which then bounds it instead) and a RECV at most
//! [`Config::max_recv_sends`] times, not counting RECVs answering duplicates.
//!
//! # Calling order
//!
//! As every endpoint (see [`redgiant_base::endpoint`]): after any
//! `handle_*` call or command, drain [`Endpoint::poll_transmit`], then
//! [`Endpoint::poll_event`], then read [`Endpoint::poll_timeout`]. An early
//! or extra `handle_timeout` does nothing. The endpoint reads no clock and
//! draws no randomness: identities come from the [`IdSource`] it is given.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use redgiant_base::endpoint::{DatagramEndpoint, Endpoint};
use redgiant_base::{Instant, Peer, Transmit};

use crate::auth::{AuthKey, Replay, SessionCipher, OVERHEAD, PREFIX_LEN, TAG_LEN};
use crate::id::{IdSource, SeededIds};
use crate::table::Expiring;
use crate::wire::{Error as WireError, Identity, Kind, Packet, Profile, Repr};

/// Largest UDP payload over IPv4.
const MAX_UDP_PAYLOAD: usize = 65_507;
/// Most peers with an RTT estimate kept at once.
const MAX_RTT_PEERS: usize = 4096;
/// Most identities drawn for one DATA before giving up.
const MAX_ID_DRAWS: u32 = 64;
/// Most datagrams in one transmit.
const MAX_BATCH_SEGMENTS: usize = 64;
/// Most bytes in one transmit (a UDP GSO send's limit).
const MAX_BATCH_BYTES: usize = 65_000;

/// How the endpoint behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Magic and type codes.
    pub profile: Profile,
    /// When to repeat DATA and RECV.
    pub timers: Timers,
    /// Most times one DATA is sent (without a deadline).
    pub max_data_sends: u32,
    /// Most times one RECV is sent by its timer.
    pub max_recv_sends: u32,
    /// How long a received (peer, identity) whose ACK has not come is
    /// remembered after its last copy (at least [`Config::repeat_span`]
    /// plus [`Config::dedup_linger`] for the guarantee to hold).
    pub dedup_ttl: Duration,
    /// How long a received (peer, identity) is remembered after its ACK (or
    /// a later copy): the longest a copy may be delayed in the network
    /// behind the ACK.
    pub dedup_linger: Duration,
    /// Most received (peer, identity) pairs remembered at once.
    pub dedup_capacity: usize,
    /// Largest payload `send_to` accepts.
    pub max_payload: usize,
    /// The authenticated profile, or `None` (the default) for plain gtUDP.
    /// Both ends must agree.
    pub auth: Option<AuthConfig>,
}

/// The authenticated profile's settings (`spec/gtudp.md` §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The key both ends share.
    pub key: AuthKey,
    /// This endpoint's session: drawn at random every time an endpoint is
    /// made with this key, never reused (the nonce's uniqueness rests on it).
    pub session: u64,
    /// Most peer sessions whose replay windows are kept at once.
    pub max_sessions: usize,
    /// How long a peer session is kept after its last accepted datagram.
    pub session_ttl: Duration,
}

impl AuthConfig {
    /// `key` and `session`, with room for 4096 peer sessions kept an hour.
    pub fn new(key: AuthKey, session: u64) -> Self {
        AuthConfig {
            key,
            session,
            max_sessions: 4096,
            session_ttl: Duration::from_secs(3600),
        }
    }
}

impl Default for Config {
    /// The reference profile on [`Timers::Rtt`], 6 DATA and 10 RECV sends;
    /// duplicate memory of 1 048 576 entries at most (some 150 MB when
    /// full), held 2 s after the ACK and 42 s without one.
    fn default() -> Self {
        let profile = Profile::reference();
        let mut config = Config {
            max_payload: MAX_UDP_PAYLOAD - profile.header_len(),
            profile,
            timers: Timers::default(),
            max_data_sends: 6,
            max_recv_sends: 10,
            dedup_ttl: Duration::ZERO,
            dedup_linger: DEFAULT_LINGER,
            dedup_capacity: 1 << 20,
            auth: None,
        };
        config.dedup_ttl = config.repeat_span() + config.dedup_linger;
        config
    }
}

/// How long a copy may trail the ACK in the network, by default.
const DEFAULT_LINGER: Duration = Duration::from_secs(2);

impl Config {
    /// The reference implementation's behaviour: its profile, a fixed 0.5 s
    /// timer, 6 DATA and 10 RECV sends (and a `dedup_ttl` of 4.5 s to match).
    pub fn reference() -> Self {
        let mut config = Config {
            timers: Timers::Reference,
            ..Config::default()
        };
        config.dedup_ttl = config.repeat_span() + config.dedup_linger;
        config
    }

    /// The longest time between the first and the last copy of one DATA
    /// sent without a deadline under these timers: `max_data_sends - 1`
    /// waits of at most 0.5 s ([`Timers::Reference`]) or
    /// [`RttConfig::max`] ([`Timers::Rtt`]). No two copies of one DATA that
    /// reach the receiver are further apart.
    pub fn repeat_span(&self) -> Duration {
        let wait = match self.timers {
            Timers::Reference => REFERENCE_TIMEOUT,
            Timers::Rtt(c) => c.max,
        };
        wait.saturating_mul(self.max_data_sends.saturating_sub(1))
    }

    /// This configuration with `profile` (and the largest payload it allows).
    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self.max_payload = self.largest_payload();
        self
    }

    /// This configuration with the authenticated profile (and the largest
    /// payload it allows).
    pub fn with_auth(mut self, auth: AuthConfig) -> Self {
        self.auth = Some(auth);
        self.max_payload = self.largest_payload();
        self
    }

    fn largest_payload(&self) -> usize {
        let overhead = if self.auth.is_some() { OVERHEAD } else { 0 };
        MAX_UDP_PAYLOAD.saturating_sub(self.profile.header_len() + overhead)
    }
}

/// When DATA and RECV are repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timers {
    /// After 0.5 s, always, as the reference implementation does.
    Reference,
    /// After an RFC 6298 timeout from measured round trips, doubled per repetition.
    Rtt(RttConfig),
}

impl Default for Timers {
    fn default() -> Self {
        Timers::Rtt(RttConfig::default())
    }
}

/// Bounds of the RTT-based timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttConfig {
    /// Timeout before any sample (the reference's fixed 0.5 s).
    pub initial: Duration,
    /// Lower bound of the timeout.
    pub min: Duration,
    /// Upper bound of the timeout, backoff included.
    pub max: Duration,
    /// Clock granularity (RFC 6298's G).
    pub granularity: Duration,
}

impl Default for RttConfig {
    fn default() -> Self {
        RttConfig {
            initial: REFERENCE_TIMEOUT,
            min: Duration::from_millis(20),
            max: Duration::from_secs(8),
            granularity: Duration::from_millis(1),
        }
    }
}

const REFERENCE_TIMEOUT: Duration = Duration::from_millis(500);

/// Names one exchange opened by [`Gtudp::send_to`] or [`Gtudp::send_confirmed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExchangeId(pub u64);

/// Why an exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailReason {
    /// No RECV after [`Config::max_data_sends`] DATA.
    Attempts,
    /// No RECV before the exchange's deadline.
    Deadline,
    /// The payload exceeds [`Config::max_payload`]; nothing was sent.
    TooLarge,
    /// The identity source kept naming identities in use; nothing was sent.
    NoIdentity,
}

/// What the endpoint tells its application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new DATA from `from` was handed out (as a [`Datagram`]).
    Received {
        /// Sender.
        from: Peer,
        /// Its identity.
        id: Identity,
    },
    /// The peer said it received the exchange's DATA.
    Confirmed(ExchangeId),
    /// The exchange ended without a RECV.
    Failed(ExchangeId, FailReason),
}

/// A DATA's payload, handed out once, straight from the input buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Datagram<'d> {
    /// Sender.
    pub from: Peer,
    /// Its identity.
    pub id: Identity,
    /// The payload.
    pub payload: &'d [u8],
}

/// Counters. Datagrams that are not gtUDP of the profile are counted by
/// class and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams handed in.
    pub datagrams_in: u64,
    /// Dropped: shorter than a header.
    pub truncated: u64,
    /// Dropped: wrong magic.
    pub wrong_magic: u64,
    /// Dropped: unknown type code.
    pub unknown_type: u64,
    /// Dropped: RECV or ACK with trailing bytes.
    pub trailing_bytes: u64,
    /// DATA handed out.
    pub delivered: u64,
    /// DATA already remembered (not handed out).
    pub duplicates: u64,
    /// DATA dropped unanswered because the duplicate table was full.
    pub refused_full: u64,
    /// RECV for no exchange of ours (answered with ACK).
    pub unknown_recv: u64,
    /// ACK for no RECV of ours.
    pub unknown_ack: u64,
    /// DATA sent, first copies.
    pub data_sent: u64,
    /// DATA sent again.
    pub data_repeated: u64,
    /// RECV sent.
    pub recv_sent: u64,
    /// ACK sent.
    pub ack_sent: u64,
    /// Exchanges confirmed.
    pub confirmed: u64,
    /// Exchanges failed.
    pub failed: u64,
    /// Authenticated profile: dropped, the tag did not match (forged,
    /// altered, another key or too short to hold one).
    pub auth_failed: u64,
    /// Authenticated profile: dropped, its counter was accepted before or
    /// is older than the replay window.
    pub replayed: u64,
    /// Authenticated profile: dropped, a new peer session found the
    /// session table full.
    pub sessions_full: u64,
}

type Key = (Peer, Identity);

/// Lane of the duplicate memory for entries held `dedup_ttl`.
const LANE_TTL: usize = 0;
/// Lane of the duplicate memory for entries held `dedup_linger`.
const LANE_LINGER: usize = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Send(Key),
    Recv(Key),
}

/// A position in the timer map: due time and a tiebreaker.
type TimerKey = (Instant, u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    Data(Key),
    Recv(Key),
    Ack(Key),
}

impl Out {
    fn peer(self) -> Peer {
        match self {
            Out::Data(k) | Out::Recv(k) | Out::Ack(k) => k.0,
        }
    }
}

/// One of our DATA, not yet confirmed.
#[derive(Debug)]
struct Outgoing {
    no: ExchangeId,
    payload: Vec<u8>,
    sends: u32,
    last_sent: Instant,
    deadline: Option<Instant>,
    timer: Option<TimerKey>,
    queued: bool,
}

/// A DATA we received and remember.
#[derive(Debug)]
struct Incoming {
    acked: bool,
    /// RECVs sent by the timer's rule (capped).
    sends: u32,
    /// RECVs sent, answers to duplicates included.
    copies: u32,
    last_sent: Instant,
    timer: Option<TimerKey>,
    queued: bool,
}

/// An RFC 6298 estimator.
#[derive(Debug, Clone, Copy)]
struct Rtt {
    srtt: Duration,
    rttvar: Duration,
}

/// Our side of the authenticated profile.
struct Sealer {
    session: u64,
    counter: u64,
    cipher: SessionCipher,
}

/// A peer's session: its key and replay window.
struct PeerSession {
    cipher: SessionCipher,
    replay: Replay,
    last: Instant,
}

/// The gtUDP endpoint. See the [module docs](self).
pub struct Gtudp {
    sealer: Option<Sealer>,
    sessions: HashMap<(Peer, u64), PeerSession>,
    config: Config,
    ids: Box<dyn IdSource>,
    next_exchange: u64,
    outgoing: HashMap<Key, Outgoing>,
    used_ids: Expiring<Key, ()>,
    incoming: Expiring<Key, Incoming>,
    timers: BTreeMap<TimerKey, Slot>,
    timer_seq: u64,
    /// RECV and ACK to send, all one size: sent before DATA.
    control: VecDeque<Out>,
    /// DATA to send.
    data_out: VecDeque<Out>,
    events: VecDeque<Event>,
    rtt: HashMap<Peer, Rtt>,
    stats: Stats,
}

impl core::fmt::Debug for Gtudp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Gtudp")
            .field("config", &self.config)
            .field("outgoing", &self.outgoing.len())
            .field("incoming", &self.incoming.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Gtudp {
    /// An endpoint drawing identities from `ids`.
    pub fn new(config: Config, ids: impl IdSource + 'static) -> Self {
        let sealer = config.auth.as_ref().map(|a| Sealer {
            session: a.session,
            counter: 0,
            cipher: a.key.session(a.session),
        });
        Gtudp {
            sealer,
            sessions: HashMap::new(),
            config,
            ids: Box::new(ids),
            next_exchange: 0,
            outgoing: HashMap::new(),
            used_ids: Expiring::new(),
            incoming: Expiring::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            control: VecDeque::new(),
            data_out: VecDeque::new(),
            events: VecDeque::new(),
            rtt: HashMap::new(),
            stats: Stats::default(),
        }
    }

    /// An endpoint with seeded identities ([`SeededIds`]).
    pub fn seeded(config: Config, seed: u64) -> Self {
        Self::new(config, SeededIds::new(seed))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Exchanges of ours not yet confirmed or failed.
    pub fn in_flight(&self) -> usize {
        self.outgoing.len()
    }

    /// Received (peer, identity) pairs remembered for duplicate suppression.
    pub fn remembered(&self) -> usize {
        self.incoming.len()
    }

    /// True when nothing is in flight either way: every DATA of ours is
    /// settled, every DATA received has its ACK (or its RECVs ran out), and
    /// nothing waits to be sent. A process may then exit without leaving a
    /// peer repeating.
    pub fn is_idle(&self) -> bool {
        self.outgoing.is_empty()
            && self.control.is_empty()
            && self.data_out.is_empty()
            && self
                .incoming
                .values()
                .all(|e| e.acked || (e.timer.is_none() && !e.queued))
    }

    /// The current retransmission timeout towards `peer` (before backoff).
    pub fn rto(&self, peer: Peer) -> Duration {
        match self.config.timers {
            Timers::Reference => REFERENCE_TIMEOUT,
            Timers::Rtt(c) => match self.rtt.get(&peer) {
                None => c.initial.clamp(c.min, c.max),
                Some(r) => (r.srtt + c.granularity.max(4 * r.rttvar)).clamp(c.min, c.max),
            },
        }
    }

    /// Sends `payload` to `peer`, repeated up to [`Config::max_data_sends`]
    /// times. The exchange ends in [`Event::Confirmed`] or [`Event::Failed`].
    pub fn send_to(&mut self, peer: Peer, payload: &[u8]) -> ExchangeId {
        self.open(peer, payload, None)
    }

    /// Sends `payload` to `peer`, repeated until the peer confirms it or
    /// `deadline` passes: [`Event::Confirmed`] or
    /// [`Event::Failed`]`(_, `[`FailReason::Deadline`]`)`.
    pub fn send_confirmed(&mut self, peer: Peer, payload: &[u8], deadline: Instant) -> ExchangeId {
        self.open(peer, payload, Some(deadline))
    }

    fn open(&mut self, peer: Peer, payload: &[u8], deadline: Option<Instant>) -> ExchangeId {
        let no = ExchangeId(self.next_exchange);
        self.next_exchange += 1;
        if payload.len() > self.config.max_payload {
            self.fail(no, FailReason::TooLarge);
            return no;
        }
        let Some(id) = self.fresh_id(peer, payload) else {
            self.fail(no, FailReason::NoIdentity);
            return no;
        };
        let key = (peer, id);
        self.outgoing.insert(
            key,
            Outgoing {
                no,
                payload: payload.to_vec(),
                sends: 0,
                last_sent: Instant::ZERO,
                deadline,
                timer: None,
                queued: true,
            },
        );
        self.data_out.push_back(Out::Data(key));
        no
    }

    fn fresh_id(&mut self, peer: Peer, payload: &[u8]) -> Option<Identity> {
        for _ in 0..MAX_ID_DRAWS {
            let id = self.ids.next_id(payload);
            let key = (peer, id);
            if !self.outgoing.contains_key(&key) && !self.used_ids.contains(&key) {
                return Some(id);
            }
        }
        None
    }

    fn fail(&mut self, no: ExchangeId, why: FailReason) {
        self.stats.failed += 1;
        self.events.push_back(Event::Failed(no, why));
    }

    fn arm(&mut self, at: Instant, slot: Slot) -> TimerKey {
        self.timer_seq += 1;
        let k = (at, self.timer_seq);
        self.timers.insert(k, slot);
        k
    }

    fn disarm(&mut self, timer: &mut Option<TimerKey>) {
        if let Some(k) = timer.take() {
            self.timers.remove(&k);
        }
    }

    /// The wait before repeating something sent `sends` times to `peer`.
    fn backoff(&self, peer: Peer, sends: u32) -> Duration {
        let rto = self.rto(peer);
        match self.config.timers {
            Timers::Reference => rto,
            Timers::Rtt(c) => {
                let doubled = rto.saturating_mul(1 << sends.saturating_sub(1).min(16));
                doubled.min(c.max).max(rto)
            }
        }
    }

    fn sample(&mut self, peer: Peer, r: Duration) {
        if !self.rtt.contains_key(&peer) && self.rtt.len() >= MAX_RTT_PEERS {
            if let Some(k) = self.rtt.keys().next().copied() {
                self.rtt.remove(&k);
            }
        }
        self.rtt
            .entry(peer)
            .and_modify(|e| {
                let diff = if e.srtt > r { e.srtt - r } else { r - e.srtt };
                e.rttvar = (e.rttvar * 3 + diff) / 4;
                e.srtt = (e.srtt * 7 + r) / 8;
            })
            .or_insert(Rtt {
                srtt: r,
                rttvar: r / 2,
            });
    }

    fn forget(&mut self, now: Instant) {
        let mut expired = Vec::new();
        self.incoming.purge(now, |_, e| {
            if let Some(t) = e.timer {
                expired.push(t);
            }
        });
        for t in expired {
            self.timers.remove(&t);
        }
        self.used_ids.purge(now, |_, _| {});
    }

    fn on_data(&mut self, now: Instant, key: Key) -> bool {
        if let Some(e) = self.incoming.get_mut(&key) {
            self.stats.duplicates += 1;
            let answer = !e.acked && !e.queued;
            if answer {
                e.queued = true;
            }
            let hold = if e.acked {
                self.config.dedup_linger
            } else {
                self.config.dedup_ttl
            };
            self.incoming.refresh(&key, now + hold);
            if answer {
                self.control.push_back(Out::Recv(key));
            }
            return false;
        }
        if self.incoming.len() >= self.config.dedup_capacity {
            self.stats.refused_full += 1;
            return false;
        }
        self.incoming.insert(
            key,
            LANE_TTL,
            now + self.config.dedup_ttl,
            Incoming {
                acked: false,
                sends: 0,
                copies: 0,
                last_sent: now,
                timer: None,
                queued: true,
            },
        );
        self.control.push_back(Out::Recv(key));
        self.stats.delivered += 1;
        self.events.push_back(Event::Received {
            from: key.0,
            id: key.1,
        });
        true
    }

    fn on_recv(&mut self, now: Instant, key: Key) {
        self.control.push_back(Out::Ack(key));
        let Some(mut o) = self.outgoing.remove(&key) else {
            self.stats.unknown_recv += 1;
            // The peer still remembers the identity: keep it unused as long.
            self.used_ids.refresh(&key, now + self.config.dedup_linger);
            return;
        };
        self.disarm(&mut o.timer);
        if o.sends == 1 {
            self.sample(key.0, now.saturating_since(o.last_sent));
        }
        self.remember_sent(key, LANE_LINGER, now + self.config.dedup_linger);
        self.stats.confirmed += 1;
        self.events.push_back(Event::Confirmed(o.no));
    }

    fn remember_sent(&mut self, key: Key, lane: usize, until: Instant) {
        if self.used_ids.len() >= self.config.dedup_capacity {
            self.used_ids.evict_oldest();
        }
        self.used_ids.insert(key, lane, until, ());
    }

    fn on_ack(&mut self, now: Instant, key: Key) {
        let Some(e) = self.incoming.get_mut(&key) else {
            self.stats.unknown_ack += 1;
            return;
        };
        if e.acked {
            return;
        }
        e.acked = true;
        let (copies, last_sent, mut timer) = (e.copies, e.last_sent, e.timer.take());
        self.disarm(&mut timer);
        self.incoming
            .move_to(&key, LANE_LINGER, now + self.config.dedup_linger);
        if copies == 1 {
            self.sample(key.0, now.saturating_since(last_sent));
        }
    }

    fn fire(&mut self, now: Instant, slot: Slot) {
        match slot {
            Slot::Send(key) => {
                let cap = self.config.max_data_sends;
                let Some(o) = self.outgoing.get_mut(&key) else {
                    return;
                };
                o.timer = None;
                let why = match o.deadline {
                    Some(d) if d <= now => Some(FailReason::Deadline),
                    Some(_) => None,
                    None if o.sends >= cap => Some(FailReason::Attempts),
                    None => None,
                };
                if let Some(why) = why {
                    let o = self.outgoing.remove(&key).expect("looked up above");
                    self.remember_sent(key, LANE_TTL, now + self.config.dedup_ttl);
                    self.fail(o.no, why);
                } else if !o.queued {
                    o.queued = true;
                    self.data_out.push_back(Out::Data(key));
                }
            }
            Slot::Recv(key) => {
                let Some(e) = self.incoming.get_mut(&key) else {
                    return;
                };
                e.timer = None;
                if !e.acked && !e.queued {
                    e.queued = true;
                    self.control.push_back(Out::Recv(key));
                }
            }
        }
    }

    /// Turns the plain packet at `buf[start..]` into an authenticated one.
    /// `false` (and the packet removed) once the counter is spent.
    fn seal(&mut self, buf: &mut Vec<u8>, start: usize) -> bool {
        let Some(s) = self.sealer.as_mut() else {
            return true;
        };
        if s.counter == u64::MAX {
            buf.truncate(start);
            return false;
        }
        let counter = s.counter;
        s.counter += 1;
        let body = start + self.config.profile.header_len();
        let mut prefix = [0u8; PREFIX_LEN];
        prefix[..8].copy_from_slice(&s.session.to_be_bytes());
        prefix[8..].copy_from_slice(&counter.to_be_bytes());
        buf.splice(body..body, prefix);
        s.cipher.seal(counter, buf, start, body + PREFIX_LEN);
        true
    }

    /// Writes the next packet for `out`, or `None` if it is stale.
    fn write(&mut self, now: Instant, out: Out, buf: &mut Vec<u8>) -> Option<Peer> {
        let start = buf.len();
        let peer = self.write_plain(now, out, buf)?;
        self.seal(buf, start).then_some(peer)
    }

    fn write_plain(&mut self, now: Instant, out: Out, buf: &mut Vec<u8>) -> Option<Peer> {
        match out {
            Out::Data(key) => {
                let o = self.outgoing.get_mut(&key)?;
                o.queued = false;
                o.sends += 1;
                o.last_sent = now;
                let (sends, deadline) = (o.sends, o.deadline);
                Repr::Data {
                    id: key.1,
                    payload: &o.payload,
                }
                .emit_vec(&self.config.profile, buf);
                if sends == 1 {
                    self.stats.data_sent += 1;
                } else {
                    self.stats.data_repeated += 1;
                }
                let mut at = now + self.backoff(key.0, sends);
                if let Some(d) = deadline {
                    at = at.min(d);
                }
                let t = self.arm(at, Slot::Send(key));
                if let Some(o) = self.outgoing.get_mut(&key) {
                    o.timer = Some(t);
                }
            }
            Out::Recv(key) => {
                Repr::Recv { id: key.1 }.emit_vec(&self.config.profile, buf);
                self.stats.recv_sent += 1;
                let cap = self.config.max_recv_sends;
                let mut arm_after = None;
                if let Some(e) = self.incoming.get_mut(&key) {
                    e.queued = false;
                    e.copies += 1;
                    // A RECV answering a duplicate while the timer runs, or
                    // after the sends ran out, does not count.
                    if !e.acked && e.timer.is_none() && e.sends < cap {
                        e.sends += 1;
                        e.last_sent = now;
                        if e.sends < cap {
                            arm_after = Some(e.sends);
                        }
                    }
                }
                if let Some(sends) = arm_after {
                    let at = now + self.backoff(key.0, sends);
                    let t = self.arm(at, Slot::Recv(key));
                    if let Some(e) = self.incoming.get_mut(&key) {
                        e.timer = Some(t);
                    }
                    // Held while its RECV is still to be repeated.
                    self.incoming.refresh(&key, at + self.config.dedup_linger);
                }
            }
            Out::Ack(key) => {
                Repr::Ack { id: key.1 }.emit_vec(&self.config.profile, buf);
                self.stats.ack_sent += 1;
            }
        }
        Some(out.peer())
    }

    /// The length [`Gtudp::write`] would write for `out`; `None` if stale.
    fn queued_len(&self, out: Out) -> Option<usize> {
        let mut header = self.config.profile.header_len();
        if self.sealer.is_some() {
            header += OVERHEAD;
        }
        match out {
            Out::Data(key) => self.outgoing.get(&key).map(|o| header + o.payload.len()),
            Out::Recv(_) | Out::Ack(_) => Some(header),
        }
    }
}

impl Endpoint for Gtudp {
    type Event = Event;
    type Delivery<'d> = Datagram<'d>;

    fn handle_timeout(&mut self, now: Instant) {
        self.forget(now);
        while let Some((&k, &slot)) = self.timers.first_key_value() {
            if k.0 > now {
                break;
            }
            self.timers.remove(&k);
            self.fire(now, slot);
        }
    }

    /// RECV and ACK go out before DATA, each kind in its own queue, so that
    /// packets of one size queued back to back for one peer go out as one
    /// batch (`segment_size` set, as UDP GSO sends them).
    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        buf.clear();
        let (destination, control) = loop {
            let (out, control) = match self.control.pop_front() {
                Some(out) => (out, true),
                None => (self.data_out.pop_front()?, false),
            };
            if let Some(peer) = self.write(now, out, buf) {
                break (peer, control);
            }
        };
        let segment = buf.len();
        let mut count = 1;
        while count < MAX_BATCH_SEGMENTS && buf.len() + segment <= MAX_BATCH_BYTES {
            let queue = if control {
                &self.control
            } else {
                &self.data_out
            };
            let Some(&next) = queue.front() else {
                break;
            };
            if next.peer() != destination {
                break;
            }
            let len = self.queued_len(next);
            if len.is_some_and(|len| len != segment) {
                break;
            }
            if control {
                self.control.pop_front();
            } else {
                self.data_out.pop_front();
            }
            // A stale entry (its exchange ended) writes nothing.
            if self.write(now, next, buf).is_none() {
                continue;
            }
            count += 1;
        }
        Some(Transmit {
            destination,
            size: buf.len(),
            segment_size: (count > 1).then_some(segment),
        })
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first_key_value().map(|(k, _)| k.0)
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

impl Gtudp {
    /// The authenticated profile's receive path (`spec/gtudp.md` §8).
    fn handle_sealed<'d>(
        &mut self,
        now: Instant,
        from: Peer,
        data: &'d mut [u8],
    ) -> Option<Datagram<'d>> {
        let profile = &self.config.profile;
        let hl = profile.header_len();
        let (kind, id) = {
            let p = match Packet::new_checked(&*data, profile) {
                Ok(p) => p,
                Err(_) => {
                    self.stats.truncated += 1;
                    return None;
                }
            };
            if p.magic() != profile.magic() {
                self.stats.wrong_magic += 1;
                return None;
            }
            let Some(kind) = p.kind() else {
                self.stats.unknown_type += 1;
                return None;
            };
            (kind, p.identity())
        };
        if data.len() < hl + OVERHEAD {
            self.stats.truncated += 1;
            return None;
        }
        if kind != Kind::Data && data.len() != hl + OVERHEAD {
            self.stats.trailing_bytes += 1;
            return None;
        }
        let word = |at: usize| u64::from_be_bytes(data[at..at + 8].try_into().expect("8 bytes"));
        let (session, counter) = (word(hl), word(hl + 8));
        let key = (from, session);
        match self.sessions.get(&key) {
            Some(s) if s.replay.seen(counter) => {
                self.stats.replayed += 1;
                return None;
            }
            Some(s) => {
                if !s.cipher.open(counter, data, hl + PREFIX_LEN) {
                    self.stats.auth_failed += 1;
                    return None;
                }
            }
            None => {
                let auth = self.config.auth.as_ref().expect("sealer implies auth");
                let cipher = auth.key.session(session);
                if !cipher.open(counter, data, hl + PREFIX_LEN) {
                    self.stats.auth_failed += 1;
                    return None;
                }
                if self.sessions.len() >= auth.max_sessions {
                    let ttl = auth.session_ttl;
                    self.sessions
                        .retain(|_, s| now.saturating_since(s.last) < ttl);
                }
                if self.sessions.len() >= auth.max_sessions {
                    self.stats.sessions_full += 1;
                    return None;
                }
                self.sessions.insert(
                    key,
                    PeerSession {
                        cipher,
                        replay: Replay::new(),
                        last: now,
                    },
                );
            }
        }
        let s = self.sessions.get_mut(&key).expect("known or inserted");
        s.replay.accept(counter);
        s.last = now;
        let data: &'d [u8] = data;
        match kind {
            Kind::Data => {
                let payload = &data[hl + PREFIX_LEN..data.len() - TAG_LEN];
                self.on_data(now, (from, id))
                    .then_some(Datagram { from, id, payload })
            }
            Kind::Recv => {
                self.on_recv(now, (from, id));
                None
            }
            Kind::Ack => {
                self.on_ack(now, (from, id));
                None
            }
        }
    }
}

impl DatagramEndpoint for Gtudp {
    fn handle_datagram<'d>(
        &mut self,
        now: Instant,
        from: Peer,
        data: &'d mut [u8],
    ) -> Option<Datagram<'d>> {
        self.stats.datagrams_in += 1;
        self.forget(now);
        if self.sealer.is_some() {
            return self.handle_sealed(now, from, data);
        }
        let data: &'d [u8] = data;
        let repr = match Repr::parse(data, &self.config.profile) {
            Ok(r) => r,
            Err(e) => {
                let counter = match e {
                    WireError::Truncated => &mut self.stats.truncated,
                    WireError::WrongMagic => &mut self.stats.wrong_magic,
                    WireError::UnknownType => &mut self.stats.unknown_type,
                    WireError::TrailingBytes => &mut self.stats.trailing_bytes,
                };
                *counter += 1;
                return None;
            }
        };
        match repr {
            Repr::Data { id, payload } => {
                self.on_data(now, (from, id))
                    .then_some(Datagram { from, id, payload })
            }
            Repr::Recv { id } => {
                self.on_recv(now, (from, id));
                None
            }
            Repr::Ack { id } => {
                self.on_ack(now, (from, id));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
