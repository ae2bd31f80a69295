"""Unit tests that need neither the network nor (except where noted) the library."""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import rgtp
from rgtp import _types
from rgtp._files import PartialFile

from conftest import PKG_ROOT, REPO_ROOT, have, py_cli

ALL_CODES = {
    "RGTP_OK": 0,
    "RGTP_ERR_NOMEM": -1,
    "RGTP_ERR_INVALID_ARG": -2,
    "RGTP_ERR_SOCKET": -3,
    "RGTP_ERR_CRYPTO_INIT": -4,
    "RGTP_ERR_ENCRYPT": -5,
    "RGTP_ERR_DECRYPT": -6,
    "RGTP_ERR_AUTH_FAIL": -7,
    "RGTP_ERR_MERKLE_FAIL": -8,
    "RGTP_ERR_FEC_FAIL": -9,
    "RGTP_ERR_TRUNCATED": -10,
    "RGTP_ERR_CHUNK_INDEX_OOB": -11,
    "RGTP_ERR_TIMEOUT": -12,
    "RGTP_ERR_RATE_LIMITED": -13,
    "RGTP_ERR_NOT_SUPPORTED": -14,
    "RGTP_ERR_INTERNAL": -15,
}

ID = "ab" * 16
KEY = "11" * 32


# ── API surface ──────────────────────────────────────────────────────────────

PUBLISHED_1_0_0 = [
    "RgtpError", "_check", "init", "cleanup", "version", "strerror", "Socket", "Surface",
    "expose", "poll", "pull_start", "pull_next", "progress", "get_stats", "async_expose",
    "async_pull_next", "__version__",
]


@pytest.mark.parametrize("name", PUBLISHED_1_0_0)
def test_superset_of_published_api(name: str) -> None:
    assert hasattr(rgtp, name)


def test_extensions_present() -> None:
    for name in ["pull_ticket", "get_latency_stats", "set_log_callback", "set_log_level",
                 "ErrorCode", "Config", "rgtp_config_t", "Stats", "LatencyStats", "LogEvent"]:
        assert hasattr(rgtp, name), name
    assert callable(rgtp.Surface.key) and callable(rgtp.Surface.ticket)
    import rgtp.aio as aio

    for name in ["expose", "pull_next", "pull_file", "serve"]:
        assert callable(getattr(aio, name))
    assert (Path(rgtp.__file__).parent / "py.typed").is_file()


# ── Error codes ──────────────────────────────────────────────────────────────


def test_error_constants_and_enum() -> None:
    for name, value in ALL_CODES.items():
        assert getattr(rgtp, name) == value
        member = rgtp.ErrorCode[name.replace("RGTP_ERR_", "").replace("RGTP_", "")]
        assert member == value and isinstance(member, int)
    assert len(rgtp.ErrorCode) == len(ALL_CODES)
    assert rgtp.ErrorCode.from_code(-12) is rgtp.ErrorCode.TIMEOUT
    assert rgtp.ErrorCode.from_code(-99) is None


def test_fallback_descriptions_cover_every_code() -> None:
    for code in ALL_CODES.values():
        assert _types.ERROR_DESCRIPTIONS[code]


def test_rgtp_error_carries_code() -> None:
    e = rgtp.RgtpError(-7)
    assert e.code == -7 and e.error_code is rgtp.ErrorCode.AUTH_FAIL
    assert "-7" in str(e) and e.message
    with pytest.raises(rgtp.RgtpError) as ei:
        rgtp._check(-12)
    assert ei.value.code == rgtp.RGTP_ERR_TIMEOUT
    rgtp._check(0)


def test_strerror_of_every_code_with_library(lib: str) -> None:
    texts = set()
    for code in ALL_CODES.values():
        t = rgtp.strerror(code)
        assert t and t != "unknown error", code
        texts.add(t)
    assert len(texts) == len(ALL_CODES), "every code has its own text"
    assert rgtp.strerror(-1000) == "unknown error"
    assert rgtp.strerror(rgtp.RGTP_ERR_AUTH_FAIL) == "authentication failed"


# ── Struct layouts against the C header ──────────────────────────────────────

HEADER = REPO_ROOT / "crates" / "rgtp-ffi" / "include" / "rgtp.h"

STRUCTS = {
    "rgtp_config_t": rgtp.rgtp_config_t,
    "rgtp_stats_t": rgtp.rgtp_stats_t,
    "rgtp_latency_stats_t": rgtp.rgtp_latency_stats_t,
    "rgtp_allocator_t": rgtp.rgtp_allocator_t,
    "rgtp_log_event_t": rgtp.rgtp_log_event_t,
}


def test_struct_sizes_fixed_expectations() -> None:
    # LP64 (x86-64 / aarch64 Linux and macOS).
    if ctypes.sizeof(ctypes.c_void_p) == 8:
        assert ctypes.sizeof(rgtp.rgtp_config_t) == 72
        assert ctypes.sizeof(rgtp.rgtp_stats_t) == 56
        assert ctypes.sizeof(rgtp.rgtp_latency_stats_t) == 24
        assert ctypes.sizeof(rgtp.rgtp_allocator_t) == 24
        assert ctypes.sizeof(rgtp.rgtp_log_event_t) == 168
    assert ctypes.sizeof(rgtp.sockaddr_storage) == 128


def test_struct_layouts_match_c_header(tmp_path: Path) -> None:
    """sizeof and every field offset, as a C compiler computes them from rgtp.h."""
    if not HEADER.is_file():
        pytest.fail(f"the C header {HEADER} does not exist (the library's contract)")
    cc = os.environ.get("CC") or next((c for c in ("cc", "gcc", "clang") if have(c)), None)
    if cc is None:
        pytest.skip("no C compiler to evaluate the header with")
    lines = []
    for cname, st in STRUCTS.items():
        lines.append(f'printf("{cname} size %zu\\n", sizeof({cname}));')
        for fname, *_ in st._fields_:
            lines.append(
                f'printf("{cname} {fname} %zu\\n", offsetof({cname}, {fname}));'
            )
    lines.append('printf("sockaddr_storage size %zu\\n", sizeof(struct sockaddr_storage));')
    src = tmp_path / "layout.c"
    src.write_text(
        "#include <stddef.h>\n#include <stdio.h>\n#include <sys/socket.h>\n"
        f'#include "{HEADER}"\nint main(void) {{\n' + "\n".join(lines) + "\nreturn 0;\n}\n"
    )
    exe = tmp_path / "layout"
    r = subprocess.run([cc, "-std=c11", "-o", str(exe), str(src)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, f"compiling against rgtp.h failed:\n{r.stderr}"
    out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=10).stdout
    seen = 0
    for line in out.splitlines():
        cname, what, num = line.split()
        if cname == "sockaddr_storage":
            assert ctypes.sizeof(rgtp.sockaddr_storage) == int(num)
            continue
        st = STRUCTS[cname]
        got = ctypes.sizeof(st) if what == "size" else getattr(st, what).offset
        assert got == int(num), f"{cname}.{what}: ctypes {got}, C {num}"
        seen += 1
    assert seen == sum(1 + len(s._fields_) for s in STRUCTS.values())


def test_header_declares_every_symbol_we_bind() -> None:
    if not HEADER.is_file():
        pytest.fail(f"the C header {HEADER} does not exist")
    text = HEADER.read_text()
    for name, *_ in rgtp._lib._SIGNATURES:
        assert name in text, f"{name} not declared in rgtp.h"


# ── Config ───────────────────────────────────────────────────────────────────


def test_config_defaults_are_zero() -> None:
    raw = bytes(rgtp.Config().to_struct())
    assert raw == bytes(len(raw))


def test_config_to_struct_and_back() -> None:
    c = rgtp.Config(chunk_size=1400, window_size=32, fec_enabled=True, fec_k=10, fec_n=14,
                    merkle_proofs=True, eth_iface="eth0", eth_vlan_id=100, eth_vlan_pcp=5,
                    port=9123, timeout_ms=2500, memory_profile=rgtp.MemoryProfile.EMBEDDED)
    s = c.to_struct()
    assert (s.chunk_size, s.window_size, s.fec_k, s.fec_n, s.port, s.timeout_ms) == (
        1400, 32, 10, 14, 9123, 2500)
    assert s.fec_enabled and s.merkle_proofs and not s.raw_ethernet
    assert bytes(s.eth_iface) == b"eth0" + bytes(12)
    assert s.memory_profile == 1 and not s.allocator.alloc and not s.allocator.ctx
    assert rgtp.Config.from_struct(s) == c
    assert rgtp.Config(timeout_ms=-1).to_struct().timeout_ms == -1


@pytest.mark.parametrize("kw", [{"port": 70000}, {"fec_k": 256}, {"chunk_size": -1},
                                {"eth_iface": "x" * 16}])
def test_config_rejects_out_of_range(kw: dict) -> None:
    with pytest.raises(ValueError):
        rgtp.Config(**kw).to_struct()


# ── Stats / log events as Python objects ─────────────────────────────────────


def test_stats_dataclass_is_dict_compatible() -> None:
    raw = rgtp.rgtp_stats_t(bytes_sent=10, bytes_received=20, chunks_sent=1, chunks_received=2,
                            auth_failures=3, malformed_packets=4, fec_recoveries=5, nak_sent=6,
                            packet_loss_rate=0.5, rtt_us=7, pull_pressure=8)
    s = rgtp.Stats.from_struct(raw, progress=0.25)
    assert s.bytes_sent == 10 and s["bytes_sent"] == 10 and s.get("pull_pressure") == 8
    assert s.get("missing", 0) == 0 and "rtt_us" in s
    d = dict(s)
    for name, *_ in rgtp.rgtp_stats_t._fields_:
        assert name in d
    assert d["progress"] == 0.25 and s.packet_loss_rate == 0.5
    with pytest.raises(KeyError):
        s["nope"]


def test_log_event_from_struct() -> None:
    ev = rgtp.rgtp_log_event_t()
    ev.timestamp_ns = 123
    ev.level = rgtp.RGTP_LOG_WARN
    ev.component = b"rgtp_ffi"
    ev.message = b"hello"
    ev.kv[0].key, ev.kv[0].value = b"a", b"1"
    ev.kv[1].key, ev.kv[1].value = b"b", b"two"
    ev.kv_count = 2
    e = rgtp.LogEvent.from_struct(ev)
    assert (e.timestamp_ns, e.level, e.level_name, e.component, e.message) == (
        123, 1, "WARN", "rgtp_ffi", "hello")
    assert e.fields == {"a": "1", "b": "two"}
    ev.kv_count = 99  # never read past the array
    assert len(rgtp.LogEvent.from_struct(ev).fields) == 2


# ── Socket addresses ─────────────────────────────────────────────────────────


@pytest.mark.skipif(sys.platform != "linux", reason="byte layout checked for Linux")
def test_sockaddr_ipv4_layout() -> None:
    raw = bytes(rgtp.make_sockaddr("192.0.2.7", 9000))
    assert len(raw) == 128
    assert int.from_bytes(raw[0:2], sys.byteorder) == socket.AF_INET
    assert raw[2:4] == (9000).to_bytes(2, "big")
    assert raw[4:8] == bytes([192, 0, 2, 7])
    assert raw[8:] == bytes(120)


@pytest.mark.skipif(sys.platform != "linux", reason="byte layout checked for Linux")
@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_sockaddr_ipv6_layout(host: str) -> None:
    raw = bytes(rgtp.make_sockaddr(host, 443))
    assert int.from_bytes(raw[0:2], sys.byteorder) == socket.AF_INET6
    assert raw[2:4] == (443).to_bytes(2, "big")
    assert raw[4:8] == bytes(4)  # flowinfo
    assert raw[8:24] == socket.inet_pton(socket.AF_INET6, "::1")
    assert raw[24:28] == bytes(4)  # scope id


def test_sockaddr_round_trip_and_errors() -> None:
    assert _types.parse_sockaddr(rgtp.make_sockaddr("127.0.0.1", 1)) == ("127.0.0.1", 1)
    assert _types.parse_sockaddr(rgtp.make_sockaddr("2001:db8::5", 65535)) == ("2001:db8::5", 65535)
    assert _types.parse_sockaddr(rgtp.make_sockaddr("localhost", 7))[0] in ("127.0.0.1", "::1")
    with pytest.raises(ValueError):
        rgtp.make_sockaddr("127.0.0.1", 65536)
    with pytest.raises(OSError):
        rgtp.make_sockaddr("no-such-host.invalid", 1)


# ── Tickets ──────────────────────────────────────────────────────────────────


def test_ticket_parse_full() -> None:
    t = rgtp.Ticket.parse(f"  rgtp://127.0.0.1:9000/{ID}?cipher=aes-256-gcm&hash=sha256#{KEY}\n")
    assert (t.host, t.port, t.cipher, t.hash) == ("127.0.0.1", 9000, "aes-256-gcm", "sha256")
    assert t.exposure_id == bytes.fromhex(ID) and t.key == bytes.fromhex(KEY)
    assert t.address == ("127.0.0.1", 9000)
    assert KEY not in repr(t), "repr must not leak the key"


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "example.invalid"])
@pytest.mark.parametrize("query", ["", "?cipher=chacha20-poly1305", "?hash=blake3",
                                   "?cipher=aes-256-gcm&hash=blake2b-256"])
def test_ticket_round_trip(host: str, query: str) -> None:
    text = f"rgtp://{host}:65535/{ID}{query}#{KEY}"
    t = rgtp.Ticket.parse(text)
    assert str(t) == text and rgtp.Ticket.parse(str(t)) == t
    assert t.address[0] == host.strip("[]")


@pytest.mark.parametrize("text, part", [
    ("http://x", "rgtp://"),
    (f"rgtp://127.0.0.1:9000/{ID}", "key"),
    (f"rgtp://127.0.0.1:9000/{ID}#{KEY[2:]}", "key"),
    (f"rgtp://127.0.0.1:9000/{ID}#{'zz' * 32}", "key"),
    (f"rgtp://127.0.0.1:9000/abcd#{KEY}", "Exposure_ID"),
    (f"rgtp://127.0.0.1:9000#{KEY}", "Exposure_ID"),
    (f"rgtp://127.0.0.1:x/{ID}#{KEY}", "HOST:PORT"),
    (f"rgtp://127.0.0.1:70000/{ID}#{KEY}", "HOST:PORT"),
    (f"rgtp://::1:9/{ID}#{KEY}", "HOST:PORT"),
    (f"rgtp://:9/{ID}#{KEY}", "HOST:PORT"),
    (f"rgtp://h:9/{ID}?cipher=rot13#{KEY}", "parameter"),
    (f"rgtp://h:9/{ID}?mode=x#{KEY}", "parameter"),
])
def test_ticket_errors_name_the_part(text: str, part: str) -> None:
    with pytest.raises(rgtp.TicketError) as ei:
        rgtp.Ticket.parse(text)
    assert part in str(ei.value)
    assert isinstance(ei.value, ValueError)


def test_parse_key() -> None:
    assert rgtp.parse_key(KEY) == bytes.fromhex(KEY)
    assert rgtp.parse_key(bytes(32)) == bytes(32)
    for bad in ["11" * 31, "g" * 64, b"x" * 31]:
        with pytest.raises(ValueError):
            rgtp.parse_key(bad)  # type: ignore[arg-type]


# ── Chunk placement ──────────────────────────────────────────────────────────


@pytest.mark.parametrize("sizes, chunk", [([], 4), ([3], 4), ([4, 1], 4), ([4, 4, 4], 4),
                                          ([4, 4, 2], 4)])
def test_partial_file_places_chunks_at_offsets(tmp_path: Path, sizes: list, chunk: int) -> None:
    import random

    data = os.urandom(sum(sizes))
    chunks = []
    off = 0
    for i, n in enumerate(sizes):
        chunks.append((i, data[off:off + n]))
        off += n
    for known in (None, chunk):
        order = chunks[:]
        random.Random(len(sizes)).shuffle(order)
        out = tmp_path / f"out-{known}"
        pf = PartialFile(out, known)
        assert Path(pf.partial).name == out.name + ".rgtp-partial"
        for i, d in order + order[:1]:  # a duplicate is ignored
            pf.write_chunk(i, d)
        pf.finish()
        assert out.read_bytes() == data
        assert not Path(pf.partial).exists()


# ── Library lookup ───────────────────────────────────────────────────────────


def _probe(env: dict) -> subprocess.CompletedProcess:
    code = textwrap.dedent("""
        import rgtp
        try:
            rgtp.init()
        except OSError as e:
            print("ERR", e)
        else:
            print("OK", rgtp.library_path())
    """)
    e = {k: v for k, v in os.environ.items() if k != "RGTP_LIB_PATH"}
    e["PYTHONPATH"] = os.pathsep.join([str(PKG_ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=e, timeout=60)


def test_library_lookup_bad_path_names_variable() -> None:
    r = _probe({"RGTP_LIB_PATH": "/nonexistent/librgtp.so"})
    assert r.stdout.startswith("ERR"), r.stdout + r.stderr
    assert "RGTP_LIB_PATH" in r.stdout and "/nonexistent/librgtp.so" in r.stdout


def test_library_lookup_unset_names_variable() -> None:
    import ctypes.util

    if ctypes.util.find_library("rgtp"):
        pytest.skip("a system librgtp is installed")
    if (Path(rgtp.__file__).parent / "_native" / "librgtp.so").exists():
        pytest.skip("a packaged librgtp is present")
    r = _probe({})
    assert r.stdout.startswith("ERR") and "RGTP_LIB_PATH" in r.stdout, r.stdout + r.stderr


def test_library_lookup_env_path(lib: str) -> None:
    r = _probe({"RGTP_LIB_PATH": lib})
    assert r.stdout.strip() == f"OK {lib}", r.stdout + r.stderr


def test_import_needs_no_library() -> None:
    r = _probe({"RGTP_LIB_PATH": "/nonexistent/librgtp.so"})
    assert r.returncode == 0 and "Traceback" not in r.stderr


# ── CLI argument errors (no network) ─────────────────────────────────────────


def _cli(name: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(py_cli(name) + list(args), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_pull_cli_bad_ticket_exit_2(tmp_path: Path) -> None:
    r = _cli("rgtp-pull", f"rgtp://127.0.0.1:9000/abcd#{KEY}", str(tmp_path / "o"))
    assert r.returncode == 2, r.stderr
    assert "Exposure_ID" in r.stderr and "Traceback" not in r.stderr


def test_pull_cli_usage_exit_2() -> None:
    assert _cli("rgtp-pull").returncode == 2
    assert _cli("rgtp-pull", "a", "b", "c", "d").returncode == 2


def test_pull_cli_missing_output_dir_exit_6(tmp_path: Path) -> None:
    r = _cli("rgtp-pull", f"rgtp://127.0.0.1:9/{ID}#{KEY}", str(tmp_path / "no" / "dir" / "o"))
    assert r.returncode == 6, r.stderr
    assert "does not exist" in r.stderr


def test_expose_cli_missing_file_exit_6(tmp_path: Path) -> None:
    r = _cli("rgtp-expose", str(tmp_path / "missing.bin"), "--port", "0")
    assert r.returncode == 6, r.stderr
    assert "cannot read" in r.stderr


def test_expose_cli_bad_key_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x")
    r = _cli("rgtp-expose", str(f), "--key", "abc")
    assert r.returncode == 2 and "64 hex" in r.stderr, r.stderr
