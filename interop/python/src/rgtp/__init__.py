"""rgtp - ctypes bindings for ``librgtp``, the Red Giant Transport Protocol (RGTP v1).

A superset of the published ``rgtp`` 1.0.0 API: the same names behave the same, and
pulling actually works (``pull_start`` builds a ``sockaddr_storage``; ``pull_ticket``
takes the ``rgtp://`` ticket an exposer prints).

Expose::

    import rgtp

    rgtp.init()
    with rgtp.Socket(rgtp.Config(port=9000)) as sock:
        with rgtp.expose(sock, data) as surface:
            print(surface.ticket())
            while True:
                rgtp.poll(surface, timeout_ms=200)

Pull::

    with rgtp.Socket() as sock, rgtp.pull_ticket(sock, ticket) as surface:
        out = bytearray()
        for index, chunk in rgtp.iter_chunks(surface):
            ...

The library is found through ``RGTP_LIB_PATH``, then ``rgtp/_native/librgtp.so``, then
``ctypes.util.find_library("rgtp")``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import threading
import time
from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

from . import _lib, tej
from ._closing import Closing
from ._lib import LibraryNotFound, SocketPtr, SurfacePtr
from ._types import (
    CIPHERS,
    DEFAULT_CHUNK_SIZE,
    ERROR_DESCRIPTIONS,
    EXPOSURE_ID_LEN,
    HASHES,
    KEY_LEN,
    LOG_FN,
    RGTP_ERR_AUTH_FAIL,
    RGTP_ERR_CHUNK_INDEX_OOB,
    RGTP_ERR_CRYPTO_INIT,
    RGTP_ERR_DECRYPT,
    RGTP_ERR_ENCRYPT,
    RGTP_ERR_FEC_FAIL,
    RGTP_ERR_INTERNAL,
    RGTP_ERR_INVALID_ARG,
    RGTP_ERR_MERKLE_FAIL,
    RGTP_ERR_NOMEM,
    RGTP_ERR_NOT_SUPPORTED,
    RGTP_ERR_RATE_LIMITED,
    RGTP_ERR_SOCKET,
    RGTP_ERR_TIMEOUT,
    RGTP_ERR_TRUNCATED,
    RGTP_CHUNK_INDEX_NONE,
    RGTP_LOG_DEBUG,
    RGTP_LOG_ERROR,
    RGTP_LOG_INFO,
    RGTP_LOG_WARN,
    RGTP_OK,
    RGTP_PROFILE_EMBEDDED,
    RGTP_PROFILE_FULL,
    RGTP_PROFILE_MINIMAL,
    Config,
    ErrorCode,
    LatencyStats,
    LogEvent,
    LogLevel,
    MemoryProfile,
    Stats,
    Ticket,
    TicketError,
    make_sockaddr,
    parse_key,
    rgtp_allocator_t,
    rgtp_config_t,
    rgtp_latency_stats_t,
    rgtp_log_event_t,
    rgtp_log_kv_t,
    rgtp_stats_t,
    sockaddr_in,
    sockaddr_in6,
    sockaddr_storage,
)

__version__ = "1.1.0"
__author__ = "redgiant"
__license__ = "MIT OR Apache-2.0"

BytesLike = Union[bytes, bytearray, memoryview]


# ── Errors ───────────────────────────────────────────────────────────────────


class RgtpError(Exception):
    """A non-OK status from an ``rgtp_*`` call; ``.code`` is the negative C code."""

    def __init__(self, code: int, message: str = "") -> None:
        self.code = int(code)
        self.message = message or strerror(self.code)
        super().__init__(f"RGTP error {self.code}: {self.message}")

    @property
    def error_code(self) -> Optional[ErrorCode]:
        """The :class:`ErrorCode` member, or ``None`` for a code unknown to this package."""
        return ErrorCode.from_code(self.code)


def _check(code: int, context: str = "") -> None:
    """Raise :class:`RgtpError` if ``code`` is not ``RGTP_OK``."""
    if code != RGTP_OK:
        msg = strerror(code)
        raise RgtpError(code, f"{context}: {msg}" if context else msg)


def _L() -> "_lib._Loaded":
    return _lib.load()


# ── Library lifecycle ────────────────────────────────────────────────────────


def init() -> None:
    """Initialise the library (idempotent in librgtp; 1.0.0 required it first)."""
    _check(_L().fn("rgtp_init")())


def cleanup() -> None:
    """Release global library resources (no-op if the library is not loaded)."""
    lib = _lib._loaded
    if lib is not None:
        lib.fn("rgtp_cleanup")()


def version() -> str:
    """The library's version string, e.g. ``"1.0.0"``."""
    raw = _L().fn("rgtp_version")()
    return raw.decode() if raw else ""


def library_path() -> str:
    """Path of the loaded ``librgtp`` (loads it if needed)."""
    return _L().path


def strerror(code: int) -> str:
    """Human-readable text for an error code (library text when loaded)."""
    lib = _lib.loaded()
    if lib is not None:
        raw = lib.fn("rgtp_strerror")(int(code))
        if raw:
            return str(raw.decode("utf-8", errors="replace"))
    return ERROR_DESCRIPTIONS.get(int(code), f"error {code}")


# ── Handles ──────────────────────────────────────────────────────────────────


def _cfg_ptr(config: Optional[Config]) -> Tuple[Optional[rgtp_config_t], Any]:
    """(struct kept alive by the caller, pointer argument or None)."""
    if config is None:
        return None, None
    if isinstance(config, rgtp_config_t):
        return config, ctypes.byref(config)
    s = config.to_struct()
    return s, ctypes.byref(s)


class Socket(Closing):
    """An ``rgtp_socket_t``: holds the configuration its surfaces inherit (each surface
    binds its own UDP socket). ``Config.port`` picks an exposer's port; with port 0 or no
    config the library uses ``RGTP_PORT`` or 9000. A socket may be closed before its
    surfaces.

    ``cc`` picks the congestion controller of the pulls started from this socket
    (see :meth:`set_congestion`); without it the library's default (``"delay"``) runs."""

    def __init__(self, config: Optional[Config] = None, cc: Optional[str] = None) -> None:
        lib = _L()
        self._ptr: Optional[Any] = None
        self.config = config
        self._cfg_struct, cfg = _cfg_ptr(config)
        ptr = SocketPtr()
        _check(lib.fn("rgtp_socket_create")(cfg, ctypes.byref(ptr)), "rgtp_socket_create")
        self._ptr = ptr
        if cc is not None:
            try:
                self.set_congestion(cc)
            except BaseException:
                self.close()
                raise

    def set_congestion(self, name: str) -> None:
        """Select the congestion controller (``"delay"``, ``"reno"`` or ``"cubic"``) of
        the pulls started from this socket afterwards; running pulls keep theirs. An
        unknown name raises :class:`RgtpError` (``RGTP_ERR_INVALID_ARG``)."""
        if not isinstance(name, str):
            raise TypeError(f"a controller name is a str, got {type(name).__name__}")
        if "\0" in name:
            raise ValueError("a controller name cannot contain NUL")
        rc = _L().fn("rgtp_socket_set_congestion")(self._handle(), name.encode())
        _check(rc, f"rgtp_socket_set_congestion({name!r})")

    @property
    def closed(self) -> bool:
        return not self._ptr

    def close(self) -> None:
        ptr, self._ptr = getattr(self, "_ptr", None), None
        if ptr:
            lib = _lib._loaded
            if lib is not None:
                lib.fn("rgtp_socket_destroy")(ptr)

    def _handle(self) -> Any:
        if not self._ptr:
            raise ValueError("operation on a closed rgtp.Socket")
        return self._ptr



class Surface(Closing):
    """An ``rgtp_surface_t``: one exposure (exposer side) or one pull (puller side).

    An exposer's data was copied by the library: the caller's buffer may be reused.
    :meth:`close` is thread-safe: it waits for calls running on other threads (a
    ``pull_next`` or ``poll``, bounded by their timeouts) before destroying the handle.
    """

    def __init__(
        self,
        ptr: Any,
        socket: Optional[Socket] = None,
        keepalive: Any = None,
    ) -> None:
        self._ptr: Optional[Any] = ptr
        self._socket = socket
        self._keepalive = keepalive
        self._cond = threading.Condition()
        self._busy = 0
        self._closing = False

    @property
    def closed(self) -> bool:
        return not self._ptr or self._closing

    @contextlib.contextmanager
    def _use(self) -> Iterator[Any]:
        """The handle, marked in use for the duration of one C call."""
        with self._cond:
            if self._closing or not self._ptr:
                raise ValueError("operation on a closed rgtp.Surface")
            self._busy += 1
            ptr = self._ptr
        try:
            yield ptr
        finally:
            with self._cond:
                self._busy -= 1
                if self._busy == 0:
                    self._cond.notify_all()

    def _handle(self) -> Any:
        if self.closed:
            raise ValueError("operation on a closed rgtp.Surface")
        return self._ptr

    def close(self) -> None:
        cond = getattr(self, "_cond", None)
        if cond is None:
            return
        with cond:
            if self._closing:
                return
            self._closing = True
            while self._busy:
                cond.wait()
            ptr, self._ptr = self._ptr, None
        if ptr:
            lib = _lib._loaded
            if lib is not None:
                lib.fn("rgtp_destroy_surface")(ptr)
        self._keepalive = None
        self._socket = None

    def exposure_id(self) -> bytes:
        """The 16-byte Exposure_ID."""
        buf = (ctypes.c_uint8 * EXPOSURE_ID_LEN)()
        with self._use() as h:
            rc = _L().fn("rgtp_get_exposure_id")(h, buf)
        _check(rc, "rgtp_get_exposure_id")
        return bytes(buf)

    def key(self) -> bytes:
        """The 32-byte AEAD key of this exposure (secret: hand it out of band)."""
        buf = (ctypes.c_uint8 * KEY_LEN)()
        with self._use() as h:
            rc = _L().fn("rgtp_get_key")(h, buf)
        _check(rc, "rgtp_get_key")
        return bytes(buf)

    def ticket(self) -> str:
        """The ``rgtp://HOST:PORT/ID?cipher=..&hash=..#KEY`` ticket for this exposure."""
        fn = _L().fn("rgtp_get_ticket")
        size = 256
        for _ in range(4):
            buf = ctypes.create_string_buffer(size)
            need = ctypes.c_size_t(0)
            with self._use() as h:
                rc = fn(h, buf, size, ctypes.byref(need))
            if rc == RGTP_OK:
                return buf.value.decode()
            if rc == RGTP_ERR_INVALID_ARG and need.value > size:
                size = need.value
                continue
            _check(rc, "rgtp_get_ticket")
        raise RgtpError(RGTP_ERR_INTERNAL, "rgtp_get_ticket kept asking for a larger buffer")

    def progress(self) -> float:
        """Completion fraction in [0.0, 1.0]."""
        with self._use() as h:
            return float(_L().fn("rgtp_progress")(h))

    def stats(self) -> Stats:
        """Same as :func:`get_stats`."""
        return get_stats(self)

    def latency_stats(self) -> LatencyStats:
        """Same as :func:`get_latency_stats`."""
        return get_latency_stats(self)



# ── Exposer API ──────────────────────────────────────────────────────────────


def _data_arg(data: BytesLike) -> Tuple[Any, int, Any]:
    """(pointer argument, length, object to keep alive) for a bytes-like object."""
    if isinstance(data, bytes):
        return ctypes.c_char_p(data), len(data), data
    mv = memoryview(data).cast("B")
    if mv.readonly or not mv.contiguous:
        b = bytes(mv)
        return ctypes.c_char_p(b), len(b), b
    arr = (ctypes.c_char * len(mv)).from_buffer(mv)
    return arr, len(mv), (arr, mv)


def expose(
    sock: Socket,
    data: BytesLike,
    config: Optional[Config] = None,
    key: Optional[Union[bytes, str]] = None,
) -> Surface:
    """Seal ``data`` once (encrypt every chunk, build the Merkle tree) and expose it.

    ``key`` (32 bytes or 64 hex digits) is a pre-shared key; without it the library
    draws one (or takes ``RGTP_KEY`` when no config is given, as 1.0.0 does)."""
    lib = _L()
    ptr_arg, n, keep = _data_arg(data)
    cfg_struct, cfg = _cfg_ptr(config if config is not None else sock.config)
    out = SurfacePtr()
    if key is not None:
        key_buf = (ctypes.c_uint8 * KEY_LEN).from_buffer_copy(parse_key(key))
        _check(
            lib.fn("rgtp_expose_with_key")(
                sock._handle(), ptr_arg, n, key_buf, cfg, ctypes.byref(out)
            ),
            "rgtp_expose_with_key",
        )
    else:
        _check(
            lib.fn("rgtp_expose")(sock._handle(), ptr_arg, n, cfg, ctypes.byref(out)),
            "rgtp_expose",
        )
    del keep  # librgtp copies the data during the call (rgtp.h)
    return Surface(out, sock, keepalive=cfg_struct)


def poll(surface: Surface, timeout_ms: int = 100) -> int:
    """Serve pending requests for up to ``timeout_ms``; returns 0 or ``RGTP_ERR_TIMEOUT``
    (both fine, as in 1.0.0) and raises on any other status."""
    with surface._use() as h:
        code = int(_L().fn("rgtp_poll")(h, int(timeout_ms)))
    if code not in (RGTP_OK, RGTP_ERR_TIMEOUT):
        _check(code, "rgtp_poll")
    return code


# ── Puller API ───────────────────────────────────────────────────────────────


def _env_key() -> Optional[bytes]:
    env = os.environ.get("RGTP_KEY")
    if not env:
        return None
    try:
        return parse_key(env)
    except ValueError as e:
        raise ValueError(f"RGTP_KEY: {e}") from None


def pull_start(
    sock: Socket,
    server_addr: Tuple[str, int],
    exposure_id: BytesLike,
    key: Optional[Union[bytes, str]] = None,
    config: Optional[Config] = None,
) -> Surface:
    """Start pulling ``exposure_id`` from ``server_addr`` = ``(host, port)``.

    ``host`` is an IPv4/IPv6 literal or a name. The key comes from ``key`` (32 bytes or
    64 hex digits), else the ``RGTP_KEY`` environment variable; with neither, the
    library's own default applies. Blocks until the Manifest arrives (or times out).
    """
    lib = _L()
    host, port = server_addr[0], int(server_addr[1])
    eid = bytes(exposure_id)
    if len(eid) != EXPOSURE_ID_LEN:
        raise ValueError(f"an Exposure_ID is {EXPOSURE_ID_LEN} bytes, got {len(eid)}")
    k = parse_key(key) if key is not None else _env_key()
    addr = make_sockaddr(host, port)
    eid_buf = (ctypes.c_uint8 * EXPOSURE_ID_LEN).from_buffer_copy(eid)
    cfg_struct, cfg = _cfg_ptr(config)
    out = SurfacePtr()
    if k is not None:
        key_buf = (ctypes.c_uint8 * KEY_LEN).from_buffer_copy(k)
        rc = lib.fn("rgtp_pull_start_with_key")(
            sock._handle(), ctypes.byref(addr), eid_buf, key_buf, cfg, ctypes.byref(out)
        )
    else:
        rc = lib.fn("rgtp_pull_start")(
            sock._handle(), ctypes.byref(addr), eid_buf, cfg, ctypes.byref(out)
        )
    _check(rc, "pull_start")
    return Surface(out, sock, keepalive=cfg_struct)


def pull_ticket(
    sock: Socket, ticket: Union[str, Ticket], config: Optional[Config] = None
) -> Surface:
    """Start pulling what an ``rgtp://`` ticket names (address, Exposure_ID, key, suite)."""
    lib = _L()
    text = str(ticket).strip()
    cfg_struct, cfg = _cfg_ptr(config)
    out = SurfacePtr()
    rc = lib.fn("rgtp_pull_start_ticket")(sock._handle(), text.encode(), cfg, ctypes.byref(out))
    _check(rc, "pull_ticket")
    return Surface(out, sock, keepalive=cfg_struct)


def pull_next(surface: Surface, buf_size: int = 65536) -> Tuple[bytes, int]:
    """The next verified chunk as ``(data, chunk_index)``.

    Once every chunk has been handed out it returns ``(b"", RGTP_CHUNK_INDEX_NONE)``.
    Raises :class:`RgtpError` (``RGTP_ERR_TIMEOUT`` when nothing arrived in time)."""
    fn = _L().fn("rgtp_pull_next")
    received = ctypes.c_size_t(0)
    index = ctypes.c_uint32(0)
    size = max(0, int(buf_size))
    while True:
        buf = ctypes.create_string_buffer(size)
        with surface._use() as h:
            rc = fn(h, buf, size, ctypes.byref(received), ctypes.byref(index))
        if rc == RGTP_ERR_INVALID_ARG and received.value > size:
            size = received.value  # the chunk did not fit: it is still queued
            continue
        _check(rc, "pull_next")
        return buf.raw[: received.value], index.value


def iter_chunks(
    surface: Surface, buf_size: int = 65536, idle_timeout: Optional[float] = None
) -> Iterator[Tuple[int, bytes]]:
    """Yields ``(chunk_index, data)`` for every chunk, until the library reports
    ``RGTP_CHUNK_INDEX_NONE`` (all chunks handed out).

    ``RGTP_ERR_TIMEOUT`` from a single ``pull_next`` is retried; after ``idle_timeout``
    seconds without a chunk it is raised.
    """
    last = time.monotonic()
    while True:
        try:
            data, idx = pull_next(surface, buf_size)
        except RgtpError as e:
            if e.code != RGTP_ERR_TIMEOUT:
                raise
            if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                raise
            continue
        if idx == RGTP_CHUNK_INDEX_NONE:
            return
        last = time.monotonic()
        yield idx, data


def pull_bytes(
    surface: Surface, buf_size: int = 65536, idle_timeout: Optional[float] = 30.0
) -> bytes:
    """Pulls the whole exposure into memory and returns it (chunks placed by index)."""
    chunks: Dict[int, bytes] = {}
    for idx, data in iter_chunks(surface, buf_size, idle_timeout):
        chunks[idx] = data
    return b"".join(chunks[i] for i in sorted(chunks))


def progress(surface: Surface) -> float:
    """Completion fraction in [0.0, 1.0]."""
    return surface.progress()


# ── Statistics ───────────────────────────────────────────────────────────────


def get_stats(surface: Surface) -> Stats:
    """Every ``rgtp_stats_t`` field (and ``progress``) as a :class:`Stats` dataclass,
    which also reads like 1.0.0's dict: ``get_stats(s)["bytes_sent"]``."""
    lib = _L()
    prog = surface.progress()
    if not lib.has("rgtp_get_stats"):
        return Stats(progress=prog)
    raw = rgtp_stats_t()
    with surface._use() as h:
        rc = lib.fn("rgtp_get_stats")(h, ctypes.byref(raw))
    _check(rc, "rgtp_get_stats")
    return Stats.from_struct(raw, progress=prog)


def get_latency_stats(surface: Surface) -> LatencyStats:
    """``rgtp_latency_stats_t`` as a :class:`LatencyStats` dataclass."""
    raw = rgtp_latency_stats_t()
    with surface._use() as h:
        rc = _L().fn("rgtp_get_latency_stats")(h, ctypes.byref(raw))
    _check(rc, "rgtp_get_latency_stats")
    return LatencyStats.from_struct(raw)


# ── Logging ──────────────────────────────────────────────────────────────────

LogCallback = Callable[[LogEvent], Any]

_log_lock = threading.Lock()
_log_cfunc: Optional[Any] = None  # the CFUNCTYPE object must outlive its registration
_log_user: Optional[LogCallback] = None


def _log_trampoline(ev_ptr: Any, _ctx: Any) -> None:
    user = _log_user
    if user is None or not ev_ptr:
        return
    try:
        user(LogEvent.from_struct(ev_ptr.contents))
    except Exception:  # an exception must never unwind into C
        pass


def set_log_callback(fn: Optional[LogCallback], level: Optional[int] = LogLevel.INFO) -> None:
    """Deliver the library's structured log events to ``fn(LogEvent)`` (``None`` stops).

    ``fn`` may be called from library threads; keep it short. ``level`` (if not None)
    is passed to :func:`set_log_level`.
    """
    global _log_cfunc, _log_user
    lib = _L()
    with _log_lock:
        if fn is None:
            _check(lib.fn("rgtp_set_log_callback")(LOG_FN(), None), "rgtp_set_log_callback")
            _log_user = None
            # The trampoline stays referenced: a library thread may still be inside it.
            return
        _log_user = fn
        if _log_cfunc is None:
            _log_cfunc = LOG_FN(_log_trampoline)
        _check(lib.fn("rgtp_set_log_callback")(_log_cfunc, None), "rgtp_set_log_callback")
    if level is not None:
        set_log_level(level)


def set_log_level(level: int) -> None:
    """Most verbose level delivered: ERROR=0, WARN=1, INFO=2, DEBUG=3."""
    _check(_L().fn("rgtp_set_log_level")(int(level)), "rgtp_set_log_level")


def _unhook_logging() -> None:
    lib = _lib._loaded
    if lib is not None and _log_user is not None and lib.has("rgtp_set_log_callback"):
        try:
            lib.fn("rgtp_set_log_callback")(LOG_FN(), None)
        except Exception:
            pass


atexit.register(_unhook_logging)


# ── Async wrappers (1.0.0 names; see rgtp.aio for more) ─────────────────────


async def async_expose(sock: Socket, data: BytesLike, config: Optional[Config] = None) -> Surface:
    """:func:`expose` in the default thread-pool executor."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, expose, sock, data, config)


async def async_pull_next(surface: Surface, buf_size: int = 65536) -> Tuple[bytes, int]:
    """:func:`pull_next` in the default thread-pool executor."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, pull_next, surface, buf_size)


# The gtUDP socket, as the submodule rgtp.gtudp (imported last: it uses the names above).
from . import gtudp  # noqa: E402
from .files import send  # noqa: E402
from .files import get  # noqa: E402

__all__ = [
    "gtudp",
    "send",
    "get",
    "RgtpError",
    "LibraryNotFound",
    "init",
    "cleanup",
    "version",
    "library_path",
    "strerror",
    "Socket",
    "Surface",
    "expose",
    "poll",
    "pull_start",
    "pull_ticket",
    "pull_next",
    "iter_chunks",
    "pull_bytes",
    "progress",
    "get_stats",
    "get_latency_stats",
    "set_log_callback",
    "set_log_level",
    "async_expose",
    "async_pull_next",
    "Config",
    "Stats",
    "LatencyStats",
    "LogEvent",
    "LogLevel",
    "MemoryProfile",
    "ErrorCode",
    "Ticket",
    "TicketError",
    "make_sockaddr",
    "parse_key",
    "rgtp_config_t",
    "rgtp_stats_t",
    "rgtp_latency_stats_t",
    "rgtp_log_event_t",
    "rgtp_log_kv_t",
    "rgtp_allocator_t",
    "sockaddr_in",
    "sockaddr_in6",
    "sockaddr_storage",
    "CIPHERS",
    "HASHES",
    "DEFAULT_CHUNK_SIZE",
    "EXPOSURE_ID_LEN",
    "KEY_LEN",
    "RGTP_OK",
    "RGTP_ERR_NOMEM",
    "RGTP_ERR_INVALID_ARG",
    "RGTP_ERR_SOCKET",
    "RGTP_ERR_CRYPTO_INIT",
    "RGTP_ERR_ENCRYPT",
    "RGTP_ERR_DECRYPT",
    "RGTP_ERR_AUTH_FAIL",
    "RGTP_ERR_MERKLE_FAIL",
    "RGTP_ERR_FEC_FAIL",
    "RGTP_ERR_TRUNCATED",
    "RGTP_ERR_CHUNK_INDEX_OOB",
    "RGTP_ERR_TIMEOUT",
    "RGTP_ERR_RATE_LIMITED",
    "RGTP_ERR_NOT_SUPPORTED",
    "RGTP_ERR_INTERNAL",
    "RGTP_CHUNK_INDEX_NONE",
    "RGTP_LOG_ERROR",
    "RGTP_LOG_WARN",
    "RGTP_LOG_INFO",
    "RGTP_LOG_DEBUG",
    "RGTP_PROFILE_FULL",
    "RGTP_PROFILE_EMBEDDED",
    "RGTP_PROFILE_MINIMAL",
    "__version__",
]
