#!/usr/bin/env bash
# The simulator against a real path: goodput of `rgtp pull` across two network
# namespaces next to `rgtp sweep` on the same scenario, per random-loss rate.
#
#   sudo benches/simreal.sh [--bin PATH] [--size 64MiB] [--runs 3] [--loss 0,1,5]
#
# The real path: two namespaces joined by a veth pair (10.79.0.1 puller, 10.79.0.2
# exposer). The exposer's egress is held to 200 Mbit/s by tbf with
#   burst 128kb: one GSO batch of the exposer (64 datagrams of about 1.28 kB on the
#     wire) fits, so a batch is never split by the bucket, and it is well above what
#     the rate earns per timer tick (25 kB at HZ=1000), so tbf reaches its rate;
#     at 200 Mbit/s it is 5 ms of sending, nothing next to a 2.7 s transfer;
#   latency 20ms: a queue of rate * 20 ms + burst (631072 bytes, tc's formula),
#     a moderate drop-tail buffer; the simulator gets the same byte limit.
# There is no netem here, so no added delay: the path has the round trip of the veth
# pair, measured idle (UDP echo, below); half of it is the simulator's one-way delay.
# Random loss is an nftables rule in the puller's namespace (input hook) dropping
# LOSS% of the UDP datagrams from the exposer's port: it acts after tbf, as the
# simulator's loss acts after its bottleneck queue, and requests are never dropped.
#
# Each loss rate: RUNS pulls with the defaults (release build, output compared with
# the file byte for byte), median goodput = file size / wall time of the pull. The
# simulator runs experiments/simreal.toml (rate 200 Mbit/s, the same loss, file size,
# chunk size and defaults as the CLI, queue and delay as above) with RUNS seeds,
# median goodput. Printed per loss: real and simulated MB/s and their ratio (real also
# by the pull's own clock, from handshake to verified output, without process start
# and exit; and the bound tbf set: the file over the time tbf's rate needs for the
# frames it passed, as if it never paused), and what explains a gap: chunks
# re-requested (real: the pull's summary; sim: the CSV),
# datagrams dropped by nftables, by tbf and by the puller's full socket buffer
# (/proc/net/snmp RcvbufErrors) per pull, datagrams the exposer sent
# (tc's packet count less the probe's replies; sim: exposer datagrams), and the round
# trip under load (a UDP probe every 10 ms during the pulls; its replies queue behind
# the data in tbf) next to the simulator's smoothed RTT; and the machine's 1-minute
# load average after the pulls (on a shared machine a starved puller or exposer
# leaves the link idle: real goodput well under the tbf bound with a high load).
# SIMREAL_VERBOSE=1 prints every pull's goodput and summary line.
#
# The bar: simulated goodput within 25% of the measured one. Exit status 1 when a
# pull fails or an output differs, 3 when every check passed but a ratio misses the
# bar (the figures are printed either way).
#
# Timing figures belong here, not in the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

size=64MiB
runs=3
losses=0,1,5
bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --loss) losses=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "usage: $0 [--bin PATH] [--size 64MiB] [--runs 3] [--loss 0,1,5]" >&2; exit 2 ;;
  esac
done
. benches/netns.sh
bench_need_root tc nft
bench_bin

P=rgsr-pull
E=rgsr-expose
DEV=rgsre
RATE=200mbit
work=""
cleanup() {
  bench_netns_del "$E" "$P"
  if [ -n "$work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
cleanup
work=$(mktemp -d)

bench_veth "$P" rgsrp 10.79.0.1 "$E" "$DEV" 10.79.0.2
# The exposer sends UDP GSO batches (up to 64 datagrams in one buffer). veth would
# hand a batch to the puller's namespace whole, where nftables would drop or keep the
# whole batch. With gso_max_segs 1 the kernel splits each batch into datagrams after
# tbf, as a NIC does on the wire, so the loss rule sees single datagrams.
ip -n "$E" link set dev "$DEV" gso_max_segs 1
# A fresh qdisc per pull, so its counters are that pull's.
shape() {
  ip netns exec "$E" tc qdisc del dev "$DEV" root 2>/dev/null || true
  ip netns exec "$E" tc qdisc add dev "$DEV" root tbf rate "$RATE" burst 128kb latency 20ms
}
shape
# tbf's byte limit, as tc computes it from latency: rate * latency + burst
# (200e6 / 8 B/s * 0.020 s + 128 KiB = 631072 B; tc shows the latency, not the limit).
queue=$((200000000 / 8 * 20 / 1000 + 128 * 1024))
ip netns exec "$P" nft -f - <<'EOF'
table inet rgsr {
  chain input {
    type filter hook input priority 0; policy accept;
  }
}
EOF
set_loss() {
  ip netns exec "$P" nft flush chain inet rgsr input
  ip netns exec "$P" nft add rule inet rgsr input ip saddr 10.79.0.2 udp sport 7000 \
    numgen random mod 100 '<' "$1" counter drop
}
nft_drops() {
  ip netns exec "$P" nft list chain inet rgsr input | sed -n 's/.*counter packets \([0-9]*\).*/\1/p'
}
# A counter of the Udp: line of /proc/net/snmp in a namespace.
udp_stat() {
  ip netns exec "$1" cat /proc/net/snmp | awk -v f="$2" '
    $1 == "Udp:" && !h { for (i = 2; i <= NF; i++) col[$i] = i; h = 1; next }
    $1 == "Udp:" && h { print $col[f] }'
}
# "Sent B bytes N pkt (dropped D, ...": prints "B N D".
tbf_counts() {
  ip netns exec "$E" tc -s qdisc show dev "$DEV" |
    sed -n 's/.*Sent \([0-9]*\) bytes \([0-9]*\) pkt (dropped \([0-9]*\),.*/\1 \2 \3/p' | head -1
}

# Round trips: a UDP echo in the exposer's namespace (port 7100, outside the loss rule)
# and a prober in the puller's sending one probe every 10 ms until stopped, then
# printing the mean round trip in ms of the replies and their count. Replies leave
# through tbf, so under load they wait behind the queued data.
cat > "$work/echo.py" <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.79.0.2", 7100))
while True:
    d, a = s.recvfrom(64)
    s.sendto(d, a)
PY
cat > "$work/probe.py" <<'PY'
import select, signal, socket, struct, sys, time
stop = False
def halt(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, halt)
signal.signal(signal.SIGINT, halt)
limit = int(sys.argv[1]) if len(sys.argv) > 1 else 0
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("10.79.0.2", 7100))
rtts, sent, nxt = [], 0, time.monotonic()
while not stop and (limit == 0 or sent < limit):
    now = time.monotonic()
    if now >= nxt:
        s.send(struct.pack("!d", now))
        sent += 1
        nxt = now + 0.01
    r, _, _ = select.select([s], [], [], max(0.0, nxt - time.monotonic()))
    if r:
        (t,) = struct.unpack("!d", s.recv(64))
        rtts.append(time.monotonic() - t)
print(f"{1000 * sum(rtts) / max(len(rtts), 1):.3f} {len(rtts)}")
PY
ip netns exec "$E" python3 "$work/echo.py" &
sleep 0.3
read -r idle_rtt _ <<< "$(ip netns exec "$P" python3 "$work/probe.py" 50)"
delay_ms=$(python3 -c "print(round($idle_rtt / 2, 4))")

bytes=$(python3 -c "
import re
m=re.fullmatch(r'([0-9]+)(KiB|MiB|GiB)?','$size')
print(int(m.group(1))*{None:1,'KiB':1024,'MiB':2**20,'GiB':2**30}[m.group(2)])")
head -c "$bytes" /dev/urandom > "$work/data.bin"

median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.2f}')" "$@"; }
mediani() { python3 -c "import statistics,sys; print(round(statistics.median(map(float, sys.argv[1:]))))" "$@"; }

echo "file $size, exposer egress tbf $RATE (burst 128kb, latency 20ms: queue $queue B), idle RTT $idle_rtt ms, loss after tbf at the puller, $runs runs / seeds, medians"

# The real side.
ip netns exec "$E" "$bin" expose "$work/data.bin" --bind 10.79.0.2 --port 7000 -q \
  > "$work/ticket" 2>"$work/expose.log" &
for _ in $(seq 600); do [ -s "$work/ticket" ] && break; sleep 0.1; done
[ -s "$work/ticket" ] || { echo "no ticket" >&2; cat "$work/expose.log" >&2; exit 1; }
t=$(head -1 "$work/ticket")
fail=0
declare -A real own bound load rr drops tdrops sent rtt rcvbuf
for loss in ${losses//,/ }; do
  g=(); o=(); w=(); la=(); r=(); d=(); td=(); s=(); lr=(); rb=()
  for _ in $(seq "$runs"); do
    shape
    set_loss "$loss"
    rm -f "$work/out" "$work"/out.rgtp-*
    ip netns exec "$P" python3 "$work/probe.py" > "$work/rtt" &
    prober=$!
    rb0=$(udp_stat "$P" RcvbufErrors)
    t0=$(date +%s.%N)
    ok=1
    ip netns exec "$P" "$bin" pull "$t" -o "$work/out" > /dev/null 2>"$work/pull.log" || ok=0
    t1=$(date +%s.%N)
    kill "$prober" 2>/dev/null || true
    wait "$prober" 2>/dev/null || true
    if [ "$ok" = 0 ]; then
      echo "pull failed (loss $loss%):" >&2; cat "$work/pull.log" >&2; fail=1; continue
    fi
    cmp -s "$work/out" "$work/data.bin" || { echo "output differs (loss $loss%)" >&2; fail=1; continue; }
    g+=("$(python3 -c "print($bytes / ($t1 - $t0) / 1e6)")")
    [ -z "${SIMREAL_VERBOSE:-}" ] || echo "  loss $loss%: ${g[-1]} MB/s; $(tail -1 "$work/pull.log")" >&2
    o+=("$(sed -n 's/^pulled \([0-9]*\) bytes in \([0-9.]*\)s.*/\1 \2/p' "$work/pull.log" | tail -1 |
      python3 -c "b, t = input().split(); print(int(b) / float(t) / 1e6)")")
    r+=("$(sed -n 's/.*retransmitted \([0-9]*\), FEC rebuilt.*/\1/p' "$work/pull.log" | tail -1)")
    d+=("$(nft_drops)")
    read -r nb np nd <<< "$(tbf_counts)"
    read -r rtt_ms replies < "$work/rtt"
    # Goodput had tbf sent without a pause: the file over the time its rate needs for
    # the bytes it passed (Ethernet frames; a probe reply is a 50-byte frame).
    w+=("$(python3 -c "print($bytes / (($nb - 50 * $replies) * 8 / 200e6) / 1e6)")")
    # The probe's replies passed tbf too: the exposer's own datagrams are the rest.
    s+=("$((np - replies))"); td+=("$nd")
    lr+=("$rtt_ms")
    la+=("$(cut -d" " -f1 /proc/loadavg)")
    rb+=("$(($(udp_stat "$P" RcvbufErrors) - rb0))")
  done
  [ ${#g[@]} -gt 0 ] || continue
  real[$loss]=$(median "${g[@]}")
  own[$loss]=$(median "${o[@]}")
  rr[$loss]=$(mediani "${r[@]}")
  drops[$loss]=$(mediani "${d[@]}")
  tdrops[$loss]=$(mediani "${td[@]}")
  sent[$loss]=$(mediani "${s[@]}")
  bound[$loss]=$(median "${w[@]}")
  load[$loss]=$(median "${la[@]}")
  rtt[$loss]=$(median "${lr[@]}")
  rcvbuf[$loss]=$(mediani "${rb[@]}")
done
ip netns pids "$E" | xargs -r kill 2>/dev/null || true

# The simulated side: the plan with this run's size, seeds, losses, delay and queue.
python3 - "experiments/simreal.toml" "$work/simreal.toml" "$size" "$runs" "$losses" "$delay_ms" "$queue" <<'EOF'
import re, sys
src, dst, size, runs, losses, delay, queue = sys.argv[1:]
text = open(src).read()
values = {
    "size": f'"{size}"',
    "seeds": "[" + ", ".join(str(s) for s in range(1, int(runs) + 1)) + "]",
    "loss": "[" + ", ".join(str(int(l) / 100) for l in losses.split(",")) + "]",
    "delay_ms": delay,
    "queue": queue,
}
for key, value in values.items():
    text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    assert n == 1, f"{src}: no single line for {key}"
open(dst, "w").write(text)
EOF
"$bin" sweep "$work/simreal.toml" --out "$work/sim" --quiet
# Per loss (in %): median goodput MB/s, re-requested, exposer datagrams, srtt ms, runs completed.
python3 - "$work/sim/results.csv" > "$work/sim.txt" <<'EOF'
import csv, statistics, sys
rows = {}
for r in csv.DictReader(open(sys.argv[1])):
    rows.setdefault(round(float(r["loss"]) * 100), []).append(r)
for loss, rs in sorted(rows.items()):
    med = lambda k: statistics.median(float(r[k]) for r in rs)
    done = sum(int(r["completed"]) for r in rs)
    print(loss, f"{med('goodput_mean_bps') / 1e6:.2f}", f"{med('chunks_rerequested'):.0f}",
          f"{med('exposer_datagrams'):.0f}", f"{med('srtt_us') / 1000:.2f}", done, len(rs))
EOF

printf '%5s %9s %9s %9s %9s %8s %4s  %10s %9s  %8s %8s %8s  %9s %9s  %9s %9s %5s\n' loss "real MB/s" "pull MB/s" "tbf bound" "sim MB/s" "sim/real" "25%" \
  "rereq real" "rereq sim" "nft drop" "tbf drop" "rcvbuf" "sent real" "sent sim" "RTT real" "srtt sim" load
missed=0
while read -r loss sg srr sdg srtt done total; do
  [ -n "${real[$loss]:-}" ] || { echo "loss $loss%: no real figures" >&2; continue; }
  if [ "$done" != "$total" ]; then echo "loss $loss%: $done of $total simulated pulls completed" >&2; fail=1; fi
  ratio=$(python3 -c "print(f'{$sg / ${real[$loss]}:.2f}')")
  within=$(python3 -c "print('yes' if abs($sg / ${real[$loss]} - 1) <= 0.25 else 'no')")
  [ "$within" = yes ] || missed=1
  printf '%4s%% %9s %9s %9s %9s %8s %4s  %10s %9s  %8s %8s %8s  %9s %9s  %6s ms %6s ms %5s\n' "$loss" "${real[$loss]}" "${own[$loss]}" "${bound[$loss]}" "$sg" \
    "$ratio" "$within" "${rr[$loss]}" "$srr" "${drops[$loss]}" "${tdrops[$loss]}" "${rcvbuf[$loss]}" \
    "${sent[$loss]}" "$sdg" "${rtt[$loss]}" "$srtt" "${load[$loss]}"
done < "$work/sim.txt"
[ "$fail" = 0 ] || exit 1
[ "$missed" = 0 ] || exit 3
