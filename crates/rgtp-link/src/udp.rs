//! udp link.
