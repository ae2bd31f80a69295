"""Files and directory trees as one exposure set, as ``rgtp send`` / ``rgtp get`` move them.

Sending::

    import rgtp

    def served(st: rgtp.files.SenderStats) -> None:
        print(f"{st.bytes_out} bytes to {st.pulls} pulls in {st.seconds:.0f} s")

    with rgtp.send(["photos", "notes.txt"], port=0, progress=served) as sender:
        print(sender.ticket)          # give this to the receiver
        input("serving; press Enter to stop")

Receiving::

    def show(ev: rgtp.files.FilesEvent) -> None:
        if ev.kind is rgtp.files.EventKind.DONE:
            print(f"{ev.path}: {ev.done} bytes")

    result = rgtp.get(ticket, "inbox", parallel_files=4, progress=show)
    print(result.files, result.bytes, result.seconds)

    # The same set from three senders at once (each chunk verified whatever its
    # source; a slow or lying sender is dropped):
    rgtp.get(ticket, "inbox", sources=["10.0.0.2:7000", "10.0.0.3:7000"])

:func:`send` seals every file of the given trees as an exposure of its own plus a
catalog naming them, and serves them from a background thread until
:meth:`Sender.stop`. :func:`get` blocks until the whole set is in place: the catalog
first, every path in it checked, then each file verified against its root, resumable
(run it again after an interruption), with modes and times restored.

A sender's ``progress`` is called with a :class:`SenderStats` every
``progress_interval`` seconds while it serves, from a thread of its own; return
:data:`STOP` from it to stop serving. :meth:`Sender.stats` reads the same counters.

A receiver's ``progress`` is called with a :class:`FilesEvent` for the catalog, and for each file
when it starts, as its bytes arrive (at most every 50 ms, counts never going back)
and when it is done; calls come from the library's threads, one at a time. Return
:data:`STOP` from it (or raise) to stop the transfer: :func:`get` then raises
:class:`GetStopped` (or the callback's exception). Ctrl-C stops it the same way, at
the library's next event (while a sender is silent, when its timeout passes), and
raises :class:`KeyboardInterrupt`.

Errors are :class:`rgtp.RgtpError` with the library's reason (a bad ticket, no answer
from the sender, a file that does not match its root...).
"""

from __future__ import annotations

import ctypes
import enum
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Union

from . import RgtpError
from . import _lib
from ._lib import (
    FilesProgressCb,
    SenderPtr,
    rgtp_files_event_t,
    rgtp_get_options_t,
    rgtp_get_result_t,
    rgtp_send_options_t,
    rgtp_sender_stats_t,
)
from ._types import KEY_LEN, RGTP_OK, parse_key

__all__ = [
    "STOP",
    "EventKind",
    "FilesEvent",
    "GetResult",
    "GetStopped",
    "Sender",
    "SenderStats",
    "get",
    "send",
]

PathLike = Union[str, "os.PathLike[str]"]

#: ``rgtp_get``'s status when the progress callback asked it to stop.
_FILES_STOPPED = 1


class _Stop:
    def __repr__(self) -> str:
        return "rgtp.files.STOP"


#: Returned from a progress callback, stops the transfer.
STOP: Any = _Stop()


class EventKind(enum.Enum):
    """What a :class:`FilesEvent` reports."""

    CATALOG = 0  #: the catalog arrived: ``files``, ``entries``, ``total`` (bytes of the set)
    STARTED = 1  #: a file's pull starts: ``index``, ``path``, ``total`` (its size)
    BYTES = 2  #: bytes of a file so far: ``done`` of ``total``
    RETRY = 3  #: no answer; the file is tried again: ``message`` says when
    DONE = 4  #: a file is in place: ``done`` (its bytes), ``seconds``, ``skipped``, ``total_done``
    FAILED = 5  #: a file's pull failed: ``message`` says what was kept, if anything


@dataclass(frozen=True)
class FilesEvent:
    """One progress event of :func:`get` (see :class:`EventKind` for which fields count)."""

    kind: EventKind
    #: The file's place among the set's files (0 for CATALOG).
    index: int = 0
    #: The file's path in the set ("" for CATALOG).
    path: str = ""
    done: int = 0
    total: int = 0
    files: int = 0
    entries: int = 0
    #: DONE: bytes of all the files done so far.
    total_done: int = 0
    seconds: float = 0.0
    #: DONE: the file was already in place from an earlier run.
    skipped: bool = False
    message: Optional[str] = None


@dataclass(frozen=True)
class GetResult:
    """What :func:`get` fetched."""

    #: Regular files.
    files: int
    #: Catalog entries (files, directories, links).
    entries: int
    #: Bytes of the files.
    bytes: int
    #: Wall time of the files' pulls.
    seconds: float


@dataclass(frozen=True)
class SenderStats:
    """What a :class:`Sender` has served so far, summed over the set's exposures
    (updated about every 200 ms while it serves)."""

    datagrams_in: int
    bytes_in: int
    datagrams_out: int
    #: Bytes put on the wire, headers included.
    bytes_out: int
    #: Pull_Requests answered: one per file a receiver starts.
    pulls: int
    #: Chunk requests (NAKs) accepted.
    requests: int
    chunks_sent: int
    parity_sent: int
    #: Datagrams dropped (malformed, for no exposure of the set, bad token, ...).
    dropped: int
    #: Since :func:`send` started serving.
    seconds: float
    #: False once stopped, or after a serving error.
    serving: bool


class GetStopped(RgtpError):
    """:func:`get` stopped because its progress callback returned :data:`STOP`."""


def _fn(name: str) -> Callable[..., Any]:
    return _lib.load().fn(name)


def _reason() -> str:
    raw = _fn("rgtp_files_last_error")()
    return raw.decode("utf-8", "replace") if raw else ""


def _rate(name: str, v: Optional[float]) -> int:
    if v is None:
        return 0
    if v <= 0:
        raise ValueError(f"{name} {v}: must be positive bytes per second, or None")
    return int(v)


def _host_port(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{int(port)}"
    return f"{host}:{int(port)}"


class Sender:
    """A set being served (from :func:`send`); a context manager that stops it on exit."""

    def __init__(self, handle: Any, ticket: str) -> None:
        self._h: Optional[Any] = handle
        self._lock = threading.Lock()
        self._watcher: Optional[threading.Thread] = None
        self._quit = threading.Event()
        #: Set when the progress callback returned :data:`STOP` or raised.
        self.stopped_by_callback = False
        #: What the progress callback raised, if it did.
        self.callback_error: Optional[BaseException] = None
        #: The set's ticket: give it to :func:`get` (or ``rgtp get``).
        self.ticket = ticket

    def stats(self) -> SenderStats:
        """What has been served so far (see :class:`SenderStats`).

        Raises :class:`RgtpError` once the sender is stopped.
        """
        with self._lock:
            h = self._h
            if h is None:
                raise RgtpError(-1, "stats of a stopped sender")
            raw = rgtp_sender_stats_t()
            raw.size = ctypes.sizeof(raw)
            code = _fn("rgtp_sender_stats")(h, ctypes.byref(raw))
            if code != RGTP_OK:
                raise RgtpError(code, f"sender stats: {_reason()}")
        return SenderStats(
            datagrams_in=int(raw.datagrams_in),
            bytes_in=int(raw.bytes_in),
            datagrams_out=int(raw.datagrams_out),
            bytes_out=int(raw.bytes_out),
            pulls=int(raw.pulls),
            requests=int(raw.requests),
            chunks_sent=int(raw.chunks_sent),
            parity_sent=int(raw.parity_sent),
            dropped=int(raw.dropped),
            seconds=float(raw.seconds),
            serving=bool(raw.serving),
        )

    def _watch(self, progress: Callable[["SenderStats"], Any], interval: float) -> None:
        """Calls ``progress`` every ``interval`` seconds until stopped (see :func:`send`)."""
        while not self._quit.wait(interval):
            try:
                st = self.stats()
            except RgtpError:
                return
            try:
                verdict = progress(st)
            except BaseException as e:  # noqa: B902 - kept for the caller
                self.callback_error = e
                verdict = STOP
            if verdict is STOP or not st.serving:
                if verdict is STOP:
                    self.stopped_by_callback = True
                    threading.Thread(target=self._stop_quietly, daemon=True).start()
                return

    def _stop_quietly(self) -> None:
        try:
            self.stop()
        except RgtpError:
            pass

    @property
    def serving(self) -> bool:
        """Whether the set is still served."""
        return self._h is not None

    def stop(self) -> None:
        """Stops serving and frees the sender (a second call does nothing).

        Raises :class:`RgtpError` if serving had failed.
        """
        self._quit.set()
        w = self._watcher
        if w is not None and w is not threading.current_thread():
            w.join()
        with self._lock:
            h, self._h = self._h, None
        if h is None:
            return
        try:
            code = _fn("rgtp_sender_stop")(h)
            reason = _reason()
        finally:
            _fn("rgtp_sender_free")(h)
        if code != RGTP_OK:
            raise RgtpError(code, f"serving failed: {reason}")

    def __enter__(self) -> "Sender":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __del__(self) -> None:
        h, self._h = getattr(self, "_h", None), None
        if h is not None:
            try:
                _fn("rgtp_sender_free")(h)
            except Exception:  # interpreter shutdown: the process is going anyway
                pass

    def __repr__(self) -> str:
        state = "serving" if self.serving else "stopped"
        return f"<rgtp.files.Sender {state} {self.ticket}>"


def send(
    paths: Union[PathLike, Sequence[PathLike]],
    *,
    port: int = 0,
    host: str = "0.0.0.0",
    advertise: Optional[str] = None,
    key: Union[None, bytes, str] = None,
    max_rate: Optional[float] = None,
    max_rate_per_connection: Optional[float] = None,
    max_rate_per_file: Optional[float] = None,
    chunk_size: Optional[int] = None,
    keep_symlinks: bool = False,
    progress: Optional[Callable[[SenderStats], Any]] = None,
    progress_interval: float = 0.5,
) -> Sender:
    """Seals ``paths`` (files and directories; each named in the set by its last
    component) and serves them on UDP ``host:port`` from a background thread.

    ``port=0`` takes any free port. ``advertise`` is the host written into the
    ticket (default: the bound address, or 127.0.0.1 when bound to every
    interface). ``key`` (32 bytes or 64 hex digits) makes the ticket the same after
    a restart, so receivers resume; by default a random key. Rates are bytes per
    second: ``max_rate`` caps everything served, the others are told to each
    puller. ``keep_symlinks`` sends symbolic links as links (refused otherwise).

    ``progress``, if given, is called with a :class:`SenderStats` every
    ``progress_interval`` seconds from a thread of the sender's; returning
    :data:`STOP` (or raising) stops serving (``Sender.stopped_by_callback`` and
    ``Sender.callback_error`` tell afterwards).

    Returns a :class:`Sender`; its ``ticket`` names the set.
    """
    if not 0 < progress_interval <= 3600:
        raise ValueError(f"progress_interval {progress_interval}: must be 0 to 3600 seconds")
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    encoded = [os.fsencode(p) for p in paths]
    if not encoded:
        raise ValueError("send needs at least one file or directory")
    arr = (ctypes.c_char_p * len(encoded))(*encoded)
    o = rgtp_send_options_t()
    o.size = ctypes.sizeof(o)
    o.bind = _host_port(host, port).encode()
    o.advertise = advertise.encode() if advertise else None
    key_buf = None
    if key is not None:
        k = parse_key(key)
        key_buf = (ctypes.c_uint8 * KEY_LEN).from_buffer_copy(k)
        o.key = ctypes.cast(key_buf, ctypes.POINTER(ctypes.c_uint8))
    o.max_rate = _rate("max_rate", max_rate)
    o.max_rate_per_connection = _rate("max_rate_per_connection", max_rate_per_connection)
    o.max_rate_per_file = _rate("max_rate_per_file", max_rate_per_file)
    if chunk_size is not None and chunk_size <= 0:
        raise ValueError(f"chunk_size {chunk_size}: must be positive")
    o.chunk_size = int(chunk_size or 0)
    o.keep_symlinks = bool(keep_symlinks)
    h = SenderPtr()
    code = _fn("rgtp_send_start")(arr, len(encoded), ctypes.byref(o), ctypes.byref(h))
    if code != RGTP_OK:
        raise RgtpError(code, f"send {[os.fsdecode(p) for p in encoded]}: {_reason()}")
    ticket_fn = _fn("rgtp_sender_ticket")
    n = ticket_fn(h, None, 0)
    buf = ctypes.create_string_buffer(n)
    ticket_fn(h, buf, n)
    sender = Sender(h, buf.value.decode("ascii"))
    if progress is not None:
        sender._watcher = threading.Thread(
            target=sender._watch,
            args=(progress, float(progress_interval)),
            name="rgtp-send-progress",
            daemon=True,
        )
        sender._watcher.start()
    return sender


def _event(e: rgtp_files_event_t) -> FilesEvent:
    def text(b: Optional[bytes]) -> Optional[str]:
        return None if b is None else b.decode("utf-8", "replace")

    return FilesEvent(
        kind=EventKind(e.kind),
        index=e.index,
        path=text(e.path) or "",
        done=e.done,
        total=e.total,
        files=e.files,
        entries=e.entries,
        total_done=e.total_done,
        seconds=e.seconds,
        skipped=bool(e.skipped),
        message=text(e.message),
    )


def get(
    ticket: str,
    dest: PathLike = ".",
    *,
    parallel_files: int = 1,
    max_rate: Optional[float] = None,
    max_rate_per_file: Optional[float] = None,
    max_rate_per_connection: Optional[float] = None,
    restart: bool = False,
    retries: int = 0,
    connect_timeout: float = 5.0,
    idle_timeout: float = 10.0,
    progress: Optional[Callable[[FilesEvent], Any]] = None,
    sources: Optional[Sequence[str]] = None,
) -> GetResult:
    """Fetches the set ``ticket`` names into ``dest`` (created if missing), blocking.

    ``parallel_files`` files are fetched at once (1 to 64), each over its own
    socket. Rates are bytes per second: ``max_rate`` for the whole transfer (shared
    by the files in flight), ``max_rate_per_file``, ``max_rate_per_connection``.
    ``restart`` ignores what an earlier run kept; ``retries`` tries each file again
    while the sender is silent (1, 2, 4 ... 32 s apart). Timeouts are seconds.

    ``sources`` names more senders of the same set (``"HOST:PORT"`` or their own
    tickets, at most 64): every file is pulled from all of them and the ticket's
    sender at once, each chunk verified whatever its source, a slow or lying
    sender dropped (``rgtp get --from``).

    ``progress`` receives :class:`FilesEvent` s (see the module's documentation).
    Raises :class:`RgtpError` on failure, :class:`GetStopped` when ``progress``
    returned :data:`STOP`, the callback's own exception if it raised, and
    :class:`KeyboardInterrupt` on Ctrl-C; files cut short are kept for a later run.
    """
    if not 1 <= int(parallel_files) <= 64:
        raise ValueError(f"parallel_files {parallel_files}: must be 1 to 64")
    if int(retries) < 0:
        raise ValueError(f"retries {retries}: must be >= 0")
    for name, t in (("connect_timeout", connect_timeout), ("idle_timeout", idle_timeout)):
        if not 0 < t <= 4_000_000:
            raise ValueError(f"{name} {t}: must be positive seconds")
    o = rgtp_get_options_t()
    o.size = ctypes.sizeof(o)
    o.parallel_files = int(parallel_files)
    o.retries = int(retries)
    o.restart = bool(restart)
    o.max_rate = _rate("max_rate", max_rate)
    o.max_rate_per_file = _rate("max_rate_per_file", max_rate_per_file)
    o.max_rate_per_connection = _rate("max_rate_per_connection", max_rate_per_connection)
    o.connect_timeout_ms = max(1, int(connect_timeout * 1000))
    o.idle_timeout_ms = max(1, int(idle_timeout * 1000))
    if isinstance(sources, (str, bytes)):
        raise TypeError("sources must be a list of HOST:PORT or tickets, not one string")
    src = [str(x).encode("utf-8") for x in (sources or [])]
    if len(src) > 64:
        raise ValueError(f"{len(src)} sources: at most 64")
    src_arr = (ctypes.c_char_p * max(1, len(src)))(*src)
    if src:
        o.sources = ctypes.cast(src_arr, ctypes.POINTER(ctypes.c_char_p))
        o.n_sources = len(src)

    cancel = threading.Event()
    raised: List[BaseException] = []
    stopped_by_callback = threading.Event()

    def on_event(ev: Any, _ctx: Any) -> int:
        if cancel.is_set():
            return 1
        if progress is None:
            return 0
        try:
            if progress(_event(ev.contents)) is STOP:
                stopped_by_callback.set()
                return 1
        except BaseException as e:  # noqa: B902 - handed back to the caller's thread
            raised.append(e)
            return 1
        return 0

    cb = FilesProgressCb(on_event)
    result = rgtp_get_result_t()
    result.size = ctypes.sizeof(result)
    outcome: List[Any] = []
    ticket_b = str(ticket).encode("utf-8")
    dest_b = os.fsencode(dest)

    def run() -> None:
        code = _fn("rgtp_get")(ticket_b, dest_b, ctypes.byref(o), cb, None, ctypes.byref(result))
        outcome.append((code, _reason()))

    # The call runs on a thread of its own so that Ctrl-C reaches this one.
    worker = threading.Thread(target=run, name="rgtp-get", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
    except KeyboardInterrupt:
        cancel.set()
        # The library stops at its next event; never leave it running (it calls back
        # into Python), whatever more Ctrl-C arrive meanwhile.
        while worker.is_alive():
            try:
                worker.join()
            except KeyboardInterrupt:
                continue
        raise
    code, reason = outcome[0]
    if raised:
        raise raised[0]
    if code == _FILES_STOPPED:
        if stopped_by_callback.is_set():
            raise GetStopped(code, f"get {ticket}: stopped by the progress callback")
        raise RgtpError(code, f"get {ticket}: {reason}")
    if code != RGTP_OK:
        raise RgtpError(code, f"get {ticket}: {reason}")
    return GetResult(
        files=int(result.files),
        entries=int(result.entries),
        bytes=int(result.bytes),
        seconds=float(result.seconds),
    )
