#!/usr/bin/env bash
# Resuming a large pull over real UDP on loopback: what a kill costs.
#
#   benches/resume.sh [--size 1GiB] [--seconds 20] [--proofs] [--bin PATH] [--json]
#
# A random file of SIZE is exposed with `rgtp expose --key K` (so that a restarted
# exposer serves the same exposure) and pulled with `rgtp pull TICKET -o OUT --json`.
# "Half way" is read from the pull's state file (OUT.rgtp-state, rewritten at most a
# second apart while the pull runs): the first time it records at least half of the
# chunks as verified. The fraction actually recorded at that moment is printed, since
# the state moves in steps of up to a second of transfer.
#
#   puller    `kill -9` the puller half way, run the same command again. Checks: the
#             output is byte-exact, and of the chunks the state recorded at the kill at
#             most 2% are fetched again (recorded - chunks_resumed). Also printed: the
#             chunks that were in the partial file, intact, at the kill (compared with
#             the source), which the state had not caught up with; those are fetched
#             again by design and are the cost of saving the state once a second.
#   exposer   `kill -9` the exposer half way, restart it a second later with the same
#             file, key and port; the puller (`--retries`) carries on. Checks: the same
#             ticket, the output byte-exact, at least one retry, the retry resuming at
#             least what was recorded and asking only for the rest. Printed, over every
#             try (`pull --json` gives the earlier tries' counters too): chunk requests
#             beyond one per chunk (those in flight when the exposer died, asked again
#             of the new one, and retransmissions), and chunks delivered over the chunk
#             count.
#   corrupt   `kill -9` the puller half way, flip 16 bytes in the middle of one chunk
#             of the partial file that the state records as verified, run the same
#             command again. Checks: the output is byte-exact and the summary shows
#             that chunk fetched again (repaired_chunks >= 1: the root did not match,
#             the wrong chunk was located with proofs and fetched, spec §8.12).
#
# With --proofs the file is exposed with `rgtp expose --proofs` and pulled with
# `rgtp pull --proofs`: the chunks a rerun keeps carry no proofs and are judged with
# their proof runs, whose first chunks are fetched again (one in 64, within the 2%;
# for the same reason the exposer case's retry may keep up to 2% fewer chunks than
# were recorded, and the corrupt case never spoils the first chunk of a run).
#
# Every pull is capped (`pull --max-rate`) at SIZE / SECONDS per second, so that it lasts
# about SECONDS and the state, written once a second, moves in steps of about 1/SECONDS
# of the file: uncapped, a 1 GiB pull on loopback can be over in two or three seconds,
# between two writes of the state. `--seconds 0` lifts the cap. Wall times are of the
# run that completes (for the exposer, of the whole pull). With --json, one JSON object
# on standard output and the text on standard error. Exits non-zero when a check fails.
#
# Timing figures belong here, not in the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

size=1GiB
seconds=20
bin=""
json=0
proofs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --json) json=1; shift ;;
    --proofs) proofs=(--proofs); shift ;;
    *) echo "usage: $0 [--size 1GiB] [--seconds 20] [--proofs] [--bin PATH] [--json]" >&2; exit 2 ;;
  esac
done
if [ -z "$bin" ]; then
  cargo build --release -q -p rgtp-cli --locked
  bin="${CARGO_TARGET_DIR:-target}/release/rgtp"
fi
bin=$(realpath "$bin")

bytes=$(python3 - "$size" <<'EOF'
import re, sys
m = re.fullmatch(r"([0-9]+)\s*(k|M|G|KiB|MiB|GiB)?", sys.argv[1].strip())
if not m:
    sys.exit("size must look like 64MiB or 1GiB")
mult = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
print(int(m.group(1)) * mult[m.group(2)])
EOF
)

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say() { if [ "$json" = 1 ]; then echo "$*" >&2; else echo "$*"; fi; }
failed=0
check() { # message command...: the command must succeed
  local msg=$1
  shift
  if ! "$@"; then
    say "FAILED: $msg"
    failed=1
  fi
}
die() { say "FAILED: $*"; exit 1; }

# The state file: held chunks and chunk count, or nothing if absent or unreadable.
state_held() {
  python3 - "$1" <<'EOF'
import struct, sys
try:
    b = open(sys.argv[1], "rb").read()
except OSError:
    sys.exit(0)
if len(b) < 72 or b[:8] != b"RGTPRSM1":
    sys.exit(0)
chunk_size, count = struct.unpack(">II", b[64:72])
words = (count + 63) // 64
if len(b) != 72 + 8 * words:
    sys.exit(0)
held = sum(bin(w).count("1") for w in struct.unpack("<%dQ" % words, b[72:]))
print(held, count, chunk_size)
EOF
}

# The chunks of PARTIAL equal to SOURCE's, chunk by chunk.
intact_chunks() { # source partial chunk_size
  python3 - "$@" <<'EOF'
import sys
src, part, cs = sys.argv[1], sys.argv[2], int(sys.argv[3])
n = 0
with open(src, "rb") as a, open(part, "rb") as b:
    while True:
        x = a.read(cs)
        if not x:
            break
        if b.read(cs) == x:
            n += 1
print(n)
EOF
}

# A field of the JSON object in FILE.
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
head -c "$bytes" /dev/urandom > "$work/src.bin"

# Starts `rgtp expose` on PORT (0: any); sets $xpid and $exposed (its ticket).
expose() {
  local port=$1 out="$work/ticket.$RANDOM"
  "$bin" expose "$work/src.bin" --port "$port" --bind 127.0.0.1 -q --key "$key" "${proofs[@]}" \
    > "$out" 2> "$work/expose.err" &
  xpid=$!
  pids+=("$xpid")
  for _ in $(seq 1200); do
    [ -s "$out" ] && break
    kill -0 "$xpid" 2>/dev/null || { cat "$work/expose.err" >&2; echo "rgtp expose died" >&2; exit 1; }
    sleep 0.1
  done
  [ -s "$out" ] || { echo "rgtp expose printed no ticket in 120 s" >&2; exit 1; }
  exposed=$(head -1 "$out")
}

# Starts `rgtp pull TICKET -o OUT --json EXTRA...` in the background; sets $ppid_.
pull_bg() {
  local ticket=$1 out=$2
  shift 2
  "$bin" pull "$ticket" -o "$out" --json -q "${caps[@]}" "$@" > "$out.json" 2> "$out.err" &
  ppid_=$!
  pids+=("$ppid_")
}
caps=("${proofs[@]}")
rate=0
if [ "$seconds" != 0 ]; then
  rate=$((bytes / seconds))
  caps+=(--max-rate "$rate")
fi

# Waits until OUT's state records at least half the chunks (60 s at most, and not
# after the pull PID has ended); prints "held count chunk_size".
wait_half() {
  local out=$1 pid=$2 s
  for _ in $(seq 3000); do
    s=$(state_held "$out.rgtp-state")
    if [ -n "$s" ]; then
      read -r h c _ <<< "$s"
      if [ $((2 * h)) -ge "$c" ]; then echo "$s"; return 0; fi
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
  echo "the pull never recorded half its chunks before it ended (or in 60 s)" >&2
  return 1
}

now() { date +%s.%N; }
ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.4f}' if b else 'nan')" "$1" "$2"; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }

say "resume after kill -9, $bytes bytes ($size) over UDP on loopback, pulls capped at $rate B/s (0: none)"

# --- 1. the puller killed half way ---------------------------------------------
expose 0
ticket=$exposed
out="$work/p.bin"
pull_bg "$ticket" "$out"
s=$(wait_half "$out" "$ppid_")
read -r held count csize <<< "$s"
kill -9 "$ppid_"; wait "$ppid_" 2>/dev/null || true
intact=$(intact_chunks "$work/src.bin" "$out.rgtp-partial" "$csize")
t0=$(now)
"$bin" pull "$ticket" -o "$out" --json -q "${caps[@]}" > "$out.json" 2> "$out.err" || { cat "$out.err" >&2; die "puller: the rerun failed"; }
t1=$(now)
check "puller: the output differs from the source" cmp -s "$work/src.bin" "$out"
resumed=$(field "$out.json" chunks_resumed)
received=$(field "$out.json" chunks_received)
requested=$(field "$out.json" chunks_requested)
rerequested=$(field "$out.json" chunks_rerequested)
refetched=$((held - resumed))
check "puller: more chunks resumed ($resumed) than recorded ($held)" test "$refetched" -ge 0
check "puller: $refetched of the $held recorded chunks were fetched again (more than 2%)" \
  test $((refetched * 50)) -le "$held"
check "puller: $received of $count chunks accepted" test "$received" = "$count"
p_ratio=$(ratio "$refetched" "$held")
p_secs=$(secs "$t0" "$t1")
say "puller killed at $held/$count chunks recorded ($(ratio "$held" "$count") of the file; $intact intact in the partial file)"
say "  rerun: resumed $resumed, fetched $((received - resumed)) ($requested requested, $rerequested re-requested), recorded chunks fetched again $refetched (ratio $p_ratio), $p_secs s"
rm -f "$out" "$out.json" "$out.err"

# --- 2. the exposer killed half way --------------------------------------------
port=${ticket#rgtp://127.0.0.1:}
port=${port%%/*}
out="$work/x.bin"
pull_bg "$ticket" "$out" --retries 10 --idle-timeout 2 --connect-timeout 2
pull=$ppid_
t0=$(now)
s=$(wait_half "$out" "$pull")
read -r xheld _ _ <<< "$s"
kill -9 "$xpid"; wait "$xpid" 2>/dev/null || true
sleep 1
expose "$port"
check "exposer: the restarted exposer printed another ticket ($exposed)" test "$exposed" = "$ticket"
wait "$pull" || { cat "$out.err" >&2; die "exposer: the pull failed"; }
t1=$(now)
check "exposer: the output differs from the source" cmp -s "$work/src.bin" "$out"
# Over every try: chunk requests (first and repeated), chunks delivered (accepted
# without being resumed, plus duplicates), and the tries that timed out.
read -r tries x_resumed x_requests x_delivered x_lastreq x_lastrereq <<< "$(python3 - "$out.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
every = j["earlier_tries"] + [j]
requests = sum(t["chunks_requested"] + t["chunks_rerequested"] for t in every)
delivered = sum(t["chunks_received"] - t["chunks_resumed"] + t["duplicates"] for t in every)
print(len(every), j["chunks_resumed"], requests, delivered, j["chunks_requested"], j["chunks_rerequested"])
EOF
)"
check "exposer: the pull never retried (tries $tries)" test "$tries" -ge 2
# With proofs the first chunk of each run of 64 is fetched again: 2% at most, as above.
x_floor=$xheld
[ ${#proofs[@]} -gt 0 ] && x_floor=$((xheld - xheld / 50))
check "exposer: the retry resumed $x_resumed chunks, fewer than the $xheld recorded (at least $x_floor)" \
  test "$x_resumed" -ge "$x_floor"
check "exposer: the last try requested $x_lastreq chunks, more than the $((count - x_resumed)) missing" \
  test "$x_lastreq" -le $((count - x_resumed))
x_again=$((x_requests - count))
x_ratio=$(ratio "$x_delivered" "$count")
x_secs=$(secs "$t0" "$t1")
say "exposer killed at $xheld/$count chunks recorded, restarted after 1 s: same ticket, byte-exact, $tries tries, $x_secs s for the whole pull"
say "  the retry resumed $x_resumed and requested $x_lastreq ($x_lastrereq again); chunk requests beyond one per chunk over all tries $x_again; delivered / chunks $x_ratio"
rm -f "$out" "$out.json" "$out.err"

# --- 3. a corrupted chunk in the partial file ----------------------------------
out="$work/c.bin"
pull_bg "$ticket" "$out"
s=$(wait_half "$out" "$ppid_")
read -r cheld _ _ <<< "$s"
kill -9 "$ppid_"; wait "$ppid_" 2>/dev/null || true
# A chunk the state records, half way through the recorded ones, and not the first of
# a run of 64 (which a pull with proofs fetches again anyway); 16 bytes of it flipped.
victim=$(python3 - "$out.rgtp-state" "$out.rgtp-partial" <<'EOF'
import struct, sys
b = open(sys.argv[1], "rb").read()
total, = struct.unpack(">Q", b[56:64])
cs, count = struct.unpack(">II", b[64:72])
words = struct.unpack("<%dQ" % ((count + 63) // 64), b[72:])
held = [i for i in range(count) if words[i // 64] >> (i % 64) & 1 and i % 64]
i = held[len(held) // 2]
at = i * cs + min(cs, total - i * cs) // 2
with open(sys.argv[2], "r+b") as f:
    f.seek(at)
    x = f.read(16)
    f.seek(at)
    f.write(bytes(v ^ 0xFF for v in x))
print(i)
EOF
)
t0=$(now)
"$bin" pull "$ticket" -o "$out" --json -q "${caps[@]}" > "$out.json" 2> "$out.err" || { cat "$out.err" >&2; die "corrupt: the rerun failed"; }
t1=$(now)
check "corrupt: the output differs from the source" cmp -s "$work/src.bin" "$out"
c_resumed=$(field "$out.json" chunks_resumed)
c_repaired=$(field "$out.json" repaired_chunks)
c_fetches=$(field "$out.json" repair_fetches)
check "corrupt: the summary shows no chunk repaired (repaired_chunks $c_repaired)" \
  test "$c_repaired" -ge 1
c_secs=$(secs "$t0" "$t1")
say "corrupt: chunk $victim of $cheld recorded flipped; rerun resumed $c_resumed, repaired $c_repaired ($c_fetches chunk requests with proofs to find it), byte-exact, $c_secs s"

kill "$xpid" 2>/dev/null || true

if [ "$json" = 1 ]; then
  python3 - <<EOF
import json
print(json.dumps({
    "size": $bytes, "chunk_count": $count, "chunk_size": $csize, "max_rate": $rate,
    "puller": {"recorded_at_kill": $held, "intact_at_kill": $intact, "resumed": $resumed,
               "fetched": $received - $resumed, "requested": $requested,
               "rerequested": $rerequested, "recorded_fetched_again": $refetched,
               "refetch_ratio": $p_ratio, "seconds": $p_secs},
    "exposer": {"recorded_at_kill": $xheld, "tries": $tries, "resumed": $x_resumed,
                "last_try_requested": $x_lastreq, "last_try_rerequested": $x_lastrereq,
                "requests": $x_requests, "requested_again": $x_again,
                "delivered": $x_delivered, "delivered_ratio": $x_ratio, "seconds": $x_secs},
    "corrupt": {"chunk": $victim, "resumed": $c_resumed, "repaired_chunks": $c_repaired,
                "repair_fetches": $c_fetches, "seconds": $c_secs},
    "ok": $([ "$failed" = 0 ] && echo True || echo False),
}))
EOF
fi
exit "$failed"
