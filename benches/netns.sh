# Sourced by the benchmarks that run across network namespaces (loss.sh,
# simreal.sh, sources.sh): the checks, the binary and the namespaces they share.

# Exits unless running as root with what the benchmark needs: "nft" for nftables.
bench_need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "$0: needs root for network namespaces${1:+ and $1}" >&2
    exit 2
  fi
  if [ "${1:-}" = nft ] || [ "${2:-}" = nft ]; then
    command -v nft >/dev/null || { echo "$0: needs nftables (apt-get install nftables)" >&2; exit 2; }
  fi
  return 0
}

# Sets bin to the rgtp binary: the one given, or a release build of this tree.
bench_bin() {
  if [ -z "$bin" ]; then
    cargo build --release -q -p rgtp-cli
    bin="${CARGO_TARGET_DIR:-target}/release/rgtp"
  fi
  bin=$(realpath "$bin")
}

# Stops every process in the namespaces named and deletes them.
bench_netns_del() {
  local ns
  for ns in "$@"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true; done
  for ns in "$@"; do ip netns del "$ns" 2>/dev/null || true; done
}

# bench_veth NS_A DEV_A ADDR_A NS_B DEV_B ADDR_B: a veth pair between two
# namespaces (each made, with its loopback up, if it does not exist yet), both
# ends addressed (/24) and up.
bench_veth() {
  local ns
  for ns in "$1" "$4"; do
    if ! ip netns list | grep -qw "$ns"; then
      ip netns add "$ns"
      ip -n "$ns" link set lo up
    fi
  done
  ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
  ip -n "$1" addr add "$3/24" dev "$2"
  ip -n "$4" addr add "$6/24" dev "$5"
  ip -n "$1" link set "$2" up
  ip -n "$4" link set "$5" up
}
