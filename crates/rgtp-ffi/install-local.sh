#!/bin/sh
# Installs librgtp.so, rgtp.h and rgtp.pc under PREFIX/{lib,include,lib/pkgconfig}.
# Usage: install-local.sh PREFIX [LIBRARY]
#   LIBRARY defaults to target/debug/librgtp.so of this workspace (build it first:
#   cargo build -p rgtp-ffi). Then: PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs rgtp
set -eu
if [ $# -lt 1 ]; then
    echo "usage: $0 PREFIX [path/to/librgtp.so]" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
prefix=$(cd "$1" && pwd)
lib=${2:-"${CARGO_TARGET_DIR:-$here/../../target}/debug/librgtp.so"}
if [ ! -f "$lib" ]; then
    echo "$0: $lib not found (run cargo build -p rgtp-ffi first)" >&2
    exit 1
fi
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$here/../../Cargo.toml" | head -n 1)
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
cp "$lib" "$prefix/lib/librgtp.so"
cp "$here/include/rgtp.h" "$prefix/include/rgtp.h"
sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" "$here/rgtp.pc.in" \
    > "$prefix/lib/pkgconfig/rgtp.pc"
echo "installed librgtp $version under $prefix"
