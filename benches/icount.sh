#!/usr/bin/env bash
# Instructions executed by one transfer, in two builds: a speed comparison the
# machine's noise cannot blur.
#
#   benches/icount.sh BIN_A BIN_B [MODE] [SIZE] [RUNS]   (defaults: sim, 8388608, 3)
#
# BIN_A and BIN_B are `transfer-once` binaries (benches/src/bin/transfer-once.rs)
# of the two builds. Each runs RUNS times under `valgrind --tool=callgrind`,
# counting only the transfer (`sim_transfer`, or `udp_transfer` plus the
# exposer's `serve` in MODE udp; sealing the data is not counted). In MODE sim
# the count repeats to within a few hundred instructions (hash-map seeds); in
# MODE udp it also counts what thread timing causes (a run where chunks were
# re-requested costs about 2% more), so take the median of several runs. Prints every count, the medians and B/A.
# Valgrind emulates no SHA extensions, so SHA-256 runs its portable code here:
# the figure weighs hashing more than real runs do; compare builds, not suites.
#
# To compare the working tree with an earlier commit (copy the binary's source
# in if that commit predates it):
#   git worktree add /tmp/old <commit>
#   cp benches/src/bin/transfer-once.rs /tmp/old/benches/src/bin/
#   (cd /tmp/old && cargo build --release -p rgtp-benches --bin transfer-once)
#   cargo build --release -p rgtp-benches --bin transfer-once
#   benches/icount.sh /tmp/old/target/release/transfer-once target/release/transfer-once
set -euo pipefail

if [[ $# -lt 2 || $1 == -h || $1 == --help ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit $(( $# < 2 ? 2 : 0 ))
fi
command -v valgrind >/dev/null || { echo "icount.sh: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
a=$1 b=$2 mode=${3:-sim} size=${4:-8388608} runs=${5:-3}
case $mode in
    sim) toggles=(--toggle-collect='*sim_transfer*') ;;
    udp) toggles=(--toggle-collect='*udp_transfer*' --toggle-collect='*driver*serve*') ;;
    *) echo "icount.sh: MODE is sim or udp" >&2; exit 2 ;;
esac

count() {
    valgrind --tool=callgrind "${toggles[@]}" --callgrind-out-file=/dev/null "$1" "$mode" "$size" 2>&1 |
        awk '/I *refs:/ { gsub(/,/, "", $NF); print $NF }'
}

ca=() cb=()
for ((i = 1; i <= runs; i++)); do
    ca+=("$(count "$a")")
    cb+=("$(count "$b")")
    printf 'run %d   A %15s   B %15s\n' "$i" "${ca[-1]}" "${cb[-1]}"
done
python3 - "${ca[@]}" -- "${cb[@]}" <<'PY'
import statistics, sys
args = sys.argv[1:]
cut = args.index("--")
a = statistics.median(int(x) for x in args[:cut])
b = statistics.median(int(x) for x in args[cut + 1:])
print(f"median instructions  A {a:,.0f}   B {b:,.0f}   B/A {b / a:.4f}")
PY
