#!/usr/bin/env bash
# Flows on loopback against RGTP, in one process (src/bin/flow-bench.rs):
#
#   benches/flow.sh [--runs 5] [--size-mib 64] [--sdu 65536] [--pings 5000] [--messages 50000]
#
# (a) 64-byte SDUs over a reliable flow (QoS data): round-trip p50 and p99 of one
#     message at a time to an echoing peer, and messages/s of a one-way stream held
#     back only by the flow's send window;
# (b) bulk goodput of one file: written as SDUs through a loss=0 flow, pulled with
#     plain RGTP (sealed beforehand; sealing timed apart), and handed from a flow to
#     RGTP by rgtp::flow_bulk (from the sender's call, sealing included, to the
#     receiver holding the verified file).
# Each figure is measured --runs times and the median printed, with ratios; every
# output is compared with the source byte for byte. Scratch files (about three
# times the size) go under $TMPDIR and are removed at the end.
#
# Timing figures belong here, not in the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p rgtp-benches --bin flow-bench
exec "${CARGO_TARGET_DIR:-target}/release/flow-bench" "$@"
