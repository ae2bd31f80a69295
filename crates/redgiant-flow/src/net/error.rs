//! What can go wrong on a flow node, each with what to do about it.

use core::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::wire::Reason;

/// Why a call on a [`FlowNode`](super::FlowNode), [`Flow`](super::Flow) or
/// [`FlowSet`](super::FlowSet) failed. The [`Display`](fmt::Display) text
/// names the problem and how to fix it.
#[derive(Debug)]
#[non_exhaustive]
pub enum FlowNetError {
    /// No node registered the name anywhere this node looked.
    UnknownName {
        /// The name asked for.
        name: String,
        /// Where it was looked for, in order.
        searched: Vec<String>,
    },
    /// The peer answered the allocation with a refusal.
    Refused {
        /// The name asked for.
        name: String,
        /// The peer that refused.
        peer: SocketAddr,
        /// Why.
        reason: Reason,
    },
    /// Nothing happened in time.
    TimedOut {
        /// What was waited for.
        what: &'static str,
        /// How long.
        after: Duration,
    },
    /// The peer deallocated the flow or stayed silent past the QoS timeout.
    PeerGone,
    /// This end deallocated the flow (perhaps from another thread).
    Deallocated,
    /// The message is larger than a flow carries.
    TooLarge {
        /// The message's length.
        len: usize,
        /// The largest allowed.
        max: usize,
    },
    /// A non-blocking call found nothing to do.
    WouldBlock,
    /// A name is empty, longer than 255 bytes, or holds a character the
    /// file directory cannot store.
    BadName(String),
    /// The QoS asks for a layer this stack does not have.
    Unsupported(&'static str),
    /// The flow id is not one of this node's.
    NoSuchFlow,
    /// The node's driver stopped (its socket failed); the text says why.
    NodeStopped(String),
    /// The directory server did not answer or answered with an error.
    Directory(String),
    /// A socket or file failed.
    Io(io::Error),
}

impl fmt::Display for FlowNetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowNetError::UnknownName { name, searched } => write!(
                f,
                "no flow server registered the name {name:?} (looked in: {}); start a server \
                 that registers it (FlowNode::register, `rgtp flow echo-server --name {name}`, \
                 or `rgtp flow bind {name} -- COMMAND`), or name its address with \
                 RGTP_FLOW_NAMES=\"{name}=HOST:PORT\" or `{name}@HOST:PORT`",
                searched.join(", ")
            ),
            FlowNetError::Refused { name, peer, reason } => match reason {
                Reason::NoSuchName => write!(
                    f,
                    "{peer} does not serve the name {name:?}: the entry naming it is stale or \
                     wrong; restart the server that registers {name:?} or fix the entry"
                ),
                Reason::UnsupportedQoS => write!(
                    f,
                    "{peer} refused a flow to {name:?}: it cannot give the QoS asked for; \
                     ask for a QoS without encryption"
                ),
                Reason::NoResources => write!(
                    f,
                    "{peer} refused a flow to {name:?}: it holds as many flows as it may; \
                     deallocate flows there or retry later"
                ),
                Reason::NoKey | Reason::KeyMismatch => {
                    write!(f, "{peer} refused an encrypted flow to {name:?}: {reason}")
                }
                _ => write!(
                    f,
                    "{peer} refused a flow to {name:?}: the application there said no"
                ),
            },
            FlowNetError::TimedOut { what, after } => write!(
                f,
                "timed out after {after:?} waiting for {what}; check the peer is running and \
                 reachable, or wait longer"
            ),
            FlowNetError::PeerGone => f.write_str(
                "the peer deallocated the flow or went silent past the QoS timeout; \
                 allocate a new flow",
            ),
            FlowNetError::Deallocated => {
                f.write_str("the flow was deallocated on this end; allocate a new flow to go on")
            }
            FlowNetError::TooLarge { len, max } => write!(
                f,
                "a message of {len} bytes is larger than the {max}-byte limit of a flow; \
                 split it into smaller messages"
            ),
            FlowNetError::WouldBlock => f.write_str(
                "nothing to do now on a non-blocking flow; wait for an event with a FlowSet \
                 or switch the flow to blocking",
            ),
            FlowNetError::BadName(why) => write!(f, "bad flow name: {why}"),
            FlowNetError::Unsupported(layer) => write!(
                f,
                "this stack has no {layer} layer for flows yet; ask for a QoS without it"
            ),
            FlowNetError::NoSuchFlow => {
                f.write_str("no such flow on this node; use a flow the node allocated or accepted")
            }
            FlowNetError::NodeStopped(why) => {
                write!(f, "the flow node stopped ({why}); bind a new node")
            }
            FlowNetError::Directory(why) => write!(f, "flow directory: {why}"),
            FlowNetError::Io(e) => write!(f, "flow node I/O: {e}"),
        }
    }
}

impl std::error::Error for FlowNetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FlowNetError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for FlowNetError {
    fn from(e: io::Error) -> Self {
        FlowNetError::Io(e)
    }
}

impl From<FlowNetError> for io::Error {
    fn from(e: FlowNetError) -> Self {
        let kind = match &e {
            FlowNetError::Io(inner) => inner.kind(),
            FlowNetError::UnknownName { .. } => io::ErrorKind::NotFound,
            FlowNetError::Refused { .. } => io::ErrorKind::ConnectionRefused,
            FlowNetError::TimedOut { .. } => io::ErrorKind::TimedOut,
            FlowNetError::PeerGone => io::ErrorKind::ConnectionReset,
            FlowNetError::Deallocated | FlowNetError::NodeStopped(_) => io::ErrorKind::NotConnected,
            FlowNetError::TooLarge { .. } | FlowNetError::BadName(_) => io::ErrorKind::InvalidInput,
            FlowNetError::WouldBlock => io::ErrorKind::WouldBlock,
            FlowNetError::Unsupported(_) => io::ErrorKind::Unsupported,
            FlowNetError::NoSuchFlow | FlowNetError::Directory(_) => io::ErrorKind::Other,
        };
        io::Error::new(kind, e.to_string())
    }
}
