//! Flows on the redgiant stack.
//!
//! An application allocates a flow to a name with a [`QoS`]; the stack
//! picks the [`Layers`] that give that QoS (retransmission, reordering,
//! pacing, a peer timeout) and carries whole messages (SDUs) over it.
//!
//! - [`qos`]: the QoS specification, its presets, and the layer choice;
//! - [`wire`]: the flow datagram codec (`spec/flow.md`);
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
pub mod wire;

pub use endpoint::{Config, Event, FlowEndpoint, FlowError, Stats};
pub use qos::{Layers, QoS};
pub use wire::FlowId;
