//! Flows on the redgiant stack.
//!
//! An application allocates a flow to a name with a [`QoS`]; the stack
//! picks the [`Layers`] that give that QoS (retransmission, reordering,
//! forward error correction, encryption, pacing, a peer timeout) and
//! carries whole messages (SDUs) over it.
//!
//! - [`qos`]: the QoS specification, its presets, and the layer choice;
//! - [`wire`]: the flow datagram codec (`spec/flow.md`);
//! - [`seal`]: the flow key and the sealing of encrypted flows;
//! - [`endpoint`]: the sans-IO flow endpoint;
//! - `net` (feature `net`): flows over UDP with a driver thread, and names.
//!
//! This crate knows no RGTP; `.ci/run` checks that it stays so.
#![warn(missing_docs, unreachable_pub)]
#![forbid(unsafe_code)]

pub mod endpoint;
#[cfg(feature = "net")]
pub mod net;
pub mod qos;
pub mod seal;
pub mod wire;

pub use endpoint::{Config, Event, FlowEndpoint, FlowError, QueueLens, Stats};
pub use qos::{Fec, Layers, QoS};
pub use seal::FlowKey;
pub use wire::FlowId;
