#!/usr/bin/env bash
# Interop between `rgtp tej` and the published tej-protoc 0.2.4 (PyPI), both directions.
#
#   interop/tej/run-tests.sh [pytest args...]
#
# Creates (or reuses) a venv in $CARGO_TARGET_DIR/tej-venv (target/ by default), installs
# tej-protoc==0.2.4 and pytest into it, builds `cargo build -p rgtp-cli` (debug; a no-op when
# up to date; RGTP_SKIP_BUILD=1 skips it), exports RGTP_BIN and runs test_interop.py.
# PYTHON picks the interpreter.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

target_dir="${CARGO_TARGET_DIR:-$root/target}"
venv="$target_dir/tej-venv"
python="${PYTHON:-python3}"

if [[ "${RGTP_SKIP_BUILD:-0}" != 1 ]]; then
    echo "==> cargo build -p rgtp-cli" >&2
    cargo build -p rgtp-cli
fi

export RGTP_BIN="${RGTP_BIN:-$target_dir/debug/rgtp}"
if [[ ! -f "$RGTP_BIN" ]]; then
    echo "run-tests.sh: $RGTP_BIN is missing (did the cargo build fail?)" >&2
    exit 1
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "==> creating $venv" >&2
    "$python" -m venv "$venv"
fi
vpy="$venv/bin/python"
echo "==> pip install tej-protoc==0.2.4 pytest" >&2
"$vpy" -m pip install --quiet --disable-pip-version-check tej-protoc==0.2.4 pytest

unset PYTHONPATH
cd "$here"
echo "==> pytest (RGTP_BIN=$RGTP_BIN)" >&2
"$vpy" -m pytest -p no:cacheprovider test_interop.py "$@"
