"""Interop between our Python CLIs/bindings and our Rust `rgtp` binary, as processes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import List, Optional

import pytest

import rgtp

from conftest import first_line, free_udp_port, payload, py_cli, running

TIMEOUT = 90


def _env(**extra: str) -> dict:
    env = dict(os.environ)
    env.pop("RGTP_KEY", None)
    env.pop("RGTP_PORT", None)
    env.update(extra)
    return env


def _run(cmd: List[str], env: Optional[dict] = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL, env=env or _env())


def _rust_expose(rgtp_bin: Path, f: Path, *args: str) -> List[str]:
    return [str(rgtp_bin), "expose", str(f), "--port", str(free_udp_port()), "-q", *args]


def _py_expose(f: Path, *args: str) -> List[str]:
    return py_cli("rgtp-expose") + [str(f), "--port", str(free_udp_port()), *args]


@pytest.mark.parametrize("size", [0, 1201, 1 << 20])
def test_python_pull_from_rust_expose(rgtp_bin: Path, tmp_path: Path, size: int) -> None:
    data = payload(size, seed=11)
    src, out = tmp_path / "src.bin", tmp_path / "out.bin"
    src.write_bytes(data)
    with running(_rust_expose(rgtp_bin, src), env=_env()) as p:
        ticket = first_line(p)
        assert ticket.startswith("rgtp://")
        r = _run(py_cli("rgtp-pull") + [ticket, str(out)])
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == data
    assert not Path(str(out) + ".rgtp-partial").exists()
    if size:
        assert "/s" in r.stderr and "ETA" in r.stderr, "progress line on stderr"


@pytest.mark.parametrize("suite", [
    ["--cipher", "chacha20-poly1305", "--hash", "blake3"],
    ["--chunk-size", "1000", "--fec", "rs:20,16", "--proofs"],
])
def test_python_pull_from_rust_expose_other_suites(rgtp_bin: Path, tmp_path: Path,
                                                   suite: List[str]) -> None:
    data = payload(300_001, seed=12)
    src, out = tmp_path / "src.bin", tmp_path / "out.bin"
    src.write_bytes(data)
    with running(_rust_expose(rgtp_bin, src, *suite), env=_env()) as p:
        ticket = first_line(p)
        r = _run(py_cli("rgtp-pull") + [ticket, str(out), "-q"])
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == data


def test_rust_pull_from_python_expose(rgtp_bin: Path, tmp_path: Path) -> None:
    data = payload(1 << 20, seed=13)
    src, out = tmp_path / "src.bin", tmp_path / "out.bin"
    src.write_bytes(data)
    with running(_py_expose(src), env=_env()) as p:
        ticket = first_line(p)
        assert rgtp.Ticket.parse(ticket)
        r = _run([str(rgtp_bin), "pull", ticket, "-o", str(out), "-q"])
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == data
        p.terminate()
        assert p.wait(10) == 0, p.stderr.read() if p.stderr else ""  # type: ignore[union-attr]
        err = p.stderr.read() if p.stderr else ""  # type: ignore[union-attr]
    assert "sent" in err, "status line on stderr"


def test_python_pull_from_python_expose(tmp_path: Path) -> None:
    data = payload(777_777, seed=14)
    src, out = tmp_path / "src.bin", tmp_path / "out.bin"
    src.write_bytes(data)
    with running(_py_expose(src, "-q"), env=_env()) as p:
        ticket = first_line(p)
        r = _run(py_cli("rgtp-pull") + [ticket, str(out)])
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == data


def test_python_expose_custom_settings(rgtp_bin: Path, tmp_path: Path) -> None:
    data = payload(100_000, seed=15)
    src, out = tmp_path / "src.bin", tmp_path / "out.bin"
    src.write_bytes(data)
    with running(_py_expose(src, "-q", "--chunk-size", "900", "--fec", "--merkle-proofs"),
                 env=_env()) as p:
        ticket = first_line(p)
        r = _run([str(rgtp_bin), "pull", ticket, "-o", str(out), "-q", "--proofs"])
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == data
        out.unlink()
        r = _run(py_cli("rgtp-pull") + [ticket, str(out), "-q", "--proofs"])
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == data


def test_shared_key_rust_expose_python_pull_start(rgtp_bin: Path, tmp_path: Path) -> None:
    """A pre-shared key (--key) and 1.0.0's pull_start((host, port), id) call shape."""
    key = bytes(range(100, 132))
    data = payload(50_000, seed=16)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    with running(_rust_expose(rgtp_bin, src, "--key", key.hex()), env=_env()) as p:
        t = rgtp.Ticket.parse(first_line(p))
        assert t.key == key
        with rgtp.Socket() as sock, rgtp.pull_start(sock, (t.host, t.port), t.exposure_id,
                                                    key=key) as s:
            assert rgtp.pull_bytes(s) == data
        # The legacy CLI form: HOST:PORT ID OUTPUT with the key from RGTP_KEY.
        out = tmp_path / "legacy.bin"
        r = _run(py_cli("rgtp-pull") + [f"{t.host}:{t.port}", t.exposure_id.hex(), str(out)],
                 env=_env(RGTP_KEY=key.hex()))
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == data


def test_python_expose_key_and_env(rgtp_bin: Path, tmp_path: Path) -> None:
    key = "5a" * 32
    src, out = tmp_path / "src.bin", tmp_path / "out.bin"
    src.write_bytes(b"hello rgtp")
    port = free_udp_port()
    with running(py_cli("rgtp-expose") + [str(src), "-q"],
                 env=_env(RGTP_KEY=key, RGTP_PORT=str(port))) as p:
        t = rgtp.Ticket.parse(first_line(p))
        assert t.key.hex() == key and t.port == port
        r = _run([str(rgtp_bin), "pull", str(t), "-o", str(out), "-q"])
        assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"hello rgtp"


def test_pull_cli_exit_codes(rgtp_bin: Path, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(payload(30_000))
    with running(_rust_expose(rgtp_bin, src), env=_env()) as p:
        t = rgtp.Ticket.parse(first_line(p))
        wrong_key = rgtp.Ticket(t.host, t.port, t.exposure_id, bytes(32), t.cipher, t.hash)
        r = _run(py_cli("rgtp-pull") + [str(wrong_key), str(tmp_path / "a"), "--timeout", "3"])
        assert r.returncode == 4, r.stderr
        assert "authentication" in r.stderr and "Traceback" not in r.stderr
        assert not (tmp_path / "a").exists()

        wrong_id = rgtp.Ticket(t.host, t.port, bytes(16), t.key, t.cipher, t.hash)
        r = _run(py_cli("rgtp-pull") + [str(wrong_id), str(tmp_path / "b"), "--timeout", "1"])
        assert r.returncode == 3, r.stderr
        assert "no answer" in r.stderr
    # Nobody there at all.
    r = _run(py_cli("rgtp-pull") + [str(t), str(tmp_path / "c"), "--timeout", "1"])
    assert r.returncode == 3, r.stderr


def test_expose_cli_port_in_use(tmp_path: Path) -> None:
    import socket

    src = tmp_path / "src.bin"
    src.write_bytes(b"x")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("0.0.0.0", 0))
        port = u.getsockname()[1]
        r = _run(py_cli("rgtp-expose") + [str(src), "--port", str(port)])
    assert r.returncode == 6, r.stderr
    assert "port" in r.stderr


def _ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_pull_start_from_rust_expose(rgtp_bin: Path, tmp_path: Path) -> None:
    """An AF_INET6 sockaddr_storage built by ctypes reaches an IPv6 exposer (librgtp's own
    exposers bind IPv4 only, so the Rust binary serves on [::1])."""
    import socket

    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", 0))
        port = s.getsockname()[1]
    data = payload(40_000, seed=17)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    cmd = [str(rgtp_bin), "expose", str(src), "--bind", "::1", "--port", str(port), "-q"]
    with running(cmd, env=_env()) as p:
        t = rgtp.Ticket.parse(first_line(p))
        assert t.host == "[::1]"
        with rgtp.Socket() as sock:
            with rgtp.pull_start(sock, ("::1", port), t.exposure_id, key=t.key) as s6:
                assert rgtp.pull_bytes(s6) == data
            with rgtp.pull_ticket(sock, str(t)) as st:
                assert rgtp.pull_bytes(st) == data
        out = tmp_path / "out6.bin"
        r = _run(py_cli("rgtp-pull") + [str(t), str(out), "-q"])
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == data
