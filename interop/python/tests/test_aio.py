"""rgtp.aio: the event loop stays responsive while the library works."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import List, Tuple

import pytest

import rgtp
import rgtp.aio as aio

from conftest import free_udp_port, payload


class Ticker:
    """Counts `asyncio.sleep(0.01)` ticks and the longest gap between them."""

    def __init__(self) -> None:
        self.ticks = 0
        self.max_gap = 0.0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            self.max_gap = max(self.max_gap, now - last)
            last = now
            self.ticks += 1

    def stop(self) -> None:
        self._stop.set()


Served = Tuple[rgtp.Socket, rgtp.Surface, asyncio.Event, "asyncio.Task[None]"]


async def _exposer(data: bytes) -> Served:
    sock = rgtp.Socket(rgtp.Config(port=free_udp_port()))
    surface = await aio.expose(sock, data)
    stop = asyncio.Event()
    task = asyncio.create_task(aio.serve(surface, stop))
    return sock, surface, stop, task


def test_loop_keeps_ticking_during_pull_and_serve(lib: str, tmp_path: Path) -> None:
    """Exposer (aio.serve) and puller (aio.pull_file) on ONE loop, with a 10 ms ticker."""
    data = payload(8 << 20, seed=3)
    out = tmp_path / "pulled.bin"

    async def main() -> Tuple[Ticker, float, int]:
        sock, surface, stop, serving = await _exposer(data)
        ticker = Ticker()
        tick_task = asyncio.create_task(ticker.run())
        progress: List[float] = []
        t0 = time.perf_counter()
        n = await asyncio.wait_for(
            aio.pull_file(surface.ticket(), out, on_progress=lambda b, f: progress.append(f)),
            timeout=90,
        )
        elapsed = time.perf_counter() - t0
        ticker.stop()
        await tick_task
        stop.set()
        await asyncio.wait_for(serving, 5)
        surface.close()
        sock.close()
        assert progress and progress == sorted(progress)
        return ticker, elapsed, n

    ticker, elapsed, n = asyncio.run(main())
    assert n == len(data) and out.read_bytes() == data
    assert not Path(str(out) + ".rgtp-partial").exists()
    # The ticker ran all along: at least a third of the ideal tick count, and never a gap
    # anywhere near the length of the transfer.
    assert ticker.ticks >= max(3, int(elapsed / 0.01 / 3)), (ticker.ticks, elapsed)
    assert ticker.max_gap < 0.5, ticker.max_gap


def test_loop_keeps_ticking_during_a_blocking_call(serve) -> None:
    """A pull_start that blocks for its whole 1.5 s timeout (wrong Exposure_ID) runs in an
    executor: the loop ticks throughout."""
    e = serve(payload(100))

    async def main() -> Tuple[Ticker, float, int]:
        ticker = Ticker()
        tick_task = asyncio.create_task(ticker.run())
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        sock = rgtp.Socket()
        with pytest.raises(rgtp.RgtpError) as ei:
            await loop.run_in_executor(
                None,
                lambda: rgtp.pull_start(sock, ("127.0.0.1", e.port), bytes(16),
                                        key=bytes(32), config=rgtp.Config(timeout_ms=1500)),
            )
        elapsed = time.perf_counter() - t0
        sock.close()
        ticker.stop()
        await tick_task
        return ticker, elapsed, ei.value.code

    ticker, elapsed, code = asyncio.run(main())
    assert code == rgtp.RGTP_ERR_TIMEOUT
    assert elapsed >= 1.0
    assert ticker.ticks >= int(elapsed / 0.01 / 3), (ticker.ticks, elapsed)
    assert ticker.max_gap < 0.5


def test_serve_stops_promptly(lib: str) -> None:
    async def main() -> float:
        sock, surface, stop, task = await _exposer(b"abc")
        await asyncio.sleep(0.1)
        t0 = time.perf_counter()
        stop.set()
        await asyncio.wait_for(task, 5)
        surface.close()
        sock.close()
        return time.perf_counter() - t0

    assert asyncio.run(main()) < 1.0


@pytest.mark.parametrize("size", [0, 1, 1201])
def test_pull_file_small(serve, tmp_path: Path, size: int) -> None:
    data = payload(size)
    e = serve(data)
    out = tmp_path / "o.bin"
    n = asyncio.run(aio.pull_file(e.ticket, out))
    assert n == size and out.read_bytes() == data


def test_aio_pull_next(serve) -> None:
    data = payload(5000)
    e = serve(data)

    async def main() -> bytes:
        with rgtp.Socket() as sock, rgtp.pull_ticket(sock, e.ticket) as s:
            got = {}
            while True:
                d, i = await aio.pull_next(s)
                if i == rgtp.RGTP_CHUNK_INDEX_NONE:
                    return b"".join(got[k] for k in sorted(got))
                got[i] = d

    assert asyncio.run(main()) == data


def test_pull_file_errors_are_rgtp_errors(serve, tmp_path: Path) -> None:
    e = serve(payload(20_000))
    t = rgtp.Ticket.parse(e.ticket)
    wrong = rgtp.Ticket(t.host, t.port, t.exposure_id, bytes(32), t.cipher, t.hash)
    with pytest.raises(rgtp.RgtpError) as ei:
        asyncio.run(aio.pull_file(str(wrong), tmp_path / "x"))
    assert ei.value.code == rgtp.RGTP_ERR_AUTH_FAIL
    assert not (tmp_path / "x").exists()


def test_pull_file_cancellation_is_clean(lib: str, tmp_path: Path) -> None:
    """Cancelling a pull mid-way raises CancelledError, keeps the partial file, and the
    handles are closed after the in-flight call returns (no crash)."""
    data = payload(16 << 20, seed=5)
    out = tmp_path / "c.bin"

    async def main() -> None:
        sock, surface, stop, serving = await _exposer(data)
        seen = asyncio.Event()

        def on_progress(b: int, f: float) -> None:
            if b > 100_000:
                seen.set()

        task = asyncio.create_task(aio.pull_file(surface.ticket(), out, on_progress=on_progress))
        await asyncio.wait_for(seen.wait(), 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.3)  # let the deferred close run
        stop.set()
        await asyncio.wait_for(serving, 5)
        surface.close()
        sock.close()

    asyncio.run(main())
    assert not out.exists()
    assert Path(str(out) + ".rgtp-partial").exists()
