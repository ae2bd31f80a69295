"""gtUDP: reliable datagrams over UDP, with an API shaped like the ``socket`` module.

Every datagram goes out as a DATA repeated until the peer's RECV (answered with an ACK);
the receiver hands each datagram out once, however often it arrived. Order is not kept.

::

    from rgtp import gtudp

    with gtudp.Socket(("127.0.0.1", 0)) as a, gtudp.Socket() as b:
        a.send_confirmed(b"hello", b.local_addr, timeout=5.0)   # waits for b's RECV
        data, sender = b.recvfrom()

A socket has no thread of its own: the protocol (repetitions, answers to peers) runs
inside its method calls, so keep calling :meth:`Socket.recvfrom` (or
:meth:`Socket.flush`) to stay responsive, and flush before closing. Both ends must use
the same ``magic``, ``types`` and ``key``, or nothing is delivered.

Needs a ``librgtp`` that exports the ``rgtp_gtudp_*`` calls; with an older one, importing
works and opening a socket raises ``NotImplementedError``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import threading
import time
from typing import Any, Iterable, Optional, Sequence, Tuple, Union

from . import RgtpError, _check
from . import _lib
from ._closing import Closing
from ._lib import GtudpPtr, rgtp_gtudp_options_t, rgtp_gtudp_stats_t
from ._types import KEY_LEN, RGTP_ERR_TIMEOUT, RGTP_OK, parse_key

Address = Union[Tuple[str, int], Tuple[str, int, int, int], str]
BytesLike = Union[bytes, bytearray, memoryview]

#: Room for an address text and its NUL (``RGTP_GTUDP_ADDRSTRLEN``).
ADDRSTRLEN = 64
#: Longest single wait inside a call, so that ``close`` and Ctrl-C are never held up long.
_SLICE_MS = 200
_U32_MAX = 0xFFFF_FFFF


class SendFailed(RgtpError):
    """:meth:`Socket.send_confirmed` got no RECV from the peer in time (nobody listening,
    another profile or key, or too much loss). The datagram may still have arrived."""


@dataclasses.dataclass(frozen=True)
class Stats:
    """Counters of a gtUDP socket (``rgtp_gtudp_stats_t``)."""

    datagrams_in: int = 0
    malformed: int = 0
    delivered: int = 0
    duplicates: int = 0
    data_sent: int = 0
    data_repeated: int = 0
    recv_sent: int = 0
    ack_sent: int = 0
    confirmed: int = 0
    failed: int = 0
    auth_failed: int = 0
    replayed: int = 0
    dropped: int = 0


def _L() -> Any:
    return _lib.load()


def format_addr(addr: Address) -> str:
    """``(host, port)`` (or an IPv6 4-tuple, or a ``"host:port"`` string) as the text the
    library takes."""
    if isinstance(addr, str):
        return addr
    if not isinstance(addr, tuple) or len(addr) not in (2, 4):
        raise TypeError(f"an address is (host, port) or 'host:port', not {addr!r}")
    host, port = str(addr[0]), int(addr[1])
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port out of range: {port}")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def parse_addr(text: str) -> Tuple[str, int]:
    """``"1.2.3.4:5"`` or ``"[::1]:5"`` as ``(host, port)``."""
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def _type_codes(types: Sequence[Union[bytes, int]]) -> bytes:
    codes = list(types)
    if len(codes) != 3:
        raise ValueError("types is (DATA, RECV, ACK): three type codes")
    out = [bytes([c]) if isinstance(c, int) else bytes(c) for c in codes]
    if len({len(c) for c in out}) != 1 or not out[0]:
        raise ValueError("the three type codes must be non-empty and of one length")
    if len(set(out)) != 3:
        raise ValueError("the three type codes must differ")
    return b"".join(out)


def _timeout_ms(timeout: float, what: str) -> int:
    if timeout < 0:
        raise ValueError(f"{what} must not be negative")
    return min(int(timeout * 1000 + 0.5), _U32_MAX)


def _u8_array(data: bytes) -> Any:
    return (ctypes.c_uint8 * max(1, len(data))).from_buffer_copy(data or b"\0")


class Socket(Closing):
    """A gtUDP endpoint bound to ``bind`` (``(host, port)``; port 0 picks a free one).

    ``magic`` (bytes every datagram starts with), ``types`` (the DATA, RECV and ACK type
    codes: three ints or three equal-length byte strings; default 0x1d, 0x5f, 0xae),
    ``reference_timers`` (repeat after a fixed 0.5 s instead of measured round trips),
    ``key`` (32 bytes or 64 hex digits: the authenticated profile) and ``session``
    (under ``key``; 0 draws a random one) must match the peer's.

    Calls from several threads are serialized. :meth:`close` waits for a call in
    progress, which returns within at most 0.2 s for ``recvfrom`` and within its own
    timeout for the others.
    """

    def __init__(
        self,
        bind: Address = ("127.0.0.1", 0),
        *,
        magic: BytesLike = b"",
        types: Optional[Iterable[Union[bytes, int]]] = None,
        reference_timers: bool = False,
        key: Optional[Union[bytes, str]] = None,
        session: int = 0,
    ) -> None:
        self._ptr: Optional[Any] = None
        self._lock = threading.Lock()
        lib = _L()
        magic_b = bytes(magic)
        types_b = _type_codes(list(types)) if types is not None else b""
        key_b = parse_key(key) if key is not None else None
        if not 0 <= int(session) < 1 << 64:
            raise ValueError("session is an unsigned 64-bit number")
        opts = rgtp_gtudp_options_t()
        opts.size = ctypes.sizeof(rgtp_gtudp_options_t)
        keep = []
        if magic_b:
            arr = _u8_array(magic_b)
            keep.append(arr)
            opts.magic, opts.magic_len = ctypes.cast(arr, ctypes.POINTER(ctypes.c_uint8)), len(magic_b)
        if types_b:
            arr = _u8_array(types_b)
            keep.append(arr)
            opts.types, opts.types_len = ctypes.cast(arr, ctypes.POINTER(ctypes.c_uint8)), len(types_b)
        opts.reference_timers = bool(reference_timers)
        if key_b is not None:
            arr = (ctypes.c_uint8 * KEY_LEN).from_buffer_copy(key_b)
            keep.append(arr)
            opts.key = ctypes.cast(arr, ctypes.POINTER(ctypes.c_uint8))
        opts.session = int(session)
        ptr = GtudpPtr()
        rc = lib.fn("rgtp_gtudp_open")(format_addr(bind).encode(), ctypes.byref(opts), ctypes.byref(ptr))
        for arr in keep:  # the key's copy does not outlive the call
            ctypes.memset(arr, 0, ctypes.sizeof(arr))
        _check(rc, f"rgtp_gtudp_open({format_addr(bind)})")
        self._ptr = ptr

    # ── lifecycle ──────────────────────────────────────────────────────────

    @property
    def closed(self) -> bool:
        return not self._ptr

    def close(self) -> None:
        """Closes the socket (idempotent). Open exchanges end unanswered: :meth:`flush`
        first to let them finish."""
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            ptr, self._ptr = self._ptr, None
        if ptr:
            lib = _lib._loaded
            if lib is not None:
                lib.fn("rgtp_gtudp_close")(ptr)

    def _handle(self) -> Any:
        if not self._ptr:
            raise ValueError("operation on a closed rgtp.gtudp.Socket")
        return self._ptr


    def __repr__(self) -> str:
        if self.closed:
            return "<rgtp.gtudp.Socket closed>"
        return f"<rgtp.gtudp.Socket {format_addr(self.local_addr)}>"

    # ── calls ──────────────────────────────────────────────────────────────

    @property
    def local_addr(self) -> Tuple[str, int]:
        """The bound ``(host, port)``."""
        buf = ctypes.create_string_buffer(ADDRSTRLEN)
        with self._lock:
            rc = _L().fn("rgtp_gtudp_local_addr")(self._handle(), buf, ADDRSTRLEN)
        _check(rc, "rgtp_gtudp_local_addr")
        return parse_addr(buf.value.decode())

    def sendto(self, data: BytesLike, addr: Address) -> int:
        """Sends ``data`` as one datagram to ``addr`` and returns ``len(data)`` at once;
        its repetitions go out during later calls. The outcome is not reported."""
        payload = bytes(data)
        to = format_addr(addr).encode()
        with self._lock:
            rc = _L().fn("rgtp_gtudp_send_to")(self._handle(), payload, len(payload), to)
        _check(rc, "rgtp_gtudp_send_to")
        return len(payload)

    def send_confirmed(self, data: BytesLike, addr: Address, timeout: float = 5.0) -> None:
        """Sends ``data`` to ``addr`` and waits until the peer confirms it; raises
        :class:`SendFailed` if no confirmation came within ``timeout`` seconds."""
        payload = bytes(data)
        to = format_addr(addr).encode()
        ms = _timeout_ms(timeout, "timeout")
        with self._lock:
            rc = _L().fn("rgtp_gtudp_send_confirmed")(self._handle(), payload, len(payload), to, ms)
        if rc == RGTP_ERR_TIMEOUT:
            raise SendFailed(rc, f"no confirmation from {format_addr(addr)} within {timeout} s")
        _check(rc, "rgtp_gtudp_send_confirmed")

    def recvfrom(self, bufsize: int = 65535, timeout: Optional[float] = None) -> Tuple[bytes, Tuple[str, int]]:
        """The next datagram and its sender. A datagram longer than ``bufsize`` is cut
        to it (as UDP does). Waits for ever (``timeout=None``) or ``timeout`` seconds,
        then raises :class:`TimeoutError`."""
        if bufsize < 0:
            raise ValueError("bufsize must not be negative")
        fn = _L().fn("rgtp_gtudp_recv_from")
        deadline = None if timeout is None else time.monotonic() + _timeout_ms(timeout, "timeout") / 1000
        buf = ctypes.create_string_buffer(max(1, bufsize))
        n = ctypes.c_size_t(0)
        sender = ctypes.create_string_buffer(ADDRSTRLEN)
        while True:
            wait = _SLICE_MS
            if deadline is not None:
                wait = max(0, min(wait, int((deadline - time.monotonic()) * 1000 + 0.5)))
            with self._lock:
                rc = fn(self._handle(), buf, bufsize, ctypes.byref(n), sender, ADDRSTRLEN, wait)
            if rc == RGTP_OK:
                return buf.raw[: min(n.value, bufsize)], parse_addr(sender.value.decode())
            if rc != RGTP_ERR_TIMEOUT:
                _check(rc, "rgtp_gtudp_recv_from")
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"no gtUDP datagram within {timeout} s")

    def flush(self, timeout: float = 5.0) -> bool:
        """Runs the protocol until every open exchange has ended (``True``) or
        ``timeout`` seconds passed (``False``). Datagrams arriving meanwhile are kept for
        :meth:`recvfrom`."""
        ms = _timeout_ms(timeout, "timeout")
        with self._lock:
            rc = _L().fn("rgtp_gtudp_flush")(self._handle(), ms)
        if rc == RGTP_ERR_TIMEOUT:
            return False
        _check(rc, "rgtp_gtudp_flush")
        return True

    def stats(self) -> Stats:
        """The socket's counters."""
        raw = rgtp_gtudp_stats_t()
        raw.size = ctypes.sizeof(rgtp_gtudp_stats_t)
        with self._lock:
            rc = _L().fn("rgtp_gtudp_stats")(self._handle(), ctypes.byref(raw))
        _check(rc, "rgtp_gtudp_stats")
        return Stats(**{f.name: int(getattr(raw, f.name)) for f in dataclasses.fields(Stats)})


__all__ = ["Socket", "SendFailed", "Stats", "format_addr", "parse_addr", "ADDRSTRLEN"]
