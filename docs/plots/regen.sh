#!/usr/bin/env bash
# Regenerates the SVG plots in this directory from the plans in experiments/
# (release build; the sweeps are deterministic, so the same commit gives the
# same plots). Usage: bash docs/plots/regen.sh [WORKDIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d)}
cd "$root"
cargo build --release -p rgtp-cli
bin=${CARGO_TARGET_DIR:-target}/release/rgtp
for plan in fec-vs-loss controllers chunk-size proofs; do
    "$bin" sweep "experiments/$plan.toml" --out "$work/$plan" -q
done
cp "$work/fec-vs-loss/goodput-vs-loss.svg" docs/plots/fec-vs-loss-goodput.svg
cp "$work/fec-vs-loss/completion-cdf.svg" docs/plots/fec-vs-loss-cdf.svg
cp "$work/controllers/fairness.svg" docs/plots/controllers-fairness.svg
cp "$work/controllers/completion-cdf.svg" docs/plots/controllers-cdf.svg
cp "$work/controllers/series/run-9.svg" docs/plots/controllers-series-run-9.svg
cp "$work/chunk-size/goodput-vs-loss.svg" docs/plots/chunk-size-goodput.svg
cp "$work/chunk-size/overhead-vs-loss.svg" docs/plots/chunk-size-overhead.svg
cp "$work/proofs/goodput-vs-loss.svg" docs/plots/proofs-goodput.svg
cp "$work/proofs/overhead-vs-loss.svg" docs/plots/proofs-overhead.svg
echo "plots from $work copied into docs/plots"
