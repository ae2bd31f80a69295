"""Pure-Python and ctypes types of the RGTP C ABI.

Nothing in this module loads the native library: everything here can be used (and is
unit-tested) without ``librgtp``.  Struct field order mirrors ``rgtp.h``; fields may
only ever be appended there, so the layouts here only ever grow at the end too.
"""

from __future__ import annotations

import ctypes
import dataclasses
import enum
import socket
import sys
from collections.abc import Iterator, Mapping
from typing import Any, Dict, Optional, Tuple

# ── Error codes ──────────────────────────────────────────────────────────────

RGTP_OK = 0
RGTP_ERR_NOMEM = -1
RGTP_ERR_INVALID_ARG = -2
RGTP_ERR_SOCKET = -3
RGTP_ERR_CRYPTO_INIT = -4
RGTP_ERR_ENCRYPT = -5
RGTP_ERR_DECRYPT = -6
RGTP_ERR_AUTH_FAIL = -7
RGTP_ERR_MERKLE_FAIL = -8
RGTP_ERR_FEC_FAIL = -9
RGTP_ERR_TRUNCATED = -10
RGTP_ERR_CHUNK_INDEX_OOB = -11
RGTP_ERR_TIMEOUT = -12
RGTP_ERR_RATE_LIMITED = -13
RGTP_ERR_NOT_SUPPORTED = -14
RGTP_ERR_INTERNAL = -15


class ErrorCode(enum.IntEnum):
    """Every status an ``rgtp_*`` call can return."""

    OK = RGTP_OK
    NOMEM = RGTP_ERR_NOMEM
    INVALID_ARG = RGTP_ERR_INVALID_ARG
    SOCKET = RGTP_ERR_SOCKET
    CRYPTO_INIT = RGTP_ERR_CRYPTO_INIT
    ENCRYPT = RGTP_ERR_ENCRYPT
    DECRYPT = RGTP_ERR_DECRYPT
    AUTH_FAIL = RGTP_ERR_AUTH_FAIL
    MERKLE_FAIL = RGTP_ERR_MERKLE_FAIL
    FEC_FAIL = RGTP_ERR_FEC_FAIL
    TRUNCATED = RGTP_ERR_TRUNCATED
    CHUNK_INDEX_OOB = RGTP_ERR_CHUNK_INDEX_OOB
    TIMEOUT = RGTP_ERR_TIMEOUT
    RATE_LIMITED = RGTP_ERR_RATE_LIMITED
    NOT_SUPPORTED = RGTP_ERR_NOT_SUPPORTED
    INTERNAL = RGTP_ERR_INTERNAL

    @classmethod
    def from_code(cls, code: int) -> Optional["ErrorCode"]:
        """The member for ``code``, or ``None`` for a code this package does not know."""
        try:
            return cls(code)
        except ValueError:
            return None


#: Descriptions used when the native library is not loaded (``strerror`` prefers the
#: library's own text).
ERROR_DESCRIPTIONS: Dict[int, str] = {
    RGTP_OK: "success",
    RGTP_ERR_NOMEM: "out of memory",
    RGTP_ERR_INVALID_ARG: "invalid argument",
    RGTP_ERR_SOCKET: "socket error",
    RGTP_ERR_CRYPTO_INIT: "crypto initialisation failed",
    RGTP_ERR_ENCRYPT: "encryption failed",
    RGTP_ERR_DECRYPT: "decryption failed",
    RGTP_ERR_AUTH_FAIL: "authentication failed",
    RGTP_ERR_MERKLE_FAIL: "Merkle verification failed",
    RGTP_ERR_FEC_FAIL: "FEC recovery failed",
    RGTP_ERR_TRUNCATED: "truncated packet or buffer too small",
    RGTP_ERR_CHUNK_INDEX_OOB: "chunk index out of bounds",
    RGTP_ERR_TIMEOUT: "timed out",
    RGTP_ERR_RATE_LIMITED: "rate limited",
    RGTP_ERR_NOT_SUPPORTED: "not supported",
    RGTP_ERR_INTERNAL: "internal error",
}


class LogLevel(enum.IntEnum):
    """Levels of ``rgtp_set_log_level`` and of log events."""

    ERROR = 0
    WARN = 1
    INFO = 2
    DEBUG = 3


RGTP_LOG_ERROR = int(LogLevel.ERROR)
RGTP_LOG_WARN = int(LogLevel.WARN)
RGTP_LOG_INFO = int(LogLevel.INFO)
RGTP_LOG_DEBUG = int(LogLevel.DEBUG)


class MemoryProfile(enum.IntEnum):
    """``rgtp_config_t.memory_profile``."""

    FULL = 0
    EMBEDDED = 1
    MINIMAL = 2


RGTP_PROFILE_FULL = int(MemoryProfile.FULL)
RGTP_PROFILE_EMBEDDED = int(MemoryProfile.EMBEDDED)
RGTP_PROFILE_MINIMAL = int(MemoryProfile.MINIMAL)

#: ``*out_chunk_index`` from ``rgtp_pull_next`` once every chunk has been handed out.
RGTP_CHUNK_INDEX_NONE = 0xFFFFFFFF

EXPOSURE_ID_LEN = 16
KEY_LEN = 32
DEFAULT_CHUNK_SIZE = 1200

# ── C structs ────────────────────────────────────────────────────────────────

ALLOC_FN = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
FREE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


class rgtp_allocator_t(ctypes.Structure):
    """``rgtp_allocator_t``: custom allocation hooks (all NULL = malloc/free)."""

    _fields_ = [
        ("alloc", ALLOC_FN),
        ("free", FREE_FN),
        ("ctx", ctypes.c_void_p),
    ]


class rgtp_config_t(ctypes.Structure):
    """``rgtp_config_t``; zero-initialised means defaults."""

    _fields_ = [
        ("chunk_size", ctypes.c_uint32),
        ("window_size", ctypes.c_uint32),
        ("fec_enabled", ctypes.c_bool),
        ("fec_k", ctypes.c_uint8),
        ("fec_n", ctypes.c_uint8),
        ("merkle_proofs", ctypes.c_bool),
        ("raw_ethernet", ctypes.c_bool),
        ("eth_iface", ctypes.c_uint8 * 16),
        ("eth_vlan_id", ctypes.c_uint16),
        ("eth_vlan_pcp", ctypes.c_uint8),
        ("port", ctypes.c_uint16),
        ("timeout_ms", ctypes.c_int),
        ("memory_profile", ctypes.c_uint32),
        ("allocator", rgtp_allocator_t),
    ]


class rgtp_stats_t(ctypes.Structure):
    """``rgtp_stats_t``."""

    _fields_ = [
        ("bytes_sent", ctypes.c_uint64),
        ("bytes_received", ctypes.c_uint64),
        ("chunks_sent", ctypes.c_uint32),
        ("chunks_received", ctypes.c_uint32),
        ("auth_failures", ctypes.c_uint32),
        ("malformed_packets", ctypes.c_uint32),
        ("fec_recoveries", ctypes.c_uint32),
        ("nak_sent", ctypes.c_uint32),
        ("packet_loss_rate", ctypes.c_float),
        ("rtt_us", ctypes.c_uint32),
        ("pull_pressure", ctypes.c_uint32),
    ]


class rgtp_latency_stats_t(ctypes.Structure):
    """``rgtp_latency_stats_t``."""

    _fields_ = [
        ("mean_us", ctypes.c_uint32),
        ("jitter_us", ctypes.c_uint32),
        ("p99_us", ctypes.c_uint32),
        ("min_us", ctypes.c_uint32),
        ("max_us", ctypes.c_uint32),
        ("sample_count", ctypes.c_uint32),
    ]


class rgtp_log_kv_t(ctypes.Structure):
    """One ``{key, value}`` pair of a log event."""

    _fields_ = [
        ("key", ctypes.c_char_p),
        ("value", ctypes.c_char_p),
    ]


LOG_KV_MAX = 8


class rgtp_log_event_t(ctypes.Structure):
    """``rgtp_log_event_t``; only valid for the duration of the callback."""

    _fields_ = [
        ("timestamp_ns", ctypes.c_uint64),
        ("level", ctypes.c_int),
        ("component", ctypes.c_char_p),
        ("message", ctypes.c_char_p),
        ("kv", rgtp_log_kv_t * LOG_KV_MAX),
        ("kv_count", ctypes.c_int),
    ]


LOG_FN = ctypes.CFUNCTYPE(None, ctypes.POINTER(rgtp_log_event_t), ctypes.c_void_p)

# ── Socket addresses ─────────────────────────────────────────────────────────

# BSD-derived systems (macOS, *BSD) start every sockaddr with a length byte and use an
# 8-bit family; Linux (and Windows) use a 16-bit family.
_BSD_SOCKADDR = sys.platform == "darwin" or "bsd" in sys.platform


if _BSD_SOCKADDR:

    class sockaddr_in(ctypes.Structure):
        _fields_ = [
            ("sin_len", ctypes.c_uint8),
            ("sin_family", ctypes.c_uint8),
            ("sin_port", ctypes.c_uint8 * 2),
            ("sin_addr", ctypes.c_uint8 * 4),
            ("sin_zero", ctypes.c_uint8 * 8),
        ]

    class sockaddr_in6(ctypes.Structure):
        _fields_ = [
            ("sin6_len", ctypes.c_uint8),
            ("sin6_family", ctypes.c_uint8),
            ("sin6_port", ctypes.c_uint8 * 2),
            ("sin6_flowinfo", ctypes.c_uint32),
            ("sin6_addr", ctypes.c_uint8 * 16),
            ("sin6_scope_id", ctypes.c_uint32),
        ]

    class sockaddr_storage(ctypes.Structure):
        _fields_ = [
            ("ss_len", ctypes.c_uint8),
            ("ss_family", ctypes.c_uint8),
            ("_pad1", ctypes.c_char * 6),
            ("_align", ctypes.c_int64),
            ("_pad2", ctypes.c_char * 112),
        ]

else:

    class sockaddr_in(ctypes.Structure):  # type: ignore[no-redef]
        _fields_ = [
            ("sin_family", ctypes.c_uint16),
            ("sin_port", ctypes.c_uint8 * 2),  # network byte order
            ("sin_addr", ctypes.c_uint8 * 4),
            ("sin_zero", ctypes.c_uint8 * 8),
        ]

    class sockaddr_in6(ctypes.Structure):  # type: ignore[no-redef]
        _fields_ = [
            ("sin6_family", ctypes.c_uint16),
            ("sin6_port", ctypes.c_uint8 * 2),  # network byte order
            ("sin6_flowinfo", ctypes.c_uint32),
            ("sin6_addr", ctypes.c_uint8 * 16),
            ("sin6_scope_id", ctypes.c_uint32),
        ]

    class sockaddr_storage(ctypes.Structure):  # type: ignore[no-redef]
        _fields_ = [
            ("ss_family", ctypes.c_uint16),
            ("_pad", ctypes.c_char * 118),
            ("_align", ctypes.c_uint64),
        ]


assert ctypes.sizeof(sockaddr_storage) == 128


def _resolve(host: str, port: int) -> Tuple[int, Tuple[Any, ...]]:
    """Resolves ``host`` (IPv6 literals may be bracketed) to (family, sockaddr tuple)."""
    h = host.strip()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    infos = socket.getaddrinfo(h, port, 0, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    for family, _type, _proto, _canon, sa in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            return family, sa
    raise OSError(f"cannot resolve {host!r} to an IPv4 or IPv6 address")


def make_sockaddr(host: str, port: int) -> sockaddr_storage:
    """Builds a C ``struct sockaddr_storage`` for ``(host, port)``.

    ``host`` is an IPv4 or IPv6 literal (IPv6 optionally in brackets, with an optional
    ``%scope``) or a name, resolved with ``getaddrinfo``.
    """
    if not 0 <= int(port) <= 0xFFFF:
        raise ValueError(f"port {port} is out of range 0..65535")
    family, sa = _resolve(host, int(port))
    storage = sockaddr_storage()
    port_be = int(port).to_bytes(2, "big")
    if family == socket.AF_INET:
        sin = sockaddr_in.from_buffer(storage)
        if _BSD_SOCKADDR:
            sin.sin_len = ctypes.sizeof(sockaddr_in)
        sin.sin_family = socket.AF_INET
        sin.sin_port[:] = list(port_be)
        sin.sin_addr[:] = list(socket.inet_pton(socket.AF_INET, sa[0]))
    else:
        sin6 = sockaddr_in6.from_buffer(storage)
        if _BSD_SOCKADDR:
            sin6.sin6_len = ctypes.sizeof(sockaddr_in6)
        sin6.sin6_family = socket.AF_INET6
        sin6.sin6_port[:] = list(port_be)
        addr = sa[0].split("%", 1)[0]
        sin6.sin6_addr[:] = list(socket.inet_pton(socket.AF_INET6, addr))
        sin6.sin6_flowinfo = socket.htonl(sa[2]) if len(sa) > 2 else 0
        sin6.sin6_scope_id = sa[3] if len(sa) > 3 else 0
    return storage


def parse_sockaddr(storage: sockaddr_storage) -> Tuple[str, int]:
    """The inverse of :func:`make_sockaddr` (for tests and diagnostics)."""
    raw = bytes(storage)
    family = raw[1] if _BSD_SOCKADDR else int.from_bytes(raw[0:2], sys.byteorder)
    if family == socket.AF_INET:
        sin = sockaddr_in.from_buffer_copy(raw[: ctypes.sizeof(sockaddr_in)])
        return (
            socket.inet_ntop(socket.AF_INET, bytes(sin.sin_addr)),
            int.from_bytes(bytes(sin.sin_port), "big"),
        )
    if family == socket.AF_INET6:
        sin6 = sockaddr_in6.from_buffer_copy(raw[: ctypes.sizeof(sockaddr_in6)])
        return (
            socket.inet_ntop(socket.AF_INET6, bytes(sin6.sin6_addr)),
            int.from_bytes(bytes(sin6.sin6_port), "big"),
        )
    raise ValueError(f"unknown address family {family}")


# ── Friendly Python views ────────────────────────────────────────────────────


@dataclasses.dataclass
class Config:
    """Friendly form of ``rgtp_config_t``; every zero/None means "library default"."""

    chunk_size: int = 0
    window_size: int = 0
    fec_enabled: bool = False
    fec_k: int = 0
    fec_n: int = 0
    merkle_proofs: bool = False
    raw_ethernet: bool = False
    eth_iface: str = ""
    eth_vlan_id: int = 0
    eth_vlan_pcp: int = 0
    port: int = 0
    #: Puller: milliseconds for the handshake, for one ``pull_next`` wait, and without
    #: progress before the pull fails (librgtp uses one value for all three);
    #: ``None``/0 = library defaults (5000 ms handshake, 10000 ms otherwise), -1 = infinite.
    timeout_ms: Optional[int] = None
    memory_profile: int = MemoryProfile.FULL

    def to_struct(self) -> rgtp_config_t:
        """The C struct for this configuration (allocator left NULL = malloc/free)."""
        c = rgtp_config_t()
        c.chunk_size = _u(self.chunk_size, 32, "chunk_size")
        c.window_size = _u(self.window_size, 32, "window_size")
        c.fec_enabled = bool(self.fec_enabled)
        c.fec_k = _u(self.fec_k, 8, "fec_k")
        c.fec_n = _u(self.fec_n, 8, "fec_n")
        c.merkle_proofs = bool(self.merkle_proofs)
        c.raw_ethernet = bool(self.raw_ethernet)
        iface = self.eth_iface.encode()
        if len(iface) > 15:
            raise ValueError("eth_iface is at most 15 bytes (NUL-terminated in 16)")
        c.eth_iface[: len(iface)] = list(iface)
        c.eth_vlan_id = _u(self.eth_vlan_id, 16, "eth_vlan_id")
        c.eth_vlan_pcp = _u(self.eth_vlan_pcp, 8, "eth_vlan_pcp")
        c.port = _u(self.port, 16, "port")
        c.timeout_ms = 0 if self.timeout_ms is None else int(self.timeout_ms)
        c.memory_profile = _u(int(self.memory_profile), 32, "memory_profile")
        return c

    @classmethod
    def from_struct(cls, c: rgtp_config_t) -> "Config":
        """The dataclass for a C struct."""
        iface = bytes(c.eth_iface).split(b"\0", 1)[0].decode(errors="replace")
        return cls(
            chunk_size=c.chunk_size,
            window_size=c.window_size,
            fec_enabled=bool(c.fec_enabled),
            fec_k=c.fec_k,
            fec_n=c.fec_n,
            merkle_proofs=bool(c.merkle_proofs),
            raw_ethernet=bool(c.raw_ethernet),
            eth_iface=iface,
            eth_vlan_id=c.eth_vlan_id,
            eth_vlan_pcp=c.eth_vlan_pcp,
            port=c.port,
            timeout_ms=c.timeout_ms or None,
            memory_profile=c.memory_profile,
        )


def _u(value: int, bits: int, name: str) -> int:
    v = int(value)
    if not 0 <= v < (1 << bits):
        raise ValueError(f"{name}={value} does not fit in uint{bits}_t")
    return v


class _MappingMixin(Mapping):  # type: ignore[type-arg]
    """Makes a dataclass readable like the dict 1.0.0 returned (``stats["bytes_sent"]``)."""

    def __getitem__(self, key: str) -> Any:
        if key in self._keys():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def _keys(self) -> Tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self))  # type: ignore[arg-type]

    def as_dict(self) -> Dict[str, Any]:
        return {k: getattr(self, k) for k in self._keys()}


@dataclasses.dataclass(eq=True)
class Stats(_MappingMixin):
    """Every ``rgtp_stats_t`` field, plus ``progress`` (all 1.0.0 returned)."""

    bytes_sent: int = 0
    bytes_received: int = 0
    chunks_sent: int = 0
    chunks_received: int = 0
    auth_failures: int = 0
    malformed_packets: int = 0
    fec_recoveries: int = 0
    nak_sent: int = 0
    packet_loss_rate: float = 0.0
    rtt_us: int = 0
    pull_pressure: int = 0
    progress: float = 0.0

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def from_struct(cls, s: rgtp_stats_t, progress: float = 0.0) -> "Stats":
        kw = {f[0]: getattr(s, f[0]) for f in rgtp_stats_t._fields_}
        return cls(progress=progress, **kw)


@dataclasses.dataclass(eq=True)
class LatencyStats(_MappingMixin):
    """``rgtp_latency_stats_t``."""

    mean_us: int = 0
    jitter_us: int = 0
    p99_us: int = 0
    min_us: int = 0
    max_us: int = 0
    sample_count: int = 0

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def from_struct(cls, s: rgtp_latency_stats_t) -> "LatencyStats":
        return cls(**{f[0]: getattr(s, f[0]) for f in rgtp_latency_stats_t._fields_})


@dataclasses.dataclass(frozen=True)
class LogEvent:
    """A structured log event, copied out of the library's ``rgtp_log_event_t``."""

    timestamp_ns: int
    level: int
    component: str
    message: str
    fields: Dict[str, str]

    @property
    def level_name(self) -> str:
        try:
            return LogLevel(self.level).name
        except ValueError:
            return str(self.level)

    @classmethod
    def from_struct(cls, ev: rgtp_log_event_t) -> "LogEvent":
        def s(b: Optional[bytes]) -> str:
            return b.decode("utf-8", errors="replace") if b else ""

        fields: Dict[str, str] = {}
        for i in range(max(0, min(int(ev.kv_count), LOG_KV_MAX))):
            kv = ev.kv[i]
            if kv.key:
                fields[s(kv.key)] = s(kv.value)
        return cls(
            timestamp_ns=int(ev.timestamp_ns),
            level=int(ev.level),
            component=s(ev.component),
            message=s(ev.message),
            fields=fields,
        )


# ── Tickets ──────────────────────────────────────────────────────────────────

CIPHERS = ("aes-256-gcm", "chacha20-poly1305")
HASHES = ("sha256", "blake3", "blake2b-256")


class TicketError(ValueError):
    """A string that is not a valid ``rgtp://`` ticket; the message names the part."""


@dataclasses.dataclass(frozen=True)
class Ticket:
    """``rgtp://HOST:PORT/EXPOSURE_ID?cipher=..&hash=..#KEY`` (the key never hits the wire)."""

    host: str
    port: int
    exposure_id: bytes
    key: bytes = dataclasses.field(repr=False)
    cipher: Optional[str] = None
    hash: Optional[str] = None

    @classmethod
    def parse(cls, text: str) -> "Ticket":
        s = text.strip()
        if not s.startswith("rgtp://"):
            raise TicketError(
                "a ticket starts with rgtp:// (copy the whole line `rgtp expose` printed)"
            )
        rest = s[len("rgtp://") :]
        if "#" not in rest:
            raise TicketError(
                "the key after '#' must be 64 hex digits; without it the data cannot be decrypted"
            )
        before_key, key_hex = rest.split("#", 1)
        key = _hex(key_hex, KEY_LEN)
        if key is None:
            raise TicketError(
                "the key after '#' must be 64 hex digits; without it the data cannot be decrypted"
            )
        path, _, query = before_key.partition("?")
        if "/" not in path:
            raise TicketError("the Exposure_ID after the address must be 32 hex digits")
        addr, id_hex = path.rsplit("/", 1)
        eid = _hex(id_hex, EXPOSURE_ID_LEN)
        if eid is None:
            raise TicketError("the Exposure_ID after the address must be 32 hex digits")
        bad_addr = "the address part must be HOST:PORT, e.g. 127.0.0.1:9000 or [::1]:9000"
        if ":" not in addr:
            raise TicketError(bad_addr)
        host, port_s = addr.rsplit(":", 1)
        if not host or (":" in host and not (host.startswith("[") and host.endswith("]"))):
            raise TicketError(bad_addr)
        if not port_s.isdigit() or int(port_s) > 0xFFFF:
            raise TicketError(bad_addr)
        cipher: Optional[str] = None
        hash_: Optional[str] = None
        for kv in (p for p in query.split("&") if p):
            k, eq, v = kv.partition("=")
            if eq and k == "cipher" and v in CIPHERS:
                cipher = v
            elif eq and k == "hash" and v in HASHES:
                hash_ = v
            else:
                raise TicketError(
                    f"unknown ticket parameter {kv!r} (known: cipher={'|'.join(CIPHERS)}, "
                    f"hash={'|'.join(HASHES)})"
                )
        return cls(host=host, port=int(port_s), exposure_id=eid, key=key, cipher=cipher, hash=hash_)

    @property
    def address(self) -> Tuple[str, int]:
        """``(host, port)`` with IPv6 brackets removed, ready for ``pull_start``."""
        h = self.host
        if h.startswith("[") and h.endswith("]"):
            h = h[1:-1]
        return h, self.port

    def __str__(self) -> str:
        out = f"rgtp://{self.host}:{self.port}/{self.exposure_id.hex()}"
        params = []
        if self.cipher:
            params.append(f"cipher={self.cipher}")
        if self.hash:
            params.append(f"hash={self.hash}")
        if params:
            out += "?" + "&".join(params)
        return out + "#" + self.key.hex()


def _hex(s: str, n: int) -> Optional[bytes]:
    if len(s) != 2 * n:
        return None
    if any(c not in "0123456789abcdefABCDEF" for c in s):
        return None
    b = bytes.fromhex(s)
    return b if len(b) == n else None


def parse_key(key: "bytes | str") -> bytes:
    """A 32-byte key from bytes or 64 hex digits."""
    if isinstance(key, str):
        k = _hex(key.strip(), KEY_LEN)
        if k is None:
            raise ValueError("a key is 64 hex digits (32 bytes)")
        return k
    k = bytes(key)
    if len(k) != KEY_LEN:
        raise ValueError(f"a key is {KEY_LEN} bytes, got {len(k)}")
    return k
