#!/usr/bin/env bash
# Parallel channels and many sources, across network namespaces.
#
#   sudo benches/sources.sh [--rate 40mbit] [--size 48MiB] [--bin PATH] [--runs 3] [--proofs]
#
# Builds one namespace for the puller and four for exposers, each exposer joined to
# the puller by its own veth pair (10.77.N.2 <-> 10.77.N.1), every exposer's egress
# capped at RATE by a tc token bucket (tbf) on its side of the pair. Then, with one
# file of SIZE served by every exposer under the same key (so the same exposure):
#
#   channels  1, 2, 4   one exposer, its cap lifted, `--channels N` on both sides;
#   sources   1, 2, 4   `rgtp pull TICKET --from ...` from that many capped exposers;
#   liar      4         three honest exposers and one behind a relay (in its own
#                       namespace) that flips a byte in every chunk it forwards.
#
# Each line gives the median goodput (file size / wall time of the pull) over RUNS
# runs, and for sources its ratio to one capped source; every output is compared with
# the file byte for byte, and the liar run must name the relay as dropped. Exits
# non-zero when a check fails (a 4-source ratio under 3 counts as failed).
#
# With --proofs every exposer serves the file with Merkle proofs (`rgtp expose --proofs`)
# and every pull checks them (`rgtp pull --proofs`: proof runs, checked off the receive
# path, whichever source sends a run).
#
# Timing figures belong here, not in the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

rate=40mbit
size=48MiB
bin=""
runs=3
proofs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) rate=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --proofs) proofs=(--proofs); shift ;;
    *) echo "usage: $0 [--rate 40mbit] [--size 48MiB] [--bin PATH] [--runs 3] [--proofs]" >&2; exit 2 ;;
  esac
done
. benches/netns.sh
bench_need_root tc
bench_bin

P=rgs-pull
work=""
cleanup() {
  bench_netns_del rgs-e1 rgs-e2 rgs-e3 rgs-e4 rgs-relay "$P"
  if [ -n "$work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
cleanup 2>/dev/null || true
work=$(mktemp -d)

for n in 1 2 3 4; do
  bench_veth "$P" "rgsp$n" "10.77.$n.1" "rgs-e$n" "rgse$n" "10.77.$n.2"
done
cap() { ip netns exec "rgs-e$1" tc qdisc replace dev "rgse$1" root tbf rate "$rate" burst 32kb latency 50ms; }
uncap() { ip netns exec "rgs-e$1" tc qdisc del dev "rgse$1" root 2>/dev/null || true; }

bytes=$(python3 -c "
import re,sys
m=re.fullmatch(r'([0-9]+)(KiB|MiB|GiB)?','$size')
print(int(m.group(1))*{None:1,'KiB':1024,'MiB':2**20,'GiB':2**30}[m.group(2)])")
head -c "$bytes" /dev/urandom > "$work/data.bin"
key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

expose() { # n, extra args
  local n=$1; shift
  ip netns exec "rgs-e$n" "$bin" expose "$work/data.bin" --bind "10.77.$n.2" --port 7000 \
    --key "$key" -q "${proofs[@]}" "$@" > "$work/ticket$n" 2>"$work/expose$n.log" &
  for _ in $(seq 200); do [ -s "$work/ticket$n" ] && return; sleep 0.05; done
  echo "exposer $n printed no ticket" >&2; cat "$work/expose$n.log" >&2; exit 1
}
stop_exposers() {
  for n in 1 2 3 4; do ip netns pids "rgs-e$n" | xargs -r kill 2>/dev/null || true; done
  sleep 0.3
}

# One pull; prints its goodput in MB/s. Args: output name, pull args...
pull() {
  local out="$work/$1"; shift
  rm -f "$out" "$out".rgtp-*
  local t0 t1
  t0=$(date +%s.%N)
  ip netns exec "$P" "$bin" pull -q -o "$out" --restart "${proofs[@]}" "$@" 2>"$work/pull.log" || {
    echo "pull failed:" >&2; cat "$work/pull.log" >&2; return 1; }
  t1=$(date +%s.%N)
  cmp -s "$out" "$work/data.bin" || { echo "output differs" >&2; return 1; }
  python3 -c "print(f'{$bytes / ($t1 - $t0) / 1e6:.2f}')"
}
median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.2f}')" "$@"; }

fail=0
echo "file $size, each exposer's egress capped at $rate (tbf), $runs runs each, medians${proofs[*]:+, with proofs}"

# Channels: one exposer, uncapped.
uncap 1
for ch in 1 2 4; do
  expose 1 --channels "$ch"
  t=$(cat "$work/ticket1")
  r=()
  for _ in $(seq "$runs"); do r+=("$(pull ch.bin "$t" --channels "$ch")") || fail=1; done
  echo "channels $ch (uncapped veth): $(median "${r[@]}") MB/s"
  stop_exposers
done

# Sources: every exposer capped.
for n in 1 2 3 4; do cap "$n"; expose "$n"; done
t=$(cat "$work/ticket1")
base=""
for k in 1 2 4; do
  from=()
  for n in $(seq 2 "$k"); do from+=(--from "10.77.$n.2:7000"); done
  r=()
  for _ in $(seq "$runs"); do r+=("$(pull src.bin "$t" "${from[@]}")") || fail=1; done
  m=$(median "${r[@]}")
  [ -z "$base" ] && base=$m
  ratio=$(python3 -c "print(f'{$m / $base:.2f}')")
  echo "sources $k (each capped): $m MB/s, ${ratio}x one source"
  if [ "$k" = 4 ] && python3 -c "import sys; sys.exit(0 if $ratio < 3 else 1)"; then
    echo "FAIL: four sources reached only ${ratio}x one" >&2
    fail=1
  fi
done

# A lying source: exposer 4 reached only through a relay that corrupts every chunk.
ip netns exec "rgs-e4" python3 - "10.77.4.2" 7001 7000 > "$work/relay.log" 2>&1 <<'EOF' &
import socket, sys
host, listen, upstream = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((host, listen))
up = (host, upstream)
puller = None
while True:
    d, a = s.recvfrom(65536)
    if a == up:
        if puller is None:
            continue
        if len(d) > 512:
            b = bytearray(d)
            b[-20] ^= 0x55
            d = bytes(b)
        s.sendto(d, puller)
    else:
        puller = a
        s.sendto(d, up)
EOF
sleep 0.5
r=()
for _ in $(seq "$runs"); do
  r+=("$(pull liar.bin "$t" --from 10.77.2.2:7000 --from 10.77.3.2:7000 --from 10.77.4.2:7001)") || fail=1
  ip netns exec "$P" "$bin" pull -o "$work/liar2.bin" --restart "${proofs[@]}" "$t" --from 10.77.2.2:7000 \
    --from 10.77.3.2:7000 --from 10.77.4.2:7001 2>"$work/liar.log" >/dev/null || fail=1
  if ! grep -q "10.77.4.2:7001: dropped (sent" "$work/liar.log"; then
    echo "FAIL: the lying source was not dropped:" >&2; cat "$work/liar.log" >&2; fail=1
  fi
done
echo "sources 4 with one liar (dropped, output verified): $(median "${r[@]}") MB/s"
grep "10.77.4.2:7001" "$work/liar.log" | sed 's/^ */  /'
exit "$fail"
