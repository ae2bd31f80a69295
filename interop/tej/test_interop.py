"""`rgtp tej` against the published tej-protoc 0.2.4, both directions.

(a) the reference's frame builder and client talk to `rgtp tej serve`
    (storing files, or echoing every frame);
(b) `rgtp tej send` talks to the reference's TPServer.

Files of 0 B, 1 B and 64 MiB, several files and a message in one frame,
200 pipelined frames, pings; everything compared byte for byte. Names are
ASCII: the reference counts name lengths in characters, so a non-ASCII name
is where the two differ on purpose (spec/tej.md).
"""

import os
import random
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tej_protoc import protocol
from tej_protoc.callbacks import ResponseCallback
from tej_protoc.client import TPClient
from tej_protoc.logger import Log
from tej_protoc.protocol import BytesBuilder
from tej_protoc.server import TPServer

Log.enabled = False

RGTP = os.environ["RGTP_BIN"]
BIG = random.Random(13).randbytes(64 << 20)
FILES = {"zero.bin": b"", "one.bin": b"\x5a", "big.bin": BIG}
TIMEOUT = 120


def wait_for(cond, what, timeout=TIMEOUT):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Server:
    """`rgtp tej serve` in the background; its stdout lines collected."""

    def __init__(self, tmp, *extra):
        self.dir = tmp / "store"
        self.proc = subprocess.Popen(
            [RGTP, "tej", "serve", "--bind", "127.0.0.1:0", "--dir", str(self.dir), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = self.proc.stdout.readline()
        assert first.startswith("listening on "), first
        host, port = first.split()[-1].rsplit(":", 1)
        self.addr = (host, int(port))
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def frames(self):
        return [l for l in self.lines if l.startswith("frame from ")]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        return self.proc.stderr.read()


@pytest.fixture
def store_server(tmp_path):
    s = Server(tmp_path)
    yield s
    s.stop()


@pytest.fixture
def echo_server(tmp_path):
    s = Server(tmp_path, "--echo")
    yield s
    s.stop()


def send_and_close(addr, data):
    """Sends `data` with the reference's writer, ends the stream, waits for the server's end."""
    with socket.create_connection(addr) as s:
        protocol.send(s, data, TIMEOUT)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(TIMEOUT)
        while s.recv(65536):
            pass


# (a) the reference's client and builder against `rgtp tej serve`.


def test_reference_frames_stored_by_rgtp(store_server):
    frames = [BytesBuilder(1).add_file(name, data).bytes() for name, data in FILES.items()]
    several = BytesBuilder(9)
    for name, data in FILES.items():
        several.add_file(name, data)
    frames.append(several.set_message(b"several files and a message").bytes())
    send_and_close(store_server.addr, b"".join(frames))
    wait_for(lambda: len(store_server.frames()) == 4, "4 frames")
    for name, data in FILES.items():
        stem, ext = name.split(".")
        assert (store_server.dir / name).read_bytes() == data
        assert (store_server.dir / f"{stem}-1.{ext}").read_bytes() == data
    last = store_server.frames()[-1]
    assert "status 9, 3 files" in last
    assert last.endswith(b"several files and a message".hex())


class Collect(ResponseCallback):
    """Gathers what the reference client hears, rebuilt as bytes."""

    frames = []
    pings = []

    def received(self, files, message_data):
        b = BytesBuilder(self.custom_status)
        for f in files:
            b.add_file(f.name, f.data)
        Collect.frames.append(b.set_message(message_data).bytes())

    def ping_received(self, files, message_data):
        Collect.pings.append(BytesBuilder(self.custom_status).set_message(message_data).bytes())


def test_reference_client_echoed_byte_exact(echo_server):
    Collect.frames, Collect.pings = [], []
    client = TPClient(*echo_server.addr, Collect)
    client.listen(run_background=True, is_daemon=True)
    sent = []
    several = BytesBuilder(3)
    for name, data in FILES.items():
        several.add_file(name, data)
    sent.append(several.set_message("message".encode()).bytes())
    for i in range(200):
        sent.append(BytesBuilder(i % 100 + 3).add_file(f"f{i}.txt", str(i).encode() * i).set_message(f"frame {i}".encode()).bytes())
    pings = [BytesBuilder(2).bytes(), BytesBuilder(2).set_message(b"ping with a message").bytes()]
    protocol.send(client.get_client(), pings[0] + b"".join(sent) + pings[1], TIMEOUT)
    wait_for(lambda: len(Collect.frames) == len(sent) and len(Collect.pings) == 2, "the echo")
    assert Collect.frames == sent
    assert Collect.pings == pings
    client.get_client().close()


def test_a_bad_connection_does_not_stop_the_server(store_server):
    with socket.create_connection(store_server.addr) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(TIMEOUT)
        assert s.recv(100) == b"", "closed on a protocol error"
    send_and_close(store_server.addr, BytesBuilder(4).set_message(b"still here").bytes())
    wait_for(lambda: any(l.endswith(b"still here".hex()) for l in store_server.frames()), "the good frame")


# (b) `rgtp tej send` against the reference's server.


class Record(ResponseCallback):
    frames = []
    pings = []
    lock = threading.Lock()

    def received(self, files, message_data):
        with Record.lock:
            Record.frames.append((self.custom_status, [(f.name, f.data) for f in files], message_data))

    def ping_received(self, files, message_data):
        with Record.lock:
            Record.pings.append((self.custom_status, message_data))


@pytest.fixture(scope="module")
def reference_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = TPServer("127.0.0.1", port, Record)
    server.listen(run_background=True, is_daemon=True)
    return f"127.0.0.1:{port}"


@pytest.fixture
def files(tmp_path):
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


def rgtp_send(to, *args):
    r = subprocess.run([RGTP, "tej", "send", "--to", to, *map(str, args)], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr


def test_rgtp_sends_to_the_reference_server(reference_server, files):
    Record.frames, Record.pings = [], []
    for name in FILES:
        rgtp_send(reference_server, files / name)
    rgtp_send(reference_server, *(files / n for n in FILES), "-m", "several files and a message", "--status", 9)
    wait_for(lambda: len(Record.frames) == 4, "4 frames")
    for (status, got, message), (name, data) in zip(Record.frames, FILES.items()):
        assert (status, got, message) == (1, [(name, data)], None)
    assert Record.frames[3] == (9, list(FILES.items()), b"several files and a message")


def test_rgtp_pipelines_200_frames_and_pings_to_the_reference_server(reference_server, files):
    Record.frames, Record.pings = [], []
    (files / "small.txt").write_bytes(b"pipelined\n")
    rgtp_send(reference_server, files / "small.txt", "-m", "again", "--repeat", 200)
    rgtp_send(reference_server, "--status", 2, "--repeat", 3)
    rgtp_send(reference_server, "--status", 2, "-m", "ping with a message")
    wait_for(lambda: len(Record.frames) == 200 and len(Record.pings) == 4, "200 frames and 4 pings")
    assert Record.frames == [(1, [("small.txt", b"pipelined\n")], b"again")] * 200
    assert Record.pings == [(2, None)] * 3 + [(2, b"ping with a message")]
