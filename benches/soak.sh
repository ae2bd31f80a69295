#!/usr/bin/env bash
# The soak: eight exposers (AES-256-GCM and ChaCha20-Poly1305 × SHA-256 and BLAKE3,
# each plain and with proofs + FEC) serve 10,000 pulls over loopback UDP in ten
# minutes, sequential and 64 at a time, while a hostile sender runs throughout.
# Prints RSS, open descriptors and CPU per pull after every round and exits
# non-zero unless they stay flat (src/bin/soak.rs says how it is judged).
#
#   bash benches/soak.sh                          # the full run, about 10 minutes
#   bash benches/soak.sh --duration 120 --pulls 2000   # any soak option overrides
#
# .ci/run runs a short version with wide margins.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p rgtp-benches --bin soak
exec "${CARGO_TARGET_DIR:-target}/release/soak" --duration 600 --pulls 10000 "$@"
