#!/usr/bin/env bash
# Compares RGTP's layers and suites; the figures quoted elsewhere come from here.
#
#   benches/compare.sh [--bench-only | --demo-only] [--full] [--size SIZE] [FILTER]
#
# 1. Builds the release binary and the criterion benches (package rgtp-benches).
# 2. Runs `cargo bench -p rgtp-benches -- --quick --noplot [FILTER]`: wire codec,
#    cipher, hash/Merkle, FEC, expose (16 MiB) and transfer (32 MiB, UDP and sim).
#    --full drops --quick (criterion's normal sampling: much slower).
# 3. Runs `target/release/rgtp demo --size SIZE` (default 256MiB) over loopback
#    UDP for every cipher x hash without FEC, and for rs:255,223 and raptorq:0.25
#    on the default suite.
# 4. Prints one table: criterion's median throughput per bench, then per demo
#    the expose (seal) rate and the pull goodput. All rates in MB/s (10^6 B/s).
#
# FILTER is a regex (grep -E / criterion syntax) matched against bench ids such
# as `cipher/seal/aes-256-gcm/1200` or `transfer/udp/rs:255,223`, and demo rows
# named `demo/<cipher>+<hash>` or `demo/<fec>`; only matching ones run.
# Examples:  benches/compare.sh '^(cipher|hash)/'     benches/compare.sh --demo-only
#            benches/compare.sh 'aes-256-gcm'          benches/compare.sh 'rs:'
#
# On 2 cores, with the benches already built: --quick benches take about
# 5 minutes, the demos about 30 s. Logs stay in target/compare/.
set -euo pipefail

cd "$(dirname "$0")/.."

run_bench=1
run_demo=1
quick=(--quick)
size=256MiB
filter=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --bench-only) run_demo=0 ;;
        --demo-only) run_bench=0 ;;
        --full) quick=() ;;
        --size) size="$2"; shift ;;
        --size=*) size="${1#--size=}" ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) filter="$1" ;;
    esac
    shift
done

out=target/compare
mkdir -p "$out"
summary="$out/summary.tsv"
: > "$summary"

echo "== building (release)" >&2
cargo build --release -p rgtp-cli >&2
if [[ $run_bench == 1 ]]; then
    cargo bench -p rgtp-benches --no-run >&2
fi

# Criterion prints `NAME time: [lo mid hi]` (NAME on its own line when long),
# then `thrpt: [lo mid hi]`; change reports repeat both with percentages.
criterion_summary() {
    awk '
        function mbps(v, unit) {
            if (unit == "B/s") return v / 1e6
            if (unit == "KiB/s") return v * 1024 / 1e6
            if (unit == "MiB/s") return v * 1048576 / 1e6
            if (unit == "GiB/s") return v * 1073741824 / 1e6
            if (unit == "TiB/s") return v * 1099511627776 / 1e6
            return -1
        }
        /^[A-Za-z0-9_-]+\/[^ ]/ && $1 != "Benchmarking" { name = $1 }
        /time:/ && !/%/ {
            s = $0; sub(/.*time: *\[/, "", s); split(s, t, " "); time = t[3] " " t[4]
        }
        /thrpt:/ && !/%/ && name != "" {
            s = $0; sub(/.*thrpt: *\[/, "", s); split(s, t, " ")
            printf "%s\t%.1f\t%s\n", name, mbps(t[3], t[4]), time
            name = ""
        }
    '
}

if [[ $run_bench == 1 ]]; then
    echo "== criterion benches ${quick[*]} ${filter:+(filter: $filter)}" >&2
    args=("${quick[@]}" --noplot)
    [[ -n $filter ]] && args+=("$filter")
    if ! cargo bench -p rgtp-benches --no-fail-fast -- "${args[@]}" 2>&1 | tee "$out/bench.log" >&2; then
        echo "== cargo bench failed (see $out/bench.log); summarising what ran" >&2
        printf 'cargo-bench\tFAILED\tsee %s/bench.log\n' "$out" >> "$summary"
    fi
    criterion_summary < "$out/bench.log" >> "$summary"
fi

if [[ $run_demo == 1 ]]; then
    rows=()
    for cipher in chacha20-poly1305 aes-256-gcm; do
        for hash in blake2b-256 sha256 blake3; do
            rows+=("demo/$cipher+$hash|--cipher $cipher --hash $hash")
        done
    done
    rows+=("demo/rs:255,223|--fec rs:255,223" "demo/raptorq:0.25|--fec raptorq:0.25")
    for row in "${rows[@]}"; do
        label="${row%%|*}"
        # shellcheck disable=SC2206 # the options are plain words
        opts=(${row#*|})
        if [[ -n $filter ]] && ! grep -Eq -- "$filter" <<< "$label"; then
            continue
        fi
        echo "== $label: rgtp demo --size $size ${opts[*]}" >&2
        log="$out/${label//[\/:,+]/_}.log"
        if ! target/release/rgtp demo --size "$size" "${opts[@]}" > "$log" 2>&1; then
            echo "   FAILED (see $log):" >&2
            tail -n 3 "$log" >&2
            printf '%s\tFAILED\t\n' "$label" >> "$summary"
            continue
        fi
        sed 's/^/   /' "$log" | grep -E 'suite|expose|goodput|retrans|FEC' >&2 || true
        awk -v label="$label" '
            /expose \(seal\)/ { s = $0; sub(/.*\(/, "", s); split(s, t, " "); expose = t[1] }
            /goodput/ { goodput = $2 }
            /retransmissions/ { rerequested = $2 }
            /FEC .*rebuilt/ { rebuilt = $(NF - 2) }
            END {
                printf "%s/expose\t%s\t\n", label, expose
                printf "%s/goodput\t%s\t%s re-requested, %s FEC-rebuilt\n", label, goodput, rerequested, rebuilt
            }
        ' "$log" >> "$summary"
    done
fi

echo
printf '%-56s %12s   %s\n' "benchmark" "MB/s" "median time / notes"
printf '%-56s %12s   %s\n' "---------" "----" "-------------------"
while IFS=$'\t' read -r name rate note; do
    printf '%-56s %12s   %s\n' "$name" "$rate" "$note"
done < "$summary"
echo
echo "(rates in MB/s = 10^6 bytes/s; criterion logs and demo outputs in $out/)"
