//! Address-validation tokens.
