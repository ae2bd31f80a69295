#!/bin/bash -eu
# Builds every cargo-fuzz target of fuzz/ and lays out $OUT as ClusterFuzzLite and
# OSS-Fuzz expect: each fuzzer binary, its seed corpus as <target>_seed_corpus.zip,
# its <target>.dict and <target>.options when fuzz/ has them, and librgtp.so (the
# `ffi` target loads it from beside its binary).
#
# In the OSS-Fuzz image $SRC and $OUT are set and cargo is nightly. On a plain
# machine with cargo-fuzz and a nightly toolchain it works too:
#   bash .clusterfuzzlite/build.sh            # $OUT defaults to fuzz/out
#   OUT=/tmp/fuzzers bash .clusterfuzzlite/build.sh

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -n "${SRC:-}" ] && [ -d "$SRC/redgiant/fuzz" ]; then
  repo="$SRC/redgiant"
elif [ -d "$here/../fuzz" ]; then
  repo="$(cd "$here/.." && pwd)"
else
  repo="$(pwd)"
fi
OUT="${OUT:-$repo/fuzz/out}"
mkdir -p "$OUT"

# cargo is nightly in the OSS-Fuzz image; elsewhere ask rustup for nightly.
cargo=(cargo)
if ! cargo --version | grep -q nightly; then
  cargo=(cargo +nightly)
fi
host="$(rustc -vV | sed -n 's/^host: //p')"
fuzz_target_dir="${FUZZ_TARGET_DIR:-$repo/fuzz/target}"

cd "$repo/fuzz"
"${cargo[@]}" fuzz build -O --target-dir "$fuzz_target_dir"

# The ffi target dlopens the C library, which has no rlib to link statically.
(cd "$repo" && "${cargo[@]}" build --release --locked -p rgtp-ffi)
ffi_lib="${CARGO_TARGET_DIR:-$repo/target}/release/librgtp.so"
cp "$ffi_lib" "$OUT/"

for target in $("${cargo[@]}" fuzz list); do
  cp "$fuzz_target_dir/$host/release/$target" "$OUT/"
  if [ -d "corpus/$target" ]; then
    rm -f "$OUT/${target}_seed_corpus.zip"
    # -j: flat, as the fuzzers' corpus directories are.
    (cd "corpus/$target" && zip -q -r -j "$OUT/${target}_seed_corpus.zip" .)
    if [ -d "regressions/$target" ]; then
      (cd "regressions/$target" && zip -q -r -j "$OUT/${target}_seed_corpus.zip" .)
    fi
  fi
  for extra in "$target.dict" "$target.options"; do
    if [ -f "$extra" ]; then cp "$extra" "$OUT/"; fi
  done
done
echo "fuzzers in $OUT:"
ls -l "$OUT"
