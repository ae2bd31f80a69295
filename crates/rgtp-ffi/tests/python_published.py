"""The published Python package `rgtp` 1.0.0, unmodified, on our librgtp.so.

Run by tests/python_published.rs inside a venv (pip install rgtp==1.0.0 pytest) with:
  RGTP_LIB_PATH  our librgtp.so          RGTP_KEY  64 hex digits
  RGTP_BIN       our `rgtp` command      RGTP_PORT 0 (exposers pick a free port)

Everything the package's README promises (init, version, strerror, Socket, expose,
exposure_id, progress, poll, async_expose, cleanup), and whole pulls driven from
Python: rgtp_pull_start through ctypes with a sockaddr_storage built here, the handle
wrapped in the package's Surface, then the package's own pull_next / async_pull_next /
progress until 1.0, against (a) our `rgtp expose` and (b) the package's `rgtp-expose`.
Error paths: a tampered Chunk_Data surfaces as RgtpError -7, a wrong Exposure_ID as -12.
"""

import asyncio
import ctypes
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest
import rgtp
from rgtp import _rgtp

LIB = _rgtp._lib
assert LIB is not None, "RGTP_LIB_PATH did not load"

LIB.rgtp_pull_start.restype = ctypes.c_int
LIB.rgtp_pull_start.argtypes = [
    _rgtp._SocketPtr,
    ctypes.c_void_p,  # const struct sockaddr_storage*
    ctypes.c_char_p,  # const uint8_t id[16]
    ctypes.c_void_p,  # const rgtp_config_t* (NULL)
    ctypes.POINTER(_rgtp._SurfacePtr),
]

CODES = list(range(0, -16, -1))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sockaddr_in(host, port):
    """A struct sockaddr_storage holding an AF_INET address (Linux layout)."""
    buf = ctypes.create_string_buffer(128)
    struct.pack_into("=H", buf, 0, socket.AF_INET)  # sa_family_t, host order
    struct.pack_into("!H", buf, 2, port)  # sin_port, network order
    buf[4:8] = socket.inet_aton(host)
    return buf


def pull_start(sock, host, port, exposure_id):
    ptr = _rgtp._SurfacePtr()
    addr = sockaddr_in(host, port)
    _rgtp._check(
        LIB.rgtp_pull_start(sock._ptr, ctypes.addressof(addr), exposure_id, None, ctypes.byref(ptr))
    )
    return rgtp.Surface(ptr)


def pull_all(host, port, exposure_id):
    """A whole pull through the package's own pull_next / async_pull_next / progress."""
    chunks = {}
    with rgtp.Socket() as sock:
        with pull_start(sock, host, port, exposure_id) as surface:
            assert surface.exposure_id() == exposure_id
            assert 0.0 <= rgtp.progress(surface) < 1.0
            n = 0
            deadline = time.monotonic() + 60
            while surface.progress() < 1.0:
                assert time.monotonic() < deadline, "pull did not finish"
                if n % 2:
                    data, idx = asyncio.run(rgtp.async_pull_next(surface))
                else:
                    data, idx = rgtp.pull_next(surface)
                n += 1
                assert data, "pull_next returned end of stream before progress reached 1.0"
                assert idx not in chunks
                chunks[idx] = data
            assert rgtp.progress(surface) == 1.0
            # End of stream, as documented: RGTP_OK with no bytes.
            data, idx = rgtp.pull_next(surface)
            assert data == b"" and idx == 0xFFFFFFFF
    assert sorted(chunks) == list(range(len(chunks)))
    return b"".join(chunks[i] for i in sorted(chunks))


def payload(size, seed):
    import random

    return random.Random(seed).randbytes(size)


# ---------------------------------------------------------------- API basics


def test_init_version_strerror_cleanup():
    rgtp.init()
    rgtp.init()
    assert re.fullmatch(r"\d+\.\d+\.\d+", rgtp.version())
    texts = [rgtp.strerror(c) for c in CODES]
    assert all(texts) and len(set(texts)) == len(texts)
    for c in (1, -16, -100, 2**31 - 1, -(2**31)):
        assert rgtp.strerror(c)
    e = rgtp.RgtpError(-7)
    assert e.code == -7 and e.message == rgtp.strerror(-7)
    with pytest.raises(rgtp.RgtpError) as ei:
        rgtp._check(-12)
    assert ei.value.code == -12
    rgtp.cleanup()
    rgtp.init()


def test_socket_expose_poll_progress(monkeypatch):
    monkeypatch.setenv("RGTP_PORT", "0")
    rgtp.init()
    data = payload(50_000, 1)
    with rgtp.Socket() as sock:
        with rgtp.expose(sock, data) as surface:
            eid = surface.exposure_id()
            assert isinstance(eid, bytes) and len(eid) == 16 and eid != bytes(16)
            assert rgtp.progress(surface) == 1.0
            t0 = time.monotonic()
            rgtp.poll(surface, timeout_ms=200)  # nothing arrives: -12, which poll tolerates
            assert 0.15 <= time.monotonic() - t0 < 1.0
            rgtp.poll(surface, timeout_ms=0)
            assert rgtp.get_stats(surface) == {"progress": 1.0}
        # A second exposure on the same socket.
        surface2 = asyncio.run(rgtp.async_expose(sock, b"async"))
        assert len(surface2.exposure_id()) == 16 and surface2.exposure_id() != eid
        surface2.close()
        surface2.close()  # the package guards double close
    rgtp.cleanup()


def test_socket_closed_before_surface(monkeypatch):
    monkeypatch.setenv("RGTP_PORT", "0")
    sock = rgtp.Socket()
    surface = rgtp.expose(sock, b"x" * 10)
    sock.close()
    rgtp.poll(surface, timeout_ms=10)
    surface.close()


def test_null_handles_raise_invalid_arg():
    with pytest.raises(rgtp.RgtpError) as ei:
        rgtp.Surface(_rgtp._SurfacePtr()).exposure_id()
    assert ei.value.code == -2
    with pytest.raises(rgtp.RgtpError) as ei:
        rgtp.pull_next(rgtp.Surface(_rgtp._SurfacePtr()))
    assert ei.value.code == -2
    assert rgtp.Surface(_rgtp._SurfacePtr()).progress() == 0.0


# ---------------------------------------------------------------- whole pulls


def serve_in_thread(surface, stop):
    def run():
        while not stop.is_set():
            rgtp.poll(surface, timeout_ms=50)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_pull_from_library_exposer_in_process(monkeypatch):
    monkeypatch.setenv("RGTP_PORT", "0")
    data = payload(400_000 + 5, 2)
    stop = threading.Event()
    with rgtp.Socket() as sock, rgtp.expose(sock, data) as surface:
        port = ticket_port_of(surface)
        t = serve_in_thread(surface, stop)
        try:
            assert pull_all("127.0.0.1", port, surface.exposure_id()) == data
        finally:
            stop.set()
            t.join()


def ticket_port_of(surface):
    buf = ctypes.create_string_buffer(512)
    need = ctypes.c_size_t(0)
    LIB.rgtp_get_ticket.restype = ctypes.c_int
    LIB.rgtp_get_ticket.argtypes = [
        _rgtp._SurfacePtr,
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.POINTER(ctypes.c_size_t),
    ]
    _rgtp._check(LIB.rgtp_get_ticket(surface._ptr, buf, 512, ctypes.byref(need)))
    m = re.match(r"rgtp://127\.0\.0\.1:(\d+)/", buf.value.decode())
    return int(m.group(1))


def parse_ticket(line):
    m = re.match(r"rgtp://([^:/]+):(\d+)/([0-9a-f]{32})\?cipher=([^&]+)&hash=([^#]+)#([0-9a-f]{64})$", line)
    assert m, line
    return m.group(1), int(m.group(2)), bytes.fromhex(m.group(3)), m.group(4), m.group(5), m.group(6)


def test_pull_from_our_rgtp_expose(tmp_path, monkeypatch):
    data = payload(1_500_000 + 17, 3)
    f = tmp_path / "in.bin"
    f.write_bytes(data)
    port = free_port()
    proc = subprocess.Popen(
        [os.environ["RGTP_BIN"], "expose", str(f), "--port", str(port),
         "--cipher", "chacha20-poly1305", "--hash", "blake2b-256", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        host, tport, eid, cipher, hsh, key = parse_ticket(line)
        assert (tport, cipher, hsh) == (port, "chacha20-poly1305", "blake2b-256")
        # Our CLI reads RGTP_KEY too; either way the ticket names the key.
        monkeypatch.setenv("RGTP_KEY", key)
        assert pull_all("127.0.0.1", port, eid) == data
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_pull_from_the_packages_rgtp_expose(tmp_path):
    """`rgtp-expose FILE` passes NULL configs: our library serves on RGTP_PORT with RGTP_KEY."""
    data = payload(700_000 + 3, 4)
    f = tmp_path / "in.bin"
    f.write_bytes(data)
    port = free_port()
    exe = shutil.which("rgtp-expose", path=os.path.dirname(sys.executable))
    assert exe, "rgtp-expose not installed in the venv"
    env = dict(os.environ, RGTP_PORT=str(port), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([exe, str(f)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        eid = None
        deadline = time.monotonic() + 20
        while eid is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "rgtp-expose exited: " + proc.stderr.read()
            m = re.search(r"Exposure ID\s*:\s*([0-9a-f]{32})", line)
            if m:
                eid = bytes.fromhex(m.group(1))
        assert eid
        assert pull_all("127.0.0.1", port, eid) == data
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=10) == 0
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise


# ---------------------------------------------------------------- keys (spec §6.6, §14.2)


def manifest_flags(port, exposure_id):
    """Sends one Pull_Request and returns the Manifest's flags."""
    req = struct.pack("!BBH16sIIIHH", 1, 1, 36, exposure_id, 64, 0, 0, 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        for _ in range(25):
            s.sendto(req, ("127.0.0.1", port))
            try:
                pkt = s.recv(2048)
            except socket.timeout:
                continue
            if pkt[:2] == b"\x01\x02":
                return struct.unpack_from("!H", pkt, 70)[0]
    raise AssertionError("no Manifest")


def test_one_key_many_exposures_derives_a_key_each(monkeypatch):
    """RGTP_KEY serves every NULL-config exposure; each seals under its own key."""
    monkeypatch.setenv("RGTP_PORT", "0")
    stop = threading.Event()
    with rgtp.Socket() as sock:
        for seed in (6, 7):
            data = payload(100_000 + seed, seed)
            with rgtp.expose(sock, data) as surface:
                port = ticket_port_of(surface)
                t = serve_in_thread(surface, stop)
                try:
                    assert manifest_flags(port, surface.exposure_id()) == 0x0040  # DERIVED_KEY
                    assert pull_all("127.0.0.1", port, surface.exposure_id()) == data
                finally:
                    stop.set()
                    t.join()
                    stop.clear()


def test_dangerous_raw_key_is_upstream_flags_and_refuses_reuse(monkeypatch):
    """RGTP_DANGEROUS_RAW_KEY=1: Manifest flags 0 (the upstream suite, the key itself),
    pulls as before, and the same key for other data in this process is refused."""
    monkeypatch.setenv("RGTP_PORT", "0")
    monkeypatch.setenv("RGTP_DANGEROUS_RAW_KEY", "1")
    monkeypatch.setenv("RGTP_KEY", os.urandom(32).hex())
    data = payload(200_000 + 9, 8)
    stop = threading.Event()
    with rgtp.Socket() as sock:
        with rgtp.expose(sock, data) as surface:
            port = ticket_port_of(surface)
            t = serve_in_thread(surface, stop)
            try:
                assert manifest_flags(port, surface.exposure_id()) == 0
                assert pull_all("127.0.0.1", port, surface.exposure_id()) == data
            finally:
                stop.set()
                t.join()
        with pytest.raises(rgtp.RgtpError) as ei:
            rgtp.expose(sock, payload(1000, 9))
        assert ei.value.code == -2
        monkeypatch.setenv("RGTP_DANGEROUS_RAW_KEY", "yes")
        with pytest.raises(rgtp.RgtpError) as ei:
            rgtp.expose(sock, data)
        assert ei.value.code == -2


def test_packages_rgtp_expose_in_raw_key_mode(tmp_path):
    """The package's own CLI with RGTP_DANGEROUS_RAW_KEY=1 still serves pullable data."""
    data = payload(300_000 + 1, 10)
    f = tmp_path / "in.bin"
    f.write_bytes(data)
    port = free_port()
    exe = shutil.which("rgtp-expose", path=os.path.dirname(sys.executable))
    assert exe, "rgtp-expose not installed in the venv"
    env = dict(os.environ, RGTP_PORT=str(port), PYTHONUNBUFFERED="1", RGTP_DANGEROUS_RAW_KEY="1")
    proc = subprocess.Popen([exe, str(f)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        eid = None
        deadline = time.monotonic() + 20
        while eid is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "rgtp-expose exited: " + proc.stderr.read()
            m = re.search(r"Exposure ID\s*:\s*([0-9a-f]{32})", line)
            if m:
                eid = bytes.fromhex(m.group(1))
        assert eid
        assert manifest_flags(port, eid) == 0
        assert pull_all("127.0.0.1", port, eid) == data
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=10) == 0
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise


# ---------------------------------------------------------------- error paths


class TamperProxy:
    """Forwards UDP between one puller and an exposer, flipping a payload bit of
    every Chunk_Data (type 0x03) on its way to the puller."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.client = None
        self.flipped = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            try:
                pkt, src = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            if src == self.upstream:
                if self.client is None:
                    continue
                pkt = bytearray(pkt)
                if len(pkt) > 24 and pkt[0] == 1 and pkt[1] == 3:
                    pkt[24] ^= 0x01
                    self.flipped += 1
                self.sock.sendto(bytes(pkt), self.client)
            else:
                self.client = src
                self.sock.sendto(pkt, self.upstream)

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sock.close()


def test_tampered_chunks_raise_auth_fail(monkeypatch):
    monkeypatch.setenv("RGTP_PORT", "0")
    data = payload(300_000, 5)
    stop = threading.Event()
    with rgtp.Socket() as sock, rgtp.expose(sock, data) as surface:
        port = ticket_port_of(surface)
        t = serve_in_thread(surface, stop)
        proxy = TamperProxy(("127.0.0.1", port))
        try:
            with rgtp.Socket() as psock:
                with pull_start(psock, "127.0.0.1", proxy.port, surface.exposure_id()) as p:
                    t0 = time.monotonic()
                    with pytest.raises(rgtp.RgtpError) as ei:
                        while p.progress() < 1.0:
                            rgtp.pull_next(p)
                    assert ei.value.code in (-7, -8)
                    assert time.monotonic() - t0 < 15
                    assert p.progress() < 1.0
            assert proxy.flipped > 0
        finally:
            proxy.close()
            stop.set()
            t.join()


def test_wrong_exposure_id_times_out(monkeypatch):
    monkeypatch.setenv("RGTP_PORT", "0")
    stop = threading.Event()
    with rgtp.Socket() as sock, rgtp.expose(sock, b"y" * 5000) as surface:
        port = ticket_port_of(surface)
        t = serve_in_thread(surface, stop)
        try:
            wrong = bytes(b ^ 0xFF for b in surface.exposure_id())
            with rgtp.Socket() as psock:
                t0 = time.monotonic()
                with pytest.raises(rgtp.RgtpError) as ei:
                    pull_start(psock, "127.0.0.1", port, wrong)
                assert ei.value.code == -12
                assert 4.0 <= time.monotonic() - t0 < 10.0
        finally:
            stop.set()
            t.join()
