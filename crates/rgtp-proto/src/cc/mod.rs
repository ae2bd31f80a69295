//! Congestion control, as a layer: the [`CongestionController`] trait, the RTT
//! estimator controllers read, and the registered controllers.
//!
//! | name | reacts to | source |
//! |---|---|---|
//! | `delay` (default) | a standing queue seen in the RTT | upstream RGTP §6.3 |
//! | `reno` | loss, halving once per window | RFC 5681 |
//! | `cubic` | loss, cubic regrowth, β = 0.7 | RFC 9438 |
//!
//! A new controller is a file in this module implementing [`CongestionController`]
//! with a `CONTROLLER` constant, and one line in [`CONTROLLERS`]. A program can also
//! use a controller of its own without registering it: build a [`Controller`] and set
//! it in [`crate::PullerConfig::congestion`].

mod controller;
mod cubic;
mod delay;
mod reno;
mod rtt;

pub use controller::{CcConfig, CongestionController, Context, Controller, Epoch, Signal, Window};
pub use cubic::Cubic;
pub use delay::{standing_queue, Delay, QUEUE_FLOOR};
pub use reno::Reno;
pub use rtt::{RttEstimator, RECENT_SAMPLES};

/// Every registered controller; the first is the default.
pub const CONTROLLERS: &[Controller] = &[delay::CONTROLLER, reno::CONTROLLER, cubic::CONTROLLER];

impl Controller {
    /// The default controller (`delay`).
    pub const DEFAULT: Controller = delay::CONTROLLER;

    /// The registered controller called `name`.
    pub fn by_name(name: &str) -> Option<Controller> {
        CONTROLLERS.iter().copied().find(|c| c.name == name)
    }

    /// The registered names, comma-separated (for error messages and help).
    pub fn names() -> String {
        CONTROLLERS
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Default for Controller {
    fn default() -> Self {
        Controller::DEFAULT
    }
}

#[cfg(test)]
mod tests;
