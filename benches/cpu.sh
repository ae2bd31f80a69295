#!/usr/bin/env bash
# CPU per packet of a verified pull, each side apart.
#
#   benches/cpu.sh [--bin PATH] [--size 256MiB] [--runs 5] [--pullers 1] [--proofs]
#
# Exposes a random file of SIZE from RAM (`rgtp expose`, defaults: 1200-byte chunks)
# and pulls it over loopback with `rgtp pull` RUNS times, each from a fresh exposer;
# with --pullers N, N pulls at once (separate processes, each into its own file).
# Per run: the wall time from launching the pulls until the last one exits, the
# pullers' CPU (user + system, every thread, from wait4, summed) and the exposer's
# CPU while it served them (its utime + stime from /proc before and after, so
# sealing is left out), each also per chunk delivered (N x the file's chunks).
# Prints every run and the medians. CPU time is far steadier than wall time on a
# shared machine, which is why the budget in the README is written in it.
# --proofs exposes and pulls with Merkle proofs (`rgtp pull --proofs`: one chunk packet
# in 64 carries a proof, spec §3.6).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/release/rgtp"
size=256MiB
runs=5
pullers=1
proofs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --pullers) pullers="$2"; shift 2 ;;
    --proofs) proofs=(--proofs); shift ;;
    *) echo "usage: benches/cpu.sh [--bin PATH] [--size 256MiB] [--runs 5] [--pullers 1] [--proofs]" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || cargo build --release -q -p rgtp-cli
s=${size%B}; bytes=$(numfmt --from=iec "${s%i}")
dir=$(mktemp -d)
trap 'kill "${xp:-0}" 2>/dev/null || true; rm -rf "$dir"' EXIT
head -c "$bytes" /dev/urandom > "$dir/src.bin"
chunks=$(( pullers * ((bytes + 1199) / 1200) ))
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
walls=(); pcpus=(); xcpus=()
for i in $(seq "$runs"); do
  "$bin" expose "$dir/src.bin" "${proofs[@]}" --port 0 --bind 127.0.0.1 -q > "$dir/ticket" 2>/dev/null &
  xp=$!
  for _ in $(seq 100); do [ -s "$dir/ticket" ] && break; sleep 0.05; done
  ticket=$(head -1 "$dir/ticket")
  c0=$(cpu "$xp")
  t0=$EPOCHREALTIME
  pids=()
  for j in $(seq "$pullers"); do
    /usr/bin/time -f "%e %U %S" -o "$dir/time.$j" "$bin" pull "$ticket" "${proofs[@]}" -o "$dir/out.$j" -q &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || { echo "run $i: a pull failed" >&2; exit 1; }; done
  t1=$EPOCHREALTIME
  c1=$(cpu "$xp")
  kill -INT "$xp"; wait "$xp" 2>/dev/null || true
  p=0
  for j in $(seq "$pullers"); do
    cmp -s "$dir/src.bin" "$dir/out.$j" || { echo "run $i: output $j differs" >&2; exit 1; }
    # The last line: time(1) puts a note about the exit status before it, if any.
    read -r _ u s < <(tail -n 1 "$dir/time.$j")
    p=$(echo "$p + $u + $s" | bc -l)
  done
  rm -f "$dir"/out.* "$dir"/time.* "$dir/ticket"
  w=$(echo "$t1 - $t0" | bc -l); x=$(echo "($c1 - $c0) / $ticks" | bc -l)
  walls+=("$w"); pcpus+=("$p"); xcpus+=("$x")
  printf 'run %d: wall %.2f s (%.0f MB/s), puller CPU %.2f s (%.2f us/chunk), exposer CPU %.2f s (%.2f us/chunk)\n' \
    "$i" "$w" "$(echo "$pullers * $bytes / $w / 1000000" | bc -l)" "$p" "$(echo "$p * 1000000 / $chunks" | bc -l)" \
    "$x" "$(echo "$x * 1000000 / $chunks" | bc -l)"
done
w=$(median "${walls[@]}"); p=$(median "${pcpus[@]}"); x=$(median "${xcpus[@]}")
echo "machine: $(bash benches/machine.sh)"
printf 'median of %d (pulls at once: %d, chunks: %d): wall %.2f s (%.0f MB/s), puller %.2f us/chunk, exposer %.2f us/chunk, both %.2f us/chunk\n' \
  "$runs" "$pullers" "$chunks" "$w" "$(echo "$pullers * $bytes / $w / 1000000" | bc -l)" "$(echo "$p * 1000000 / $chunks" | bc -l)" \
  "$(echo "$x * 1000000 / $chunks" | bc -l)" "$(echo "($p + $x) * 1000000 / $chunks" | bc -l)"
