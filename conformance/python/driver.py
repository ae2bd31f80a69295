"""rgtp-conformance: drives the published `rgtp` 1.0.0 package on a librgtp.so.

Run by `rgtp-conformance python --lib PATH` inside a venv holding rgtp==1.0.0, with
RGTP_LIB_PATH set to the library under test. Prints one line per case:

    RESULT <TAB> CASE-ID <TAB> PASS|FAIL <TAB> detail

Environment from the harness: REF_HOST, REF_PORT, REF_ID (hex), REF_KEY (hex) and
REF_DATA (path of the exposed bytes) describe a reference exposer to pull from.
"""

import ctypes
import importlib.metadata
import os
import socket
import struct
import sys
import threading
import time
import traceback


def report(case, ok, detail):
    detail = " ".join(str(detail).split())[:300]
    print("RESULT\t%s\t%s\t%s" % (case, "PASS" if ok else "FAIL", detail), flush=True)


def case(case_id):
    def wrap(fn):
        def run():
            try:
                detail = fn()
                report(case_id, True, detail or "ok")
            except AssertionError as e:
                report(case_id, False, str(e) or traceback.format_exc().splitlines()[-2])
            except Exception as e:  # noqa: BLE001 - every error is a case failure
                report(case_id, False, "%s: %s" % (type(e).__name__, e))

        run.case_id = case_id
        return run

    return wrap


import rgtp  # noqa: E402
from rgtp import _rgtp  # noqa: E402

LIB = _rgtp._lib


def sockaddr_in(host, port):
    buf = ctypes.create_string_buffer(128)
    struct.pack_into("=H", buf, 0, socket.AF_INET)
    struct.pack_into("!H", buf, 2, port)
    buf[4:8] = socket.inet_aton(host)
    return buf


def pull_start(sock, host, port, exposure_id):
    LIB.rgtp_pull_start.restype = ctypes.c_int
    LIB.rgtp_pull_start.argtypes = [
        _rgtp._SocketPtr,
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_void_p,
        ctypes.POINTER(_rgtp._SurfacePtr),
    ]
    ptr = _rgtp._SurfacePtr()
    addr = sockaddr_in(host, port)
    _rgtp._check(LIB.rgtp_pull_start(sock._ptr, ctypes.addressof(addr), exposure_id, None,
                                     ctypes.byref(ptr)))
    return rgtp.Surface(ptr)


def pull_all(host, port, exposure_id):
    chunks = {}
    with rgtp.Socket() as sock:
        with pull_start(sock, host, port, exposure_id) as surface:
            deadline = time.monotonic() + 60
            while surface.progress() < 1.0:
                assert time.monotonic() < deadline, "pull did not finish in 60 s"
                data, idx = rgtp.pull_next(surface)
                assert data, "end of stream before progress reached 1.0"
                assert idx not in chunks, "chunk %d handed out twice" % idx
                chunks[idx] = data
            data, idx = rgtp.pull_next(surface)
            assert data == b"" and idx == 0xFFFFFFFF, "no clean end of stream"
    assert sorted(chunks) == list(range(len(chunks))), "chunk indices not 0..n"
    return b"".join(chunks[i] for i in sorted(chunks))


@case("PY-001")
def package_loads_library():
    v = importlib.metadata.version("rgtp")
    assert v == "1.0.0", "installed rgtp is %s, not 1.0.0" % v
    assert LIB is not None, "RGTP_LIB_PATH did not load"
    rgtp.init()
    ver = rgtp.version()
    texts = [rgtp.strerror(c) for c in range(0, -16, -1)]
    assert all(texts) and len(set(texts)) == 16, "strerror texts missing or shared"
    for c in (1, -16, -100):
        assert rgtp.strerror(c), "strerror(%d) empty" % c
    return "rgtp 1.0.0 on library %s; 16 distinct error texts" % ver


@case("PY-002")
def null_handles():
    try:
        rgtp.Surface(_rgtp._SurfacePtr()).exposure_id()
    except rgtp.RgtpError as e:
        assert e.code == -2, "exposure_id(NULL) raised %d" % e.code
    else:
        raise AssertionError("exposure_id(NULL) did not raise")
    try:
        rgtp.pull_next(rgtp.Surface(_rgtp._SurfacePtr()))
    except rgtp.RgtpError as e:
        assert e.code == -2, "pull_next(NULL) raised %d" % e.code
    else:
        raise AssertionError("pull_next(NULL) did not raise")
    return "NULL surfaces raise RgtpError(-2)"


@case("PY-003")
def expose_and_poll():
    os.environ["RGTP_PORT"] = "0"
    with rgtp.Socket() as sock:
        with rgtp.expose(sock, b"conformance" * 1000) as surface:
            eid = surface.exposure_id()
            assert isinstance(eid, bytes) and len(eid) == 16 and eid != bytes(16), "bad id"
            t0 = time.monotonic()
            rgtp.poll(surface, timeout_ms=100)
            took = time.monotonic() - t0
            assert took < 1.0, "poll(100 ms) took %.2f s" % took
    return "expose → 16-byte id; poll returns in %.2f s" % took


@case("PY-004")
def pull_from_reference():
    host, port = os.environ["REF_HOST"], int(os.environ["REF_PORT"])
    eid = bytes.fromhex(os.environ["REF_ID"])
    os.environ["RGTP_KEY"] = os.environ["REF_KEY"]
    want = open(os.environ["REF_DATA"], "rb").read()
    got = pull_all(host, port, eid)
    assert got == want, "pulled %d B differ from the %d B exposed" % (len(got), len(want))
    return "%d B from the reference exposer, byte-exact" % len(want)


@case("PY-005")
def pull_from_library_exposer():
    os.environ["RGTP_PORT"] = "0"
    key = os.urandom(32).hex()
    os.environ["RGTP_KEY"] = key
    want = os.urandom(123_457)
    stop = threading.Event()
    with rgtp.Socket() as sock, rgtp.expose(sock, want) as surface:
        buf = ctypes.create_string_buffer(512)
        need = ctypes.c_size_t(0)
        LIB.rgtp_get_ticket.restype = ctypes.c_int
        LIB.rgtp_get_ticket.argtypes = [_rgtp._SurfacePtr, ctypes.c_char_p, ctypes.c_size_t,
                                        ctypes.POINTER(ctypes.c_size_t)]
        _rgtp._check(LIB.rgtp_get_ticket(surface._ptr, buf, 512, ctypes.byref(need)))
        ticket = buf.value.decode()
        port = int(ticket.split("/")[2].rsplit(":", 1)[1])

        def serve():
            while not stop.is_set():
                rgtp.poll(surface, timeout_ms=20)

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            got = pull_all("127.0.0.1", port, surface.exposure_id())
        finally:
            stop.set()
            t.join()
    assert got == want, "pulled %d B differ from the %d B exposed" % (len(got), len(want))
    return "%d B between two handles of the library, byte-exact" % len(want)


@case("PY-006")
def wrong_id_times_out():
    host, port = os.environ["REF_HOST"], int(os.environ["REF_PORT"])
    eid = bytes(b ^ 0xFF for b in bytes.fromhex(os.environ["REF_ID"]))
    os.environ["RGTP_KEY"] = os.environ["REF_KEY"]
    t0 = time.monotonic()
    try:
        with rgtp.Socket() as sock:
            pull_start(sock, host, port, eid)
    except rgtp.RgtpError as e:
        took = time.monotonic() - t0
        assert e.code == -12, "wrong Exposure_ID raised %d, not -12" % e.code
        assert took < 10, "took %.1f s" % took
        return "RgtpError(-12) after %.1f s" % took
    raise AssertionError("pull_start succeeded for an unknown Exposure_ID")


if __name__ == "__main__":
    only = set(sys.argv[1:])
    for fn in [package_loads_library, null_handles, expose_and_poll, pull_from_reference,
               pull_from_library_exposer, wrong_id_times_out]:
        if not only or fn.case_id in only:
            fn()
