#!/usr/bin/env bash
# Goodput under random loss, with and without FEC, across two network namespaces.
#
#   sudo benches/loss.sh [--size 256MiB] [--runs 3] [--loss 0,1,5] [--fec none,rs:255,223]
#                        [--rate RATE] [--bin PATH]
#
# Two namespaces joined by a veth pair (10.78.0.1 puller, 10.78.0.2 exposer). nftables
# in the puller's namespace drops LOSS% of the datagrams that arrive from the exposer
# (`numgen random mod 100 < LOSS`), which is loss on the data path only: requests are
# not dropped, so the figure is the cost of losing chunks and parity. Optionally the
# exposer's egress is shaped by tbf at RATE (e.g. 1gbit). For every FEC setting the
# file is exposed once (`rgtp expose --fec F`), then pulled RUNS times per loss rate
# with the defaults; each output is compared with the file byte for byte.
#
# Prints per (fec, loss) the median goodput, its ratio to the same FEC without loss and
# to no FEC without loss, and the median chunks re-requested and rebuilt by FEC.
#
# Timing figures belong here, not in the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

size=256MiB
runs=3
losses=0,1,5
fecs="none rs:255,223 raptorq:0.1"
rate=""
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --loss) losses=$2; shift 2 ;;
    --fec) fecs=$(echo "$2" | tr ';' ' '); shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "usage: $0 [--size 256MiB] [--runs 3] [--loss 0,1,5] [--fec 'none;rs:255,223'] [--rate 1gbit] [--bin PATH]" >&2; exit 2 ;;
  esac
done
. benches/netns.sh
bench_need_root nft
bench_bin

P=rgl-pull
E=rgl-expose
work=""
cleanup() {
  bench_netns_del "$E" "$P"
  if [ -n "$work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
cleanup
work=$(mktemp -d)

bench_veth "$P" rglp 10.78.0.1 "$E" rgle 10.78.0.2
if [ -n "$rate" ]; then
  ip netns exec "$E" tc qdisc add dev rgle root tbf rate "$rate" burst 256kb latency 20ms
fi
ip netns exec "$P" nft -f - <<'EOF'
table inet rgl {
  chain input {
    type filter hook input priority 0; policy accept;
  }
}
EOF
set_loss() {
  ip netns exec "$P" nft flush chain inet rgl input
  if [ "$1" != 0 ]; then
    ip netns exec "$P" nft add rule inet rgl input ip saddr 10.78.0.2 udp sport 7000 \
      numgen random mod 100 '<' "$1" counter drop
  fi
}

bytes=$(python3 -c "
import re
m=re.fullmatch(r'([0-9]+)(KiB|MiB|GiB)?','$size')
print(int(m.group(1))*{None:1,'KiB':1024,'MiB':2**20,'GiB':2**30}[m.group(2)])")
head -c "$bytes" /dev/urandom > "$work/data.bin"

median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.2f}')" "$@"; }

declare -A good
fail=0
echo "machine: $(bash benches/machine.sh)"
echo "file $size over veth${rate:+ shaped at $rate}, loss on the exposer->puller path only, $runs runs, medians"
printf '%-16s %5s %12s %10s %10s %12s %12s\n' fec loss "MB/s" "vs 0%" "vs none@0%" rerequested fec-rebuilt
for fec in $fecs; do
  ip netns exec "$E" "$bin" expose "$work/data.bin" --bind 10.78.0.2 --port 7000 --fec "$fec" -q \
    > "$work/ticket" 2>"$work/expose.log" &
  for _ in $(seq 600); do [ -s "$work/ticket" ] && break; sleep 0.1; done
  [ -s "$work/ticket" ] || { echo "no ticket for --fec $fec" >&2; cat "$work/expose.log" >&2; exit 1; }
  t=$(head -1 "$work/ticket")
  for loss in ${losses//,/ }; do
    set_loss "$loss"
    g=(); rr=(); fr=()
    for _ in $(seq "$runs"); do
      rm -f "$work/out" "$work"/out.rgtp-*
      t0=$(date +%s.%N)
      if ! ip netns exec "$P" "$bin" pull "$t" -o "$work/out" > /dev/null 2>"$work/pull.log"; then
        echo "pull failed (fec $fec, loss $loss%):" >&2; cat "$work/pull.log" >&2; fail=1; continue
      fi
      t1=$(date +%s.%N)
      cmp -s "$work/out" "$work/data.bin" || { echo "output differs (fec $fec, loss $loss%)" >&2; fail=1; }
      g+=("$(python3 -c "print($bytes / ($t1 - $t0) / 1e6)")")
      # The summary line: "... retransmitted N, FEC rebuilt M".
      rr+=("$(sed -n 's/.*retransmitted \([0-9]*\), FEC rebuilt.*/\1/p' "$work/pull.log" | tail -1)")
      fr+=("$(sed -n 's/.*FEC rebuilt \([0-9]*\).*/\1/p' "$work/pull.log" | tail -1)")
    done
    [ ${#g[@]} -gt 0 ] || continue
    m=$(median "${g[@]}")
    good["$fec/$loss"]=$m
    base=${good["$fec/0"]:-$m}
    none=${good["none/0"]:-$m}
    printf '%-16s %4s%% %12s %10s %10s %12s %12s\n' "$fec" "$loss" "$m" \
      "$(python3 -c "print(f'{$m / $base:.2f}')")" "$(python3 -c "print(f'{$m / $none:.2f}')")" \
      "$(median "${rr[@]}")" "$(median "${fr[@]}")"
  done
  ip netns pids "$E" | xargs -r kill 2>/dev/null || true
  sleep 0.3
done
exit "$fail"
