//! impair link.
