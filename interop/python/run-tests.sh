#!/usr/bin/env bash
# Runs the Python binding's test suite against the freshly built librgtp and `rgtp`.
#
#   interop/python/run-tests.sh [pytest args...]
#
# Creates (or reuses) a venv in target/py-venv, installs ./interop/python and pytest into
# it, builds `cargo build -p rgtp-ffi -p rgtp-cli` (debug; cargo is a no-op when up to date),
# exports RGTP_LIB_PATH and RGTP_BIN, and runs pytest. Set RGTP_SKIP_BUILD=1 to use the
# artefacts as they are, and PYTHON to pick the interpreter.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

target_dir="${CARGO_TARGET_DIR:-$root/target}"
venv="$target_dir/py-venv"
python="${PYTHON:-python3}"

if [[ "${RGTP_SKIP_BUILD:-0}" != 1 ]]; then
    echo "==> cargo build -p rgtp-ffi -p rgtp-cli" >&2
    cargo build -p rgtp-ffi -p rgtp-cli
fi

export RGTP_LIB_PATH="${RGTP_LIB_PATH:-$target_dir/debug/librgtp.so}"
export RGTP_BIN="${RGTP_BIN:-$target_dir/debug/rgtp}"
for f in "$RGTP_LIB_PATH" "$RGTP_BIN"; do
    if [[ ! -f "$f" ]]; then
        echo "run-tests.sh: $f is missing (did the cargo build fail?)" >&2
        exit 1
    fi
done

if [[ ! -x "$venv/bin/python" ]]; then
    echo "==> creating $venv" >&2
    "$python" -m venv "$venv"
fi
vpy="$venv/bin/python"
# Reinstall the package every run (it is small) so the venv never tests stale code.
echo "==> pip install ./interop/python pytest" >&2
# The tests load the library through RGTP_LIB_PATH, so the wheel is built without one
# (RGTP_SKIP_NATIVE=1: no release build; test-wheel.sh checks the packaged library).
RGTP_SKIP_NATIVE=1 "$vpy" -m pip install --quiet --disable-pip-version-check --force-reinstall \
    --no-deps "$here"
"$vpy" -m pip install --quiet --disable-pip-version-check pytest

# The tests and the console scripts must use the installed package, not the checkout.
unset PYTHONPATH
cd "$here"
echo "==> pytest (RGTP_LIB_PATH=$RGTP_LIB_PATH RGTP_BIN=$RGTP_BIN)" >&2
"$vpy" -m pytest -p no:cacheprovider "$@"
