//! The puller (placeholder while the core is written).
/// Puller.
pub struct Puller;
/// Config.
pub struct PullerConfig;
/// Stats.
pub struct PullerStats;
/// Event.
pub enum PullerEvent {}
/// Factory.
pub trait SuiteFactory {}
