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


SocketPtr = ctypes.POINTER(_Socket)
SurfacePtr = ctypes.POINTER(_Surface)

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
