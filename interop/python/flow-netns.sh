#!/usr/bin/env bash
# Python flows between two network namespaces, found by name.
#
#   sudo interop/python/flow-netns.sh
#
# Creates namespaces A (10.77.0.1) and B (10.77.0.2) joined by a veth pair, runs the
# flow directory server (`rgtp flow directory`) and the example echo servers in A, each
# given its name by `rgtp flow bind NAME -- …`, and the example clients in B, which find
# the servers through the directory alone (each namespace has a file directory of its
# own). Checks every echo and the error for a name nobody registered, then removes
# everything (also on failure). Exits non-zero on any failure.
#
# Uses the venv and the build that run-tests.sh makes: $CARGO_TARGET_DIR (default
# target/) /py-venv, /debug/librgtp.so and /debug/rgtp; RGTP_LIB_PATH and RGTP_BIN
# override the last two.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
vpy="$target_dir/py-venv/bin/python"
export RGTP_LIB_PATH="${RGTP_LIB_PATH:-$target_dir/debug/librgtp.so}"
rgtp="${RGTP_BIN:-$target_dir/debug/rgtp}"

fail() {
    echo "flow-netns: $*" >&2
    exit 1
}

[[ "$(id -u)" == 0 ]] || fail "needs root (network namespaces)"
command -v ip >/dev/null || fail "needs iproute2 (ip)"
for f in "$vpy" "$RGTP_LIB_PATH" "$rgtp"; do
    [[ -e "$f" ]] || fail "$f is missing: run interop/python/run-tests.sh first"
done

id=$$
ns_a="rgtpflow-a-$id"
ns_b="rgtpflow-b-$id"
veth_a="vfa$id"
veth_b="vfb$id"
ip_a=10.77.0.1
ip_b=10.77.0.2
directory="$ip_a:7700"
tmp="$(mktemp -d)"
pids=()

cleanup() {
    local rc=$?
    # `rgtp flow bind` waits on its command: stop the command, then it.
    for p in "${pids[@]}"; do
        for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
            kill "$c" 2>/dev/null || true
        done
        kill "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    ip netns del "$ns_a" 2>/dev/null || true
    ip netns del "$ns_b" 2>/dev/null || true
    if [[ $rc != 0 ]]; then
        for log in "$tmp"/*.log; do
            [[ -f "$log" ]] && { echo "--- $(basename "$log")" >&2; cat "$log" >&2; }
        done
    fi
    rm -rf "$tmp"
    exit $rc
}
trap cleanup EXIT

ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add "$veth_a" type veth peer name "$veth_b"
ip link set "$veth_a" netns "$ns_a"
ip link set "$veth_b" netns "$ns_b"
ip -n "$ns_a" addr add "$ip_a/24" dev "$veth_a"
ip -n "$ns_b" addr add "$ip_b/24" dev "$veth_b"
for ns in "$ns_a" "$ns_b"; do
    ip -n "$ns" link set lo up
done
ip -n "$ns_a" link set "$veth_a" up
ip -n "$ns_b" link set "$veth_b" up

# Runs "$@" in namespace $1 with the flow environment of side $2, in place of the
# calling subshell (so a background job's $! is the program itself).
in_ns() {
    local ns=$1 side=$2
    shift 2
    exec ip netns exec "$ns" env RGTP_LIB_PATH="$RGTP_LIB_PATH" RGTP_FLOW_DIRECTORY="$directory" \
        RGTP_FLOW_DIR="$tmp/names-$side" PYTHONUNBUFFERED=1 "$@"
}

# Waits until file $1 holds a line matching $2.
await_line() {
    local i
    for i in $(seq 100); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "no '$2' in $1"
}

(in_ns "$ns_a" a "$rgtp" flow directory --bind "$directory") >"$tmp/directory.log" 2>&1 &
pids+=($!)
await_line "$tmp/directory.log" "directory on"

(in_ns "$ns_a" a "$rgtp" flow bind oecho -- "$vpy" "$here/examples/oecho.py" --listen) \
    >"$tmp/oecho-server.log" 2>&1 &
pids+=($!)
(in_ns "$ns_a" a "$rgtp" flow bind oecho_set -- "$vpy" "$here/examples/oecho_set.py" \
    --listen) >"$tmp/oecho_set-server.log" 2>&1 &
pids+=($!)
await_line "$tmp/oecho-server.log" "serving 'oecho'"
await_line "$tmp/oecho_set-server.log" "serving 'oecho_set'"

echo "== oecho.py client in $ns_b -> oecho in $ns_a"
out="$(in_ns "$ns_b" b "$vpy" "$here/examples/oecho.py" --name oecho --count 50 --timeout 10)"
echo "$out"
[[ "$out" == *"50 messages echoed by oecho@$ip_a:"* ]] || fail "oecho: unexpected output"

echo "== oecho_set.py client in $ns_b -> oecho_set in $ns_a (one server thread)"
out="$(in_ns "$ns_b" b "$vpy" "$here/examples/oecho_set.py" --name oecho_set --flows 100 \
    --count 3 --timeout 10)"
echo "$out"
[[ "$out" == *"100 flows x 3 messages echoed"* ]] || fail "oecho_set: unexpected output"

echo "== a name nobody registered"
if err="$(in_ns "$ns_b" b "$vpy" "$here/examples/oecho.py" --name nobody --timeout 3 2>&1)"; then
    fail "a flow to an unregistered name was allocated"
fi
[[ "$err" == *'no flow server registered the name "nobody"'*"directory server $directory"* ]] ||
    fail "unclear error for an unknown name: $err"
echo "refused as expected: unknown name, directory server $directory searched"

echo "flow-netns: ok"
