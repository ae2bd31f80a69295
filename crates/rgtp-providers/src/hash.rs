//! Merkle hashes.
/// Placeholder.
pub struct AnyHash;
