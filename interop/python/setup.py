"""Build hooks for redgiant-rgtp: the wheel carries librgtp, built by cargo.

The metadata lives in pyproject.toml; this file only adds two commands:

* ``build_py`` runs ``cargo build -p rgtp-ffi --locked`` in the workspace two levels up
  (``interop/python`` → repository root) and copies the library into the build tree as
  ``rgtp/_native/librgtp.so`` (``.dylib`` / ``.dll`` elsewhere);
* ``bdist_wheel`` tags the wheel for the platform (``py3-none-<platform>``,
  ``Root-Is-Purelib: false``): the package itself is pure Python but the library is not.

Environment:

* ``RGTP_SKIP_NATIVE=1`` builds a pure wheel without the library (``RGTP_LIB_PATH`` must
  then point at one at run time);
* ``RGTP_CARGO_PROFILE`` picks the cargo profile: ``release`` (default), ``debug``/``dev``,
  or any profile the workspace defines;
* ``CARGO_TARGET_DIR`` and the rest of cargo's environment are honoured as usual.

Build directories (``build/``, ``*.egg-info``) go to a temporary directory, so a build from
the checkout leaves the source tree as it was.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Tuple

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
WORKSPACE = HERE.parent.parent
FFI_CRATE = "rgtp-ffi"
LIB_TARGET = "rgtp"  # the [lib] name of crates/rgtp-ffi


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


NATIVE = not _flag("RGTP_SKIP_NATIVE")


def _profile_args() -> Tuple[str, List[str]]:
    profile = os.environ.get("RGTP_CARGO_PROFILE", "").strip() or "release"
    if profile == "release":
        return profile, ["--release"]
    if profile in ("debug", "dev"):
        return "dev", []
    return profile, ["--profile", profile]


def _check_workspace() -> None:
    ffi = WORKSPACE / "crates" / FFI_CRATE / "Cargo.toml"
    if not (WORKSPACE / "Cargo.toml").is_file() or not ffi.is_file():
        raise SystemExit(
            f"redgiant-rgtp: cannot build librgtp: no Rust workspace with crates/{FFI_CRATE} "
            f"two levels above {HERE} (looked in {WORKSPACE}). This happens when building from an sdist or a copy of "
            "interop/python alone. Install from a checkout of the repository instead "
            "(`pip install ./interop/python` at its root), or set RGTP_SKIP_NATIVE=1 to build "
            "without the library and point RGTP_LIB_PATH at a librgtp.so at run time."
        )
    if shutil.which("cargo") is None:
        raise SystemExit(
            "redgiant-rgtp: cannot build librgtp: `cargo` is not on PATH. Install a Rust "
            "toolchain, or set RGTP_SKIP_NATIVE=1 and point RGTP_LIB_PATH at a librgtp.so."
        )


def _cdylib(filenames: List[str]) -> Optional[Path]:
    for name in filenames:
        if name.endswith((".so", ".dylib", ".dll")):
            return Path(name)
    return None


def build_librgtp() -> Path:
    """Runs cargo and returns the path of the freshly built shared library."""
    _check_workspace()
    profile, args = _profile_args()
    cmd = [
        "cargo",
        "build",
        "-p",
        FFI_CRATE,
        "--locked",
        "--message-format=json-render-diagnostics",
        *args,
    ]
    print(f"redgiant-rgtp: building librgtp ({profile}): {' '.join(cmd)}", file=sys.stderr)
    # Cargo's progress and diagnostics go to stderr as usual; stdout carries the JSON
    # messages, from which the artefact's path is read (this follows CARGO_TARGET_DIR,
    # .cargo/config and the profile without guessing).
    proc = subprocess.run(cmd, cwd=WORKSPACE, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"redgiant-rgtp: `{' '.join(cmd)}` failed (exit {proc.returncode})")
    found: Optional[Path] = None
    for line in proc.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") != "compiler-artifact":
            continue
        target = msg.get("target", {})
        if target.get("name") == LIB_TARGET and "cdylib" in target.get("kind", []):
            found = _cdylib(msg.get("filenames", [])) or found
    if found is None or not found.is_file():
        raise SystemExit(f"redgiant-rgtp: cargo reported no shared library for {FFI_CRATE}")
    return found


class BuildPyWithLib(build_py):
    """build_py, then librgtp into ``rgtp/_native/`` of the build tree."""

    def run(self) -> None:
        super().run()
        if not NATIVE:
            print("redgiant-rgtp: RGTP_SKIP_NATIVE set, building without librgtp", file=sys.stderr)
            return
        if getattr(self, "editable_mode", False):
            print(
                "redgiant-rgtp: editable install: librgtp is not packaged; set RGTP_LIB_PATH",
                file=sys.stderr,
            )
            return
        lib = build_librgtp()
        dest_dir = Path(self.build_lib) / "rgtp" / "_native"
        dest_dir.mkdir(parents=True, exist_ok=True)
        name = lib.name if sys.platform in ("darwin", "win32") else "librgtp.so"
        dest = dest_dir / name
        shutil.copyfile(lib, dest)
        dest.chmod(0o755)
        self._native_outputs = [str(dest)]

    def get_outputs(self, include_bytecode: bool = True) -> List[str]:
        return super().get_outputs(include_bytecode) + getattr(self, "_native_outputs", [])


class PlatformWheel(bdist_wheel):
    """A wheel tagged for the platform when it carries librgtp (ctypes: any Python 3)."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if NATIVE:
            self.root_is_pure = False

    def get_tag(self) -> Tuple[str, str, str]:
        python, abi, plat = super().get_tag()
        if NATIVE:
            return "py3", "none", plat
        return python, abi, plat


# Keep build/ and *.egg-info out of the source tree.
_scratch = tempfile.mkdtemp(prefix="redgiant-rgtp-build-")
atexit.register(shutil.rmtree, _scratch, True)

setup(
    cmdclass={"build_py": BuildPyWithLib, "bdist_wheel": PlatformWheel},
    options={
        "build": {"build_base": os.path.join(_scratch, "build")},
        "egg_info": {"egg_base": _scratch},
    },
)
