//! FEC codecs.
/// Placeholder.
pub struct AnyFec;
