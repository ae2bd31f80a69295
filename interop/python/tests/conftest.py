"""Shared fixtures: locating librgtp and the Rust `rgtp` binary, free ports, exposers
served from a thread, and a hard per-test time bound."""

from __future__ import annotations

import contextlib
import faulthandler
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
PKG_ROOT = HERE.parent  # interop/python
REPO_ROOT = PKG_ROOT.parent.parent

# Make `import rgtp` work from a checkout too (the venv has it installed).
_src = str(PKG_ROOT / "src")
try:
    import rgtp  # noqa: F401
except ImportError:
    sys.path.insert(0, _src)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (_src, os.environ.get("PYTHONPATH", "")) if p
    )

if not os.environ.get("RGTP_LIB_PATH"):
    _default_lib = REPO_ROOT / "target" / "debug" / "librgtp.so"
    if _default_lib.is_file():
        os.environ["RGTP_LIB_PATH"] = str(_default_lib)

import rgtp  # noqa: E402

#: Hard bound for any single test (the test process is dumped and killed past it).
TEST_HARD_LIMIT_S = float(os.environ.get("RGTP_TEST_HARD_LIMIT", "120"))


@pytest.fixture(autouse=True)
def _hard_time_limit() -> Iterator[None]:
    faulthandler.dump_traceback_later(TEST_HARD_LIMIT_S, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def rust_bin() -> Path:
    env = os.environ.get("RGTP_BIN")
    return Path(env) if env else REPO_ROOT / "target" / "debug" / "rgtp"


@pytest.fixture(scope="session")
def lib() -> str:
    """The loaded library's path (a failure here means RGTP_LIB_PATH is wrong)."""
    rgtp.init()
    return rgtp.library_path()


@pytest.fixture(scope="session")
def rgtp_bin() -> Path:
    b = rust_bin()
    if not b.is_file():
        pytest.fail(f"Rust rgtp binary not found at {b} (set RGTP_BIN or `cargo build -p rgtp-cli`)")
    return b


def free_udp_port() -> int:
    """A UDP port free on all IPv4 interfaces right now (exposers bind 0.0.0.0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def payload(size: int, seed: int = 1) -> bytes:
    """Deterministic, non-repeating-ish test data."""
    import hashlib

    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


class ServedExposure:
    """An exposure served by `rgtp.poll` from a background thread."""

    def __init__(self, data: bytes, config: Optional[rgtp.Config] = None) -> None:
        self.data = data
        self.port = config.port if config and config.port else 0
        self.sock = rgtp.Socket(config)
        self.surface = rgtp.expose(self.sock, data)
        self._stop = threading.Event()
        self.errors: List[BaseException] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                rgtp.poll(self.surface, 20)
        except BaseException as e:  # pragma: no cover - reported by stop()
            self.errors.append(e)

    @property
    def ticket(self) -> str:
        return self.surface.ticket()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive(), "exposer thread did not stop"
        self.surface.close()
        self.sock.close()
        assert not self.errors, self.errors


@pytest.fixture
def serve(lib: str) -> Iterator:
    started: List[ServedExposure] = []

    def start(data: bytes, **cfg: object) -> ServedExposure:
        config = rgtp.Config(port=int(cfg.pop("port", 0) or free_udp_port()), **cfg)  # type: ignore[arg-type]
        e = ServedExposure(data, config)
        started.append(e)
        return e

    yield start
    for e in started:
        e.stop()


def py_cli(name: str) -> List[str]:
    """Command line for our console script `name` (installed beside this Python, else
    run through the module)."""
    exe = Path(sys.executable).parent / name
    if exe.is_file() and os.access(exe, os.X_OK):
        return [str(exe)]
    fn = {"rgtp-expose": "cmd_expose", "rgtp-pull": "cmd_pull"}[name]
    return [sys.executable, "-c", f"import sys, rgtp.cli as c; sys.exit(c.{fn}())"]


@contextlib.contextmanager
def running(cmd: List[str], env: Optional[dict] = None) -> Iterator[subprocess.Popen]:
    """Starts a long-running exposer process and always stops it."""
    p = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        yield p
    finally:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for f in (p.stdout, p.stderr):
            if f:
                f.close()


def first_line(p: subprocess.Popen, timeout: float = 30.0) -> str:
    """The first stdout line of `p` (the ticket), waiting at most `timeout`."""
    box: List[str] = []
    t = threading.Thread(target=lambda: box.append(p.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    t.start()
    t.join(timeout)
    if not box or not box[0].strip():
        err = ""
        if p.poll() is not None and p.stderr:
            err = p.stderr.read()
        raise AssertionError(f"no ticket from {p.args!r} within {timeout}s; stderr: {err}")
    return box[0].strip()


def have(cmd: str) -> bool:
    return shutil.which(cmd) is not None
