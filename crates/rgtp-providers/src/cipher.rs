//! AEAD suites.
/// Placeholder.
pub struct AnyCipher;
