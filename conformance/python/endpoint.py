"""An RGTP endpoint on the published `rgtp` 1.0.0 package and a librgtp.so, for the
command contract of `rgtp-conformance` (exposer --cmd, puller --cmd, matrix).

    python endpoint.py expose FILE PORT   serve FILE on UDP PORT; print the ticket first
    python endpoint.py pull TICKET OUT    pull TICKET into OUT; exit 0 when complete

The library is the one in RGTP_LIB_PATH (the package's own rule). The package exposes
with NULL configs, so the key and the port go through the library's environment
(RGTP_KEY, RGTP_PORT); its pull_start is not implemented, so `pull` calls the library's
rgtp_pull_start through the package's ctypes handle, with the key in RGTP_KEY.
Exit status: 0 done, 1 failed, 2 usage, 127 unsupported.
"""

import ctypes
import os
import secrets
import socket
import struct
import sys
import time
from urllib.parse import urlsplit


def parse_ticket(text):
    u = urlsplit(text.strip())
    if u.scheme != "rgtp" or not u.hostname or u.port is None:
        raise ValueError("not a UDP ticket")
    eid = bytes.fromhex(u.path.lstrip("/"))
    key = bytes.fromhex(u.fragment)
    if len(eid) != 16 or len(key) != 32:
        raise ValueError("bad Exposure_ID or key")
    return u.hostname, u.port, eid, key


def expose(path, port):
    key = secrets.token_bytes(32)
    os.environ["RGTP_KEY"] = key.hex()
    os.environ["RGTP_PORT"] = str(port)
    import rgtp

    data = open(path, "rb").read()
    rgtp.init()
    with rgtp.Socket() as sock:
        with rgtp.expose(sock, data) as surface:
            eid = surface.exposure_id()
            print("rgtp://127.0.0.1:%d/%s#%s" % (port, eid.hex(), key.hex()), flush=True)
            while True:
                rgtp.poll(surface, timeout_ms=100)


def pull(ticket, out):
    host, port, eid, key = parse_ticket(ticket)
    os.environ["RGTP_KEY"] = key.hex()
    import rgtp
    from rgtp import _rgtp

    if ":" in host:
        return 127  # the package's sockaddr handling here is IPv4 only
    lib = _rgtp._lib
    lib.rgtp_pull_start.restype = ctypes.c_int
    lib.rgtp_pull_start.argtypes = [
        _rgtp._SocketPtr,
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_void_p,
        ctypes.POINTER(_rgtp._SurfacePtr),
    ]
    addr = ctypes.create_string_buffer(128)
    struct.pack_into("=H", addr, 0, socket.AF_INET)
    struct.pack_into("!H", addr, 2, port)
    addr[4:8] = socket.inet_aton(socket.gethostbyname(host))
    rgtp.init()
    chunks = {}
    with rgtp.Socket() as sock:
        ptr = _rgtp._SurfacePtr()
        _rgtp._check(lib.rgtp_pull_start(sock._ptr, ctypes.addressof(addr), eid, None,
                                         ctypes.byref(ptr)))
        with rgtp.Surface(ptr) as surface:
            while surface.progress() < 1.0:
                data, idx = rgtp.pull_next(surface)
                if not data:
                    break
                chunks[idx] = data
            if surface.progress() < 1.0:
                print("endpoint.py: pull ended at %.3f" % surface.progress(), file=sys.stderr)
                return 1
    tmp = out + ".part"
    with open(tmp, "wb") as f:
        for i in sorted(chunks):
            f.write(chunks[i])
    os.replace(tmp, out)
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "expose":
        return expose(argv[2], int(argv[3]))
    if len(argv) == 4 and argv[1] == "pull":
        try:
            return pull(argv[2], argv[3])
        except Exception as e:  # noqa: BLE001 - any failure is a failed pull
            print("endpoint.py: %s: %s" % (type(e).__name__, e), file=sys.stderr)
            return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
