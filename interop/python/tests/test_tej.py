"""rgtp.tej: TEJ over TCP through librgtp, Python to Python and Python to `rgtp tej serve`."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, List, Optional

import pytest

from rgtp import tej

from conftest import first_line, payload, running


def _serve_one(handler: Callable[[tej.Client], Any]) -> tuple:
    """A listener on loopback whose first connection runs `handler` in a thread.
    Returns (listener, thread, results): results holds the handler's return value
    or its exception."""
    listener = tej.listen("127.0.0.1", 0)
    results: List[Any] = []

    def run() -> None:
        try:
            with listener.accept(timeout=20) as conn:
                results.append(handler(conn))
        except BaseException as e:  # reported by the test
            results.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return listener, t, results


def _joined(t: threading.Thread, results: List[Any]) -> Any:
    t.join(30)
    assert not t.is_alive(), "server thread did not finish"
    assert len(results) == 1
    if isinstance(results[0], BaseException):
        raise results[0]
    return results[0]


def test_python_client_and_server_message_and_three_files(lib: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    contents = {"a.txt": b"alpha", "b.bin": payload(200_000, 3), "c.dat": payload(4097, 4)}
    for name, data in contents.items():
        (src / name).write_bytes(data)
    inbox = tmp_path / "inbox"

    def server(conn: tej.Client) -> list:
        frames = []
        while (f := conn.recv(inbox, timeout=20)) is not None:
            frames.append(f)
        return frames

    listener, t, results = _serve_one(server)
    host, port = listener.address
    assert host == "127.0.0.1" and port > 0
    with tej.connect(host, port) as c:
        c.send(files=[src / n for n in contents], message=b"three files", status=5)
        c.send_bytes({"mem.txt": b"in memory", "other": b""}, message="text message")
    frames = _joined(t, results)
    listener.close()

    assert len(frames) == 2
    first, second = frames
    assert first.status == 5
    assert first.message == b"three files"
    assert [f.name for f in first.files] == list(contents)
    for f in first.files:
        assert Path(f.path).parent == inbox
        assert f.size == len(contents[f.name])
        assert Path(f.path).read_bytes() == contents[f.name]
    assert second.status == 1
    assert second.message == b"text message"
    assert [(f.name, f.size) for f in second.files] == [("mem.txt", 9), ("other", 0)]
    assert Path(second.files[0].path).read_bytes() == b"in memory"


def test_an_empty_file_and_a_hostile_name(lib: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    inbox = tmp_path / "inbox"

    def server(conn: tej.Client) -> Optional[tej.Frame]:
        return conn.recv(inbox, timeout=20)

    listener, t, results = _serve_one(server)
    with listener, tej.connect(*listener.address) as c:
        c.send(files=[empty])
        frame = _joined(t, results)
    assert frame is not None
    assert [(f.name, f.size) for f in frame.files] == [("empty", 0)]
    assert Path(frame.files[0].path).read_bytes() == b""

    listener, t, results = _serve_one(server)
    with listener, tej.connect(*listener.address) as c:
        c.send_bytes([("../../escape", b"x"), ("/etc/passwd", b"y")])
        frame = _joined(t, results)
    assert [f.name for f in frame.files] == ["../../escape", "/etc/passwd"]
    for f in frame.files:
        assert Path(f.path).parent == inbox
    assert sorted(os.listdir(tmp_path)) == ["empty", "inbox"]


def test_recv_timeout_raises_timeout_error_and_the_connection_goes_on(
    lib: str, tmp_path: Path
) -> None:
    go = threading.Event()

    def server(conn: tej.Client) -> tuple:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            conn.recv(tmp_path, timeout=0.3)
        waited = time.monotonic() - started
        go.set()
        frame = conn.recv(tmp_path, timeout=20)
        return waited, frame, conn.pings_received

    listener, t, results = _serve_one(server)
    with listener, tej.connect(*listener.address) as c:
        c.ping()
        assert go.wait(20)
        c.send_bytes({}, message=b"after the timeout")
        waited, frame, pings = _joined(t, results)
    assert waited >= 0.3
    assert frame.message == b"after the timeout" and frame.files == []
    assert pings == 1

    with tej.listen() as l:
        with pytest.raises(TimeoutError):
            l.accept(timeout=0.1)


def test_bad_arguments(lib: str, tmp_path: Path) -> None:
    with tej.listen() as l:
        with tej.connect(*l.address) as c, l.accept(timeout=10) as s:
            with pytest.raises(ValueError, match="status"):
                c.send_bytes({}, status=200)
            with pytest.raises(FileNotFoundError):
                c.send(files=[tmp_path / "missing"])
            c.send_bytes({}, message=b"still usable")
            assert s.recv(tmp_path, timeout=10).message == b"still usable"
        with pytest.raises(ValueError, match="closed"):
            c.ping()


def test_python_client_to_rust_echo_server(lib: str, rgtp_bin: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    files = {"one.bin": payload(300_000, 9), "two.txt": b"two", "zero": b""}
    for name, data in files.items():
        (src / name).write_bytes(data)
    cmd = [str(rgtp_bin), "tej", "serve", "--bind", "127.0.0.1:0", "--echo"]
    with running(cmd) as p:
        line = first_line(p)
        assert line.startswith("listening on "), line
        host, _, port = line.split()[-1].rpartition(":")
        echoed = tmp_path / "echoed"
        with tej.connect(host, int(port)) as c:
            c.send(files=[src / n for n in files], message=b"echo me", status=9)
            c.send_bytes({"mem": b"memory"}, message=b"second")
            first = c.recv(echoed, timeout=30)
            second = c.recv(echoed, timeout=30)
    assert first is not None and second is not None
    assert first.status == 9 and first.message == b"echo me"
    assert [f.name for f in first.files] == list(files)
    for f in first.files:
        assert Path(f.path).read_bytes() == files[f.name]
    assert second.message == b"second"
    assert [(f.name, Path(f.path).read_bytes()) for f in second.files] == [("mem", b"memory")]


def test_a_peer_breaking_the_protocol_raises_tej_error(lib: str, tmp_path: Path) -> None:
    import socket

    with tej.listen() as l:
        raw = socket.create_connection(l.address)
        try:
            raw.sendall(bytes([0x01, 0x01]) + bytes(8))
            with l.accept(timeout=10) as s:
                with pytest.raises(tej.TejError, match="top bit") as e:
                    s.recv(tmp_path, timeout=10)
                assert isinstance(e.value, OSError)
        finally:
            raw.close()
