#!/usr/bin/env bash
# Installs the Python package as a user does, `pip install ./interop/python` into a fresh
# venv with no RGTP_* variable set, and checks that the wheel carries librgtp:
#
#   * the build leaves the source tree as it was (no build/, no *.egg-info);
#   * the installed package holds rgtp/_native/librgtp.so and loads it;
#   * the wheel is tagged for the platform (Root-Is-Purelib: false, not `-any`);
#   * an exposure served in-process is pulled byte-exact through the installed package.
#
#   interop/python/test-wheel.sh
#
# The venv is made in $CARGO_TARGET_DIR/py-wheel-venv (target/ by default). PYTHON picks
# the interpreter.
#
# Users get a release build of the library (RGTP_CARGO_PROFILE defaults to `release`);
# this script asks for the debug profile so that it reuses the library the tests already
# built instead of compiling a release build. Set RGTP_CARGO_PROFILE=release to check the
# default path.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

target_dir="${CARGO_TARGET_DIR:-$root/target}"
venv="$target_dir/py-wheel-venv"
python="${PYTHON:-python3}"

export RGTP_CARGO_PROFILE="${RGTP_CARGO_PROFILE:-debug}"
unset RGTP_LIB_PATH RGTP_SKIP_NATIVE RGTP_KEY RGTP_PORT PYTHONPATH

fail() {
    echo "test-wheel.sh: FAIL: $*" >&2
    exit 1
}

tree_state() {
    git -C "$root" status --porcelain --ignored -- interop/python
}
before="$(tree_state)"

echo "==> fresh venv $venv" >&2
rm -rf "$venv"
"$python" -m venv "$venv"
vpy="$venv/bin/python"

echo "==> pip install ./interop/python (RGTP_CARGO_PROFILE=$RGTP_CARGO_PROFILE)" >&2
"$vpy" -m pip install --quiet --disable-pip-version-check ./interop/python

echo "==> source tree unchanged" >&2
after="$(tree_state)"
if [[ "$before" != "$after" ]]; then
    diff <(echo "$before") <(echo "$after") >&2 || true
    fail "pip install changed interop/python (above)"
fi
leftovers="$(find interop/python -maxdepth 2 \( -name build -o -name '*.egg-info' \) -print)"
[[ -z "$leftovers" ]] || fail "build leftovers in the source tree: $leftovers"

echo "==> installed package: librgtp inside, platform wheel, round trip" >&2
# Run from a neutral directory so that `import rgtp` can only find the installed package.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
"$vpy" - <<'EOF'
import importlib.metadata as md
import os
import sys
import threading
from pathlib import Path

import rgtp

assert "RGTP_LIB_PATH" not in os.environ

pkg = Path(rgtp.__file__).resolve().parent
prefix = Path(sys.prefix).resolve()
assert prefix in pkg.parents, f"rgtp imported from {pkg}, not from the venv {prefix}"

lib = pkg / "_native" / "librgtp.so"
assert lib.is_file(), f"{lib} is missing: the wheel carries no library"

dist = md.distribution("redgiant-rgtp")
recorded = {str(f).replace("\\", "/") for f in dist.files or []}
assert "rgtp/_native/librgtp.so" in recorded, "librgtp.so is not in the wheel's RECORD"

wheel = dist.read_text("WHEEL") or ""
fields = {}
tags = []
for line in wheel.splitlines():
    key, _, value = line.partition(":")
    if key.strip() == "Tag":
        tags.append(value.strip())
    else:
        fields[key.strip()] = value.strip()
assert fields.get("Root-Is-Purelib") == "false", f"WHEEL says {fields}"
assert tags, "WHEEL has no Tag"
for tag in tags:
    assert not tag.endswith("-any"), f"wheel tag {tag} is not platform-specific"
    assert tag.startswith("py3-none-"), f"unexpected wheel tag {tag}"

rgtp.init()
assert Path(rgtp.library_path()).resolve() == lib.resolve(), rgtp.library_path()
version = rgtp.version()
assert version, "empty rgtp_version()"

data = os.urandom(300_000)
with rgtp.Socket(rgtp.Config(port=0)) as exposer:
    surface = rgtp.expose(exposer, data)
    with surface:
        ticket = surface.ticket()
        stop = threading.Event()
        errors = []

        def serve() -> None:
            try:
                while not stop.is_set():
                    rgtp.poll(surface, 20)
            except BaseException as e:
                errors.append(e)

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            with rgtp.Socket() as puller, rgtp.pull_ticket(
                puller, ticket, rgtp.Config(timeout_ms=5000)
            ) as s:
                got = rgtp.pull_bytes(s, idle_timeout=20)
                assert s.progress() == 1.0
        finally:
            stop.set()
            thread.join(10)
        assert not errors, errors
assert got == data, f"pulled {len(got)} bytes, differing from the {len(data)} exposed"

print(f"ok: {lib} (librgtp {version}), tags {', '.join(tags)}, {len(data)} bytes round trip")
EOF
