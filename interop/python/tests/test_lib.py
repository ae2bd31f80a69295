"""In-process tests against librgtp: expose in a thread, pull in the test."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import List

import pytest

import rgtp

from conftest import free_udp_port, payload

SIZES = [0, 1, 1200, 1201, 1 << 20]
PULL_CFG = rgtp.Config(timeout_ms=5000)


def test_version_and_init(lib: str) -> None:
    assert rgtp.version()
    rgtp.init()
    rgtp.init()  # idempotent


@pytest.mark.parametrize("size", SIZES)
def test_ticket_pull_byte_exact(serve, size: int) -> None:
    data = payload(size, seed=size)
    e = serve(data)
    t = rgtp.Ticket.parse(e.ticket)
    assert t.port == e.port and t.exposure_id == e.surface.exposure_id()
    assert t.key == e.surface.key()
    with rgtp.Socket() as sock, rgtp.pull_ticket(sock, e.ticket, PULL_CFG) as s:
        got = rgtp.pull_bytes(s, idle_timeout=20)
        assert got == data
        assert s.progress() == 1.0 and rgtp.progress(s) == 1.0
        # After the end, pull_next keeps saying "no more".
        assert rgtp.pull_next(s) == (b"", rgtp.RGTP_CHUNK_INDEX_NONE)


@pytest.mark.parametrize("size", [1201, 100_000])
def test_pull_start_with_address_and_key(serve, size: int) -> None:
    data = payload(size, seed=7)
    e = serve(data)
    with rgtp.Socket() as sock:
        s = rgtp.pull_start(sock, ("127.0.0.1", e.port), e.surface.exposure_id(),
                            key=e.surface.key(), config=PULL_CFG)
        with s:
            chunks = {}
            for idx, chunk in rgtp.iter_chunks(s, idle_timeout=20):
                assert idx not in chunks
                assert len(chunk) <= 1200
                chunks[idx] = chunk
            assert sorted(chunks) == list(range(len(chunks)))
            assert b"".join(chunks[i] for i in sorted(chunks)) == data


def test_expose_with_a_pre_shared_key(lib: str, monkeypatch) -> None:
    """expose(key=…) serves the given key (over RGTP_KEY and any config); a puller with it pulls."""
    psk = bytes(range(0x40, 0x60))
    monkeypatch.setenv("RGTP_KEY", "11" * 32)
    data = payload(50_000, seed=3)
    with rgtp.Socket(rgtp.Config(port=0)) as xs:
        surface = rgtp.expose(xs, data, key=psk.hex())
        with surface:
            assert surface.key() == psk
            port = rgtp.Ticket.parse(surface.ticket()).port
            stop = threading.Event()

            def serve_loop() -> None:
                while not stop.is_set():
                    rgtp.poll(surface, 50)

            th = threading.Thread(target=serve_loop)
            th.start()
            try:
                with rgtp.Socket() as ps, rgtp.pull_start(
                    ps, ("127.0.0.1", port), surface.exposure_id(), key=psk, config=PULL_CFG
                ) as s:
                    assert rgtp.pull_bytes(s, idle_timeout=20) == data
            finally:
                stop.set()
                th.join()
    with rgtp.Socket(rgtp.Config(port=0)) as xs:
        with pytest.raises(ValueError):
            rgtp.expose(xs, b"abc", key=b"short")


def test_pull_start_key_from_env_and_hex(serve, monkeypatch) -> None:
    data = payload(5000)
    e = serve(data)
    monkeypatch.setenv("RGTP_KEY", e.surface.key().hex())
    with rgtp.Socket() as sock, rgtp.pull_start(
        sock, ("127.0.0.1", e.port), e.surface.exposure_id(), config=PULL_CFG
    ) as s:
        assert rgtp.pull_bytes(s) == data
    with rgtp.Socket() as sock, rgtp.pull_start(
        sock, ("127.0.0.1", e.port), e.surface.exposure_id(), key=e.surface.key().hex().upper(),
        config=PULL_CFG,
    ) as s:
        assert rgtp.pull_bytes(s) == data


def test_null_config_uses_rgtp_port_and_rgtp_key(lib: str, monkeypatch) -> None:
    """The published CLI's path: Socket() and expose() with NULL configs."""
    key = bytes(range(32))
    port = free_udp_port()
    monkeypatch.setenv("RGTP_KEY", key.hex())
    monkeypatch.setenv("RGTP_PORT", str(port))
    data = payload(3000)
    with rgtp.Socket() as sock, rgtp.expose(sock, data) as surf:
        assert surf.key() == key
        t = rgtp.Ticket.parse(surf.ticket())
        assert t.port == port and t.key == key
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                rgtp.poll(surf, 20)

        th = threading.Thread(target=loop, daemon=True)
        th.start()
        try:
            # 1.0.0's call shape: address and id only; the key comes from RGTP_KEY.
            with rgtp.Socket() as ps, rgtp.pull_start(ps, ("127.0.0.1", port),
                                                      surf.exposure_id()) as s:
                assert rgtp.pull_bytes(s) == data
        finally:
            stop.set()
            th.join(10)


def test_expose_accepts_bytearray_and_memoryview(serve) -> None:
    data = payload(2500)
    for obj in (bytearray(data), memoryview(data), memoryview(bytearray(data))[0:2500]):
        e = serve(obj)
        with rgtp.Socket() as sock, rgtp.pull_ticket(sock, e.ticket, PULL_CFG) as s:
            assert rgtp.pull_bytes(s) == data


def test_pull_next_grows_a_small_buffer(serve) -> None:
    data = payload(3000)
    e = serve(data)
    with rgtp.Socket() as sock, rgtp.pull_ticket(sock, e.ticket, PULL_CFG) as s:
        chunks = {}
        while True:
            d, i = rgtp.pull_next(s, buf_size=16)  # smaller than a chunk
            if i == rgtp.RGTP_CHUNK_INDEX_NONE:
                break
            chunks[i] = d
        assert b"".join(chunks[i] for i in sorted(chunks)) == data


def test_poll_reports_ok_or_timeout(serve) -> None:
    e = serve(b"x")
    with rgtp.Socket(rgtp.Config(port=free_udp_port())) as sock, rgtp.expose(sock, b"y") as s:
        t0 = time.monotonic()
        assert rgtp.poll(s, timeout_ms=30) in (rgtp.RGTP_OK, rgtp.RGTP_ERR_TIMEOUT)
        assert time.monotonic() - t0 < 5
    assert e.surface.progress() == 1.0


def test_stats_every_field_after_transfer(serve) -> None:
    data = payload(300_000)
    e = serve(data)
    # One malformed datagram at the exposer, to see that counter move too.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.sendto(b"\xff\x00 not rgtp", ("127.0.0.1", e.port))
    with rgtp.Socket() as sock, rgtp.pull_ticket(sock, e.ticket, PULL_CFG) as s:
        assert rgtp.pull_bytes(s) == data
        ps = rgtp.get_stats(s)
    deadline = time.monotonic() + 5
    xs = rgtp.get_stats(e.surface)
    while xs.malformed_packets == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        xs = rgtp.get_stats(e.surface)

    fields = [name for name, *_ in rgtp.rgtp_stats_t._fields_]
    for st in (ps, xs):
        assert isinstance(st, rgtp.Stats)
        for name in fields:
            v = getattr(st, name)
            assert st[name] == v
            assert isinstance(v, float if name == "packet_loss_rate" else int), name
            assert v >= 0, name
        assert 0.0 <= st.packet_loss_rate <= 1.0
    chunks = (len(data) + 1199) // 1200
    # Puller side.
    assert ps.bytes_received >= len(data) and ps.bytes_sent > 0
    assert ps.chunks_received >= chunks
    assert ps.nak_sent > 0, "pull requests sent"
    assert ps.rtt_us > 0 and ps.pull_pressure > 0 and ps.progress == 1.0
    assert ps.auth_failures == 0 and ps.malformed_packets == 0
    # Exposer side.
    assert xs.bytes_sent >= len(data) and xs.bytes_received > 0
    assert xs.chunks_sent >= chunks
    assert xs.malformed_packets >= 1
    # 1.0.0 compatibility: a dict-like with these keys.
    assert rgtp.get_stats(e.surface)["bytes_sent"] == rgtp.get_stats(e.surface).bytes_sent
    assert "pull_pressure" in dict(rgtp.get_stats(e.surface))
    assert rgtp.get_stats(e.surface).get("progress") == 1.0
    assert e.surface.stats() == rgtp.get_stats(e.surface)


def test_latency_stats(serve) -> None:
    data = payload(200_000)
    e = serve(data)
    with rgtp.Socket() as sock, rgtp.pull_ticket(sock, e.ticket, PULL_CFG) as s:
        assert rgtp.get_latency_stats(s).sample_count == 0 or True
        assert rgtp.pull_bytes(s) == data
        lat = rgtp.get_latency_stats(s)
        assert s.latency_stats() == lat
    assert isinstance(lat, rgtp.LatencyStats)
    assert lat.sample_count > 0
    assert 0 < lat.min_us <= lat.mean_us <= lat.max_us
    assert lat.p99_us <= lat.max_us
    assert lat["p99_us"] == lat.p99_us
    xl = rgtp.get_latency_stats(e.surface)
    assert xl.sample_count > 0 and xl.min_us <= xl.max_us


def test_log_callback_gets_structured_events(serve) -> None:
    events: List[rgtp.LogEvent] = []
    threads = set()

    def cb(ev: rgtp.LogEvent) -> None:
        events.append(ev)
        threads.add(threading.get_ident())

    rgtp.set_log_callback(cb, rgtp.LogLevel.INFO)
    try:
        e = serve(payload(10_000))
        eid = e.surface.exposure_id().hex()
        with rgtp.Socket() as sock, rgtp.pull_ticket(sock, e.ticket, PULL_CFG) as s:
            rgtp.pull_bytes(s)
        created = [ev for ev in events if ev.message == "surface created"]
        assert created, [ev.message for ev in events]
        ev = created[0]
        assert ev.component == "rgtp_ffi" and ev.level == rgtp.LogLevel.INFO
        assert ev.fields.get("exposure_id") == eid and ev.fields.get("kind") == "exposer"
        assert abs(ev.timestamp_ns / 1e9 - time.time()) < 600
        assert any(x.message == "manifest received" and x.fields.get("chunks") == "9"
                   for x in events)
        assert all(x.level <= rgtp.LogLevel.INFO for x in events)
        # Level filtering: ERROR only → none of the INFO events.
        n = len(events)
        rgtp.set_log_level(rgtp.LogLevel.ERROR)
        with rgtp.Socket(rgtp.Config(port=0)) as sock, rgtp.expose(sock, b"abc"):
            pass
        assert len(events) == n
        # An exception in the callback never reaches C.
        rgtp.set_log_callback(lambda ev: 1 / 0, rgtp.LogLevel.DEBUG)
        with rgtp.Socket(rgtp.Config(port=0)) as sock, rgtp.expose(sock, b"abc"):
            pass
    finally:
        rgtp.set_log_callback(None)
    # Unregistered: nothing more arrives.
    n = len(events)
    with rgtp.Socket(rgtp.Config(port=0)) as sock, rgtp.expose(sock, b"abc"):
        pass
    assert len(events) == n


def test_set_log_level_rejects_unknown(lib: str) -> None:
    with pytest.raises(rgtp.RgtpError) as ei:
        rgtp.set_log_level(9)
    assert ei.value.code == rgtp.RGTP_ERR_INVALID_ARG


def test_wrong_key_is_auth_fail(serve) -> None:
    data = payload(50_000)
    e = serve(data)
    wrong = bytes(b ^ 0xFF for b in e.surface.key())
    with rgtp.Socket() as sock:
        with pytest.raises(rgtp.RgtpError) as ei:
            with rgtp.pull_start(sock, ("127.0.0.1", e.port), e.surface.exposure_id(),
                                 key=wrong, config=PULL_CFG) as s:
                rgtp.pull_bytes(s)
    assert ei.value.code == rgtp.RGTP_ERR_AUTH_FAIL == -7
    assert ei.value.error_code is rgtp.ErrorCode.AUTH_FAIL


def test_wrong_exposure_id_is_timeout(serve) -> None:
    e = serve(payload(1000))
    t0 = time.monotonic()
    with rgtp.Socket() as sock:
        with pytest.raises(rgtp.RgtpError) as ei:
            rgtp.pull_start(sock, ("127.0.0.1", e.port), bytes(16), key=e.surface.key(),
                            config=rgtp.Config(timeout_ms=800))
    assert ei.value.code == rgtp.RGTP_ERR_TIMEOUT == -12
    assert time.monotonic() - t0 < 10


def test_bad_ticket_is_invalid_arg(lib: str) -> None:
    with rgtp.Socket() as sock:
        with pytest.raises(rgtp.RgtpError) as ei:
            rgtp.pull_ticket(sock, "rgtp://nope")
    assert ei.value.code == rgtp.RGTP_ERR_INVALID_ARG


def test_misuse_raises_cleanly(serve) -> None:
    e = serve(b"abc")
    with pytest.raises(ValueError):
        rgtp.pull_start(rgtp.Socket(), ("127.0.0.1", e.port), b"short", key=bytes(32))
    with pytest.raises(ValueError):
        rgtp.pull_start(rgtp.Socket(), ("127.0.0.1", e.port), bytes(16), key=b"short")
    # pull_next on an exposer surface.
    with pytest.raises(rgtp.RgtpError) as ei:
        rgtp.pull_next(e.surface)
    assert ei.value.code == rgtp.RGTP_ERR_INVALID_ARG
    s = rgtp.Socket(rgtp.Config(port=0))
    surf = rgtp.expose(s, b"abc")
    surf.close()
    surf.close()  # idempotent
    with pytest.raises(ValueError):
        surf.progress()
    s.close()
    with pytest.raises(ValueError):
        rgtp.expose(s, b"abc")
    with pytest.raises(rgtp.RgtpError) as ei:
        rgtp.Socket(rgtp.Config(raw_ethernet=True))
    assert ei.value.code == rgtp.RGTP_ERR_NOT_SUPPORTED


def test_puller_surface_has_no_ticket(serve) -> None:
    e = serve(payload(10))
    with rgtp.Socket() as sock, rgtp.pull_ticket(sock, e.ticket, PULL_CFG) as s:
        assert s.exposure_id() == e.surface.exposure_id()
        assert s.key() == e.surface.key()
        with pytest.raises(rgtp.RgtpError):
            s.ticket()


def test_port_in_use_is_socket_error(lib: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("0.0.0.0", 0))
        port = u.getsockname()[1]
        with rgtp.Socket(rgtp.Config(port=port)) as sock:
            with pytest.raises(rgtp.RgtpError) as ei:
                rgtp.expose(sock, b"abc")
    assert ei.value.code == rgtp.RGTP_ERR_SOCKET


def test_close_waits_for_a_call_in_another_thread(serve) -> None:
    """Surface.close() while pull_next blocks in another thread waits for that call
    instead of freeing the handle under it."""
    e = serve(payload(2 << 20))
    sock = rgtp.Socket()
    s = rgtp.pull_ticket(sock, e.ticket, rgtp.Config(timeout_ms=1000))
    rgtp.pull_next(s)
    e.stop()  # the exposer goes away mid-transfer: pull_next will block, then time out
    outcome: List[BaseException] = []
    started = threading.Event()

    def worker() -> None:
        started.set()
        try:
            while True:
                _, i = rgtp.pull_next(s)
                if i == rgtp.RGTP_CHUNK_INDEX_NONE:
                    break
        except (rgtp.RgtpError, ValueError) as err:
            outcome.append(err)

    th = threading.Thread(target=worker)
    th.start()
    started.wait(5)
    time.sleep(0.2)
    s.close()
    th.join(15)
    assert not th.is_alive()
    assert outcome and isinstance(outcome[0], (rgtp.RgtpError, ValueError))
    sock.close()


def test_published_async_wrappers(serve) -> None:
    data = payload(4000)
    e = serve(data)

    async def main() -> bytes:
        with rgtp.Socket(rgtp.Config(port=free_udp_port())) as sock:
            surf = await rgtp.async_expose(sock, b"hello")
            surf.close()
        with rgtp.Socket() as sock, rgtp.pull_ticket(sock, e.ticket, PULL_CFG) as s:
            out = {}
            while True:
                d, i = await rgtp.async_pull_next(s)
                if i == rgtp.RGTP_CHUNK_INDEX_NONE:
                    return b"".join(out[k] for k in sorted(out))
                out[i] = d

    assert asyncio.run(main()) == data


@pytest.mark.parametrize("backend, cipher, hash_", [
    ("libsodium", "chacha20-poly1305", "blake2b-256"),
    ("openssl", "aes-256-gcm", "sha256"),
])
def test_crypto_backend_env_picks_the_suite(lib: str, monkeypatch, backend: str, cipher: str,
                                            hash_: str) -> None:
    monkeypatch.setenv("RGTP_CRYPTO_BACKEND", backend)
    data = payload(2000)
    with rgtp.Socket(rgtp.Config(port=free_udp_port())) as sock, rgtp.expose(sock, data) as surf:
        t = rgtp.Ticket.parse(surf.ticket())
        assert (t.cipher, t.hash) == (cipher, hash_)
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                rgtp.poll(surf, 20)

        th = threading.Thread(target=loop, daemon=True)
        th.start()
        try:
            with rgtp.Socket() as ps, rgtp.pull_ticket(ps, str(t), PULL_CFG) as s:
                assert rgtp.pull_bytes(s) == data
        finally:
            stop.set()
            th.join(10)


def test_unknown_crypto_backend_is_crypto_init(lib: str, monkeypatch) -> None:
    monkeypatch.setenv("RGTP_CRYPTO_BACKEND", "rot13")
    with rgtp.Socket(rgtp.Config(port=free_udp_port())) as sock:
        with pytest.raises(rgtp.RgtpError) as ei:
            rgtp.expose(sock, b"abc")
    assert ei.value.code == rgtp.RGTP_ERR_CRYPTO_INIT


# ── Header contract details, through the raw C functions ─────────────────────


def test_get_ticket_size_negotiation(serve) -> None:
    import ctypes

    e = serve(b"abc")
    fn = rgtp._lib.load().fn("rgtp_get_ticket")
    need = ctypes.c_size_t(0)
    small = ctypes.create_string_buffer(8)
    with e.surface._use() as h:
        assert fn(h, small, 8, ctypes.byref(need)) == rgtp.RGTP_ERR_INVALID_ARG
        assert small.raw == bytes(8), "nothing written on failure"
        assert need.value == len(e.ticket) + 1
        assert fn(h, None, 0, ctypes.byref(need)) == rgtp.RGTP_ERR_INVALID_ARG
        buf = ctypes.create_string_buffer(need.value)
        assert fn(h, buf, need.value, None) == rgtp.RGTP_OK
    assert buf.value.decode() == e.ticket


def test_poll_zero_polls_once(serve) -> None:
    e = serve(b"abc")
    with rgtp.Socket(rgtp.Config(port=free_udp_port())) as sock, rgtp.expose(sock, b"x") as s:
        t0 = time.monotonic()
        for _ in range(20):
            assert rgtp.poll(s, 0) == rgtp.RGTP_ERR_TIMEOUT
        assert time.monotonic() - t0 < 2
    assert e.surface.progress() == 1.0


def test_failed_pull_keeps_its_code(serve) -> None:
    e = serve(payload(20_000))
    with rgtp.Socket() as sock, rgtp.pull_start(sock, ("127.0.0.1", e.port),
                                                e.surface.exposure_id(), key=bytes(32),
                                                config=PULL_CFG) as s:
        codes = []
        for _ in range(3):
            with pytest.raises(rgtp.RgtpError) as ei:
                while True:
                    rgtp.pull_next(s)
            codes.append(ei.value.code)
        assert codes == [rgtp.RGTP_ERR_AUTH_FAIL] * 3
        assert s.progress() < 1.0


def test_pull_start_without_any_key_is_invalid_arg(serve, monkeypatch) -> None:
    e = serve(b"abc")
    monkeypatch.delenv("RGTP_KEY", raising=False)
    with rgtp.Socket() as sock:
        with pytest.raises(rgtp.RgtpError) as ei:
            rgtp.pull_start(sock, ("127.0.0.1", e.port), e.surface.exposure_id())
    assert ei.value.code == rgtp.RGTP_ERR_INVALID_ARG


def test_allocator_and_ccsds_stubs(lib: str) -> None:
    import ctypes

    L = rgtp._lib.load()
    assert L.fn("rgtp_set_allocator")(None) == rgtp.RGTP_OK
    alloc = rgtp.rgtp_allocator_t()
    assert L.fn("rgtp_set_allocator")(ctypes.byref(alloc)) == rgtp.RGTP_ERR_NOT_SUPPORTED
    assert not L.fn("rgtp_socket_create_ccsds")(b"/dev/null", None)


def test_socket_may_close_before_its_surfaces(serve) -> None:
    data = payload(3000)
    e = serve(data)
    sock = rgtp.Socket()
    s = rgtp.pull_ticket(sock, e.ticket, PULL_CFG)
    sock.close()
    try:
        assert rgtp.pull_bytes(s) == data
    finally:
        s.close()
