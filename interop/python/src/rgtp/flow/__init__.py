"""Flows between named applications, with the API of pyOuroboros' ``ouroboros.dev``.

A program written for pyOuroboros runs on this stack once its imports say
``rgtp.flow`` for ``ouroboros.dev`` and ``rgtp.flow.`` for ``ouroboros.``::

    from rgtp.flow import *

    with flow_alloc("oecho", qos_data) as f:       # by name, with a QoS preset
        f.writeline("Hello!")
        print(f.readline())

    with flow_accept() as f:                       # a server (see below for its name)
        f.writeline(f.readline())

    g = flow_join("chat")                          # a broadcast group: every member
    g.writeline("hi all")                          # reads what any other writes

Every call goes through one node per process: a UDP socket with a driver thread,
bound on first use to ``0.0.0.0:0`` (call :func:`init` first to choose the address).
Names are looked up as ``spec/flow.md`` section 5 says (``RGTP_FLOW_NAMES``, the file
directory, the directory server at ``RGTP_FLOW_DIRECTORY``). A server gets its name
from ``rgtp flow bind NAME -- python3 server.py`` (which sets ``RGTP_FLOW_BIND``), or by
calling :func:`register`.

Flows carry whole messages (SDUs). Reads and writes block unless the flow's flags say
otherwise (:class:`FlowProperties`); a flow deallocated while another thread reads it
wakes that thread with :class:`FlowDeallocatedException`.
"""

from __future__ import annotations

import atexit
import ctypes
import threading
import time
from enum import IntFlag
from typing import Any, List, Optional, Tuple, Union

from .. import _lib
from ..flow.qos import *  # noqa: F401,F403
from ..flow.qos import PRESETS, QoSSpec

__all__ = [
    # ouroboros.dev
    "MILLION",
    "BILLION",
    "FRCT_RETRANSMIT",
    "FRCT_RESCNTL",
    "FRCT_LINGER",
    "FlowAllocatedException",
    "FlowNotAllocatedException",
    "FlowDownException",
    "FlowPermissionException",
    "FlowException",
    "FlowDeallocWarning",
    "FlowProperties",
    "Flow",
    "flow_alloc",
    "flow_accept",
    "flow_join",
    # ouroboros.qos, and the presets of qos.h
    "QoSSpec",
    "DEFAULT_PEER_TIMEOUT",
    "UINT32_MAX",
    "UINT64_MAX",
    "PRESETS",
    "qos_raw",
    "qos_raw_no_errors",
    "qos_raw_crypt",
    "qos_best_effort",
    "qos_best_effort_crypt",
    "qos_video",
    "qos_video_crypt",
    "qos_voice",
    "qos_voice_crypt",
    "qos_data",
    "qos_data_crypt",
    # additions
    "FlowDeallocatedException",
    "FlowWouldBlock",
    "FlowUnknownNameError",
    "FlowRefusedError",
    "FlowTooLargeError",
    "FlowTimeoutError",
    "init",
    "local_addr",
    "register",
    "unregister",
    "shutdown",
    "qos_preset",
]

# C codes (rgtp.h).
_OK = 0
_ERR_INVALID_ARG = -2
_ERR_TIMEOUT = -12
_ERR_NOT_SUPPORTED = -14
_WOULD_BLOCK = -100
_DEALLOCATED = -101
_PEER_GONE = -102
_UNKNOWN_NAME = -103
_REFUSED = -104
_TOO_LARGE = -105
_PERMISSION = -106

#: Longest single wait inside a blocking call without timeout, so Ctrl-C is not held up.
_SLICE_MS = 200
#: What read() reads when given no count (as pyOuroboros).
_DEFAULT_READ = 2048

# FRCT flags (as pyOuroboros); the layers follow from the QoS given at allocation.
FRCT_RETRANSMIT = 0o1
FRCT_RESCNTL = 0o2
FRCT_LINGER = 0o4


# ouroboros exceptions
class FlowAllocatedException(Exception):
    """The Flow object already holds a flow."""


class FlowNotAllocatedException(Exception):
    """The Flow object holds no flow."""


class FlowDownException(Exception):
    """The peer deallocated the flow or went silent past the QoS timeout."""


class FlowPermissionException(Exception):
    """The flow's flags forbid the call (a write on a read-only flow, …)."""


class FlowException(Exception):
    """Another failure of a flow call; the message says what and how to fix it."""


class FlowDeallocWarning(Warning):
    """dealloc() on a Flow object that holds no flow."""


class FlowDeallocatedException(FlowNotAllocatedException):
    """The flow was deallocated on this end, perhaps by another thread."""


class FlowWouldBlock(FlowException, BlockingIOError):
    """A non-blocking read or write found nothing to do."""


class FlowUnknownNameError(FlowException, LookupError):
    """No server registered the name anywhere looked (the message lists where)."""


class FlowRefusedError(FlowException, ConnectionRefusedError):
    """The peer refused the allocation."""


class FlowTooLargeError(FlowException, ValueError):
    """An SDU larger than a flow carries, or than the read buffer (NoPartialRead)."""


class FlowTimeoutError(FlowException, TimeoutError):
    """Nothing happened in time."""


def _last_error() -> str:
    raw = _lib.load().fn("rgtp_flow_last_error")()
    return raw.decode("utf-8", "replace") if raw else ""


def _raise(code: int, what: str = "") -> None:
    if code >= 0:
        return
    msg = _last_error() or f"error {code}"
    if what:
        msg = f"{what}: {msg}"
    if code == _ERR_TIMEOUT:
        raise FlowTimeoutError(msg)
    if code == _WOULD_BLOCK:
        raise FlowWouldBlock(msg)
    if code == _DEALLOCATED:
        raise FlowDeallocatedException(msg)
    if code == _PEER_GONE:
        raise FlowDownException(msg)
    if code == _UNKNOWN_NAME:
        raise FlowUnknownNameError(msg)
    if code == _REFUSED:
        raise FlowRefusedError(msg)
    if code == _TOO_LARGE:
        raise FlowTooLargeError(msg)
    if code == _PERMISSION:
        raise FlowPermissionException(msg)
    if code == _ERR_INVALID_ARG:
        raise ValueError(msg)
    if code == _ERR_NOT_SUPPORTED:
        raise FlowException(msg)
    raise FlowException(msg)


def _ms(timeo: Optional[float]) -> int:
    """A timeout in seconds (None: none; <= 0: do not wait) as C milliseconds."""
    if timeo is None:
        return -1
    if timeo <= 0:
        return 0
    return min(int(timeo * 1000 + 0.999), 0x7FFFFFFF)


# -------------------------------------------------------------------- the node

_node_lock = threading.Lock()
_node_ptr: Optional[Any] = None


def init(bind: Optional[str] = None) -> str:
    """Opens this process's node bound to ``bind`` ("HOST:PORT"; default
    "0.0.0.0:0") if it is not open yet; returns its address."""
    global _node_ptr
    with _node_lock:
        if _node_ptr is None:
            L = _lib.load()
            out = _lib.FlowNodePtr()
            _raise(
                L.fn("rgtp_flow_node_open")(bind.encode() if bind else None, ctypes.byref(out)),
                "opening the flow node",
            )
            _node_ptr = out
    return local_addr()


def _node() -> Any:
    if _node_ptr is None:
        init()
    return _node_ptr


def local_addr() -> str:
    """The "HOST:PORT" this process's node is bound to."""
    buf = ctypes.create_string_buffer(128)
    _lib.load().fn("rgtp_flow_node_addr")(_node(), buf, len(buf))
    return buf.value.decode()


def register(name: str) -> None:
    """Accepts flows to ``name`` (flow_accept gives them) and publishes it."""
    _raise(_lib.load().fn("rgtp_flow_register")(_node(), name.encode()), f"registering {name!r}")


def unregister(name: str) -> None:
    """Stops accepting flows to ``name`` and withdraws it."""
    _raise(_lib.load().fn("rgtp_flow_unregister")(_node(), name.encode()))


def shutdown() -> None:
    """Closes this process's node: its flows end and its names are withdrawn. The
    next call opens a new one. Runs at interpreter exit when no other thread is left.
    No other thread may be inside a flow call on the node while it closes."""
    global _node_ptr
    with _node_lock:
        ptr, _node_ptr = _node_ptr, None
    if ptr is not None:
        _lib.load().fn("rgtp_flow_node_close")(ptr)


def _at_exit() -> None:
    # A daemon thread may still be inside a call on the node: leave it to the OS then
    # (stale names are ignored by pid and expire at the directory server).
    if threading.active_count() <= 1:
        shutdown()


atexit.register(_at_exit)


def _qos_to_qosspec(qos: Optional[QoSSpec]) -> Any:
    if qos is None:
        return None
    q = _lib.rgtp_flow_qos_t()
    q.size = ctypes.sizeof(q)
    q.delay = qos.delay
    q.bandwidth = qos.bandwidth
    q.availability = qos.availability
    q.loss = qos.loss
    q.ber = qos.ber
    q.in_order = qos.in_order
    q.max_gap = qos.max_gap
    q.cypher_s = getattr(qos, "cypher_s", 0)
    q.timeout = qos.timeout
    return ctypes.byref(q)


def _qosspec_to_qos(q: Any) -> QoSSpec:
    return QoSSpec(
        delay=q.delay,
        bandwidth=q.bandwidth,
        availability=q.availability,
        loss=q.loss,
        ber=q.ber,
        in_order=q.in_order,
        max_gap=q.max_gap,
        timeout=q.timeout,
        cypher_s=q.cypher_s,
    )


def qos_preset(name: str) -> QoSSpec:
    """The C library's preset called ``name`` (as :data:`PRESETS` lists)."""
    q = _lib.rgtp_flow_qos_t()
    _raise(_lib.load().fn("rgtp_flow_qos_preset")(name.encode(), ctypes.byref(q)))
    return _qosspec_to_qos(q)


class FlowProperties(IntFlag):
    ReadOnly = 0o0
    WriteOnly = 0o1
    ReadWrite = 0o2
    Down = 0o4
    NonBlockingRead = 0o1000
    NonBlockingWrite = 0o2000
    NonBlocking = NonBlockingRead | NonBlockingWrite
    NoPartialRead = 0o10000
    NoPartialWrite = 0o200000


class Flow:
    """One flow (or a broadcast group membership, from :meth:`join`)."""

    def __init__(self) -> None:
        self.__h: Optional[Any] = None
        # Handles deallocated but maybe still in use by another thread: freed with
        # the object, when no thread can be inside a call on them any more.
        self.__old: List[Any] = []
        self.__snd_timeo: Optional[float] = None
        self.__rcv_timeo: Optional[float] = None

    def __del__(self) -> None:
        try:
            free = _lib.load().fn("rgtp_flow_free")
        except Exception:
            return
        for h in self.__old + ([self.__h] if self.__h is not None else []):
            free(h)
        self.__old = []
        self.__h = None

    def __enter__(self) -> "Flow":
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, tb: Any) -> None:
        if self.__h is not None:
            self.dealloc()

    def __repr__(self) -> str:
        if self.__h is None:
            return "<Flow: not allocated>"
        return f"<Flow {self.peer()} [{self.layers()}]>"

    def _handle(self) -> Any:
        if self.__h is None:
            raise FlowNotAllocatedException("the Flow holds no flow: alloc, accept or join first")
        return self.__h

    def _id(self) -> Optional[int]:
        if self.__h is None:
            return None
        out = ctypes.c_uint64()
        _raise(_lib.load().fn("rgtp_flow_id")(self.__h, ctypes.byref(out)))
        return int(out.value)

    def _take(self, out: Any) -> None:
        self.__h = out

    def alloc(self, dst: str, qos: QoSSpec = None, timeo: float = None) -> Optional[QoSSpec]:
        """
        Allocates a flow with a certain QoS to a destination

        :param dst:   The destination name (string), or NAME@HOST:PORT
        :param qos:   The QoS for the requested flow (QoSSpec)
        :param timeo: The timeout for the flow allocation (None -> forever; no async 0)
        :return:      The QoS for the new flow
        """
        if self.__h is not None:
            raise FlowAllocatedException("the Flow already holds a flow")
        if timeo is not None and timeo <= 0:
            raise ValueError(
                "asynchronous allocation (timeo <= 0) is not offered: give a timeout in "
                "seconds, or None to wait without limit"
            )
        out = _lib.FlowPtr()
        _raise(
            _lib.load().fn("rgtp_flow_alloc")(
                _node(), dst.encode(), _qos_to_qosspec(qos), _ms(timeo), ctypes.byref(out)
            ),
            f"allocating a flow to {dst!r}",
        )
        self.__h = out
        return self.get_qos()

    def accept(self, timeo: float = None) -> QoSSpec:
        """
        Accepts new flows and returns the QoS

        :param timeo: The timeout for the flow allocation (None -> forever)
        :return:      The QoS for the new flow
        """
        if self.__h is not None:
            raise FlowAllocatedException("the Flow already holds a flow")
        out = _lib.FlowPtr()
        q = _lib.rgtp_flow_qos_t()
        deadline = None if timeo is None else time.monotonic() + max(timeo, 0)
        accept = _lib.load().fn("rgtp_flow_accept")
        while True:
            left = _SLICE_MS if deadline is None else min(_SLICE_MS, _ms(deadline - time.monotonic()))
            rc = accept(_node(), left, ctypes.byref(q), ctypes.byref(out))
            if rc == _ERR_TIMEOUT and (deadline is None or time.monotonic() < deadline):
                continue
            _raise(rc, "accepting a flow")
            break
        self.__h = out
        return _qosspec_to_qos(q)

    def join(self, dst: str, qos: Union[QoSSpec, float, None] = None, timeo: float = None) -> None:
        """
        Join a broadcast group: a write reaches every other member, a read
        returns what any member wrote

        :param dst:   The group name (string)
        :param qos:   The QoS for the flows to the members (QoSSpec); a number
                      here is taken as the timeout, as pyOuroboros' join(dst, timeo)
        :param timeo: How long to wait for the members found to answer
        """
        if self.__h is not None:
            raise FlowAllocatedException("the Flow already holds a flow")
        if isinstance(qos, (int, float)) and not isinstance(qos, bool):
            qos, timeo = None, float(qos)
        out = _lib.FlowPtr()
        _raise(
            _lib.load().fn("rgtp_flow_join")(
                _node(),
                dst.encode(),
                _qos_to_qosspec(qos),
                _ms(10.0 if timeo is None else timeo),
                ctypes.byref(out),
            ),
            f"joining {dst!r}",
        )
        self.__h = out

    def dealloc(self) -> None:
        """
        Deallocate a flow. A thread blocked reading it wakes with
        FlowDeallocatedException.
        """
        if self.__h is None:
            raise FlowDeallocWarning("the Flow holds no flow")
        h, self.__h = self.__h, None
        self.__old.append(h)
        _raise(_lib.load().fn("rgtp_flow_dealloc")(h))

    def write(self, buf: bytes, count: int = None) -> int:
        """
        Attempt to write <count> bytes to a flow, as one SDU

        :param buf:    Buffer to write from
        :param count:  Number of bytes to write from the buffer
        :return:       Number of bytes written
        """
        h = self._handle()
        data = bytes(buf) if count is None else bytes(buf[:count])
        written = ctypes.c_size_t()
        _raise(
            _lib.load().fn("rgtp_flow_write")(
                h, data, len(data), _ms(self.__snd_timeo), ctypes.byref(written)
            )
        )
        return int(written.value)

    def writeline(self, ln: str) -> int:
        """
        Attempt to write a string to a flow

        :param ln:  String to write
        :return:    Number of bytes written
        """
        self._handle()
        data = ln.encode()
        return self.write(data, len(data))

    def read(self, count: int = None) -> bytes:
        """
        Attempt to read bytes from a flow

        :param count:   Maximum number of bytes to read (default 2048)
        :return:        Bytes read
        """
        h = self._handle()
        if count is None:
            count = _DEFAULT_READ
        buf = ctypes.create_string_buffer(max(count, 1))
        n = ctypes.c_size_t()
        read = _lib.load().fn("rgtp_flow_read")
        timeo = self.__rcv_timeo
        deadline = None if timeo is None else time.monotonic() + max(timeo, 0)
        while True:
            if deadline is None:
                ms = _SLICE_MS
            else:
                ms = min(_SLICE_MS, _ms(deadline - time.monotonic()))
            rc = read(h, buf, count, ctypes.byref(n), ms)
            if rc == _ERR_TIMEOUT and (deadline is None or time.monotonic() < deadline):
                continue
            _raise(rc)
            return buf.raw[: n.value]

    def readline(self) -> str:
        """
        :return: A string
        """
        self._handle()
        return self.read().decode()

    # flow manipulation
    def set_snd_timeout(self, timeo: float) -> None:
        """Set the timeout for blocking writes (None: none)"""
        self._handle()
        self.__snd_timeo = timeo

    def get_snd_timeout(self) -> Optional[float]:
        """:return: timeout for blocking writes"""
        self._handle()
        return self.__snd_timeo

    def set_rcv_timeout(self, timeo: float) -> None:
        """Set the timeout for blocking reads (None: none)"""
        self._handle()
        self.__rcv_timeo = timeo

    def get_rcv_timeout(self) -> Optional[float]:
        """:return: timeout for blocking reads"""
        self._handle()
        return self.__rcv_timeo

    def get_qos(self) -> QoSSpec:
        """:return: Current QoS on the flow"""
        q = _lib.rgtp_flow_qos_t()
        _raise(_lib.load().fn("rgtp_flow_qos")(self._handle(), ctypes.byref(q)))
        return _qosspec_to_qos(q)

    def _queue_lens(self) -> Tuple[int, int]:
        rx, tx = ctypes.c_size_t(), ctypes.c_size_t()
        _raise(
            _lib.load().fn("rgtp_flow_queue_lens")(
                self._handle(), ctypes.byref(rx), ctypes.byref(tx)
            )
        )
        return int(rx.value), int(tx.value)

    def get_rx_queue_len(self) -> int:
        """:return: SDUs received and not read yet (one read in part counts)"""
        return self._queue_lens()[0]

    def get_tx_queue_len(self) -> int:
        """:return: fragments written and not yet sent, or with retransmission
        not yet acknowledged"""
        return self._queue_lens()[1]

    def set_flags(self, flags: FlowProperties) -> None:
        """Set flags for this flow."""
        _raise(_lib.load().fn("rgtp_flow_set_flags")(self._handle(), int(flags)))

    def get_flags(self) -> FlowProperties:
        """Get the flags for this flow (with Down once it ended)."""
        out = ctypes.c_uint32()
        _raise(_lib.load().fn("rgtp_flow_flags")(self._handle(), ctypes.byref(out)))
        return FlowProperties(int(out.value))

    def set_frct_flags(self, flags: int) -> None:
        """The layers follow from the QoS: only the flags the flow has are accepted."""
        if int(flags) != self.get_frct_flags():
            raise FlowPermissionException(
                "the layers of a flow follow from its QoS; allocate with loss=0 for "
                "retransmission"
            )

    def get_frct_flags(self) -> int:
        """:return: Bitmask of FRCT flags (FRCT_RETRANSMIT when the flow retransmits)"""
        return FRCT_RETRANSMIT if "arq" in self.layers().split(" ") else 0

    # additions
    def layers(self) -> str:
        """The layers the flow runs, e.g. "reorder + arq + timeout 120s"."""
        buf = ctypes.create_string_buffer(256)
        _lib.load().fn("rgtp_flow_layers")(self._handle(), buf, len(buf))
        return buf.value.decode()

    def peer(self) -> str:
        """"NAME@HOST:PORT" of the peer ("NAME#*" for a group)."""
        buf = ctypes.create_string_buffer(512)
        _lib.load().fn("rgtp_flow_peer")(self._handle(), buf, len(buf))
        return buf.value.decode()

    def flush(self, timeo: float = 10.0) -> None:
        """Waits until everything written was sent (and acknowledged, with retransmission)."""
        _raise(_lib.load().fn("rgtp_flow_flush")(self._handle(), _ms(timeo)))


def flow_alloc(dst: str, qos: QoSSpec = None, timeo: float = None) -> Flow:
    """
    :param dst:    Destination name
    :param qos:    Requested QoS
    :param timeo:  Timeout to wait for the allocation
    :return:       A new Flow()
    """
    f = Flow()
    f.alloc(dst, qos, timeo)
    return f


def flow_accept(timeo: float = None) -> Flow:
    """
    :param timeo:  Timeout to wait for the allocation
    :return:       A new Flow()
    """
    f = Flow()
    f.accept(timeo)
    return f


def flow_join(dst: str, qos: QoSSpec = None, timeo: float = None) -> Flow:
    """
    :param dst:    Broadcast group name
    :param qos:    Requested QoS
    :param timeo:  Timeout to wait for the members found
    :return:       A new Flow()
    """
    f = Flow()
    f.join(dst, qos, timeo)
    return f
