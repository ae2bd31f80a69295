//! The protocol-neutral base of the redgiant stack.
//!
//! Every protocol of the stack (RGTP, and the others that share its links)
//! is a sans-IO [`Endpoint`]: datagrams or bytes and an [`Instant`] go in;
//! [`Transmit`]s, events and the next deadline come out. This crate holds
//! what they all share and knows no protocol:
//!
//! - [`Peer`], [`Instant`], [`Transmit`]: the vocabulary of endpoints and links;
//! - [`link::Link`]: a datagram link (UDP, raw Ethernet, in-memory, recorders);
//! - [`stream::StreamLink`]: a byte-stream link (TCP, in-memory pipes, recorders);
//! - [`endpoint`]: the endpoint contract;
//! - [`clock`]: the time sources drivers read;
//! - [`driver`]: the one driver that runs any endpoint over any link, on a
//!   real clock or step by step on virtual time.
//!
//! Nothing here depends on a protocol crate; `.ci/run` checks that it stays so.
#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

pub mod clock;
pub mod driver;
pub mod endpoint;
pub mod link;
pub mod pacer;
pub mod peer;
pub mod stream;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod transmit;

pub use clock::{ManualClock, SystemClock, TimeSource};
pub use endpoint::{DatagramEndpoint, Endpoint, StreamEndpoint};
pub use pacer::{parse_rate, Paced, TokenBucket};
pub use peer::{Peer, PeerKey};
pub use stream::{StreamFraming, StreamLink, StreamRecv};
pub use time::Instant;
pub use transmit::Transmit;
