//! Anti-replay window.
