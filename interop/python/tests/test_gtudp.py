"""rgtp.gtudp: Python to Python on loopback, Python to `rgtp gtudp serve --echo`, errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

import rgtp
from rgtp import gtudp

from conftest import first_line, payload, running

KEY = bytes(range(32))


class Echo:
    """A gtUDP socket that sends every datagram back to its sender, from a thread."""

    def __init__(self, **profile: object) -> None:
        self.sock = gtudp.Socket(**profile)  # type: ignore[arg-type]
        self.addr = self.sock.local_addr
        self.echoed = 0
        self.errors: List[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    data, sender = self.sock.recvfrom(timeout=0.05)
                except TimeoutError:
                    continue
                self.sock.sendto(data, sender)
                self.echoed += 1
            self.sock.flush(3.0)
        except BaseException as e:  # reported by stop()
            self.errors.append(e)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive(), "echo thread did not stop"
        assert not self.errors, self.errors
        self.sock.close()


@pytest.fixture
def echo(lib: str) -> Iterator[Echo]:
    e = Echo()
    yield e
    e.stop()


def _dead_port() -> Tuple[str, int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return "127.0.0.1", int(s.getsockname()[1])


def _exchange(sock: gtudp.Socket, peer: Tuple[str, int], sizes: List[int]) -> None:
    for size in sizes:
        data = payload(size, seed=size)
        sock.send_confirmed(data, peer, timeout=5.0)
        got, sender = sock.recvfrom(timeout=5.0)
        assert got == data, size
        assert sender == peer


def test_python_to_python_round_trip(echo: Echo) -> None:
    with gtudp.Socket() as a:
        _exchange(a, echo.addr, [0, 1, 1200])
        assert a.flush(5.0)
        s = a.stats()
    assert isinstance(s, gtudp.Stats)
    assert s.confirmed == 3
    assert s.delivered == 3
    assert s.failed == 0
    assert s.data_sent == 3
    deadline = time.monotonic() + 5
    while echo.echoed < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert echo.echoed == 3


def test_local_addr_and_string_addresses(lib: str) -> None:
    with gtudp.Socket(("127.0.0.1", 0)) as a, gtudp.Socket("127.0.0.1:0") as b:
        host, port = a.local_addr
        assert host == "127.0.0.1" and port > 0
        assert repr(a) == f"<rgtp.gtudp.Socket 127.0.0.1:{port}>"
        assert a.sendto(b"by text", f"127.0.0.1:{b.local_addr[1]}") == 7
        data, sender = b.recvfrom(timeout=5.0)
        assert (data, sender) == (b"by text", a.local_addr)


def test_long_datagram_is_cut_to_bufsize(lib: str) -> None:
    with gtudp.Socket() as a, gtudp.Socket() as b:
        data = payload(1200)
        a.sendto(data, b.local_addr)
        got, _ = b.recvfrom(100, timeout=5.0)
        assert got == data[:100]


def test_send_confirmed_to_a_dead_port_raises_send_failed(lib: str) -> None:
    with gtudp.Socket() as a:
        start = time.monotonic()
        with pytest.raises(gtudp.SendFailed) as ei:
            a.send_confirmed(b"anyone?", _dead_port(), timeout=0.8)
        took = time.monotonic() - start
        assert ei.value.code == rgtp.RGTP_ERR_TIMEOUT
        assert isinstance(ei.value, rgtp.RgtpError)
        assert 0.7 <= took < 2.5, took
        assert a.stats().failed == 1


def test_recvfrom_timeout_raises_timeout_error(lib: str) -> None:
    with gtudp.Socket() as a:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            a.recvfrom(timeout=0.3)
        took = time.monotonic() - start
        assert 0.28 <= took < 2.0, took
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            a.recvfrom(timeout=0)
        assert time.monotonic() - start < 0.5


def test_closed_socket_raises_a_clear_error(lib: str) -> None:
    a = gtudp.Socket()
    a.close()
    assert a.closed
    a.close()  # idempotent
    for call in (
        lambda: a.local_addr,
        lambda: a.sendto(b"x", ("127.0.0.1", 9)),
        lambda: a.send_confirmed(b"x", ("127.0.0.1", 9)),
        lambda: a.recvfrom(timeout=0.1),
        lambda: a.flush(0.1),
        lambda: a.stats(),
    ):
        with pytest.raises(ValueError, match="closed rgtp.gtudp.Socket"):
            call()
    with gtudp.Socket() as b:
        assert not b.closed
    assert b.closed
    assert repr(b) == "<rgtp.gtudp.Socket closed>"


def test_close_from_another_thread_ends_a_blocking_recvfrom(lib: str) -> None:
    a = gtudp.Socket()
    errors: List[BaseException] = []

    def wait() -> None:
        try:
            a.recvfrom()
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=wait, daemon=True)
    t.start()
    time.sleep(0.3)
    a.close()
    t.join(5)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ValueError)


def test_bad_arguments(lib: str) -> None:
    with pytest.raises(ValueError):
        gtudp.Socket(types=[1, 2])
    with pytest.raises(ValueError):
        gtudp.Socket(types=[1, 1, 2])
    with pytest.raises(ValueError):
        gtudp.Socket(types=[b"\x01", b"\x02\x02", b"\x03"])
    with pytest.raises(ValueError):
        gtudp.Socket(key=b"short")
    with pytest.raises(rgtp.RgtpError) as ei:
        gtudp.Socket(("not an address", 1))
    assert ei.value.code == rgtp.RGTP_ERR_INVALID_ARG
    with gtudp.Socket() as a:
        with pytest.raises(rgtp.RgtpError) as ei:
            a.sendto(b"x" * 70_000, ("127.0.0.1", 9))
        assert ei.value.code == rgtp.RGTP_ERR_INVALID_ARG
        with pytest.raises(ValueError):
            a.recvfrom(timeout=-1)
        with pytest.raises(TypeError):
            a.sendto(b"x", ("127.0.0.1",))  # type: ignore[arg-type]
    # Taken: the port is in use.
    with gtudp.Socket() as a:
        with pytest.raises(rgtp.RgtpError) as ei:
            gtudp.Socket(a.local_addr)
        assert ei.value.code == rgtp.RGTP_ERR_SOCKET


def test_keyed_profile_round_trips_and_another_key_never_delivers(lib: str) -> None:
    keyed = Echo(key=KEY)
    try:
        with gtudp.Socket(key=KEY.hex()) as a:
            _exchange(a, keyed.addr, [0, 1, 1200])
        with gtudp.Socket(key=bytes(32)) as other:
            with pytest.raises(gtudp.SendFailed):
                other.send_confirmed(b"wrong key", keyed.addr, timeout=1.0)
        with gtudp.Socket() as plain:
            with pytest.raises(gtudp.SendFailed):
                plain.send_confirmed(b"no key", keyed.addr, timeout=1.0)
    finally:
        keyed.stop()
    assert keyed.echoed == 3


def test_magic_and_types_profile(lib: str) -> None:
    profile = dict(magic=b"RG\x00GT\x01", types=[b"\xd1\x01", b"\xd1\x02", b"\xd1\x03"],
                   reference_timers=True)
    e = Echo(**profile)
    try:
        with gtudp.Socket(**profile) as a:  # type: ignore[arg-type]
            _exchange(a, e.addr, [0, 7, 1200])
        with gtudp.Socket() as plain:
            with pytest.raises(gtudp.SendFailed):
                plain.send_confirmed(b"other profile", e.addr, timeout=1.0)
        assert e.sock.stats().malformed >= 1
    finally:
        e.stop()
    assert e.echoed == 3


def test_import_works_and_open_fails_clearly_without_gtudp_in_the_library(
    lib: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = rgtp._lib.load()
    monkeypatch.setattr(loaded, "missing", loaded.missing + ["rgtp_gtudp_open"])
    with pytest.raises(NotImplementedError, match="rgtp_gtudp_open"):
        gtudp.Socket()
    # Importing never needs the library.
    env = dict(os.environ, RGTP_LIB_PATH="/nonexistent/librgtp.so")
    r = subprocess.run([sys.executable, "-c", "import rgtp, rgtp.gtudp; print(rgtp.gtudp.Socket)"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert "rgtp.gtudp.Socket" in r.stdout


# ── against `rgtp gtudp serve --echo` ────────────────────────────────────────

MAGIC = bytes.fromhex("52474754d001")
TYPES = [bytes.fromhex("a101"), bytes.fromhex("a102"), bytes.fromhex("a103")]


def _serve(rgtp_bin: Path, *args: str) -> List[str]:
    return [str(rgtp_bin), "gtudp", "serve", "--bind", "127.0.0.1:0", "--echo", *args]


def _listening(p: subprocess.Popen) -> Tuple[str, int]:
    line = first_line(p)
    assert line.startswith("listening on "), line
    return gtudp.parse_addr(line[len("listening on "):])


def test_python_and_rust_serve_echo_with_a_profile(lib: str, rgtp_bin: Path) -> None:
    cmd = _serve(rgtp_bin, "--magic", MAGIC.hex(), "--types", ",".join(t.hex() for t in TYPES))
    with running(cmd) as p:
        peer = _listening(p)
        with gtudp.Socket(magic=MAGIC, types=TYPES) as a:
            a.send_confirmed(b"hello gtudp", peer, timeout=5.0)
            data, sender = a.recvfrom(timeout=5.0)
            assert (data, sender) == (b"hello gtudp", peer)
            line = first_line(p)
            assert f"from=127.0.0.1:{a.local_addr[1]} " in line, line
            assert line.endswith("len=11 data=hello gtudp"), line
            big = payload(1200)
            a.send_confirmed(big, peer, timeout=5.0)
            assert a.recvfrom(timeout=5.0)[0] == big
            assert a.flush(5.0)
            # Without the profile the server does not understand us.
            with gtudp.Socket() as plain:
                with pytest.raises(gtudp.SendFailed):
                    plain.send_confirmed(b"plain", peer, timeout=1.0)


def test_python_and_rust_serve_echo_with_a_key(lib: str, rgtp_bin: Path) -> None:
    with running(_serve(rgtp_bin, "--key", KEY.hex())) as p:
        peer = _listening(p)
        with gtudp.Socket(key=KEY) as a:
            a.send_confirmed(b"sealed", peer, timeout=5.0)
            assert a.recvfrom(timeout=5.0) == (b"sealed", peer)
            assert a.flush(5.0)
        with gtudp.Socket(key=bytes(32)) as other:
            with pytest.raises(gtudp.SendFailed):
                other.send_confirmed(b"wrong key", peer, timeout=1.0)
