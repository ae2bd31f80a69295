#!/usr/bin/env bash
# RGTP side by side with what a user would pick instead, interleaved, as ratios.
#
#   benches/peers.sh [--size 256MiB] [--reps 5] [--receivers 1,8] [--port 7600]
#                    [--out-dir DIR] [--json FILE] [--expose-args ARGS] [--pull-args ARGS]
#                    [--bin PATH]
#
# Builds `rgtp` and the `peers` example (benches/examples/peers.rs), writes a
# random file of SIZE bytes into a temporary folder under the target directory
# (outputs land beside it, on the same file system, unless --out-dir names a
# folder to make theirs in: e.g. /dev/shm, to take the disk out of the figures),
# and starts four servers on loopback that stay up for the whole run:
#   rgtp  `rgtp expose` with its defaults (AES-256-GCM, SHA-256, 1200-byte chunks),
#         or with the flags --expose-args names (split on spaces, e.g. "--fec rs"),
#         pulled by `rgtp pull` with those of --pull-args (e.g. "--proofs");
#         --bin PATH runs that build of `rgtp` (both ends) instead of building
#         one, to set another build beside the same peers
#   tls   TLS 1.3 over TCP, AES-256-GCM only, a thread per connection
#   quic  QUIC (quinn defaults: GSO/GRO), TLS 1.3 AES-256-GCM, one stream each
#   tcp   plain TCP, a thread per connection
# Once the exposer is idle (its CPU time still for 0.2 s: it moves its sealed
# store onto huge pages first) and after one warm-up transfer per system, each
# repetition runs, for every receiver count N, the systems one after the other:
# N receivers at once (`rgtp pull` or `peers get`, separate processes that each
# write, sync and rename their file), every output compared byte for byte with the source (a
# mismatch or a failed receiver fails the run). The order of the systems turns
# by one each repetition: on these VMs a run costs more when the memory its
# files take was handed back to the host before it (eight 256 MiB pulls into
# tmpfs: 2.5-3.2 s right after 2 GiB was freed, 3.4-3.6 s after a 10 s pause),
# so no system should always follow the same one. Per run it prints the goodput
# (N x SIZE / wall time from launching the receivers until the last one
# exits), the server's CPU seconds per GB served (utime + stime from
# /proc/PID/stat, read just before and after the run, the same way for every
# server; RGTP's one-off sealing happens before and is not counted), the
# receivers' CPU seconds per GB received (each one's rusage, from wait4), the
# share of the machine's CPUs left idle meanwhile (/proc/stat: near 0, the run
# was bound by the CPUs, not by a wait), and the ratio of RGTP's goodput to each
# peer's in that repetition. At the end, per N and system: the median goodput,
# the median CPU per GB of each side, the median idle share, and the medians of
# the per-repetition ratios RGTP / peer: of goodput, and of the server's CPU per
# GB (the exposer's over that server's). Rates are MB/s (10^6 B/s). Then, for
# each of those medians of ratios, where it may lie: a distribution-free
# interval (the k-th smallest and k-th largest of the per-repetition ratios, k
# as large as keeps a 95% or better chance of holding the median, which 6 or
# more repetitions reach; 11 give 98.8% from the 2nd to the 10th), and in how
# many repetitions RGTP was ahead. An interval with 1.0 inside shows no
# difference either way.
#
# Every receiver syncs its file before it exits, so on a disk the figures
# include the disk's write speed, the same for every system; on this kind of
# VM that moved plain TCP from 590 to 990 MB/s between days. The output file
# system is printed first and recorded in the JSON, and so is the machine: the
# CPU's model and the extensions that decide what AES-GCM and SHA-256 cost
# (aes, vaes, pclmulqdq, vpclmulqdq, sha_ni, avx2, avx512f), and the kernel.
#
# This machine is shared: quote the medians and ratios, not single runs.
set -euo pipefail
cd "$(dirname "$0")/.."

size=256MiB reps=5 receivers=1,8 port=7600 json="" out_dir="" expose_args=() pull_args=() bin=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --size) size="$2"; shift ;;
        --reps) reps="$2"; shift ;;
        --receivers) receivers="$2"; shift ;;
        --port) port="$2"; shift ;;
        --out-dir) out_dir="$2"; shift ;;
        --json) json="$2"; shift ;;
        --expose-args) read -r -a expose_args <<< "$2"; shift ;;
        --pull-args) read -r -a pull_args <<< "$2"; shift ;;
        --bin) bin=$(cd "$OLDPWD" && realpath -m "$2"); shift ;;  # relative to the caller's folder
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "peers.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

bytes=$(python3 - "$size" <<'PY'
import re, sys
m = re.fullmatch(r"(\d+)\s*(|k|K|M|G|KiB|MiB|GiB)", sys.argv[1])
if not m:
    sys.exit(f"peers.sh: bad --size {sys.argv[1]!r} (e.g. 1048576, 64MiB, 1G)")
mult = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9,
        "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m.group(2)]
print(int(m.group(1)) * mult)
PY
)
if [[ -n $out_dir && ! ( -d $out_dir && -w $out_dir ) ]]; then
    echo "peers.sh: --out-dir $out_dir is not a writable folder (name one to make the receivers' folder in, e.g. /dev/shm)" >&2
    exit 2
fi
IFS=, read -r -a counts <<< "$receivers"
systems=(rgtp tls quic tcp)
peers=(tls quic tcp)

echo "== building (release)" >&2
[ -n "$bin" ] || cargo build --release -p rgtp-cli >&2
cargo build --release -p rgtp-benches --example peers >&2
target=${CARGO_TARGET_DIR:-target}
rgtp=${bin:-$target/release/rgtp}
if [ -n "$bin" ] && ! [ -x "$bin" ]; then
    echo "peers.sh: --bin $bin is not an executable (name a built rgtp, e.g. target/release/rgtp)" >&2
    exit 2
fi
peers_bin=$target/release/examples/peers

work=$(mktemp -d "$target/peers.XXXXXX")
outs=$work
server_pids=()
cleanup() {
    for pid in "${server_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$work" "$outs"
}
trap cleanup EXIT
if [[ -n $out_dir ]]; then
    outs=$(mktemp -d "$out_dir/peers-out.XXXXXX")
fi
out_fs=$(stat -f -c %T "$outs")
echo "== outputs in $outs ($out_fs)" >&2
# The figures depend on the CPU and the kernel: both are printed and recorded.
machine=$(bash benches/machine.sh)
echo "== machine: $machine" >&2

src=$work/source
echo "== writing $bytes random bytes to $src" >&2
head -c "$bytes" /dev/urandom > "$src"

# Waits until FILE has a first line (the server is up) and prints it.
first_line() {
    local file=$1 pid=$2 i
    for ((i = 0; i < 600; i++)); do
        if [[ -s $file ]] && IFS= read -r line < "$file" && [[ -n $line ]]; then
            echo "$line"
            return
        fi
        kill -0 "$pid" 2>/dev/null || { echo "peers.sh: server $pid died:" >&2; cat "$file" "$file.err" >&2; exit 1; }
        sleep 0.1
    done
    echo "peers.sh: server $pid did not start" >&2
    exit 1
}

declare -A pid_of addr_of
"$rgtp" expose "$src" "${expose_args[@]}" --port "$port" -q > "$work/rgtp.out" 2> "$work/rgtp.out.err" &
pid_of[rgtp]=$! server_pids+=($!)
ticket=$(first_line "$work/rgtp.out" "${pid_of[rgtp]}")
p=$port
for proto in "${peers[@]}"; do
    p=$((p + 1))
    "$peers_bin" serve --proto "$proto" --file "$src" --port "$p" --cert "$work/$proto.der" \
        > "$work/$proto.out" 2> "$work/$proto.out.err" &
    pid_of[$proto]=$! server_pids+=($!)
    first_line "$work/$proto.out" "${pid_of[$proto]}" > /dev/null
    addr_of[$proto]=127.0.0.1:$p
done
echo "== servers up: rgtp ${ticket%%#*}#…, tls ${addr_of[tls]}, quic ${addr_of[quic]}, tcp ${addr_of[tcp]}" >&2

# CPU clock ticks (user + system) a process has used so far.
ticks() {
    local stat
    stat=$(< "/proc/$1/stat")
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<< "$stat"
}
hz=$(getconf CLK_TCK)

# Waits until the exposer has taken no CPU for 0.2 s (at most 10 s): what it does
# once, after it starts serving (moving its store onto huge pages), is done before
# the warm-up, as its sealing is.
settled=0 last=$(ticks "${pid_of[rgtp]}")
for _ in $(seq 100); do
    sleep 0.1
    now=$(ticks "${pid_of[rgtp]}")
    if [ "$now" = "$last" ]; then settled=$((settled + 1)); [ "$settled" -ge 2 ] && break; else settled=0; fi
    last=$now
done

# Starts N receivers of SYSTEM at once and reaps each with wait4, for its CPU
# time; prints "wall_seconds receivers_cpu_seconds idle_percent" and then the
# index of every receiver that failed, one per line. The clock runs from the
# first launch to the last exit, inside the launcher, so its own start-up is not
# counted; the idle share is of every CPU over the same span (idle and iowait
# ticks of /proc/stat over all ticks, steal included).
launch() {
    python3 - "$1" "$2" "$rgtp" "$peers_bin" "$ticket" "${addr_of[$1]:-}" "$work/$1.der" "$outs" "${pull_args[@]}" <<'PY'
import os, subprocess, sys, time
system, n, rgtp, peers, ticket, addr, cert, outs = sys.argv[1:9]
pull_args = sys.argv[9:]
cmds = []
for i in range(int(n)):
    out = f"{outs}/out.{i}"
    if system == "rgtp":
        cmd = [rgtp, "pull", "-q", *pull_args, "-o", out, ticket]
    else:
        cmd = [peers, "get", "--proto", system, "--addr", addr, "--out", out, "--cert", cert]
    cmds.append((cmd, open(f"{out}.log", "w")))
def cpu_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[3] + v[4], sum(v)
idle0, all0 = cpu_ticks()
t0 = time.monotonic()
procs = [subprocess.Popen(c, stdout=log, stderr=subprocess.STDOUT) for c, log in cmds]
cpu, failed = 0.0, []
for i, p in enumerate(procs):
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    cpu += ru.ru_utime + ru.ru_stime
    if p.returncode != 0:
        failed.append(i)
wall = time.monotonic() - t0
idle1, all1 = cpu_ticks()
idle = 100 * (idle1 - idle0) / max(all1 - all0, 1)
print(f"{wall:.6f} {cpu:.6f} {idle:.1f}")
for i in failed:
    print(i)
PY
}

# Runs N receivers of SYSTEM at once; prints "goodput_MBps server_cpu_s_per_GB
# receivers_cpu_s_per_GB idle_percent".
run() {
    local system=$1 n=$2 i c0 c1 wall rcpu idle failed=()
    local server=${pid_of[$system]}
    c0=$(ticks "$server")
    { read -r wall rcpu idle; mapfile -t failed; } < <(launch "$system" "$n")
    c1=$(ticks "$server")
    for i in "${failed[@]}"; do
        echo "peers.sh: $system receiver $i of $n failed:" >&2
        cat "$outs/out.$i.log" >&2
    done
    [[ -n $wall && ${#failed[@]} == 0 ]] || exit 1
    for ((i = 0; i < n; i++)); do
        if ! cmp -s "$src" "$outs/out.$i"; then
            echo "peers.sh: $system receiver $i of $n: output differs from the source" >&2
            exit 1
        fi
        rm -f "$outs/out.$i" "$outs/out.$i.log"
    done
    python3 -c "
import sys
wall, rcpu, c0, c1, hz, n, b = map(float, sys.argv[1:])
gb = n * b / 1e9
print(f'{gb * 1e3 / wall:.1f} {(c1 - c0) / hz / gb:.3f} {rcpu / gb:.3f}')
" "$wall" "$rcpu" "$c0" "$c1" "$hz" "$n" "$bytes" | tr '\n' ' '
    echo "$idle"
}

for system in "${systems[@]}"; do
    echo "== warm-up: $system" >&2
    run "$system" 1 > /dev/null
done

results=$work/results.tsv
: > "$results"
printf '%-4s %3s' rep N
for system in "${systems[@]}"; do printf ' %10s %8s %8s %5s' "$system MB/s" "srv s/GB" "rcv s/GB" "idle%"; done
for peer in "${peers[@]}"; do printf ' %10s' "rgtp/$peer"; done
echo
for ((rep = 1; rep <= reps; rep++)); do
    for n in "${counts[@]}"; do
        declare -A g=() row=()
        # The order turns by one system each repetition: none always runs first, or
        # after the same one.
        for ((k = 0; k < ${#systems[@]}; k++)); do
            system=${systems[(k + rep - 1) % ${#systems[@]}]}
            read -r goodput cpu rcpu idle < <(run "$system" "$n")
            [[ -n $idle ]] || exit 1
            g[$system]=$goodput
            row[$system]=$(printf ' %10s %8s %8s %5s' "$goodput" "$cpu" "$rcpu" "$idle")
            printf '\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$n" "$system" "$goodput" "$cpu" "$rcpu" "$idle" >> "$results"
        done
        printf '%-4s %3s' "$rep" "$n"
        for system in "${systems[@]}"; do printf '%s' "${row[$system]}"; done
        for peer in "${peers[@]}"; do
            printf ' %10s' "$(python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.3f}')" "${g[rgtp]}" "${g[$peer]}")"
        done
        echo
    done
done

python3 - "$results" "$json" "$bytes" "$out_fs" "$machine" "${expose_args[*]}" "${pull_args[*]}" "$rgtp" <<'PY'
import json, statistics, sys
from collections import defaultdict
sys.path.insert(0, "benches")
from stats import median_interval

path, json_out, size, out_fs, machine = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
expose_args, pull_args, rgtp_bin = sys.argv[6], sys.argv[7], sys.argv[8]
goodput = defaultdict(dict)   # (n, system) -> {rep: MB/s}
cpu = defaultdict(dict)       # (n, system) -> {rep: server CPU s per GB}
rcpu = defaultdict(list)      # (n, system) -> [receivers' CPU s per GB]
idle = defaultdict(list)      # (n, system) -> [% of all CPUs idle]
for line in open(path):
    _, rep, n, system, g, c, r, i = line.rstrip("\n").split("\t")
    goodput[(int(n), system)][int(rep)] = float(g)
    cpu[(int(n), system)][int(rep)] = float(c)
    rcpu[(int(n), system)].append(float(r))
    idle[(int(n), system)].append(float(i))
systems = ["rgtp", "tls", "quic", "tcp"]
counts = sorted({n for n, _ in goodput})
summary = []
print()
print(f"medians ({size} bytes per receiver, outputs on {out_fs}; {machine})")
if expose_args or pull_args:
    print(f"  rgtp expose {expose_args or '(defaults)'}; rgtp pull {pull_args or '(defaults)'}")
print(f"{'N':>3} {'system':<6} {'goodput MB/s':>13} {'server s/GB':>12} {'receivers s/GB':>15} {'idle %':>7} {'rgtp/system':>12} {'server rgtp/system':>19}")
for n in counts:
    for system in systems:
        reps = goodput[(n, system)]
        ratios = [goodput[(n, "rgtp")][r] / reps[r] for r in reps]
        # The exposer's CPU per GB over this server's, repetition by repetition.
        servers = cpu[(n, system)]
        server_ratios = [cpu[(n, "rgtp")][r] / servers[r] for r in servers if servers[r] > 0]
        row = {
            "receivers": n,
            "system": system,
            "median_goodput_MBps": statistics.median(reps.values()),
            "median_cpu_s_per_GB": statistics.median(cpu[(n, system)].values()),
            "median_receivers_cpu_s_per_GB": statistics.median(rcpu[(n, system)]),
            "median_idle_percent": statistics.median(idle[(n, system)]),
            "median_ratio_rgtp_over_system": statistics.median(ratios),
            "median_server_cpu_ratio_rgtp_over_system":
                statistics.median(server_ratios) if server_ratios else None,
            # [low, high, the chance the median lies between]: benches/stats.py.
            "ratio_interval": median_interval(ratios),
            "server_cpu_ratio_interval": median_interval(server_ratios),
            "repetitions_rgtp_ahead": sum(1 for q in ratios if q > 1),
            "goodput_MBps": [reps[r] for r in sorted(reps)],
            "cpu_s_per_GB": [cpu[(n, system)][r] for r in sorted(cpu[(n, system)])],
            "receivers_cpu_s_per_GB": rcpu[(n, system)],
            "idle_percent": idle[(n, system)],
        }
        summary.append(row)
        ratio = "" if system == "rgtp" else f"{row['median_ratio_rgtp_over_system']:.3f}"
        server_ratio = row["median_server_cpu_ratio_rgtp_over_system"]
        server_ratio = "" if system == "rgtp" or server_ratio is None else f"{server_ratio:.3f}"
        print(f"{n:>3} {system:<6} {row['median_goodput_MBps']:>13.1f} "
              f"{row['median_cpu_s_per_GB']:>12.3f} "
              f"{row['median_receivers_cpu_s_per_GB']:>15.3f} "
              f"{row['median_idle_percent']:>7.1f} {ratio:>12} {server_ratio:>19}")
print()
print("where the medians of the ratios may lie (distribution-free intervals, from the")
print("order of the per-repetition ratios; a ratio of 1.0 inside means no difference shown):")
for row in summary:
    if row["system"] == "rgtp":
        continue
    n, system = row["receivers"], row["system"]
    lo, hi, cov = row["ratio_interval"]
    reps = len(row["goodput_MBps"])
    line = (f"{n:>3} rgtp/{system:<5} goodput {row['median_ratio_rgtp_over_system']:.3f} "
            f"in {lo:.3f}-{hi:.3f} ({cov:.1%}), ahead in {row['repetitions_rgtp_ahead']} of {reps}")
    if row["server_cpu_ratio_interval"]:
        slo, shi, scov = row["server_cpu_ratio_interval"]
        line += (f"; server CPU {row['median_server_cpu_ratio_rgtp_over_system']:.3f} "
                 f"in {slo:.3f}-{shi:.3f} ({scov:.1%})")
    print(line)
if json_out:
    with open(json_out, "w") as f:
        json.dump({"bytes_per_receiver": size, "output_fs": out_fs, "machine": machine,
                   "expose_args": expose_args, "pull_args": pull_args, "rgtp_bin": rgtp_bin,
                   "results": summary}, f, indent=2)
        f.write("\n")
    print(f"(written to {json_out})")
PY
