//! RGTP.
