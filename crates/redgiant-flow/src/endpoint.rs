//! The flow endpoint: a sans-IO [`DatagramEndpoint`] that allocates,
//! accepts and carries flows (`spec/flow.md` §4).
//!
//! # Flows
//!
//! [`FlowEndpoint::alloc`] asks a peer for a flow to a name with a [`QoS`];
//! the answer comes as [`Event::Up`] or [`Event::Refused`]. An ALLOC for a
//! name this endpoint [`register`](FlowEndpoint::register)ed becomes
//! [`Event::Alloc`], which the application answers with
//! [`FlowEndpoint::accept`] or [`FlowEndpoint::refuse`]. Either end then
//! [`write`](FlowEndpoint::write)s whole SDUs and [`read`](FlowEndpoint::read)s
//! them after [`Event::Readable`].
//!
//! # Layers
//!
//! [`Layers::for_qos`] decides what a flow runs:
//! - **arq** (`loss == 0`): each fragment is acknowledged, and resent until
//!   it is: once a fragment sent after it was acknowledged and a quarter of
//!   the smoothed RTT more passed (RACK, RFC 8985), or after an RFC 6298
//!   timeout from the flow's measured round trips (Karn's rule, doubling per
//!   repetition) that counts from the last acknowledgement at the earliest;
//!   each SDU is handed out exactly once.
//! - without **arq**, each fragment is sent once; SDUs may be lost.
//! - **reorder** (`in_order`): SDUs are handed out in sequence order. Without
//!   **arq**, a missing SDU is skipped once the QoS `max_gap` passed since a
//!   later one completed (on a **fec** flow, three halves of the group
//!   flush interval), [`Config::reorder_wait`] at most, or once the sequence
//!   window is full.
//! - **pacer** (a finite, non-zero `bandwidth`): DATA leaves at most at that rate.
//! - **timeout**: the flow goes [`Event::Down`] once the peer was silent that
//!   long; an end that sent nothing for a quarter of it sends a KEEPALIVE, so a
//!   quiet flow stays up.
//! - **fec** (loss tolerated, a tight `max_gap` or `delay`): SDUs are
//!   grouped as [`Fec`] says and each group gets Reed-Solomon parity shards
//!   in PARITY datagrams; a receiver that misses SDUs of a group but holds
//!   as many shards as the group has SDUs rebuilds them at once, without a
//!   round trip ([`Stats::sdus_recovered`]).
//! - **aead** (`cypher_s > 0`): every datagram of the flow after the
//!   allocation is sealed as [`crate::seal`] describes, with keys derived
//!   from [`Config::key`] and salts both ends exchange in ALLOC and
//!   ALLOC_OK. Datagrams that fail to open are dropped and counted
//!   ([`Stats::auth_failed`], [`Stats::replayed`]). An endpoint without a
//!   key cannot allocate such a flow ([`FlowError::NoKey`]) and refuses one
//!   ([`Reason::NoKey`]); an ALLOC sealed under another key is refused with
//!   [`Reason::KeyMismatch`]. A keyed endpoint is built with
//!   [`FlowEndpoint::seeded`]: salts come from that seed.
//!
//! # Bounds
//!
//! Everything a peer can make this endpoint hold is bounded by [`Config`]:
//! flows, bytes queued for sending and held for reading per flow, the
//! sequence window, fragments per SDU, fragments in flight, and the queue of
//! control datagrams. A **fec** flow holds, besides, copies of SDUs and
//! parity up to another [`Config::recv_buffer`] bytes in at most
//! [`MAX_FEC_GROUPS`] groups. Memory grows with bytes that actually arrived,
//! never with a size a peer declared. What does not fit is dropped and counted in
//! [`Stats`]; on an **arq** flow a dropped fragment is not acknowledged, so
//! its sender sends it again later.
//!
//! # Calling order
//!
//! As every endpoint (see [`redgiant_base::endpoint`]): after any `handle_*`
//! call or command, drain [`Endpoint::poll_transmit`], then
//! [`Endpoint::poll_event`], then read [`Endpoint::poll_timeout`]. An early
//! or extra `handle_timeout` does nothing. SDUs are read with
//! [`FlowEndpoint::read`]; `handle_datagram` hands nothing out directly.

use core::fmt;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use redgiant_base::endpoint::{DatagramEndpoint, Endpoint};
use redgiant_base::{Instant, Peer, TokenBucket, Transmit};
use reed_solomon_erasure::galois_8::ReedSolomon;

use crate::qos::{Fec, Layers, QoS};
use crate::seal::{FlowCipher, FlowKey, OpenError, SaltSource};
use crate::wire::{
    FlowId, Frag, Group, Kind, Message, Reason, Repr, HEADER_LEN, MAX_NAME_LEN, PARITY_PREFIX_LEN,
    SALT_LEN, SEALED_HEADER_LEN, SEAL_OVERHEAD, TAG_LEN,
};

/// Limits and timers of a [`FlowEndpoint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest datagram sent, header included.
    pub max_datagram: usize,
    /// Largest SDU written or reassembled, in bytes.
    pub max_sdu: usize,
    /// Flows held at once (including closed ones lingering).
    pub max_flows: usize,
    /// Bytes queued for sending per flow, in flight included.
    pub send_buffer: usize,
    /// Bytes held per flow for reading: fragments, SDUs waiting for order,
    /// and SDUs not yet read. The fragments of the oldest unfinished SDU,
    /// which every later one may wait for, are taken beyond it as long as
    /// the SDUs not yet read leave room (so a flow can hold up to one
    /// [`max_sdu`](Self::max_sdu) more).
    pub recv_buffer: usize,
    /// SDUs a receiver tracks above the oldest unfinished one.
    pub window: u32,
    /// How long an ordered flow without **arq** waits for a missing SDU after
    /// a later one completed, at most: its QoS `max_gap` when that is
    /// shorter. A QoS that sets no gap bound (best effort) would otherwise
    /// hold every later SDU back until the window fills.
    pub reorder_wait: Duration,
    /// Fragments an **arq** flow has unacknowledged at once.
    pub max_in_flight: usize,
    /// Control datagrams (ALLOC answers, ACKs, KEEPALIVEs) waiting to be sent.
    pub max_outbox: usize,
    /// Retransmission timeout before any round trip was measured.
    pub initial_rto: Duration,
    /// Smallest retransmission timeout.
    pub min_rto: Duration,
    /// Largest retransmission timeout.
    pub max_rto: Duration,
    /// How long an allocation waits for an answer when the QoS sets no timeout.
    pub alloc_timeout: Duration,
    /// How long a closed or refused flow is remembered, to answer repeats.
    pub linger: Duration,
    /// The pre-shared key of encrypted flows (the same at both ends);
    /// without one, flows asking for encryption are neither allocated nor
    /// accepted. An endpoint with a key is built with [`FlowEndpoint::seeded`].
    pub key: Option<FlowKey>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_datagram: 1200,
            max_sdu: 1 << 20,
            max_flows: 1024,
            send_buffer: 4 << 20,
            recv_buffer: 4 << 20,
            window: 1024,
            reorder_wait: Duration::from_millis(100),
            max_in_flight: 256,
            max_outbox: 4096,
            initial_rto: Duration::from_millis(300),
            min_rto: Duration::from_millis(20),
            max_rto: Duration::from_secs(10),
            alloc_timeout: Duration::from_secs(30),
            linger: Duration::from_secs(5),
            key: None,
        }
    }
}

/// Why a [`Config`] cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_datagram` leaves no room after the header.
    DatagramTooSmall,
    /// `max_sdu` needs more than 65 535 fragments of `max_datagram`.
    SduTooLarge,
    /// A limit is zero.
    ZeroLimit,
    /// A key was given to [`FlowEndpoint::new`], which has no seed for salts.
    KeyWithoutSeed,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigError::DatagramTooSmall => "max_datagram leaves no room after the header",
            ConfigError::SduTooLarge => "max_sdu needs more than 65535 fragments",
            ConfigError::ZeroLimit => "a flow, window, in-flight or outbox limit is zero",
            ConfigError::KeyWithoutSeed => {
                "an endpoint with a flow key needs a random seed for its salts: build it with \
                 FlowEndpoint::seeded(config, seal::random_seed()?)"
            }
        })
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Bytes of SDU one DATA carries.
    pub fn fragment_len(&self) -> usize {
        self.max_datagram.saturating_sub(HEADER_LEN)
    }

    /// Most fragments one SDU takes.
    pub fn max_fragments(&self) -> usize {
        self.max_sdu.div_ceil(self.fragment_len().max(1)).max(1)
    }

    /// Bytes of SDU one DATA carries on a flow with `layers` (less on an
    /// encrypted flow: packet number and tag).
    pub fn fragment_len_for(&self, layers: &Layers) -> usize {
        let overhead = if layers.aead { SEAL_OVERHEAD } else { 0 };
        self.fragment_len().saturating_sub(overhead)
    }

    /// Checks the limits fit together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.fragment_len() == 0 {
            return Err(ConfigError::DatagramTooSmall);
        }
        if self.max_fragments() > usize::from(u16::MAX) {
            return Err(ConfigError::SduTooLarge);
        }
        if self.key.is_some() {
            let sealed = self.fragment_len().saturating_sub(SEAL_OVERHEAD);
            if sealed <= PARITY_PREFIX_LEN {
                return Err(ConfigError::DatagramTooSmall);
            }
            if self.max_sdu.div_ceil(sealed) > usize::from(u16::MAX) {
                return Err(ConfigError::SduTooLarge);
            }
        }
        if self.max_flows == 0
            || self.window == 0
            || self.max_in_flight == 0
            || self.max_outbox == 0
        {
            return Err(ConfigError::ZeroLimit);
        }
        Ok(())
    }
}

/// Why a command on a flow failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlowError {
    /// No flow has this id (never allocated, or already gone).
    NoSuchFlow,
    /// The flow is not in a state for this command (accepting an allocated
    /// flow, writing to a refused one).
    WrongState,
    /// The SDU is larger than [`Config::max_sdu`].
    TooLarge {
        /// The SDU's length.
        len: usize,
        /// The largest allowed.
        max: usize,
    },
    /// The send buffer has no room for the SDU now; try after reading
    /// events (acknowledgements free room).
    WouldBlock,
    /// The flow used every sequence number.
    SequenceExhausted,
    /// [`Config::max_flows`] flows exist.
    TooManyFlows,
    /// The name is empty or longer than 255 bytes.
    BadName,
    /// The QoS asks for a layer this endpoint does not have.
    Unsupported(&'static str),
    /// The QoS asks for encryption and this endpoint has no flow key.
    NoKey,
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowError::NoSuchFlow => f.write_str("no such flow"),
            FlowError::WrongState => f.write_str("flow not in a state for this command"),
            FlowError::TooLarge { len, max } => {
                write!(
                    f,
                    "SDU of {len} bytes is larger than the {max}-byte maximum"
                )
            }
            FlowError::WouldBlock => f.write_str("send buffer full"),
            FlowError::SequenceExhausted => f.write_str("flow used every sequence number"),
            FlowError::TooManyFlows => f.write_str("too many flows"),
            FlowError::BadName => f.write_str("name empty or longer than 255 bytes"),
            FlowError::Unsupported(layer) => write!(f, "layer {layer} not available"),
            FlowError::NoKey => f.write_str(
                "the QoS asks for encryption (cypher_s > 0) and this endpoint has no flow key: \
                 give both ends the same 32-byte key (Config::key; for a FlowNode \
                 RGTP_FLOW_KEY=64 hex digits or RGTP_FLOW_KEY_FILE), or ask for a QoS without \
                 encryption",
            ),
        }
    }
}

impl std::error::Error for FlowError {}

/// What a [`FlowEndpoint`] tells its application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A peer asks for a flow to a registered name: answer with
    /// [`FlowEndpoint::accept`] or [`FlowEndpoint::refuse`].
    Alloc {
        /// The new flow.
        flow: FlowId,
        /// Who asks.
        peer: Peer,
        /// The registered name asked for.
        name: String,
        /// The QoS asked for.
        qos: QoS,
    },
    /// A flow this end allocated was accepted.
    Up(FlowId),
    /// A flow this end allocated was refused; it is gone.
    Refused {
        /// The flow.
        flow: FlowId,
        /// Why.
        reason: Reason,
    },
    /// Everything written on the flow was sent and, with **arq**,
    /// acknowledged (reported when the last byte leaves the send buffer).
    Drained(FlowId),
    /// SDUs wait for [`FlowEndpoint::read`] (reported when the queue goes
    /// from empty to not empty). Read until `read` returns `None`.
    Readable(FlowId),
    /// The peer was silent for the QoS timeout (or never answered an
    /// allocation); the flow is closed. SDUs already received stay readable
    /// for [`Config::linger`].
    Down(FlowId),
    /// The peer deallocated the flow; it is closed. SDUs already received
    /// stay readable for [`Config::linger`].
    Closed(FlowId),
}

/// Counters of a [`FlowEndpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Datagrams handed to the driver.
    pub datagrams_sent: u64,
    /// DATA datagrams sent for the first time.
    pub data_sent: u64,
    /// DATA datagrams sent again.
    pub data_retransmitted: u64,
    /// ACKs queued.
    pub acks_sent: u64,
    /// Datagrams handed in.
    pub datagrams_received: u64,
    /// Datagrams that did not parse.
    pub malformed: u64,
    /// Datagrams for no flow of ours, from the wrong peer, or out of place.
    pub unknown_flow: u64,
    /// DATA fragments already held or SDUs already finished.
    pub duplicates: u64,
    /// DATA dropped: outside the sequence window.
    pub dropped_window: u64,
    /// DATA dropped: the receive buffer was full.
    pub dropped_buffer: u64,
    /// DATA dropped: fragment count or length beyond what an SDU may take,
    /// or disagreeing with earlier fragments of its SDU.
    pub dropped_bad_fragment: u64,
    /// SDUs given up on a flow without retransmission (skipped or evicted).
    pub sdus_lost: u64,
    /// Control datagrams dropped because the outbox was full.
    pub outbox_full: u64,
    /// ALLOCs refused because [`Config::max_flows`] flows exist.
    pub refused_full: u64,
    /// Datagrams of encrypted flows dropped: the tag did not match (forged,
    /// damaged, another key), or a datagram that must be sealed was not.
    pub auth_failed: u64,
    /// Sealed datagrams dropped: their packet number was used before or
    /// is older than the replay window.
    pub replayed: u64,
    /// PARITY datagrams sent.
    pub parity_sent: u64,
    /// PARITY datagrams received and kept.
    pub parity_received: u64,
    /// SDUs rebuilt from parity and handed out.
    pub sdus_recovered: u64,
}

/// Where a flow is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// We sent ALLOC and wait for the answer.
    Allocating,
    /// A peer's ALLOC waits for the application.
    Incoming,
    /// Both ends know each other's id.
    Up,
    /// Refused or deallocated; kept until `until` to answer repeats.
    Closed {
        until: Instant,
        refusal: Option<Reason>,
    },
}

/// An RFC 6298 estimator.
#[derive(Debug, Clone, Copy)]
struct Rtt {
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
}

impl Rtt {
    fn new(initial: Duration) -> Self {
        Rtt {
            srtt: None,
            rttvar: Duration::ZERO,
            rto: initial,
        }
    }

    fn sample(&mut self, r: Duration, config: &Config) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                let diff = if srtt > r { srtt - r } else { r - srtt };
                self.rttvar = (self.rttvar * 3 + diff) / 4;
                self.srtt = Some((srtt * 7 + r) / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        let rto = srtt + (self.rttvar * 4).max(Duration::from_millis(1));
        self.rto = rto.clamp(config.min_rto, config.max_rto);
    }

    /// The timeout for the `sends`-th send (1: first), doubled per repetition.
    fn backoff(&self, sends: u32, config: &Config) -> Duration {
        let shift = sends.saturating_sub(1).min(16);
        self.rto.saturating_mul(1 << shift).min(config.max_rto)
    }
}

/// An SDU being reassembled.
#[derive(Debug, Default)]
struct Partial {
    count: u16,
    frags: BTreeMap<u16, Vec<u8>>,
}

/// The receiving half of a flow.
#[derive(Debug, Default)]
struct Rx {
    /// Every sequence number below is finished (handed out or given up).
    base: u32,
    /// Finished sequence numbers at or above `base` (unordered flows).
    done: BTreeSet<u32>,
    /// Complete SDUs waiting for their turn, with when they completed
    /// (ordered flows).
    ready: BTreeMap<u32, (Instant, Vec<u8>)>,
    partials: BTreeMap<u32, Partial>,
    /// SDUs for the application.
    queue: VecDeque<Vec<u8>>,
    /// Bytes held in `partials`, `ready` and `queue`.
    bytes: usize,
    /// Since when the longest-waiting complete SDU waits behind a missing
    /// one (ordered flows without retransmission).
    gap_since: Option<Instant>,
}

/// The sending half of **fec**: the group being filled.
#[derive(Debug)]
struct FecTx {
    fec: Fec,
    /// Sequence number of the group's first SDU.
    first: u32,
    /// The group's SDUs so far.
    sdus: Vec<Vec<u8>>,
    /// When the first of them was written.
    since: Instant,
}

/// Bytes before an SDU in its shard: its length.
const SHARD_LEN_PREFIX: usize = 4;

/// Groups whose parity a **fec** receiver holds at once per flow; a new one
/// beyond pushes out the oldest.
pub const MAX_FEC_GROUPS: usize = 64;

impl FecTx {
    /// The parity shards of the group, encoded; the group is emptied.
    fn close(&mut self) -> Option<(u32, Group, Vec<Vec<u8>>)> {
        if self.sdus.is_empty() {
            return None;
        }
        let sdus = core::mem::take(&mut self.sdus);
        let first = self.first;
        self.first = self.first.wrapping_add(sdus.len() as u32);
        let data = sdus.len();
        let parity = self.fec.parity_for(data);
        let len = SHARD_LEN_PREFIX + sdus.iter().map(Vec::len).max().unwrap_or(0);
        let mut shards: Vec<Vec<u8>> = sdus.iter().map(|s| shard_of(s, len)).collect();
        shards.extend((0..parity).map(|_| vec![0u8; len]));
        let rs = ReedSolomon::new(data, parity).ok()?;
        rs.encode(&mut shards).ok()?;
        let group = Group {
            data: u8::try_from(data).ok()?,
            parity: u8::try_from(parity).ok()?,
            index: 0,
        };
        Some((first, group, shards.split_off(data)))
    }
}

/// The shard of an SDU: its length (u32, big-endian), the SDU, zeros to `len`.
fn shard_of(sdu: &[u8], len: usize) -> Vec<u8> {
    let mut shard = Vec::with_capacity(len);
    shard.extend_from_slice(&(sdu.len() as u32).to_be_bytes());
    shard.extend_from_slice(sdu);
    shard.resize(len, 0);
    shard
}

/// A group whose parity is arriving.
#[derive(Debug, Default)]
struct RxGroup {
    data: u8,
    parity: u8,
    /// Complete parity shards by index.
    shards: BTreeMap<u8, Vec<u8>>,
    /// Parity shards being reassembled, by index.
    partials: BTreeMap<u8, Partial>,
}

/// The receiving half of **fec**.
#[derive(Debug, Default)]
struct FecRx {
    /// Copies of complete SDUs a group may need to rebuild others.
    kept: BTreeMap<u32, Vec<u8>>,
    /// Groups with parity, by first sequence number.
    groups: BTreeMap<u32, RxGroup>,
    /// Bytes held in `kept` and `groups`.
    bytes: usize,
    /// Highest sequence number seen in a DATA or PARITY.
    newest: u32,
}

impl FecRx {
    fn group_bytes(g: &RxGroup) -> usize {
        g.shards.values().map(Vec::len).sum::<usize>()
            + g.partials
                .values()
                .flat_map(|p| p.frags.values())
                .map(Vec::len)
                .sum::<usize>()
    }

    /// Forgets what lies `window` or more behind the newest sequence
    /// number, then the oldest entries until `budget` more bytes fit.
    fn trim(&mut self, window: u32, limit: usize, budget: usize) {
        let horizon = self.newest.saturating_sub(window);
        while let Some((&seq, _)) = self.kept.first_key_value() {
            if seq >= horizon {
                break;
            }
            if let Some(sdu) = self.kept.remove(&seq) {
                self.bytes -= sdu.len();
            }
        }
        while let Some((&first, _)) = self.groups.first_key_value() {
            if first >= horizon {
                break;
            }
            if let Some(g) = self.groups.remove(&first) {
                self.bytes -= Self::group_bytes(&g);
            }
        }
        while self.bytes + budget > limit {
            let k = self.kept.keys().next().copied();
            let g = self.groups.keys().next().copied();
            match (k, g) {
                (Some(k), Some(g)) if g < k => {
                    if let Some(x) = self.groups.remove(&g) {
                        self.bytes -= Self::group_bytes(&x);
                    }
                }
                (Some(k), _) => {
                    if let Some(sdu) = self.kept.remove(&k) {
                        self.bytes -= sdu.len();
                    }
                }
                (None, Some(g)) => {
                    if let Some(x) = self.groups.remove(&g) {
                        self.bytes -= Self::group_bytes(&x);
                    }
                }
                (None, None) => break,
            }
        }
    }

    /// Forgets a group and the SDUs it covers.
    fn resolve(&mut self, first: u32) {
        if let Some(g) = self.groups.remove(&first) {
            self.bytes -= Self::group_bytes(&g);
            for seq in first..first.saturating_add(u32::from(g.data)) {
                if let Some(sdu) = self.kept.remove(&seq) {
                    self.bytes -= sdu.len();
                }
            }
        }
    }
}

/// What a flow holds at one end ([`FlowEndpoint::queue_lens`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueLens {
    /// SDUs complete and waiting for the application to read them.
    pub rx: usize,
    /// Fragments of written SDUs not sent yet or, with **arq**, not acknowledged.
    pub tx: usize,
}

#[derive(Debug)]
struct Flow {
    peer: Peer,
    remote: FlowId,
    name: String,
    qos: QoS,
    layers: Layers,
    state: State,
    /// Bytes of SDU per DATA on this flow.
    frag_len: usize,
    /// This end's handshake salt (encrypted flows).
    salt: [u8; SALT_LEN],
    /// Keys and counters once both salts are known (encrypted flows).
    cipher: Option<FlowCipher>,
    fec_tx: Option<FecTx>,
    fec_rx: FecRx,
    // Sending.
    next_seq: u32,
    queue: VecDeque<Outgoing>,
    in_flight: InFlight,
    queued_bytes: usize,
    rtt: Rtt,
    /// The latest send time of a fragment acknowledged (RACK's xmit_ts): one
    /// sent before it and still unacknowledged a reordering window later is lost.
    acked_sent_at: Option<Instant>,
    /// When a fragment was last acknowledged: timeouts count from here at the
    /// earliest, as TCP restarts its timer on every new acknowledgement.
    progress_at: Instant,
    pacer: Option<TokenBucket>,
    alloc_started: Instant,
    alloc_sends: u32,
    alloc_next: Instant,
    // Receiving.
    rx: Rx,
    last_heard: Instant,
    last_sent: Instant,
}

impl Flow {
    /// When each in-flight fragment counts as lost and goes again: a
    /// reordering window (a quarter of the smoothed RTT) after one smoothed
    /// RTT, once a fragment sent after it was acknowledged (RACK, RFC 8985);
    /// otherwise at its timeout, which counts from the last acknowledgement
    /// at the earliest (RFC 6298 §5.3), so a window queued behind a slow link
    /// is not sent twice while it drains. What is the same for every fragment
    /// is worked out once; [`InFlight::next_due`] applies it.
    fn resend_rule(&self, config: &Config) -> Resend {
        Resend {
            restart: self.progress_at + self.rtt.backoff(1, config),
            // The latest acknowledged send; one RTT and the reordering window.
            rack: self
                .acked_sent_at
                .zip(self.rtt.srtt.map(|srtt| srtt + srtt / 4)),
        }
    }

    /// How long an ordered flow without retransmission waits for a missing
    /// SDU once a later one is complete: the QoS `max_gap`, or on a **fec**
    /// flow three halves of the flush interval (three quarters of the
    /// bound): by then the parity of the missing SDU's group, sent at most
    /// a flush interval after that SDU, came or is lost as well.
    /// Never longer than [`Config::reorder_wait`].
    fn gap_wait(&self, config: &Config) -> Duration {
        let max_gap = Duration::from_millis(u64::from(self.qos.max_gap));
        let wait = match self.layers.fec {
            Some(fec) => (fec.flush * 3 / 2).min(max_gap),
            None => max_gap,
        };
        wait.min(config.reorder_wait)
    }

    /// What this flow waits for next, at the latest.
    fn deadline(&self, config: &Config, endpoint_now: Instant) -> Option<Instant> {
        let mut d: Option<Instant> = None;
        let mut at = |t: Instant| d = Some(d.map_or(t, |x| x.min(t)));
        match self.state {
            State::Closed { until, .. } => at(until),
            State::Allocating => {
                at(self.alloc_next);
                at(self.alloc_started + alloc_timeout(&self.layers, config));
            }
            State::Incoming | State::Up => {
                if let Some(t) = self.layers.timeout {
                    at(self.last_heard + t);
                    if self.state == State::Up {
                        at(self.last_sent + keepalive_interval(t));
                    }
                }
            }
        }
        if let Some(tx) = &self.fec_tx {
            if !tx.sdus.is_empty() && matches!(self.state, State::Up | State::Allocating) {
                at(tx.since + tx.fec.flush);
            }
        }
        if self.state == State::Up {
            let retransmit = self
                .in_flight
                .next_due(&self.resend_rule(config))
                .map(|(at, _)| at);
            let fresh = (!self.queue.is_empty() && self.in_flight.len() < config.max_in_flight)
                .then_some(endpoint_now);
            let due = match (retransmit, fresh) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(due) = due {
                // Not before the pacer lets a full datagram go.
                let paced = self
                    .pacer
                    .as_ref()
                    .map(|p| p.clone().ready_at(endpoint_now, pacer_unit(config)));
                at(paced.map_or(due, |p| p.max(due)));
            }
            if let Some(since) = self.rx.gap_since {
                at(since + self.gap_wait(config));
            }
        }
        d
    }
}

/// The bytes a pacer must hold before a DATA or PARITY may go: the largest
/// such datagram. The deadline and the send test use this one unit, so a
/// deadline that says "now" is one a send honours (a smaller datagram then
/// leaves tokens over; none overdraws).
fn pacer_unit(config: &Config) -> u64 {
    (config.max_datagram + PARITY_PREFIX_LEN) as u64
}

fn alloc_timeout(layers: &Layers, config: &Config) -> Duration {
    layers.timeout.unwrap_or(config.alloc_timeout)
}

fn keepalive_interval(timeout: Duration) -> Duration {
    (timeout / 4).max(Duration::from_millis(1))
}

/// A sans-IO flow endpoint. See the [module docs](self).
#[derive(Debug)]
pub struct FlowEndpoint {
    config: Config,
    names: HashSet<String>,
    flows: BTreeMap<FlowId, Flow>,
    /// (peer, its flow id) → our flow id, for flows a peer allocated.
    remotes: HashMap<(Peer, FlowId), FlowId>,
    next_id: u32,
    outbox: VecDeque<(Peer, Vec<u8>)>,
    events: VecDeque<Event>,
    /// Flow to start the next transmit scan at, for fairness.
    cursor: FlowId,
    now: Instant,
    stats: Stats,
    /// Handshake salts (keyed endpoints).
    salts: Option<SaltSource>,
}

impl FlowEndpoint {
    /// An endpoint with `config`, which must have no [`Config::key`]
    /// ([`FlowEndpoint::seeded`] builds keyed ones).
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        if config.key.is_some() {
            return Err(ConfigError::KeyWithoutSeed);
        }
        Self::build(config, None)
    }

    /// An endpoint with `config` whose handshake salts come from `seed`
    /// (HMAC-SHA256 over a counter, [`SaltSource`]). The seed must be
    /// secret and fresh for every endpoint, as [`crate::seal::random_seed`]
    /// gives; tests and replays use a fixed one.
    pub fn seeded(config: Config, seed: [u8; 32]) -> Result<Self, ConfigError> {
        Self::build(config, Some(SaltSource::new(seed)))
    }

    fn build(config: Config, salts: Option<SaltSource>) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(FlowEndpoint {
            salts,
            config,
            names: HashSet::new(),
            flows: BTreeMap::new(),
            remotes: HashMap::new(),
            next_id: 1,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            cursor: FlowId(0),
            now: Instant::ZERO,
            stats: Stats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The latest instant handed in (by a `handle_*`, `poll_transmit` or
    /// command), for applications that answer events without a clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Accepts ALLOCs for `name` from now on (as [`Event::Alloc`]).
    pub fn register(&mut self, name: &str) -> Result<(), FlowError> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(FlowError::BadName);
        }
        self.names.insert(name.to_owned());
        Ok(())
    }

    /// Refuses ALLOCs for `name` from now on; existing flows stay.
    pub fn unregister(&mut self, name: &str) {
        self.names.remove(name);
    }

    /// Asks `peer` for a flow to `name` with `qos`. The answer comes as
    /// [`Event::Up`], [`Event::Refused`], or [`Event::Down`] when none
    /// comes within the QoS timeout. SDUs written before it is up wait.
    pub fn alloc(
        &mut self,
        now: Instant,
        peer: Peer,
        name: &str,
        qos: QoS,
    ) -> Result<FlowId, FlowError> {
        self.now = self.now.max(now);
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(FlowError::BadName);
        }
        let layers = Layers::for_qos(&qos);
        let salt = if layers.aead {
            match (&self.config.key, self.salts.as_mut()) {
                (Some(_), Some(salts)) => salts.draw(),
                _ => return Err(FlowError::NoKey),
            }
        } else {
            [0; SALT_LEN]
        };
        let id = self.fresh_id().ok_or(FlowError::TooManyFlows)?;
        let mut flow = self.new_flow(now, peer, FlowId(0), name, qos, State::Allocating);
        flow.salt = salt;
        flow.alloc_sends = 1;
        flow.alloc_next = now + flow.rtt.backoff(1, &self.config);
        self.flows.insert(id, flow);
        self.send_alloc(id);
        Ok(id)
    }

    /// Accepts a flow announced by [`Event::Alloc`].
    pub fn accept(&mut self, now: Instant, flow: FlowId) -> Result<(), FlowError> {
        self.now = self.now.max(now);
        let f = self.flows.get_mut(&flow).ok_or(FlowError::NoSuchFlow)?;
        if f.state != State::Incoming {
            return Err(FlowError::WrongState);
        }
        f.state = State::Up;
        f.last_sent = now;
        let (peer, remote) = (f.peer, f.remote);
        // Sealed (with the acceptor's salt) on an encrypted flow.
        self.push_control(peer, flow, remote, Message::AllocOk);
        Ok(())
    }

    /// Refuses a flow announced by [`Event::Alloc`].
    pub fn refuse(&mut self, now: Instant, flow: FlowId) -> Result<(), FlowError> {
        self.now = self.now.max(now);
        let until = now + self.config.linger;
        let f = self.flows.get_mut(&flow).ok_or(FlowError::NoSuchFlow)?;
        if f.state != State::Incoming {
            return Err(FlowError::WrongState);
        }
        f.state = State::Closed {
            until,
            refusal: Some(Reason::Refused),
        };
        let (peer, remote) = (f.peer, f.remote);
        self.push_control(peer, flow, remote, Message::AllocRefused(Reason::Refused));
        Ok(())
    }

    /// Queues `sdu` for sending on `flow`, cut into fragments.
    pub fn write(&mut self, now: Instant, flow: FlowId, sdu: &[u8]) -> Result<(), FlowError> {
        self.now = self.now.max(now);
        let max = self.config.max_sdu;
        let budget = self.config.send_buffer;
        let f = self.flows.get_mut(&flow).ok_or(FlowError::NoSuchFlow)?;
        let frag_len = f.frag_len;
        if !matches!(f.state, State::Up | State::Allocating) {
            return Err(FlowError::WrongState);
        }
        if sdu.len() > max {
            return Err(FlowError::TooLarge {
                len: sdu.len(),
                max,
            });
        }
        if f.queued_bytes + sdu.len() > budget && f.queued_bytes > 0 {
            return Err(FlowError::WouldBlock);
        }
        if f.next_seq == u32::MAX {
            return Err(FlowError::SequenceExhausted);
        }
        let seq = f.next_seq;
        f.next_seq += 1;
        let count = sdu.len().div_ceil(frag_len).max(1);
        // `Config::validate` keeps `count` within u16.
        let count = u16::try_from(count).unwrap_or(u16::MAX);
        for index in 0..count {
            let start = usize::from(index) * frag_len;
            let end = (start + frag_len).min(sdu.len());
            f.queue.push_back(Outgoing {
                seq,
                frag: Frag { index, count },
                parity: None,
                bytes: sdu[start.min(end)..end].to_vec(),
                sends: 0,
                sent_at: now,
                deadline: now,
            });
        }
        f.queued_bytes += sdu.len();
        if let Some(tx) = f.fec_tx.as_mut() {
            if tx.sdus.is_empty() {
                tx.first = seq;
                tx.since = now;
            }
            tx.sdus.push(sdu.to_vec());
            if tx.sdus.len() >= usize::from(tx.fec.data) {
                close_group(f, now);
            }
        }
        Ok(())
    }

    /// How much `flow` holds: SDUs complete and waiting to be read, and
    /// fragments written but not yet sent, or on an **arq** flow not yet
    /// acknowledged (Ouroboros' receive and send queue lengths). `None` for
    /// an unknown flow.
    pub fn queue_lens(&self, flow: FlowId) -> Option<QueueLens> {
        let f = self.flows.get(&flow)?;
        let is_data = |o: &Outgoing| o.parity.is_none();
        Some(QueueLens {
            rx: f.rx.queue.len(),
            tx: f.queue.iter().filter(|o| is_data(o)).count()
                + f.in_flight.values().filter(|o| is_data(o)).count(),
        })
    }

    /// The next SDU received on `flow`, if any.
    pub fn read(&mut self, flow: FlowId) -> Option<Vec<u8>> {
        let f = self.flows.get_mut(&flow)?;
        let sdu = f.rx.queue.pop_front()?;
        f.rx.bytes -= sdu.len();
        Some(sdu)
    }

    /// Ends `flow`: tells the peer (DEALLOC) and forgets what was not sent.
    pub fn dealloc(&mut self, now: Instant, flow: FlowId) -> Result<(), FlowError> {
        self.now = self.now.max(now);
        let f = self.flows.get(&flow).ok_or(FlowError::NoSuchFlow)?;
        let (peer, remote, state) = (f.peer, f.remote, f.state);
        let mut refusal = None;
        match state {
            State::Closed { .. } => return Err(FlowError::WrongState),
            State::Up => self.push_control(peer, flow, remote, Message::Dealloc),
            State::Incoming => {
                refusal = Some(Reason::Refused);
                self.push_control(peer, flow, remote, Message::AllocRefused(Reason::Refused));
            }
            State::Allocating => {}
        }
        self.close(flow, now, refusal);
        Ok(())
    }

    /// The layers `flow` runs.
    pub fn layers(&self, flow: FlowId) -> Option<Layers> {
        self.flows.get(&flow).map(|f| f.layers)
    }

    /// The QoS of `flow`.
    pub fn qos(&self, flow: FlowId) -> Option<QoS> {
        self.flows.get(&flow).map(|f| f.qos)
    }

    /// The peer of `flow`.
    pub fn peer(&self, flow: FlowId) -> Option<Peer> {
        self.flows.get(&flow).map(|f| f.peer)
    }

    /// True while `flow` is up.
    pub fn is_up(&self, flow: FlowId) -> bool {
        self.flows.get(&flow).is_some_and(|f| f.state == State::Up)
    }

    /// Bytes written on `flow` and not yet sent (or, with **arq**, not yet
    /// acknowledged).
    pub fn unsent(&self, flow: FlowId) -> usize {
        self.flows.get(&flow).map_or(0, |f| f.queued_bytes)
    }

    /// Bytes `flow` holds for reading (fragments, SDUs waiting for order,
    /// SDUs not yet read).
    pub fn held(&self, flow: FlowId) -> usize {
        self.flows.get(&flow).map_or(0, |f| f.rx.bytes)
    }

    /// Flows held, closed ones lingering included.
    pub fn flow_count(&self) -> usize {
        self.flows.len()
    }

    fn fresh_id(&mut self) -> Option<FlowId> {
        if self.flows.len() >= self.config.max_flows {
            return None;
        }
        loop {
            let id = FlowId(self.next_id);
            self.next_id = self.next_id.wrapping_add(1).max(1);
            if !self.flows.contains_key(&id) {
                return Some(id);
            }
        }
    }

    fn new_flow(
        &self,
        now: Instant,
        peer: Peer,
        remote: FlowId,
        name: &str,
        qos: QoS,
        state: State,
    ) -> Flow {
        let layers = Layers::for_qos(&qos);
        let pacer = layers.pacer.map(|bits| {
            let rate = (bits / 8).max(1);
            let burst = (2 * self.config.max_datagram as u64).max(rate / 100);
            TokenBucket::new(rate, burst, now)
        });
        let frag_len = self.config.fragment_len_for(&layers);
        let fec_tx = layers
            .fec
            .filter(|_| frag_len > PARITY_PREFIX_LEN)
            .map(|fec| FecTx {
                fec,
                first: 0,
                sdus: Vec::new(),
                since: now,
            });
        Flow {
            peer,
            remote,
            name: name.to_owned(),
            qos,
            layers,
            state,
            frag_len,
            salt: [0; SALT_LEN],
            cipher: None,
            fec_tx,
            fec_rx: FecRx::default(),
            next_seq: 0,
            queue: VecDeque::new(),
            in_flight: InFlight::default(),
            queued_bytes: 0,
            rtt: Rtt::new(self.config.initial_rto),
            acked_sent_at: None,
            progress_at: now,
            pacer,
            alloc_started: now,
            alloc_sends: 0,
            alloc_next: now,
            rx: Rx::default(),
            last_heard: now,
            last_sent: now,
        }
    }

    fn send_alloc(&mut self, id: FlowId) {
        let Some(f) = self.flows.get(&id) else { return };
        let message = match (&self.config.key, f.layers.aead) {
            (Some(_), true) => Message::SealedAlloc {
                qos: f.qos,
                name: &f.name,
                salt: f.salt,
                tag: [0; TAG_LEN],
            },
            _ => Message::Alloc {
                qos: f.qos,
                name: &f.name,
            },
        };
        let repr = Repr {
            src: id,
            dst: FlowId(0),
            message,
        };
        let mut bytes = Vec::with_capacity(repr.buffer_len());
        repr.emit_vec(&mut bytes);
        if let (Some(key), true) = (&self.config.key, repr.is_sealed()) {
            let at = bytes.len() - TAG_LEN;
            let tag = key.alloc_tag(&f.salt, &bytes[..at]);
            bytes[at..].copy_from_slice(&tag);
        }
        let peer = f.peer;
        self.push_datagram(peer, bytes);
    }

    /// Queues a control message of flow `src`: sealed on an encrypted flow
    /// (an ALLOC_OK then carries this end's salt and its tag).
    fn push_control(&mut self, peer: Peer, src: FlowId, dst: FlowId, message: Message<'_>) {
        let now = self.now;
        let mut bytes = Vec::new();
        match self.flows.get_mut(&src) {
            Some(f) => {
                f.last_sent = now;
                emit_on_flow(f, src, dst, message, &mut bytes);
            }
            None => Repr { src, dst, message }.emit_vec(&mut bytes),
        }
        self.push_datagram(peer, bytes);
    }

    fn push_datagram(&mut self, peer: Peer, bytes: Vec<u8>) {
        if self.outbox.len() >= self.config.max_outbox {
            self.stats.outbox_full += 1;
            return;
        }
        self.outbox.push_back((peer, bytes));
    }

    /// Marks `flow` closed (kept for the linger to answer repeats).
    fn close(&mut self, flow: FlowId, now: Instant, refusal: Option<Reason>) {
        if let Some(f) = self.flows.get_mut(&flow) {
            f.state = State::Closed {
                until: now + self.config.linger,
                refusal,
            };
            f.queue.clear();
            f.in_flight.clear();
            f.queued_bytes = 0;
            // SDUs already received stay readable until the flow is forgotten.
            let queue = core::mem::take(&mut f.rx.queue);
            f.rx = Rx {
                bytes: queue.iter().map(Vec::len).sum(),
                queue,
                ..Rx::default()
            };
        }
    }

    /// Forgets `flow` at once.
    fn remove(&mut self, flow: FlowId) {
        if let Some(f) = self.flows.remove(&flow) {
            if self.remotes.get(&(f.peer, f.remote)) == Some(&flow) {
                self.remotes.remove(&(f.peer, f.remote));
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn on_alloc(
        &mut self,
        now: Instant,
        from: Peer,
        src: FlowId,
        qos: QoS,
        name: &str,
        sealed: Option<([u8; SALT_LEN], [u8; TAG_LEN], &[u8])>,
    ) {
        if let Some(&id) = self.remotes.get(&(from, src)) {
            // A repeat: the same answer again.
            let Some(f) = self.flows.get_mut(&id) else {
                return;
            };
            f.last_heard = now;
            match f.state {
                State::Up => self.push_control(from, id, src, Message::AllocOk),
                State::Closed {
                    refusal: Some(r), ..
                } => self.push_control(from, id, src, Message::AllocRefused(r)),
                _ => {}
            }
            return;
        }
        if !self.names.contains(name) {
            self.push_control(
                from,
                FlowId(0),
                src,
                Message::AllocRefused(Reason::NoSuchName),
            );
            return;
        }
        let Some(id) = self.fresh_id() else {
            self.stats.refused_full += 1;
            self.push_control(
                from,
                FlowId(0),
                src,
                Message::AllocRefused(Reason::NoResources),
            );
            return;
        };
        let mut flow = self.new_flow(now, from, src, name, qos, State::Incoming);
        // An encrypted flow needs a sealed ALLOC under our key; a plain
        // one, a plain ALLOC.
        let refusal = match (flow.layers.aead, sealed) {
            (false, None) => None,
            (true, None) | (false, Some(_)) => Some(Reason::UnsupportedQoS),
            (true, Some((salt, tag, head))) => match (&self.config.key, self.salts.as_mut()) {
                (Some(key), Some(salts)) if key.check_alloc_tag(&salt, head, &tag) => {
                    flow.salt = salts.draw();
                    flow.cipher = Some(FlowCipher::acceptor(key, &salt, &flow.salt));
                    None
                }
                (Some(_), Some(_)) => Some(Reason::KeyMismatch),
                _ => Some(Reason::NoKey),
            },
        };
        if let Some(r) = refusal {
            flow.state = State::Closed {
                until: now + self.config.linger,
                refusal: Some(r),
            };
        }
        self.flows.insert(id, flow);
        self.remotes.insert((from, src), id);
        if let Some(r) = refusal {
            self.push_control(from, id, src, Message::AllocRefused(r));
            return;
        }
        self.events.push_back(Event::Alloc {
            flow: id,
            peer: from,
            name: name.to_owned(),
            qos,
        });
    }

    /// A sealed ALLOC_OK: the acceptor's salt and proof it holds our key.
    #[allow(clippy::too_many_arguments)]
    fn on_sealed_alloc_ok(
        &mut self,
        now: Instant,
        from: Peer,
        src: FlowId,
        dst: FlowId,
        salt: [u8; SALT_LEN],
        tag: [u8; TAG_LEN],
        head: &[u8],
    ) {
        let Some(f) = self.flows.get_mut(&dst) else {
            self.stats.unknown_flow += 1;
            return;
        };
        if f.peer != from || !f.layers.aead {
            self.stats.unknown_flow += 1;
            return;
        }
        if f.state != State::Allocating {
            // A repeat answer to a repeated ALLOC.
            self.stats.duplicates += 1;
            return;
        }
        let Some(key) = &self.config.key else {
            self.stats.unknown_flow += 1;
            return;
        };
        let cipher = FlowCipher::allocator(key, &f.salt, &salt);
        if !cipher.check_confirm_tag(head, &tag) {
            self.stats.auth_failed += 1;
            return;
        }
        f.cipher = Some(cipher);
        self.on_flow_message(now, from, src, dst, Message::AllocOk, true);
    }

    /// A sealed datagram of flow `dst`: opened in place, then handled as
    /// the message inside.
    fn on_sealed(
        &mut self,
        now: Instant,
        from: Peer,
        src: FlowId,
        dst: FlowId,
        (kind, seq, frag, pn): (Kind, u32, Frag, u64),
        data: &mut [u8],
    ) {
        let Some(f) = self.flows.get_mut(&dst) else {
            self.stats.unknown_flow += 1;
            return;
        };
        if f.peer != from || f.remote != src {
            self.stats.unknown_flow += 1;
            return;
        }
        let Some(c) = f.cipher.as_mut() else {
            // A plain flow, or keys not agreed yet.
            self.stats.unknown_flow += 1;
            return;
        };
        match c.open(pn, data) {
            Ok(()) => {}
            Err(OpenError::Replayed) => {
                self.stats.replayed += 1;
                return;
            }
            Err(OpenError::Forged) => {
                self.stats.auth_failed += 1;
                return;
            }
        }
        let body = &data[SEALED_HEADER_LEN..data.len() - TAG_LEN];
        match Message::open(kind, seq, frag, body) {
            Ok(m) => self.on_flow_message(now, from, src, dst, m, true),
            Err(_) => self.stats.malformed += 1,
        }
    }

    /// Handles a datagram addressed to our flow `dst`; `sealed`: it came
    /// sealed (or is a checked sealed ALLOC_OK).
    fn on_flow_message(
        &mut self,
        now: Instant,
        from: Peer,
        src: FlowId,
        dst: FlowId,
        m: Message<'_>,
        sealed: bool,
    ) {
        let Some(f) = self.flows.get_mut(&dst) else {
            self.stats.unknown_flow += 1;
            return;
        };
        if f.peer != from {
            self.stats.unknown_flow += 1;
            return;
        }
        if f.layers.aead && !sealed && !matches!(m, Message::AllocRefused(_)) {
            // An encrypted flow takes nothing in the clear but a refusal.
            self.stats.auth_failed += 1;
            return;
        }
        let known = f.remote == src;
        match (f.state, m) {
            (State::Allocating, Message::AllocOk | Message::Data { .. }) => {
                if f.alloc_sends == 1 {
                    let r = now.saturating_since(f.alloc_started);
                    f.rtt.sample(r, &self.config);
                }
                f.remote = src;
                f.state = State::Up;
                f.last_heard = now;
                f.last_sent = now;
                self.events.push_back(Event::Up(dst));
                if let Message::Data { .. } = m {
                    self.on_flow_message(now, from, src, dst, m, sealed);
                }
            }
            (State::Allocating, Message::AllocRefused(reason)) => {
                self.events.push_back(Event::Refused { flow: dst, reason });
                self.remove(dst);
            }
            (_, _) if !known => self.stats.unknown_flow += 1,
            (State::Up, Message::Data { seq, frag, payload }) => {
                f.last_heard = now;
                self.on_data(now, dst, seq, frag, payload);
            }
            (
                State::Up,
                Message::Parity {
                    first,
                    frag,
                    group,
                    shard,
                },
            ) => {
                f.last_heard = now;
                self.on_parity(now, dst, first, frag, group, shard);
            }
            (State::Up, Message::Ack { seq, frag }) => {
                f.last_heard = now;
                if let Some(o) = f.in_flight.remove(&(seq, frag.index)) {
                    if o.sends == 1 {
                        let r = now.saturating_since(o.sent_at);
                        f.rtt.sample(r, &self.config);
                    }
                    f.acked_sent_at = f.acked_sent_at.max(Some(o.sent_at));
                    f.progress_at = now;
                    f.queued_bytes -= o.bytes.len();
                    if f.queued_bytes == 0 && f.queue.is_empty() && f.in_flight.is_empty() {
                        self.events.push_back(Event::Drained(dst));
                    }
                } else {
                    self.stats.duplicates += 1;
                }
            }
            (State::Up | State::Incoming, Message::Keepalive | Message::AllocOk) => {
                f.last_heard = now;
            }
            (State::Up | State::Incoming, Message::Dealloc) => {
                self.events.push_back(Event::Closed(dst));
                self.close(dst, now, None);
            }
            _ => self.stats.unknown_flow += 1,
        }
    }

    fn on_data(&mut self, now: Instant, id: FlowId, seq: u32, frag: Frag, payload: &[u8]) {
        let config = &self.config;
        let Some(f) = self.flows.get_mut(&id) else {
            return;
        };
        let arq = f.layers.arq;
        let ordered = f.layers.reorder;
        let (peer, remote) = (f.peer, f.remote);
        let max_fragments = config.max_sdu.div_ceil(f.frag_len.max(1)).max(1);
        if usize::from(frag.count) > max_fragments || payload.len() > f.frag_len {
            self.stats.dropped_bad_fragment += 1;
            return;
        }
        let rx = &mut f.rx;
        if seq < rx.base || rx.done.contains(&seq) || rx.ready.contains_key(&seq) {
            self.stats.duplicates += 1;
            if arq {
                self.ack(peer, id, remote, seq, frag);
            }
            return;
        }
        if seq - rx.base >= config.window {
            if arq {
                // The sender repeats it once the window moved.
                self.stats.dropped_window += 1;
                return;
            }
            let new_base = seq - config.window + 1;
            let lost = slide(rx, new_base, ordered);
            self.stats.sdus_lost += lost;
        }
        if let Some(p) = rx.partials.get(&seq) {
            if p.count != frag.count {
                self.stats.dropped_bad_fragment += 1;
                return;
            }
            if p.frags.contains_key(&frag.index) {
                self.stats.duplicates += 1;
                if arq {
                    self.ack(peer, id, remote, seq, frag);
                }
                return;
            }
        }
        if rx.bytes + payload.len() > config.recv_buffer {
            // Later SDUs may fill the buffer while the oldest one misses a
            // fragment; shutting that one out too would stop the flow for
            // good (with retransmission, nothing else can free the room).
            // It is taken while what waits for the reader leaves room.
            let unread: usize = rx.queue.iter().map(Vec::len).sum();
            if seq != rx.base || unread + payload.len() > config.recv_buffer {
                self.stats.dropped_buffer += 1;
                return;
            }
        }
        rx.bytes += payload.len();
        let p = rx.partials.entry(seq).or_insert_with(|| Partial {
            count: frag.count,
            frags: BTreeMap::new(),
        });
        p.frags.insert(frag.index, payload.to_vec());
        if p.frags.len() == usize::from(p.count) {
            let p = rx.partials.remove(&seq).unwrap_or_default();
            let mut sdu = Vec::with_capacity(p.frags.values().map(Vec::len).sum());
            for bytes in p.frags.into_values() {
                sdu.extend_from_slice(&bytes);
            }
            if f.layers.fec.is_some() {
                keep_for_fec(&mut f.fec_rx, seq, &sdu, config);
            }
            if finish_sdu(&mut f.rx, now, seq, sdu, ordered, arq) {
                self.events.push_back(Event::Readable(id));
            }
            if f.layers.fec.is_some() {
                let covering = f
                    .fec_rx
                    .groups
                    .range(..=seq)
                    .next_back()
                    .filter(|(&first, g)| seq - first < u32::from(g.data))
                    .map(|(&first, _)| first);
                if let Some(first) = covering {
                    self.try_rebuild(now, id, first);
                }
            }
        }
        if arq {
            self.ack(peer, id, remote, seq, frag);
        }
    }

    /// A fragment of parity shard `group.index` of the group starting at `first`.
    fn on_parity(
        &mut self,
        now: Instant,
        id: FlowId,
        first: u32,
        frag: Frag,
        group: Group,
        shard: &[u8],
    ) {
        let config = &self.config;
        let Some(f) = self.flows.get_mut(&id) else {
            return;
        };
        let Some(fec) = f.layers.fec else {
            self.stats.unknown_flow += 1;
            return;
        };
        let piece = f.frag_len.saturating_sub(PARITY_PREFIX_LEN).max(1);
        let max_fragments = (config.max_sdu + SHARD_LEN_PREFIX).div_ceil(piece);
        // A shard is at least its 4 length bytes, cut into pieces of which
        // none is empty.
        if usize::from(frag.count) > max_fragments
            || shard.is_empty()
            || shard.len() > piece
            || group.data > fec.data
            || group.parity > fec.data
        {
            self.stats.dropped_bad_fragment += 1;
            return;
        }
        let end = first.saturating_add(u32::from(group.data));
        if end <= f.rx.base {
            self.stats.duplicates += 1;
            return;
        }
        if first.saturating_sub(f.rx.base) >= config.window {
            self.stats.dropped_window += 1;
            return;
        }
        let rx = &mut f.fec_rx;
        rx.newest = rx.newest.max(end - 1);
        rx.trim(config.window, config.recv_buffer, shard.len());
        if !rx.groups.contains_key(&first) && rx.groups.len() >= MAX_FEC_GROUPS {
            if let Some((&oldest, _)) = rx.groups.first_key_value() {
                if oldest > first {
                    self.stats.dropped_window += 1;
                    return;
                }
                if let Some(g) = rx.groups.remove(&oldest) {
                    rx.bytes -= FecRx::group_bytes(&g);
                }
            }
        }
        if rx.bytes + shard.len() > config.recv_buffer {
            self.stats.dropped_buffer += 1;
            return;
        }
        let g = rx.groups.entry(first).or_insert_with(|| RxGroup {
            data: group.data,
            parity: group.parity,
            ..RxGroup::default()
        });
        if (g.data, g.parity) != (group.data, group.parity) {
            self.stats.dropped_bad_fragment += 1;
            return;
        }
        if g.shards.contains_key(&group.index) {
            self.stats.duplicates += 1;
            return;
        }
        let p = g.partials.entry(group.index).or_insert_with(|| Partial {
            count: frag.count,
            frags: BTreeMap::new(),
        });
        if p.count != frag.count {
            self.stats.dropped_bad_fragment += 1;
            return;
        }
        if p.frags.contains_key(&frag.index) {
            self.stats.duplicates += 1;
            return;
        }
        p.frags.insert(frag.index, shard.to_vec());
        rx.bytes += shard.len();
        self.stats.parity_received += 1;
        if p.frags.len() == usize::from(p.count) {
            let p = g.partials.remove(&group.index).unwrap_or_default();
            let whole: Vec<u8> = p.frags.into_values().flatten().collect();
            g.shards.insert(group.index, whole);
            self.try_rebuild(now, id, first);
        }
    }

    /// Rebuilds the missing SDUs of the group starting at `first` if it
    /// holds enough shards; forgets the group once nothing is missing.
    fn try_rebuild(&mut self, now: Instant, id: FlowId, first: u32) {
        let max_sdu = self.config.max_sdu;
        let Some(f) = self.flows.get_mut(&id) else {
            return;
        };
        let (ordered, arq) = (f.layers.reorder, f.layers.arq);
        let Some(g) = f.fec_rx.groups.get(&first) else {
            return;
        };
        let (data, parity) = (usize::from(g.data), usize::from(g.parity));
        let Some(len) = g.shards.values().next().map(Vec::len) else {
            return;
        };
        if len < SHARD_LEN_PREFIX || g.shards.values().any(|s| s.len() != len) {
            // Shards of one group differ in length: nothing to rebuild from.
            f.fec_rx.resolve(first);
            return;
        }
        let mut shards: Vec<Option<Vec<u8>>> = (0..data)
            .map(|i| {
                let seq = first.wrapping_add(i as u32);
                f.fec_rx
                    .kept
                    .get(&seq)
                    .filter(|sdu| sdu.len() + SHARD_LEN_PREFIX <= len)
                    .map(|sdu| shard_of(sdu, len))
            })
            .collect();
        let missing: Vec<usize> = (0..data).filter(|&i| shards[i].is_none()).collect();
        if missing.is_empty() {
            f.fec_rx.resolve(first);
            return;
        }
        shards.extend((0..parity).map(|j| g.shards.get(&(j as u8)).cloned()));
        let present = shards.iter().filter(|s| s.is_some()).count();
        if present < data {
            return;
        }
        let rebuilt = ReedSolomon::new(data, parity)
            .ok()
            .and_then(|rs| rs.reconstruct_data(&mut shards).ok());
        f.fec_rx.resolve(first);
        if rebuilt.is_none() {
            return;
        }
        let mut readable = false;
        for i in missing {
            let Some(shard) = shards[i].take() else {
                continue;
            };
            let n = u32::from_be_bytes([shard[0], shard[1], shard[2], shard[3]]) as usize;
            if n > len - SHARD_LEN_PREFIX || n > max_sdu {
                self.stats.dropped_bad_fragment += 1;
                continue;
            }
            let sdu = shard[SHARD_LEN_PREFIX..SHARD_LEN_PREFIX + n].to_vec();
            let seq = first.wrapping_add(i as u32);
            let rx = &mut f.rx;
            if seq < rx.base || rx.done.contains(&seq) || rx.ready.contains_key(&seq) {
                continue;
            }
            if seq - rx.base >= self.config.window {
                let lost = slide(rx, seq - self.config.window + 1, ordered);
                self.stats.sdus_lost += lost;
            }
            if let Some(p) = rx.partials.remove(&seq) {
                rx.bytes -= p.frags.values().map(Vec::len).sum::<usize>();
            }
            if rx.bytes + sdu.len() > self.config.recv_buffer {
                self.stats.dropped_buffer += 1;
                continue;
            }
            rx.bytes += sdu.len();
            self.stats.sdus_recovered += 1;
            readable |= finish_sdu(rx, now, seq, sdu, ordered, arq);
        }
        if readable {
            self.events.push_back(Event::Readable(id));
        }
    }

    fn ack(&mut self, peer: Peer, id: FlowId, remote: FlowId, seq: u32, frag: Frag) {
        self.stats.acks_sent += 1;
        self.push_control(peer, id, remote, Message::Ack { seq, frag });
    }

    /// Skips the missing SDUs an unreliable ordered flow waited for too long.
    fn skip_gap(&mut self, now: Instant, id: FlowId) {
        let Some(f) = self.flows.get_mut(&id) else {
            return;
        };
        let wait = f.gap_wait(&self.config);
        let rx = &mut f.rx;
        let was_empty = rx.queue.is_empty();
        // Each gap in turn whose first waiting SDU waited long enough.
        while let Some(since) = rx.gap_since {
            if now < since + wait {
                break;
            }
            if let Some(&first) = rx.ready.keys().next() {
                let lost = slide(rx, first, true);
                self.stats.sdus_lost += lost;
            }
            rx.gap_since = oldest_ready(rx);
        }
        if was_empty && !rx.queue.is_empty() {
            self.events.push_back(Event::Readable(id));
        }
    }

    /// The next DATA of flow `id` due at `now`, moved into the in-flight
    /// set when the flow retransmits.
    fn next_data(&mut self, now: Instant, id: FlowId, buf: &mut Vec<u8>) -> Option<Peer> {
        let config = &self.config;
        let f = self.flows.get_mut(&id)?;
        if f.state != State::Up {
            return None;
        }
        let due = f
            .in_flight
            .next_due(&f.resend_rule(config))
            .filter(|&(at, _)| at <= now)
            .map(|(_, k)| k);
        let (key, fresh) = match due {
            Some(k) => (Some(k), false),
            None if !f.queue.is_empty() && f.in_flight.len() < config.max_in_flight => (None, true),
            None => return None,
        };
        let len = match key {
            Some(k) => f.in_flight.get(&k)?.bytes.len(),
            None => f.queue.front()?.bytes.len(),
        } + HEADER_LEN
            + PARITY_PREFIX_LEN
            + if f.layers.aead { SEAL_OVERHEAD } else { 0 };
        if let Some(p) = f.pacer.as_mut() {
            if p.allowance(now, pacer_unit(config)) == 0 {
                return None;
            }
            p.spend(now, len as u64);
        }
        let mut o = match key {
            Some(k) => f.in_flight.remove(&k)?,
            None => f.queue.pop_front()?,
        };
        let message = match o.parity {
            Some(group) => Message::Parity {
                first: o.seq,
                frag: o.frag,
                group,
                shard: &o.bytes,
            },
            None => Message::Data {
                seq: o.seq,
                frag: o.frag,
                payload: &o.bytes,
            },
        };
        let remote = f.remote;
        emit_on_flow(f, id, remote, message, buf);
        f.last_sent = now;
        if o.parity.is_some() {
            self.stats.parity_sent += 1;
        } else if fresh {
            self.stats.data_sent += 1;
        } else {
            self.stats.data_retransmitted += 1;
        }
        if f.layers.arq {
            o.sends += 1;
            o.sent_at = now;
            o.deadline = now + f.rtt.backoff(o.sends, config);
            f.in_flight.insert(o);
        } else {
            f.queued_bytes -= o.bytes.len();
            if f.queue.is_empty() {
                self.events.push_back(Event::Drained(id));
            }
        }
        Some(f.peer)
    }
}

/// Writes `message` of flow `f` (our id `src`, the peer's `dst`) into
/// `out`: sealed on an encrypted flow whose keys are known, where an
/// ALLOC_OK becomes a sealed one with this end's salt; plain otherwise and
/// for ALLOC_REFUSED.
fn emit_on_flow(f: &mut Flow, src: FlowId, dst: FlowId, message: Message<'_>, out: &mut Vec<u8>) {
    out.clear();
    let Some(c) = f.cipher.as_mut() else {
        Repr { src, dst, message }.emit_vec(out);
        return;
    };
    if let Message::AllocOk = message {
        let repr = Repr {
            src,
            dst,
            message: Message::SealedAllocOk {
                salt: f.salt,
                tag: [0; TAG_LEN],
            },
        };
        repr.emit_vec(out);
        let at = out.len() - TAG_LEN;
        let tag = c.confirm_tag(&out[..at]);
        out[at..].copy_from_slice(&tag);
        return;
    }
    let repr = Repr { src, dst, message };
    match repr.emit_to_seal(c.next_pn(), out) {
        Ok(body) => c.seal(out, 0, body),
        Err(_) => {
            out.clear();
            repr.emit_vec(out);
        }
    }
}

/// Closes the group `f` is filling: its parity shards, cut into PARITY
/// fragments, join the send queue behind its SDUs.
fn close_group(f: &mut Flow, now: Instant) {
    let Some(tx) = f.fec_tx.as_mut() else {
        return;
    };
    let Some((first, group, shards)) = tx.close() else {
        return;
    };
    let piece = f.frag_len.saturating_sub(PARITY_PREFIX_LEN).max(1);
    for (j, shard) in shards.into_iter().enumerate() {
        let Ok(count) = u16::try_from(shard.len().div_ceil(piece).max(1)) else {
            continue;
        };
        for index in 0..count {
            let start = usize::from(index) * piece;
            let end = (start + piece).min(shard.len());
            f.queued_bytes += end - start;
            f.queue.push_back(Outgoing {
                seq: first,
                frag: Frag { index, count },
                parity: Some(Group {
                    index: j as u8,
                    ..group
                }),
                bytes: shard[start..end].to_vec(),
                sends: 0,
                sent_at: now,
                deadline: now,
            });
        }
    }
}

/// Keeps a copy of a complete SDU of a **fec** flow for rebuilding others.
fn keep_for_fec(rx: &mut FecRx, seq: u32, sdu: &[u8], config: &Config) {
    rx.newest = rx.newest.max(seq);
    rx.trim(config.window, config.recv_buffer, sdu.len());
    if rx.bytes + sdu.len() <= config.recv_buffer {
        rx.bytes += sdu.len();
        rx.kept.insert(seq, sdu.to_vec());
    }
}

/// Files the complete SDU `seq` (its bytes already counted in `rx.bytes`):
/// handed out at once, or kept until its turn on an ordered flow. True if
/// the application's queue went from empty to not empty.
fn finish_sdu(rx: &mut Rx, now: Instant, seq: u32, sdu: Vec<u8>, ordered: bool, arq: bool) -> bool {
    let was_empty = rx.queue.is_empty();
    if ordered {
        rx.ready.insert(seq, (now, sdu));
    } else {
        rx.queue.push_back(sdu);
        rx.done.insert(seq);
    }
    advance(rx, ordered);
    if ordered && !arq {
        rx.gap_since = oldest_ready(rx);
    }
    was_empty && !rx.queue.is_empty()
}

/// When the longest-waiting complete SDU of an ordered flow completed.
fn oldest_ready(rx: &Rx) -> Option<Instant> {
    rx.ready.values().map(|(t, _)| *t).min()
}

/// Moves `rx.base` up to `new_base`, handing out the complete SDUs below it
/// in order and giving up the rest. Returns how many SDUs were given up.
fn slide(rx: &mut Rx, new_base: u32, ordered: bool) -> u64 {
    let mut lost = 0;
    while rx.base < new_base {
        let seq = rx.base;
        if ordered {
            if let Some((_, sdu)) = rx.ready.remove(&seq) {
                rx.queue.push_back(sdu);
            } else {
                lost += 1;
            }
        } else if !rx.done.remove(&seq) {
            lost += 1;
        }
        if let Some(p) = rx.partials.remove(&seq) {
            rx.bytes -= p.frags.values().map(Vec::len).sum::<usize>();
        }
        rx.base += 1;
        // Jump over a stretch with nothing held.
        let next_held = [
            rx.ready.keys().next(),
            rx.done.iter().next(),
            rx.partials.keys().next(),
        ]
        .into_iter()
        .flatten()
        .min()
        .copied();
        let jump_to = next_held.unwrap_or(new_base).min(new_base);
        if jump_to > rx.base {
            lost += u64::from(jump_to - rx.base);
            rx.base = jump_to;
        }
    }
    advance(rx, ordered);
    if ordered {
        // Slides happen only on flows without retransmission.
        rx.gap_since = oldest_ready(rx);
    }
    lost
}

/// Hands out what follows `rx.base` without a gap.
fn advance(rx: &mut Rx, ordered: bool) {
    if ordered {
        while let Some((_, sdu)) = rx.ready.remove(&rx.base) {
            rx.queue.push_back(sdu);
            rx.base += 1;
        }
    } else {
        while rx.done.remove(&rx.base) {
            rx.base += 1;
        }
    }
}

impl Endpoint for FlowEndpoint {
    type Event = Event;
    type Delivery<'d> = core::convert::Infallible;

    fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        let ids: Vec<FlowId> = self.flows.keys().copied().collect();
        for id in ids {
            let Some(f) = self.flows.get_mut(&id) else {
                continue;
            };
            if let Some(tx) = &f.fec_tx {
                let due = !tx.sdus.is_empty() && now >= tx.since + tx.fec.flush;
                if due && matches!(f.state, State::Up | State::Allocating) {
                    close_group(f, now);
                }
            }
            match f.state {
                State::Closed { until, .. } => {
                    if now >= until {
                        self.remove(id);
                    }
                }
                State::Allocating => {
                    if now >= f.alloc_started + alloc_timeout(&f.layers, &self.config) {
                        self.events.push_back(Event::Down(id));
                        self.remove(id);
                    } else if now >= f.alloc_next {
                        f.alloc_sends += 1;
                        f.alloc_next = now + f.rtt.backoff(f.alloc_sends, &self.config);
                        self.send_alloc(id);
                    }
                }
                State::Incoming | State::Up => {
                    let Some(timeout) = f.layers.timeout else {
                        self.skip_gap(now, id);
                        continue;
                    };
                    if now >= f.last_heard + timeout {
                        self.events.push_back(Event::Down(id));
                        self.close(id, now, None);
                        continue;
                    }
                    if f.state == State::Up && now >= f.last_sent + keepalive_interval(timeout) {
                        let (peer, remote) = (f.peer, f.remote);
                        self.push_control(peer, id, remote, Message::Keepalive);
                    }
                    self.skip_gap(now, id);
                }
            }
        }
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.now = self.now.max(now);
        if let Some((peer, bytes)) = self.outbox.pop_front() {
            buf.clear();
            buf.extend_from_slice(&bytes);
            self.stats.datagrams_sent += 1;
            return Some(Transmit {
                destination: peer,
                size: buf.len(),
                segment_size: None,
            });
        }
        let ids: Vec<FlowId> = self
            .flows
            .range(self.cursor..)
            .chain(self.flows.range(..self.cursor))
            .filter(|(_, f)| f.state == State::Up)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            if let Some(peer) = self.next_data(now, id, buf) {
                self.cursor = FlowId(id.0.wrapping_add(1));
                self.stats.datagrams_sent += 1;
                return Some(Transmit {
                    destination: peer,
                    size: buf.len(),
                    segment_size: None,
                });
            }
        }
        None
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if !self.outbox.is_empty() {
            return Some(self.now);
        }
        self.flows
            .values()
            .filter_map(|f| f.deadline(&self.config, self.now))
            .min()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

impl DatagramEndpoint for FlowEndpoint {
    fn handle_datagram<'d>(
        &mut self,
        now: Instant,
        from: Peer,
        data: &'d mut [u8],
    ) -> Option<Self::Delivery<'d>> {
        self.now = self.now.max(now);
        self.stats.datagrams_received += 1;
        let repr = match Repr::parse(data) {
            Ok(r) => r,
            Err(_) => {
                self.stats.malformed += 1;
                return None;
            }
        };
        let (src, dst) = (repr.src, repr.dst);
        let head = &data[..data.len().saturating_sub(TAG_LEN)];
        match repr.message {
            Message::Alloc { qos, name } => self.on_alloc(now, from, src, qos, name, None),
            Message::SealedAlloc {
                qos,
                name,
                salt,
                tag,
            } => self.on_alloc(now, from, src, qos, name, Some((salt, tag, head))),
            Message::SealedAllocOk { salt, tag } => {
                self.on_sealed_alloc_ok(now, from, src, dst, salt, tag, head)
            }
            Message::Sealed {
                kind,
                seq,
                frag,
                pn,
                ..
            } => self.on_sealed(now, from, src, dst, (kind, seq, frag, pn), data),
            m => self.on_flow_message(now, from, src, dst, m, false),
        }
        None
    }
}

mod inflight;
use inflight::{InFlight, Outgoing, Resend};

#[cfg(test)]
mod tests;
