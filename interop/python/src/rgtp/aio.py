"""asyncio helpers: every blocking ``librgtp`` call runs in a thread-pool executor, so the
event loop never waits on the network.

``serve`` polls with a short timeout so it notices ``stop_event`` promptly; a pull's
``pull_next`` returns as soon as a chunk is verified and only waits long when the
transfer stalls. A cancelled helper never destroys a handle under a running call: the
surface waits for the call to return (see :meth:`rgtp.Surface.close`), and that wait
happens off the loop.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from typing import Any, Callable, Optional, Tuple, TypeVar, Union

from . import (
    RGTP_CHUNK_INDEX_NONE,
    RGTP_ERR_TIMEOUT,
    BytesLike,
    Config,
    RgtpError,
    Socket,
    Surface,
    Ticket,
)
from . import expose as _expose
from . import init as _init
from . import poll as _poll
from . import pull_next as _pull_next
from . import pull_ticket as _pull_ticket
from ._files import PartialFile

T = TypeVar("T")

#: Default wait of one ``poll`` call made by :func:`serve`, in milliseconds.
SERVE_POLL_MS = 50


async def _run(fn: Callable[..., T], *args: Any) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(fn, *args))


def _close_later(*objs: Any) -> None:
    """Closes handles off the loop (a close may wait for a call still in a thread)."""

    def close_all() -> None:
        for o in objs:
            if o is not None:
                o.close()

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        close_all()
        return
    loop.run_in_executor(None, close_all)


async def expose(sock: Socket, data: BytesLike, config: Optional[Config] = None) -> Surface:
    """:func:`rgtp.expose` (sealing can take a while for big data) off the loop."""
    return await _run(_expose, sock, data, config)


async def pull_next(surface: Surface, buf_size: int = 65536) -> Tuple[bytes, int]:
    """:func:`rgtp.pull_next` off the loop."""
    return await _run(_pull_next, surface, buf_size)


async def serve(
    surface: Surface, stop_event: asyncio.Event, poll_ms: int = SERVE_POLL_MS
) -> None:
    """Serves an exposure until ``stop_event`` is set (checked every ``poll_ms``)."""
    while not stop_event.is_set():
        await _run(_poll, surface, poll_ms)


ProgressCallback = Callable[[int, float], Any]

#: One executor job of :func:`pull_file` hands out chunks for at most this long...
BATCH_SECONDS = 0.05
#: ...or this many chunks, whichever comes first.
BATCH_CHUNKS = 512


def _pull_batch(surface: Surface, out: PartialFile) -> bool:
    """Runs in a worker thread: pulls and writes chunks for up to ``BATCH_SECONDS``.

    Returns True at the end of the stream. A timeout raises only if no chunk came in
    this batch (so the caller's idle clock sees every chunk).
    """
    deadline = time.monotonic() + BATCH_SECONDS
    got = 0
    while got < BATCH_CHUNKS:
        try:
            data, idx = _pull_next(surface, 65536)
        except RgtpError as e:
            if e.code == RGTP_ERR_TIMEOUT and got:
                return False
            raise
        if idx == RGTP_CHUNK_INDEX_NONE:
            return True
        out.write_chunk(idx, data)
        got += 1
        if time.monotonic() >= deadline:
            break
    return False


async def pull_file(
    ticket: Union[str, Ticket],
    path: Union[str, "os.PathLike[str]"],
    *,
    config: Optional[Config] = None,
    idle_timeout: float = 30.0,
    on_progress: Optional[ProgressCallback] = None,
) -> int:
    """Pulls what ``ticket`` names into ``path`` and returns the byte count.

    Chunks are written at their offsets into ``path + ".rgtp-partial"`` (from a worker
    thread, in batches of at most ``BATCH_SECONDS``), which is renamed to ``path`` only
    once the library reports the transfer complete and verified. ``on_progress(bytes,
    fraction)`` is called on the loop after each batch. ``config.timeout_ms`` bounds the
    handshake and each wait for a chunk; ``RGTP_ERR_TIMEOUT`` is retried until
    ``idle_timeout`` seconds pass without a chunk. Cancelling leaves the partial file.
    """
    await _run(_init)
    sock: Optional[Socket] = None
    surface: Optional[Surface] = None
    out: Optional[PartialFile] = None
    in_flight: "Optional[asyncio.Future[Any]]" = None
    loop = asyncio.get_running_loop()
    done = False
    try:
        sock = await _run(Socket, config)
        surface = await _run(_pull_ticket, sock, ticket, config)
        out = await _run(PartialFile, path)
        last = time.monotonic()
        seen = 0
        while True:
            in_flight = loop.run_in_executor(None, _pull_batch, surface, out)
            try:
                end = await in_flight
            except RgtpError as e:
                if e.code == RGTP_ERR_TIMEOUT and time.monotonic() - last < idle_timeout:
                    continue
                raise
            if out.chunks != seen:
                seen = out.chunks
                last = time.monotonic()
                if on_progress is not None:
                    on_progress(out.bytes_written, surface.progress())
            if end:
                break
        in_flight = None
        await _run(out.finish)
        done = True
        return out.bytes_written
    finally:
        if in_flight is not None and not in_flight.done():
            # Cancelled while a batch runs: close the file and handles after it returns.
            def cleanup(_f: "asyncio.Future[Any]", o: Optional[PartialFile] = out) -> None:
                if o is not None:
                    o.close()
                _close_later(surface, sock)

            in_flight.add_done_callback(cleanup)
        else:
            if out is not None and not done:
                out.close()
            _close_later(surface, sock)
