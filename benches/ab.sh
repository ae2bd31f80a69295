#!/usr/bin/env bash
# A/B goodput of two `rgtp` binaries, interleaved so both see the same machine.
#
#   benches/ab.sh BIN_A BIN_B [RUNS] [SIZE]      (defaults: 10 runs, 256MiB)
#
# Runs `BIN demo --size SIZE` alternately (A, B, A, B, …) after one warm-up
# run of each (the first run after a pause pays for zeroing fresh pages), and
# prints every run's pull goodput and seal rate, then per binary the median
# and the median of the per-pair ratios B/A. This machine is noisy: quote the
# medians and the ratio, not single runs.
#
# To compare the working tree with an earlier commit:
#   git worktree add /tmp/old <commit> && (cd /tmp/old && cargo build --release -p rgtp-cli)
#   cargo build --release -p rgtp-cli
#   benches/ab.sh /tmp/old/target/release/rgtp target/release/rgtp
set -euo pipefail

if [[ $# -lt 2 || $1 == -h || $1 == --help ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit $(( $# < 2 ? 2 : 0 ))
fi
a=$1 b=$2 runs=${3:-10} size=${4:-256MiB}

# Prints "goodput seal" in MB/s for one demo run.
one() {
    "$1" demo --size "$size" 2>&1 | awk '
        /^  goodput/ { g = $2 }
        /^  expose \(seal\)/ { s = $5; sub(/\(/, "", s) }
        END { if (g == "") exit 1; print g, s }'
}

one "$a" >/dev/null
one "$b" >/dev/null
ga=() gb=()
printf '%-4s %14s %14s %14s %14s\n' run "A goodput" "B goodput" "A seal" "B seal"
for ((i = 1; i <= runs; i++)); do
    read -r g1 s1 < <(one "$a")
    read -r g2 s2 < <(one "$b")
    ga+=("$g1") gb+=("$g2")
    printf '%-4s %10s MB/s %10s MB/s %10s MB/s %10s MB/s\n' "$i" "$g1" "$g2" "$s1" "$s2"
done

python3 - "${ga[@]}" -- "${gb[@]}" <<'PY'
import statistics, sys
args = sys.argv[1:]
cut = args.index("--")
a = [float(x) for x in args[:cut]]
b = [float(x) for x in args[cut + 1:]]
ratios = [y / x for x, y in zip(a, b)]
print(f"median goodput  A {statistics.median(a):.1f} MB/s   B {statistics.median(b):.1f} MB/s")
print(f"median of per-pair ratios B/A {statistics.median(ratios):.3f}  (min {min(ratios):.3f}, max {max(ratios):.3f})")
PY
