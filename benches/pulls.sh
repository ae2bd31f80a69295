#!/usr/bin/env bash
# One pull into a file, several ways, interleaved so all see the same machine.
#
#   benches/pulls.sh [--size 256MiB] [--runs 7] [--out-dir DIR] [--expose 'ARGS']
#                    VARIANT [VARIANT …]
#
# A VARIANT is a `rgtp` binary, optionally followed by `::` and arguments for its
# `pull`: `target/release/rgtp`, `target/release/rgtp::--proofs`,
# `/tmp/old/rgtp::--no-proof-runs`. The first variant's binary exposes one file of
# SIZE random bytes from DIR (default: a tmpfs, /dev/shm) with `rgtp expose ARGS`;
# then every variant pulls it into DIR in turn, RUNS rounds after one warm-up
# round (every other round in the reverse order: the first pull of a round was
# 3-4% faster than the second, whichever build it was), and every output is
# compared with the file byte for byte.
#
# Prints each run's wall time and the puller's CPU time (user + system, all its
# threads), then per variant the medians and the median of the per-round wall
# ratios to the first variant. This machine is noisy: quote the medians and the
# ratio, not single runs.
#
# Examples:
#   benches/pulls.sh --expose --proofs target/release/rgtp target/release/rgtp::--proofs
#       (a plain pull of an exposure prepared with proofs, against --proofs)
#   benches/pulls.sh /tmp/old/target/release/rgtp target/release/rgtp
#       (two builds; see benches/ab.sh for how to build an older commit)
set -euo pipefail

size=256MiB runs=7 outdir=/dev/shm expose=""
variants=()
while [ $# -gt 0 ]; do
    case "$1" in
        --size) size=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --out-dir) outdir=$2; shift 2 ;;
        --expose) expose=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
        *) variants+=("$1"); shift ;;
    esac
done
if [ ${#variants[@]} -eq 0 ]; then
    echo "usage: $0 [--size 256MiB] [--runs 7] [--out-dir DIR] [--expose 'ARGS'] VARIANT [VARIANT …] (see --help)" >&2
    exit 2
fi

exec python3 - "$size" "$runs" "$outdir" "$expose" "${variants[@]}" <<'PY'
import os, re, resource, shlex, signal, statistics, subprocess, sys, tempfile, threading, time

size_s, runs, outdir, expose = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
variants = []
for v in sys.argv[5:]:
    binary, _, args = v.partition("::")
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary}: not an executable (build it with `cargo build --release -p rgtp-cli`)")
    variants.append((v, binary, shlex.split(args)))

units = {"": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30}
m = re.fullmatch(r"(\d+)\s*([a-zA-Z]*)", size_s)
if not m or m.group(2).lower() not in units:
    sys.exit(f"--size {size_s}: give bytes, or a number with KiB, MiB or GiB")
size = int(m.group(1)) * units[m.group(2).lower()]

work = tempfile.mkdtemp(prefix="rgtp-pulls-", dir=outdir)
src, out = os.path.join(work, "src.bin"), os.path.join(work, "out.bin")
with open(src, "wb") as f:
    left = size
    while left:
        n = min(left, 16 << 20)
        f.write(os.urandom(n))
        left -= n

exposer = subprocess.Popen(
    [variants[0][1], "expose", src, "--port", "0", *shlex.split(expose)],
    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
ticket = None
deadline = time.time() + 60
for line in exposer.stdout:
    t = re.search(r"rgtp://\S+", line)
    if t:
        ticket = t.group(0)
        break
    if time.time() > deadline:
        break
if not ticket:
    exposer.kill()
    sys.exit("the exposer printed no ticket")
# Whatever else it prints must not fill the pipe and stop it.
threading.Thread(target=lambda: [None for _ in exposer.stdout], daemon=True).start()

def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

def pull(binary, args):
    if os.path.exists(out):
        os.unlink(out)
    cpu0, t0 = children_cpu(), time.perf_counter()
    r = subprocess.run([binary, "pull", ticket, "-o", out, "-q", *args],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if r.returncode != 0:
        sys.exit(f"pull failed ({binary} {' '.join(args)}): {r.stderr.strip()}")
    if subprocess.run(["cmp", "-s", src, out]).returncode != 0:
        sys.exit(f"output differs ({binary} {' '.join(args)})")
    return wall * 1e3, cpu * 1e3

try:
    for _, b, a in variants:
        pull(b, a)  # warm-up
    walls = {v: [] for v, _, _ in variants}
    cpus = {v: [] for v, _, _ in variants}
    how = f"`rgtp expose {expose}`" if expose else "`rgtp expose` on defaults"
    print(f"{size} bytes into {outdir}, exposed with {how}")
    print(f"{'round':<6} {'variant':<48} {'wall ms':>8} {'cpu ms':>8}")
    for i in range(1, runs + 1):
        # Every other round in reverse: the variant that goes first in a round
        # tends to be a few per cent faster, whichever it is.
        for v, b, a in variants if i % 2 else variants[::-1]:
            w, c = pull(b, a)
            walls[v].append(w)
            cpus[v].append(c)
            print(f"{i:<6} {v[-48:]:<48} {w:8.0f} {c:8.0f}")
    first = variants[0][0]
    print(f"\nmedians over {runs} rounds")
    print(f"{'variant':<48} {'wall ms':>8} {'cpu ms':>8} {'MB/s':>8} {'wall / first':>13}")
    for v, _, _ in variants:
        ratio = statistics.median(w / f for w, f in zip(walls[v], walls[first]))
        wall = statistics.median(walls[v])
        print(f"{v[-48:]:<48} {wall:8.0f} {statistics.median(cpus[v]):8.0f} "
              f"{size / wall / 1e3:8.0f} {ratio:13.2f}")
finally:
    exposer.send_signal(signal.SIGINT)
    try:
        exposer.wait(timeout=10)
    except subprocess.TimeoutExpired:
        exposer.kill()
    for p in (src, out):
        if os.path.exists(p):
            os.unlink(p)
    os.rmdir(work)
PY
