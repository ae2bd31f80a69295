"""Locating ``librgtp`` and declaring the C signatures.

Lookup order:

1. ``RGTP_LIB_PATH`` (a file path);
2. a library packaged beside this module, ``rgtp/_native/librgtp.so`` (``.dylib``/``.dll``);
3. ``ctypes.util.find_library("rgtp")``.

The library is loaded lazily, on the first call that needs it, so ``import rgtp`` always
succeeds (the pure-Python parts - tickets, configs, error codes - work without it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

from ._types import (
    LOG_FN,
    rgtp_allocator_t,
    rgtp_config_t,
    rgtp_latency_stats_t,
    rgtp_stats_t,
    sockaddr_storage,
)


class LibraryNotFound(OSError):
    """``librgtp`` could not be located or loaded."""


class _Socket(ctypes.Structure):
    """Opaque ``rgtp_socket_t``."""


class _Surface(ctypes.Structure):
    """Opaque ``rgtp_surface_t``."""


class _Gtudp(ctypes.Structure):
    """Opaque ``rgtp_gtudp_t``."""
class _Tej(ctypes.Structure):
    """Opaque ``rgtp_tej_t``."""


class _TejListener(ctypes.Structure):
    """Opaque ``rgtp_tej_listener_t``."""


class _TejFrame(ctypes.Structure):
    """Opaque ``rgtp_tej_frame_t``."""


SocketPtr = ctypes.POINTER(_Socket)
SurfacePtr = ctypes.POINTER(_Surface)
GtudpPtr = ctypes.POINTER(_Gtudp)


class rgtp_gtudp_options_t(ctypes.Structure):
    """``rgtp_gtudp_options_t``; ``size`` must be set to ``ctypes.sizeof`` of it."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("magic", ctypes.POINTER(ctypes.c_uint8)),
        ("magic_len", ctypes.c_size_t),
        ("types", ctypes.POINTER(ctypes.c_uint8)),
        ("types_len", ctypes.c_size_t),
        ("reference_timers", ctypes.c_bool),
        ("key", ctypes.POINTER(ctypes.c_uint8)),
        ("session", ctypes.c_uint64),
    ]


class rgtp_gtudp_stats_t(ctypes.Structure):
    """``rgtp_gtudp_stats_t``; ``size`` must be set to ``ctypes.sizeof`` of it."""

    _fields_ = [("size", ctypes.c_size_t)] + [
        (name, ctypes.c_uint64)
        for name in (
            "datagrams_in",
            "malformed",
            "delivered",
            "duplicates",
            "data_sent",
            "data_repeated",
            "recv_sent",
            "ack_sent",
            "confirmed",
            "failed",
            "auth_failed",
            "replayed",
            "dropped",
        )
    ]
TejPtr = ctypes.POINTER(_Tej)


class _Sender(ctypes.Structure):
    """Opaque ``rgtp_sender_t``."""


SenderPtr = ctypes.POINTER(_Sender)


class rgtp_send_options_t(ctypes.Structure):
    """``rgtp_send_options_t``; ``size`` must be set to ``ctypes.sizeof`` of it."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("bind", ctypes.c_char_p),
        ("advertise", ctypes.c_char_p),
        ("key", ctypes.POINTER(ctypes.c_uint8)),
        ("max_rate", ctypes.c_uint64),
        ("max_rate_per_connection", ctypes.c_uint64),
        ("max_rate_per_file", ctypes.c_uint64),
        ("chunk_size", ctypes.c_uint32),
        ("keep_symlinks", ctypes.c_bool),
    ]


class rgtp_get_options_t(ctypes.Structure):
    """``rgtp_get_options_t``; ``size`` must be set to ``ctypes.sizeof`` of it."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("parallel_files", ctypes.c_uint32),
        ("retries", ctypes.c_uint32),
        ("restart", ctypes.c_bool),
        ("max_rate", ctypes.c_uint64),
        ("max_rate_per_file", ctypes.c_uint64),
        ("max_rate_per_connection", ctypes.c_uint64),
        ("connect_timeout_ms", ctypes.c_uint32),
        ("idle_timeout_ms", ctypes.c_uint32),
        ("sources", ctypes.POINTER(ctypes.c_char_p)),
        ("n_sources", ctypes.c_size_t),
    ]


class rgtp_files_event_t(ctypes.Structure):
    """``rgtp_files_event_t``, as the progress callback receives it."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("kind", ctypes.c_int),
        ("index", ctypes.c_uint64),
        ("path", ctypes.c_char_p),
        ("done", ctypes.c_uint64),
        ("total", ctypes.c_uint64),
        ("files", ctypes.c_uint64),
        ("entries", ctypes.c_uint64),
        ("total_done", ctypes.c_uint64),
        ("seconds", ctypes.c_double),
        ("skipped", ctypes.c_bool),
        ("message", ctypes.c_char_p),
    ]


class rgtp_get_result_t(ctypes.Structure):
    """``rgtp_get_result_t``; ``size`` must be set to ``ctypes.sizeof`` of it."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("files", ctypes.c_uint64),
        ("entries", ctypes.c_uint64),
        ("bytes", ctypes.c_uint64),
        ("seconds", ctypes.c_double),
    ]


class rgtp_sender_stats_t(ctypes.Structure):
    """``rgtp_sender_stats_t``; ``size`` must be set to ``ctypes.sizeof`` of it."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("datagrams_in", ctypes.c_uint64),
        ("bytes_in", ctypes.c_uint64),
        ("datagrams_out", ctypes.c_uint64),
        ("bytes_out", ctypes.c_uint64),
        ("pulls", ctypes.c_uint64),
        ("requests", ctypes.c_uint64),
        ("chunks_sent", ctypes.c_uint64),
        ("parity_sent", ctypes.c_uint64),
        ("dropped", ctypes.c_uint64),
        ("seconds", ctypes.c_double),
        ("serving", ctypes.c_bool),
    ]


#: ``rgtp_files_progress_cb``.
FilesProgressCb = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(rgtp_files_event_t), ctypes.c_void_p
)
TejListenerPtr = ctypes.POINTER(_TejListener)
TejFramePtr = ctypes.POINTER(_TejFrame)

_c_int = ctypes.c_int
_c_size_t = ctypes.c_size_t
_u8p = ctypes.POINTER(ctypes.c_uint8)
_cfg_p = ctypes.POINTER(rgtp_config_t)

#: name → (restype, argtypes, required)
_SIGNATURES: List[Tuple[str, Any, List[Any], bool]] = [
    ("rgtp_init", _c_int, [], True),
    ("rgtp_cleanup", None, [], True),
    ("rgtp_version", ctypes.c_char_p, [], True),
    ("rgtp_strerror", ctypes.c_char_p, [_c_int], True),
    ("rgtp_socket_create", _c_int, [_cfg_p, ctypes.POINTER(SocketPtr)], True),
    ("rgtp_socket_destroy", None, [SocketPtr], True),
    (
        "rgtp_expose",
        _c_int,
        [SocketPtr, ctypes.c_void_p, _c_size_t, _cfg_p, ctypes.POINTER(SurfacePtr)],
        True,
    ),
    ("rgtp_poll", _c_int, [SurfacePtr, _c_int], True),
    ("rgtp_destroy_surface", None, [SurfacePtr], True),
    ("rgtp_get_exposure_id", _c_int, [SurfacePtr, _u8p], True),
    ("rgtp_progress", ctypes.c_float, [SurfacePtr], True),
    (
        "rgtp_pull_next",
        _c_int,
        [
            SurfacePtr,
            ctypes.c_void_p,
            _c_size_t,
            ctypes.POINTER(_c_size_t),
            ctypes.POINTER(ctypes.c_uint32),
        ],
        True,
    ),
    # The rest of the upstream header and our additions: looked up on demand so that a
    # library lacking one still serves everything else (calling it raises a clear error).
    (
        "rgtp_pull_start",
        _c_int,
        [
            SocketPtr,
            ctypes.POINTER(sockaddr_storage),
            _u8p,
            _cfg_p,
            ctypes.POINTER(SurfacePtr),
        ],
        False,
    ),
    (
        "rgtp_pull_start_with_key",
        _c_int,
        [
            SocketPtr,
            ctypes.POINTER(sockaddr_storage),
            _u8p,
            _u8p,
            _cfg_p,
            ctypes.POINTER(SurfacePtr),
        ],
        False,
    ),
    (
        "rgtp_expose_with_key",
        _c_int,
        [
            SocketPtr,
            ctypes.c_void_p,
            _c_size_t,
            _u8p,
            _cfg_p,
            ctypes.POINTER(SurfacePtr),
        ],
        False,
    ),
    (
        "rgtp_pull_start_ticket",
        _c_int,
        [SocketPtr, ctypes.c_char_p, _cfg_p, ctypes.POINTER(SurfacePtr)],
        False,
    ),
    ("rgtp_get_key", _c_int, [SurfacePtr, _u8p], False),
    (
        "rgtp_get_ticket",
        _c_int,
        [SurfacePtr, ctypes.c_char_p, _c_size_t, ctypes.POINTER(_c_size_t)],
        False,
    ),
    ("rgtp_get_stats", _c_int, [SurfacePtr, ctypes.POINTER(rgtp_stats_t)], False),
    (
        "rgtp_get_latency_stats",
        _c_int,
        [SurfacePtr, ctypes.POINTER(rgtp_latency_stats_t)],
        False,
    ),
    ("rgtp_set_log_callback", _c_int, [LOG_FN, ctypes.c_void_p], False),
    ("rgtp_set_log_level", _c_int, [_c_int], False),
    ("rgtp_set_allocator", _c_int, [ctypes.POINTER(rgtp_allocator_t)], False),
    ("rgtp_socket_create_ccsds", SocketPtr, [ctypes.c_char_p, _cfg_p], False),
    ("rgtp_socket_set_congestion", _c_int, [SocketPtr, ctypes.c_char_p], False),
    # gtUDP (rgtp.gtudp).
    (
        "rgtp_gtudp_open",
        _c_int,
        [ctypes.c_char_p, ctypes.POINTER(rgtp_gtudp_options_t), ctypes.POINTER(GtudpPtr)],
        False,
    ),
    ("rgtp_gtudp_close", None, [GtudpPtr], False),
    ("rgtp_gtudp_local_addr", _c_int, [GtudpPtr, ctypes.c_char_p, _c_size_t], False),
    ("rgtp_gtudp_send_to", _c_int, [GtudpPtr, ctypes.c_void_p, _c_size_t, ctypes.c_char_p], False),
    (
        "rgtp_gtudp_send_confirmed",
        _c_int,
        [GtudpPtr, ctypes.c_void_p, _c_size_t, ctypes.c_char_p, ctypes.c_uint32],
        False,
    ),
    (
        "rgtp_gtudp_recv_from",
        _c_int,
        [
            GtudpPtr,
            ctypes.c_void_p,
            _c_size_t,
            ctypes.POINTER(_c_size_t),
            ctypes.c_char_p,
            _c_size_t,
            ctypes.c_int32,
        ],
        False,
    ),
    ("rgtp_gtudp_flush", _c_int, [GtudpPtr, ctypes.c_uint32], False),
    ("rgtp_gtudp_stats", _c_int, [GtudpPtr, ctypes.POINTER(rgtp_gtudp_stats_t)], False),
    # TEJ (rgtp.tej).
    ("rgtp_tej_last_error", ctypes.c_char_p, [], False),
    ("rgtp_tej_connect", _c_int, [ctypes.c_char_p, ctypes.POINTER(TejPtr)], False),
    (
        "rgtp_tej_send",
        _c_int,
        [TejPtr, ctypes.c_uint8, ctypes.POINTER(ctypes.c_char_p), _c_size_t, _u8p, _c_size_t],
        False,
    ),
    (
        "rgtp_tej_send_bytes",
        _c_int,
        [
            TejPtr,
            ctypes.c_uint8,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.POINTER(_u8p),
            ctypes.POINTER(_c_size_t),
            _c_size_t,
            _u8p,
            _c_size_t,
        ],
        False,
    ),
    ("rgtp_tej_ping", _c_int, [TejPtr], False),
    ("rgtp_tej_pings_received", _c_int, [TejPtr, ctypes.POINTER(ctypes.c_uint64)], False),
    (
        "rgtp_tej_recv_to_dir",
        _c_int,
        [TejPtr, ctypes.c_char_p, ctypes.c_int32, ctypes.POINTER(TejFramePtr)],
        False,
    ),
    ("rgtp_tej_frame_status", ctypes.c_uint8, [TejFramePtr], False),
    ("rgtp_tej_frame_file_count", _c_size_t, [TejFramePtr], False),
    (
        "rgtp_tej_frame_file_name",
        ctypes.c_void_p,
        [TejFramePtr, _c_size_t, ctypes.POINTER(_c_size_t)],
        False,
    ),
    (
        "rgtp_tej_frame_file_path",
        ctypes.c_void_p,
        [TejFramePtr, _c_size_t, ctypes.POINTER(_c_size_t)],
        False,
    ),
    ("rgtp_tej_frame_file_size", ctypes.c_uint64, [TejFramePtr, _c_size_t], False),
    ("rgtp_tej_frame_message", ctypes.c_void_p, [TejFramePtr, ctypes.POINTER(_c_size_t)], False),
    ("rgtp_tej_frame_free", None, [TejFramePtr], False),
    ("rgtp_tej_close", _c_int, [TejPtr], False),
    ("rgtp_tej_listen", _c_int, [ctypes.c_char_p, ctypes.POINTER(TejListenerPtr)], False),
    (
        "rgtp_tej_listener_addr",
        _c_int,
        [TejListenerPtr, ctypes.c_char_p, _c_size_t, ctypes.POINTER(_c_size_t)],
        False,
    ),
    ("rgtp_tej_accept", _c_int, [TejListenerPtr, ctypes.c_int32, ctypes.POINTER(TejPtr)], False),
    ("rgtp_tej_listener_close", None, [TejListenerPtr], False),
    # Exposure sets (rgtp.files).
    ("rgtp_files_last_error", ctypes.c_char_p, [], False),
    (
        "rgtp_send_start",
        _c_int,
        [
            ctypes.POINTER(ctypes.c_char_p),
            _c_size_t,
            ctypes.POINTER(rgtp_send_options_t),
            ctypes.POINTER(SenderPtr),
        ],
        False,
    ),
    ("rgtp_sender_ticket", _c_size_t, [SenderPtr, ctypes.c_char_p, _c_size_t], False),
    ("rgtp_sender_stats", _c_int, [SenderPtr, ctypes.POINTER(rgtp_sender_stats_t)], False),
    ("rgtp_sender_stop", _c_int, [SenderPtr], False),
    ("rgtp_sender_free", None, [SenderPtr], False),
    (
        "rgtp_get",
        _c_int,
        [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.POINTER(rgtp_get_options_t),
            FilesProgressCb,
            ctypes.c_void_p,
            ctypes.POINTER(rgtp_get_result_t),
        ],
        False,
    ),
]


def _native_dir_candidates() -> List[Path]:
    here = Path(__file__).resolve().parent / "_native"
    if sys.platform == "win32":
        names = ["rgtp.dll", "librgtp.dll"]
    elif sys.platform == "darwin":
        names = ["librgtp.dylib", "librgtp.so"]
    else:
        names = ["librgtp.so"]
    return [here / n for n in names]


def find_library() -> Tuple[Optional[str], List[str]]:
    """(path or None, list of places tried) following the documented lookup order."""
    tried: List[str] = []
    env = os.environ.get("RGTP_LIB_PATH")
    if env:
        return env, [f"RGTP_LIB_PATH={env}"]
    tried.append("RGTP_LIB_PATH (unset)")
    for cand in _native_dir_candidates():
        tried.append(str(cand))
        if cand.is_file():
            return str(cand), tried
    found = ctypes.util.find_library("rgtp")
    tried.append('ctypes.util.find_library("rgtp")')
    return found, tried


class _Loaded:
    """The loaded library with its declared signatures."""

    def __init__(self, cdll: ctypes.CDLL, path: str) -> None:
        self.cdll = cdll
        self.path = path
        self.missing: List[str] = []
        for name, restype, argtypes, required in _SIGNATURES:
            try:
                fn = getattr(cdll, name)
            except AttributeError:
                if required:
                    raise LibraryNotFound(
                        f"{path} does not export {name}; it is not a compatible librgtp "
                        "(point RGTP_LIB_PATH at the right build)"
                    ) from None
                self.missing.append(name)
                continue
            fn.restype = restype
            fn.argtypes = argtypes

    def fn(self, name: str) -> Callable[..., Any]:
        """The C function ``name``; raises ``NotImplementedError`` if not exported."""
        if name in self.missing:
            raise NotImplementedError(
                f"the loaded librgtp ({self.path}) does not export {name}; "
                "it is older than this package"
            )
        return getattr(self.cdll, name)  # type: ignore[no-any-return]

    def has(self, name: str) -> bool:
        return name not in self.missing


_lock = threading.Lock()
_loaded: Optional[_Loaded] = None


def load() -> _Loaded:
    """The library, loaded on first use; raises :class:`LibraryNotFound`."""
    global _loaded
    if _loaded is not None:
        return _loaded
    with _lock:
        if _loaded is not None:
            return _loaded
        path, tried = find_library()
        if not path:
            raise LibraryNotFound(
                "cannot find librgtp: set RGTP_LIB_PATH to the path of librgtp.so "
                "(e.g. target/debug/librgtp.so after `cargo build -p rgtp-ffi`); tried: "
                + ", ".join(tried)
            )
        try:
            cdll = ctypes.CDLL(path)
        except OSError as e:
            where = "RGTP_LIB_PATH" if os.environ.get("RGTP_LIB_PATH") else "the found path"
            raise LibraryNotFound(
                f"cannot load librgtp from {path} ({where}): {e}; "
                "set RGTP_LIB_PATH to a built librgtp.so"
            ) from e
        _loaded = _Loaded(cdll, path)
        return _loaded


def loaded() -> Optional[_Loaded]:
    """The library if it is (or can be) loaded, else ``None`` - never raises."""
    try:
        return load()
    except (OSError, NotImplementedError):
        return None


# Flows (rgtp.flow): appended so the declarations above stay as they were.


class _FlowNode(ctypes.Structure):
    """Opaque ``rgtp_flow_node_t``."""


class _Flow(ctypes.Structure):
    """Opaque ``rgtp_flow_t``."""


class _FlowSet(ctypes.Structure):
    """Opaque ``rgtp_flow_set_t``."""


FlowNodePtr = ctypes.POINTER(_FlowNode)
FlowPtr = ctypes.POINTER(_Flow)
FlowSetPtr = ctypes.POINTER(_FlowSet)


class rgtp_flow_qos_t(ctypes.Structure):
    """``rgtp_flow_qos_t``; ``size`` must be set to ``ctypes.sizeof`` of it."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("delay", ctypes.c_uint32),
        ("bandwidth", ctypes.c_uint64),
        ("availability", ctypes.c_uint8),
        ("loss", ctypes.c_uint32),
        ("ber", ctypes.c_uint32),
        ("in_order", ctypes.c_uint8),
        ("max_gap", ctypes.c_uint32),
        ("cypher_s", ctypes.c_uint16),
        ("timeout", ctypes.c_uint32),
    ]


class rgtp_flow_event_t(ctypes.Structure):
    """``rgtp_flow_event_t``."""

    _fields_ = [("flow", ctypes.c_uint64), ("kind", ctypes.c_int)]


_qos_p = ctypes.POINTER(rgtp_flow_qos_t)
_SIGNATURES += [
    ("rgtp_flow_last_error", ctypes.c_char_p, [], False),
    ("rgtp_flow_qos_preset", _c_int, [ctypes.c_char_p, _qos_p], False),
    ("rgtp_flow_node_open", _c_int, [ctypes.c_char_p, ctypes.POINTER(FlowNodePtr)], False),
    ("rgtp_flow_node_close", None, [FlowNodePtr], False),
    ("rgtp_flow_node_addr", _c_size_t, [FlowNodePtr, ctypes.c_char_p, _c_size_t], False),
    ("rgtp_flow_register", _c_int, [FlowNodePtr, ctypes.c_char_p], False),
    ("rgtp_flow_unregister", _c_int, [FlowNodePtr, ctypes.c_char_p], False),
    (
        "rgtp_flow_alloc",
        _c_int,
        [FlowNodePtr, ctypes.c_char_p, _qos_p, ctypes.c_int32, ctypes.POINTER(FlowPtr)],
        False,
    ),
    (
        "rgtp_flow_accept",
        _c_int,
        [FlowNodePtr, ctypes.c_int32, _qos_p, ctypes.POINTER(FlowPtr)],
        False,
    ),
    (
        "rgtp_flow_join",
        _c_int,
        [FlowNodePtr, ctypes.c_char_p, _qos_p, ctypes.c_int32, ctypes.POINTER(FlowPtr)],
        False,
    ),
    (
        "rgtp_flow_write",
        _c_int,
        [FlowPtr, ctypes.c_void_p, _c_size_t, ctypes.c_int32, ctypes.POINTER(_c_size_t)],
        False,
    ),
    (
        "rgtp_flow_read",
        _c_int,
        [FlowPtr, ctypes.c_void_p, _c_size_t, ctypes.POINTER(_c_size_t), ctypes.c_int32],
        False,
    ),
    ("rgtp_flow_flush", _c_int, [FlowPtr, ctypes.c_int32], False),
    ("rgtp_flow_set_flags", _c_int, [FlowPtr, ctypes.c_uint32], False),
    ("rgtp_flow_flags", _c_int, [FlowPtr, ctypes.POINTER(ctypes.c_uint32)], False),
    ("rgtp_flow_id", _c_int, [FlowPtr, ctypes.POINTER(ctypes.c_uint64)], False),
    ("rgtp_flow_qos", _c_int, [FlowPtr, _qos_p], False),
    (
        "rgtp_flow_queue_lens",
        _c_int,
        [FlowPtr, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)],
        False,
    ),
    ("rgtp_flow_layers", _c_size_t, [FlowPtr, ctypes.c_char_p, _c_size_t], False),
    ("rgtp_flow_peer", _c_size_t, [FlowPtr, ctypes.c_char_p, _c_size_t], False),
    ("rgtp_flow_dealloc", _c_int, [FlowPtr], False),
    ("rgtp_flow_free", None, [FlowPtr], False),
    ("rgtp_flow_set_create", _c_int, [FlowNodePtr, ctypes.POINTER(FlowSetPtr)], False),
    ("rgtp_flow_set_destroy", None, [FlowSetPtr], False),
    ("rgtp_flow_set_add", _c_int, [FlowSetPtr, FlowPtr], False),
    ("rgtp_flow_set_remove", _c_int, [FlowSetPtr, FlowPtr], False),
    ("rgtp_flow_set_watch_allocs", _c_int, [FlowSetPtr, ctypes.c_bool], False),
    (
        "rgtp_flow_set_wait",
        _c_int,
        [
            FlowSetPtr,
            ctypes.POINTER(rgtp_flow_event_t),
            _c_size_t,
            ctypes.POINTER(_c_size_t),
            ctypes.c_int32,
        ],
        False,
    ),
]
