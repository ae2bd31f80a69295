#!/usr/bin/env bash
# Rate caps over real UDP on loopback: where each cap is set, what the transfer ran at.
#
#   benches/caps.sh [--rate 4MB/s] [--seconds 10] [--bin PATH]
#
# For each placement of a cap of RATE — on the sender (`send --max-rate`, the total;
# `--max-rate-per-file`; `--max-rate-per-connection`), on the receiver (`get
# --max-rate`, `--max-rate-per-file`, `--max-rate-per-connection`), and on both with
# different values (the sender at RATE, the receiver at twice RATE, then the other way
# round) — it sends a file of RATE x SECONDS bytes with `rgtp send` and fetches it with
# `rgtp get`, and prints the goodput (file size / wall time of `get`) and its ratio to
# the cap that should hold (the lower one). A cap holds when the ratio is within
# 0.95..1.05 (a few hundred milliseconds of handshake, catalog and burst are inside
# that on a 10 s transfer). The last line is the uncapped goodput, for comparison.
# Outputs are compared with the source byte for byte.
#
# Timing figures belong here, not in the tests (which check that caps hold from
# below, never how fast anything is).
set -euo pipefail
cd "$(dirname "$0")/.."

rate=4MB/s
seconds=10
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) rate=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "usage: $0 [--rate 4MB/s] [--seconds 10] [--bin PATH]" >&2; exit 2 ;;
  esac
done
if [ -z "$bin" ]; then
  cargo build --release -q -p rgtp-cli
  bin="${CARGO_TARGET_DIR:-target}/release/rgtp"
fi

bytes=$(python3 - "$rate" <<'EOF'
import re, sys
m = re.fullmatch(r"([0-9.]+)\s*(B|kB|MB|GB|KiB|MiB|GiB)?/s", sys.argv[1].strip())
if not m:
    sys.exit("rate must look like 4MB/s")
mult = {None: 1, "B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1024, "MiB": 2**20, "GiB": 2**30}
print(int(float(m.group(1)) * mult[m.group(2)]))
EOF
)
double=$((bytes * 2))
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
size=$((bytes * seconds))
head -c "$size" /dev/urandom > "$work/data.bin"

run() { # name, want (bytes/s or 0), send args, get args
  local name=$1 want=$2 sargs=$3 gargs=$4
  rm -rf "$work/dest"
  # shellcheck disable=SC2086
  "$bin" send "$work/data.bin" --port 0 --bind 127.0.0.1 -q $sargs > "$work/ticket" &
  local spid=$!
  for _ in $(seq 100); do [ -s "$work/ticket" ] && break; sleep 0.05; done
  local t0 t1
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$bin" get "$(head -1 "$work/ticket")" "$work/dest" -q $gargs
  t1=$(date +%s.%N)
  kill "$spid"; wait "$spid" 2>/dev/null || true
  cmp -s "$work/data.bin" "$work/dest/data.bin" || { echo "$name: output differs" >&2; exit 1; }
  python3 - "$name" "$size" "$t0" "$t1" "$want" <<'EOF'
import sys
name, size, t0, t1, want = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
g = size / (t1 - t0)
if want:
    r = g / want
    print(f"{name:<44} {g/1e6:8.3f} MB/s  cap {want/1e6:7.3f}  ratio {r:.3f}  {'holds' if 0.95 <= r <= 1.05 else 'OUTSIDE ±5%'}")
else:
    print(f"{name:<44} {g/1e6:8.3f} MB/s  (no cap)")
EOF
}

echo "rate caps, $rate for about $seconds s ($size bytes), rgtp send -> rgtp get on loopback"
run "sender --max-rate" "$bytes" "--max-rate $bytes" ""
run "sender --max-rate-per-file" "$bytes" "--max-rate-per-file $bytes" ""
run "sender --max-rate-per-connection" "$bytes" "--max-rate-per-connection $bytes" ""
run "receiver --max-rate" "$bytes" "" "--max-rate $bytes"
run "receiver --max-rate-per-file" "$bytes" "" "--max-rate-per-file $bytes"
run "receiver --max-rate-per-connection" "$bytes" "" "--max-rate-per-connection $bytes"
run "both: sender RATE, receiver 2xRATE" "$bytes" "--max-rate $bytes" "--max-rate $double"
run "both: sender 2xRATE, receiver RATE" "$bytes" "--max-rate $double" "--max-rate $bytes"
run "uncapped" 0 "" ""
