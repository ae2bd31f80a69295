#!/usr/bin/env bash
# CPU per packet of a verified pull, each side apart.
#
#   benches/cpu.sh [--bin PATH] [--size 256MiB] [--runs 5] [--pullers 1] [--proofs]
#                  [--expose-args "ARGS"] [--versus "ARGS"] [--versus-bin PATH] [--json FILE]
#
# Exposes a random file of SIZE from RAM (`rgtp expose`, defaults: 1200-byte chunks)
# and pulls it over loopback with `rgtp pull` RUNS times, each from a fresh exposer;
# with --pullers N, N pulls at once (separate processes, each into its own file).
# Per run: the wall time from launching the pulls until the last one exits, the
# pullers' CPU (user + system, every thread, from wait4, summed), the exposer's
# CPU while it served them (its utime + stime from /proc before and after, so
# sealing is left out), each also per chunk delivered (N x the file's chunks),
# and the share of the machine's CPUs left idle meanwhile (/proc/stat). Prints
# every run and the medians. Each exposer is left to finish what it does once it
# serves (until its CPU time stands still for 0.2 s) before the pulls start. CPU
# time is far steadier than wall time on a shared machine, which is why the
# budget in the README is written in it.
# --proofs exposes and pulls with Merkle proofs (`rgtp pull --proofs`: one chunk packet
# in 64 carries a proof, spec §3.6).
# --expose-args adds ARGS (split on spaces) to every `rgtp expose`.
# --versus ARGS compares two exposers in alternated pairs: each run is a pair,
# A (as above) and B (with ARGS added to `rgtp expose` too), their order turning
# each run; it prints both sides' medians and the medians of the per-pair ratios
# B / A. For instance `--pullers 8 --versus --copy-sends`: lent sends against copies.
# --versus-bin PATH: B runs that build of `rgtp` (both ends) instead: two builds
# compared the same way (with --versus, B has both).
# Under the medians of the ratios, where each may lie: a distribution-free interval
# from the order of the per-pair ratios (benches/stats.py: 95% or better from 6
# pairs on, 98.8% from the 2nd to the 10th of 11); 1.0 inside shows no difference.
# --json FILE also writes every run, the medians and the ratios there, for plots.
# Outputs go under $TMPDIR (TMPDIR=/dev/shm takes the disk out of the figures).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-target}/release/rgtp"
size=256MiB
runs=5
pullers=1
proofs=()
extra=()
versus=()
has_versus=0
bin_b=""
json=""
usage="usage: benches/cpu.sh [--bin PATH] [--size 256MiB] [--runs 5] [--pullers 1] [--proofs] [--expose-args ARGS] [--versus ARGS] [--versus-bin PATH] [--json FILE]"
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --pullers) pullers="$2"; shift 2 ;;
    --proofs) proofs=(--proofs); shift ;;
    --expose-args) read -r -a extra <<< "$2"; shift 2 ;;
    --versus) read -r -a versus <<< "$2"; has_versus=1; shift 2 ;;
    --versus-bin) bin_b="$2"; has_versus=1; shift 2 ;;
    --json) json="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || cargo build --release -q -p rgtp-cli
if [ -n "$bin_b" ] && ! [ -x "$bin_b" ]; then echo "cpu.sh: --versus-bin $bin_b is not an executable" >&2; exit 2; fi
s=${size%B}; bytes=$(numfmt --from=iec "${s%i}")
dir=$(mktemp -d)
xp=""
trap 'if [ -n "$xp" ]; then kill "$xp" 2>/dev/null || true; fi; rm -rf "$dir"' EXIT
head -c "$bytes" /dev/urandom > "$dir/src.bin"
chunks=$(( pullers * ((bytes + 1199) / 1200) ))
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Idle and total jiffies of the whole machine.
stat_cpu() { awk '/^cpu / {t = 0; for (i = 2; i <= NF; i++) t += $i; print $5 + $6, t}' /proc/stat; }
# NUM / DEN, or nothing when DEN is 0 (too little CPU to count in clock ticks).
ratio() { awk -v n="$1" -v d="$2" 'BEGIN { if (d > 0) printf "%.6f\n", n / d }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# Waits until process $1 has taken no CPU for 0.2 s (at most 10 s): the work an
# exposer does once it serves, before any request (moving its store onto huge
# pages), is left out as its sealing is.
settle() {
  local last now same=0
  last=$(cpu "$1")
  for _ in $(seq 100); do
    sleep 0.1
    now=$(cpu "$1")
    if [ "$now" = "$last" ]; then same=$((same + 1)); [ "$same" -ge 2 ] && return 0; else same=0; fi
    last=$now
  done
}

# One run with `$run expose ... "$@"`; sets wall, pcpu, xcpu (seconds) and idle (share).
run=$bin
one() {
  "$run" expose "$dir/src.bin" "${proofs[@]}" "${extra[@]}" "$@" --port 0 --bind 127.0.0.1 -q > "$dir/ticket" 2> "$dir/expose.err" &
  xp=$!
  for _ in $(seq 100); do [ -s "$dir/ticket" ] && break; sleep 0.05; done
  if ! [ -s "$dir/ticket" ]; then
    echo "rgtp expose${extra[*]:+ ${extra[*]}}${*:+ $*} gave no ticket:" >&2
    cat "$dir/expose.err" >&2
    return 1
  fi
  ticket=$(head -1 "$dir/ticket")
  settle "$xp"
  local c0 c1 t0 t1 i0 a0 i1 a1 p=0 pids=() j u s
  c0=$(cpu "$xp")
  read -r i0 a0 < <(stat_cpu)
  t0=$EPOCHREALTIME
  for j in $(seq "$pullers"); do
    /usr/bin/time -f "%e %U %S" -o "$dir/time.$j" "$run" pull "$ticket" "${proofs[@]}" -o "$dir/out.$j" -q &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || { echo "a pull failed" >&2; return 1; }; done
  t1=$EPOCHREALTIME
  read -r i1 a1 < <(stat_cpu)
  c1=$(cpu "$xp")
  kill -INT "$xp"; wait "$xp" 2>/dev/null || true
  xp=""
  for j in $(seq "$pullers"); do
    cmp -s "$dir/src.bin" "$dir/out.$j" || { echo "output $j differs from the source" >&2; return 1; }
    # The last line: time(1) puts a note about the exit status before it, if any.
    read -r _ u s < <(tail -n 1 "$dir/time.$j")
    p=$(echo "$p + $u + $s" | bc -l)
  done
  rm -f "$dir"/out.* "$dir"/time.* "$dir/ticket"
  wall=$(echo "$t1 - $t0" | bc -l); pcpu=$p; xcpu=$(echo "($c1 - $c0) / $ticks" | bc -l)
  idle=$(echo "($i1 - $i0) / ($a1 - $a0)" | bc -l)
}

declare -A walls pcpus xcpus idles
show() { # label run wall puller exposer idle
  printf 'run %d%s: wall %.2f s (%.0f MB/s), puller CPU %.2f s (%.2f us/chunk), exposer CPU %.2f s (%.2f us/chunk), idle %.1f%%\n' \
    "$2" "$1" "$3" "$(echo "$pullers * $bytes / $3 / 1000000" | bc -l)" "$4" "$(echo "$4 * 1000000 / $chunks" | bc -l)" \
    "$5" "$(echo "$5 * 1000000 / $chunks" | bc -l)" "$(echo "$6 * 100" | bc -l)"
}
sides=(A)
[ "$has_versus" = 1 ] && sides=(A B)
rate=() xratio=() pratio=()
for i in $(seq "$runs"); do
  order=("${sides[@]}")
  [ "${#sides[@]}" = 2 ] && [ $((i % 2)) = 0 ] && order=(B A)
  declare -A r=()
  for side in "${order[@]}"; do
    if [ "$side" = A ]; then args=() run=$bin; else args=("${versus[@]}") run=${bin_b:-$bin}; fi
    one "${args[@]}" || { echo "run $i ($side): failed" >&2; exit 1; }
    w=$wall p=$pcpu x=$xcpu
    walls[$side]+="$w "; pcpus[$side]+="$p "; xcpus[$side]+="$x "; idles[$side]+="$idle "
    r[$side]="$w $p $x"
    label=""; [ "${#sides[@]}" = 2 ] && label=" $side"
    show "$label" "$i" "$w" "$p" "$x" "$idle"
    printf '%s\t%d\t%s\t%s\t%s\t%s\n' "$side" "$i" "$w" "$p" "$x" "$idle" >> "$dir/runs.tsv"
  done
  if [ "${#sides[@]}" = 2 ]; then
    read -r wa pa xa <<< "${r[A]}"; read -r wb pb xb <<< "${r[B]}"
    q=$(ratio "$wa" "$wb"); [ -n "$q" ] && rate+=("$q")
    q=$(ratio "$pb" "$pa"); [ -n "$q" ] && pratio+=("$q")
    q=$(ratio "$xb" "$xa"); [ -n "$q" ] && xratio+=("$q")
  fi
done
echo "machine: $(bash benches/machine.sh)"
for side in "${sides[@]}"; do
  # shellcheck disable=SC2086
  w=$(median ${walls[$side]}); p=$(median ${pcpus[$side]}); x=$(median ${xcpus[$side]}); idle=$(median ${idles[$side]})
  label=""
  if [ "${#sides[@]}" = 2 ]; then
    all=("${extra[@]}")
    [ "$side" = B ] && all+=("${versus[@]}")
    build=$bin
    [ "$side" = B ] && build=${bin_b:-$bin}
    label=" $side ($build expose${all[*]:+ ${all[*]}})"
  fi
  printf 'median of %d%s (pulls at once: %d, chunks: %d): wall %.2f s (%.0f MB/s), puller %.2f us/chunk, exposer %.2f us/chunk, both %.2f us/chunk, idle %.1f%%\n' \
    "$runs" "$label" "$pullers" "$chunks" "$w" "$(echo "$pullers * $bytes / $w / 1000000" | bc -l)" "$(echo "$p * 1000000 / $chunks" | bc -l)" \
    "$(echo "$x * 1000000 / $chunks" | bc -l)" "$(echo "($p + $x) * 1000000 / $chunks" | bc -l)" "$(echo "$idle * 100" | bc -l)"
done
if [ "${#sides[@]}" = 2 ]; then
  m() { if [ $# -gt 0 ]; then printf '%.3f' "$(median "$@")"; else printf 'n/a (no CPU counted)'; fi; }
  echo "B / A, medians of the per-pair ratios: goodput $(m "${rate[@]}"), puller CPU $(m "${pratio[@]}"), exposer CPU $(m "${xratio[@]}")"
  # Where each median may lie (benches/stats.py): 1.0 inside shows no difference.
  iv() {
    if [ $# -gt 0 ]; then
      python3 benches/stats.py interval "$@" | awk '{ printf "%.3f-%.3f (%.1f%%)", $2, $3, $4 * 100 }'
    else
      printf 'n/a'
    fi
  }
  echo "  distribution-free intervals of those medians: goodput $(iv "${rate[@]}"), puller CPU $(iv "${pratio[@]}"), exposer CPU $(iv "${xratio[@]}")"
fi
if [ -n "$json" ]; then
  machine=$(bash benches/machine.sh)
  b_bin=${bin_b:-$bin}
  python3 - "$dir/runs.tsv" "$json" "$bytes" "$pullers" "$chunks" "$machine" "$bin" "$b_bin" "${extra[*]}" "${versus[*]}" "${#sides[@]}" "${proofs[*]}" <<'PY'
import json, statistics, sys
sys.path.insert(0, "benches")
from stats import median_interval
path, out, size, pullers, chunks, machine, bin_a, bin_b, extra, versus, sides, proofs = sys.argv[1:]
size, pullers, chunks = int(size), int(pullers), int(chunks)
runs = {}
for line in open(path):
    side, i, w, p, x, idle = line.split("\t")
    runs.setdefault(side, []).append({
        "run": int(i), "wall_s": float(w), "goodput_MBps": pullers * size / float(w) / 1e6,
        "puller_cpu_s": float(p), "exposer_cpu_s": float(x), "idle_share": float(idle),
        "puller_us_per_chunk": float(p) * 1e6 / chunks, "exposer_us_per_chunk": float(x) * 1e6 / chunks})
def summary(rows):
    return {k: statistics.median(r[k] for r in rows) for k in
            ("wall_s", "goodput_MBps", "puller_us_per_chunk", "exposer_us_per_chunk", "idle_share")}
doc = {"bytes": size, "pullers": pullers, "chunks_delivered": chunks, "machine": machine,
       "proofs": bool(proofs), "sides": {}}
for side, rows in runs.items():
    args = extra + (" " + versus if side == "B" and versus else "")
    doc["sides"][side] = {"bin": bin_a if side == "A" else bin_b, "expose_args": args.strip(),
                          "runs": rows, "medians": summary(rows)}
if int(sides) == 2:
    a = {r["run"]: r for r in runs["A"]}
    b = {r["run"]: r for r in runs["B"]}
    def med(xs):
        return statistics.median(xs) if xs else None
    ratios = {
        "goodput": [b[i]["goodput_MBps"] / a[i]["goodput_MBps"] for i in a],
        "puller_cpu": [b[i]["puller_cpu_s"] / a[i]["puller_cpu_s"] for i in a if a[i]["puller_cpu_s"] > 0],
        "exposer_cpu": [b[i]["exposer_cpu_s"] / a[i]["exposer_cpu_s"] for i in a if a[i]["exposer_cpu_s"] > 0],
    }
    doc["b_over_a"] = {k: med(v) for k, v in ratios.items()}
    # [low, high, the chance the median lies between] (benches/stats.py).
    doc["b_over_a_intervals"] = {k: median_interval(v) for k, v in ratios.items()}
with open(out, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
print(f"(written to {out})")
PY
fi
