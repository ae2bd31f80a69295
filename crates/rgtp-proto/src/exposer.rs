//! The exposer (placeholder while the core is written).
/// Exposer.
pub struct Exposer;
/// Config.
pub struct ExposerConfig;
/// Stats.
pub struct ExposerStats;
/// Exposure.
pub struct Exposure;
