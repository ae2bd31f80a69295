"""TEJ (tej-protoc v1) over TCP through ``librgtp``: frames of files and a message.

Client::

    from rgtp import tej

    with tej.connect("127.0.0.1", 9700) as c:
        c.send(files=["report.pdf", "data.csv"], message=b"monthly")
        c.send_bytes({"note.txt": b"hello"}, message="inline")
        frame = c.recv("inbox", timeout=10)   # files written under inbox/

Server::

    with tej.listen("127.0.0.1", 0) as l:
        print(l.address)
        with l.accept() as conn:
            while (frame := conn.recv("inbox")) is not None:
                print(frame.status, [f.path for f in frame.files], frame.message)

Every call blocks until it is done (the GIL is released meanwhile). Files sent from
paths are read as the socket takes their bytes, never whole; received files are
written under the given directory as they arrive, under their names made safe (no
path separator, no leading dot, no ``..``) and never over an existing file.

Errors: :class:`TimeoutError` when a timeout passes (the connection goes on),
:class:`ValueError` for bad arguments, :class:`TejError` (an :class:`OSError`) when
the connection fails or the peer breaks the protocol, with the library's reason.
"""

from __future__ import annotations

import ctypes
import math
import os
from dataclasses import dataclass, field
from typing import Iterable, List, Mapping, Optional, Tuple, Union

from . import _lib
from ._closing import Closing
from ._lib import TejFramePtr, TejListenerPtr, TejPtr
from ._types import RGTP_ERR_INVALID_ARG, RGTP_ERR_TIMEOUT, RGTP_OK

__all__ = [
    "Client",
    "Frame",
    "Listener",
    "ReceivedFile",
    "TejError",
    "connect",
    "listen",
]

PathLike = Union[str, "os.PathLike[str]"]
Message = Union[bytes, bytearray, memoryview, str]


class TejError(OSError):
    """A TEJ call failed: the connection broke or the peer broke the protocol.

    ``.code`` is the negative ``RGTP_ERR_*`` code, ``.reason`` the library's text.
    """

    def __init__(self, code: int, reason: str) -> None:
        self.code = int(code)
        self.reason = reason
        super().__init__(f"TEJ error {self.code}: {reason}")


@dataclass(frozen=True)
class ReceivedFile:
    """A received file: its name as the peer sent it (untrusted, not a path),
    where it was saved, and its size in bytes."""

    name: str
    path: str
    size: int


@dataclass(frozen=True)
class Frame:
    """A received frame."""

    status: int
    files: List[ReceivedFile] = field(default_factory=list)
    message: bytes = b""


def _fn(name: str):  # type: ignore[no-untyped-def]
    return _lib.load().fn(name)


def _reason() -> str:
    raw = _fn("rgtp_tej_last_error")()
    return raw.decode("utf-8", "replace") if raw else ""


def _check(code: int, what: str) -> None:
    if code == RGTP_OK:
        return
    reason = _reason() or f"error {code}"
    if code == RGTP_ERR_TIMEOUT:
        raise TimeoutError(f"{what}: {reason}")
    if code == RGTP_ERR_INVALID_ARG:
        raise ValueError(f"{what}: {reason}")
    raise TejError(code, f"{what}: {reason}")


def _timeout_ms(timeout: Optional[float]) -> int:
    if timeout is None:
        return -1
    if timeout < 0:
        raise ValueError(f"timeout {timeout}: must be >= 0 or None")
    return min(int(math.ceil(timeout * 1000)), 2**31 - 1)


def _status(status: int) -> int:
    if not 0 <= int(status) <= 127:
        raise ValueError(f"status {status}: a TEJ status is 0 to 127")
    return int(status)


def _message(message: Message) -> bytes:
    if isinstance(message, str):
        return message.encode("utf-8")
    return bytes(message)


def _bytes_arg(data: bytes) -> "ctypes.Array[ctypes.c_uint8]":
    return (ctypes.c_uint8 * len(data)).from_buffer_copy(data) if data else (ctypes.c_uint8 * 1)()


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{int(port)}" if ":" in host and not host.startswith("[") else f"{host}:{int(port)}"


def _c_str_at(ptr: Optional[int], length: int) -> bytes:
    return ctypes.string_at(ptr, length) if ptr else b""


class Client(Closing):
    """One TEJ connection (from :func:`connect` or :meth:`Listener.accept`)."""

    def __init__(self, handle: "ctypes._Pointer[_lib._Tej]", peer: str = "") -> None:
        self._h: Optional["ctypes._Pointer[_lib._Tej]"] = handle
        self.peer = peer

    def _handle(self) -> "ctypes._Pointer[_lib._Tej]":
        if self._h is None:
            raise ValueError("the connection is closed")
        return self._h

    def send(
        self,
        files: Iterable[PathLike] = (),
        message: Message = b"",
        status: int = 1,
    ) -> None:
        """Sends the files at ``files`` (each under its base name) and ``message`` as
        one frame; returns once all of it was handed to the socket."""
        paths = [os.fspath(p) for p in files]
        for p in paths:
            if not os.path.isfile(p):
                raise FileNotFoundError(f"{p}: no such file to send")
        arr = (ctypes.c_char_p * max(len(paths), 1))(*[os.fsencode(p) for p in paths])
        msg = _message(message)
        code = _fn("rgtp_tej_send")(
            self._handle(), _status(status), arr, len(paths), _bytes_arg(msg), len(msg)
        )
        _check(code, "send")

    def send_bytes(
        self,
        files: Union[Mapping[str, bytes], Iterable[Tuple[str, bytes]]] = (),
        message: Message = b"",
        status: int = 1,
    ) -> None:
        """Sends in-memory files, ``{name: bytes}`` or ``[(name, bytes), ...]``, and
        ``message`` as one frame."""
        items = list(files.items()) if isinstance(files, Mapping) else list(files)
        n = len(items)
        names = (ctypes.c_char_p * max(n, 1))(*[str(k).encode("utf-8") for k, _ in items])
        bufs = [_bytes_arg(bytes(v)) for _, v in items]
        datas = (ctypes.POINTER(ctypes.c_uint8) * max(n, 1))(
            *[ctypes.cast(b, ctypes.POINTER(ctypes.c_uint8)) for b in bufs]
        )
        lens = (ctypes.c_size_t * max(n, 1))(*[len(v) for _, v in items])
        msg = _message(message)
        code = _fn("rgtp_tej_send_bytes")(
            self._handle(), _status(status), names, datas, lens, n, _bytes_arg(msg), len(msg)
        )
        _check(code, "send_bytes")

    def ping(self) -> None:
        """Sends a ping frame (status 2); the peer counts it and goes on."""
        _check(_fn("rgtp_tej_ping")(self._handle()), "ping")

    @property
    def pings_received(self) -> int:
        """Ping frames received so far (``recv`` skips them)."""
        n = ctypes.c_uint64()
        _check(_fn("rgtp_tej_pings_received")(self._handle(), ctypes.byref(n)), "pings_received")
        return int(n.value)

    def recv(self, dir: PathLike, timeout: Optional[float] = None) -> Optional[Frame]:
        """Receives the next frame, writing its files under ``dir`` (created if
        missing) as they arrive. ``None`` once the peer closed the connection.
        Raises :class:`TimeoutError` after ``timeout`` seconds (``None``: wait for
        ever); a frame the timeout interrupted goes on with the next ``recv`` into
        the same ``dir``."""
        out = TejFramePtr()
        code = _fn("rgtp_tej_recv_to_dir")(
            self._handle(), os.fsencode(os.fspath(dir)), _timeout_ms(timeout), ctypes.byref(out)
        )
        _check(code, "recv")
        if not out:
            return None
        try:
            return _read_frame(out)
        finally:
            _fn("rgtp_tej_frame_free")(out)

    def close(self) -> None:
        """Ends the stream towards the peer once everything sent is out and closes
        the connection. Closing twice does nothing."""
        h, self._h = self._h, None
        if h is not None:
            _check(_fn("rgtp_tej_close")(h), "close")



def _read_frame(f: "ctypes._Pointer[_lib._TejFrame]") -> Frame:
    n = int(_fn("rgtp_tej_frame_file_count")(f))
    files = []
    for i in range(n):
        ln = ctypes.c_size_t()
        name = _c_str_at(_fn("rgtp_tej_frame_file_name")(f, i, ctypes.byref(ln)), ln.value)
        lp = ctypes.c_size_t()
        path = _c_str_at(_fn("rgtp_tej_frame_file_path")(f, i, ctypes.byref(lp)), lp.value)
        files.append(
            ReceivedFile(
                name=name.decode("utf-8", "replace"),
                path=os.fsdecode(path),
                size=int(_fn("rgtp_tej_frame_file_size")(f, i)),
            )
        )
    lm = ctypes.c_size_t()
    msg = _c_str_at(_fn("rgtp_tej_frame_message")(f, ctypes.byref(lm)), lm.value)
    return Frame(status=int(_fn("rgtp_tej_frame_status")(f)), files=files, message=msg)


class Listener(Closing):
    """A listening TCP socket for TEJ connections (from :func:`listen`)."""

    def __init__(self, handle: "ctypes._Pointer[_lib._TejListener]") -> None:
        self._h: Optional["ctypes._Pointer[_lib._TejListener]"] = handle
        need = ctypes.c_size_t()
        buf = ctypes.create_string_buffer(128)
        _check(
            _fn("rgtp_tej_listener_addr")(handle, buf, len(buf), ctypes.byref(need)),
            "listener address",
        )
        text = buf.value.decode("ascii")
        host, _, port = text.rpartition(":")
        #: ``(host, port)`` listened on.
        self.address: Tuple[str, int] = (host.strip("[]"), int(port))

    def accept(self, timeout: Optional[float] = None) -> Client:
        """Waits for the next connection (``timeout`` seconds, ``None``: for ever);
        raises :class:`TimeoutError` if none came."""
        if self._h is None:
            raise ValueError("the listener is closed")
        out = TejPtr()
        _check(
            _fn("rgtp_tej_accept")(self._h, _timeout_ms(timeout), ctypes.byref(out)), "accept"
        )
        return Client(out)

    def close(self) -> None:
        """Stops listening; accepted connections go on."""
        h, self._h = self._h, None
        if h is not None:
            _fn("rgtp_tej_listener_close")(h)



def connect(host: str, port: int) -> Client:
    """Connects to a TEJ server."""
    out = TejPtr()
    addr = _host_port(host, port)
    _check(_fn("rgtp_tej_connect")(addr.encode("utf-8"), ctypes.byref(out)), f"connect {addr}")
    return Client(out, peer=addr)


def listen(host: str = "127.0.0.1", port: int = 0) -> Listener:
    """Listens for TEJ connections (``port`` 0: any free port; see ``.address``)."""
    out = TejListenerPtr()
    addr = _host_port(host, port)
    _check(_fn("rgtp_tej_listen")(addr.encode("utf-8"), ctypes.byref(out)), f"listen {addr}")
    return Listener(out)
