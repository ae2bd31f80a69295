"""Command-line tools: ``rgtp-expose`` and ``rgtp-pull``.

Exit statuses match the Rust ``rgtp`` command: 0 done, 2 bad ticket or arguments,
3 unreachable/wrong Exposure_ID/stalled, 4 authentication failure, 5 Merkle failure,
6 disk or file error, 7 other protocol failure (and 1 when librgtp cannot be loaded).
"""

from __future__ import annotations

import argparse
import mmap
import os
import signal
import sys
import time
from typing import Any, List, Optional, Sequence, TextIO, Tuple

EXIT_OK = 0
EXIT_LIBRARY = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_AUTH = 4
EXIT_MERKLE = 5
EXIT_IO = 6
EXIT_PROTOCOL = 7


class _Fail(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def fmt_bytes(n: float) -> str:
    """``1536`` → ``"1.5 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def fmt_duration(seconds: float) -> str:
    s = int(max(0, seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def exit_code_for(code: int) -> int:
    """Exit status for a librgtp error code."""
    import rgtp

    if code == rgtp.RGTP_ERR_TIMEOUT:
        return EXIT_TIMEOUT
    if code in (rgtp.RGTP_ERR_AUTH_FAIL, rgtp.RGTP_ERR_DECRYPT):
        return EXIT_AUTH
    if code == rgtp.RGTP_ERR_MERKLE_FAIL:
        return EXIT_MERKLE
    if code == rgtp.RGTP_ERR_INVALID_ARG:
        return EXIT_USAGE
    return EXIT_PROTOCOL


class _StatusLine:
    """A single self-overwriting status line (``\\r``), throttled."""

    def __init__(self, stream: TextIO, enabled: bool, interval: float = 0.2) -> None:
        self.stream = stream
        self.enabled = enabled
        self.interval = interval
        self._last = 0.0
        self._width = 0

    def show(self, text: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


class _Stop:
    """SIGINT/SIGTERM set a flag instead of raising in the middle of a C call."""

    def __init__(self) -> None:
        self.flag = False
        self.signum = 0
        self._old: List[Any] = []

    def __enter__(self) -> "_Stop":
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old.append((sig, signal.signal(sig, self._handle)))
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        self.flag = True
        self.signum = signum

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old:
            signal.signal(sig, old)


def _import_rgtp(prog: str) -> Any:
    import rgtp

    try:
        rgtp.init()
    except OSError as e:
        raise _Fail(EXIT_LIBRARY, f"{e}") from None
    except rgtp.RgtpError as e:
        raise _Fail(EXIT_PROTOCOL, f"library initialisation failed: {e}") from None
    return rgtp


def _run(prog: str, body: Any, argv: Optional[Sequence[str]]) -> int:
    try:
        return int(body(argv))
    except _Fail as f:
        print(f"{prog}: error: {f.message}", file=sys.stderr)
        return f.code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


# ── rgtp-expose ──────────────────────────────────────────────────────────────


def _map_file(path: str) -> "bytes | mmap.mmap":
    """The file's bytes, mapped copy-on-write (never read into memory up front)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return b""
        # ACCESS_COPY gives a writable buffer (ctypes needs one to pass it without a
        # copy) whose pages are shared with the page cache until written, which we never do.
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)


def _expose_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rgtp-expose",
        description="Expose a file over RGTP; prints the ticket pullers need on the first "
        "line of standard output and serves until Ctrl-C.",
    )
    p.add_argument("file", help="file to expose")
    p.add_argument(
        "--port", "-p", type=int, default=None,
        help="UDP port to serve on (default: RGTP_PORT or 9000; 0 = any free port)",
    )
    p.add_argument(
        "--key", default=None,
        help="pre-shared key, 64 hex digits (default: RGTP_KEY, else a fresh random key)",
    )
    p.add_argument("--fec", action="store_true", help="Reed-Solomon FEC (n=255, k=223)")
    p.add_argument("--chunk-size", type=int, default=0, metavar="BYTES",
                   help="plaintext bytes per chunk (default 1200)")
    p.add_argument("--merkle-proofs", "--proofs", action="store_true",
                   help="send a Merkle proof with every chunk")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the ticket")
    return p


def _expose_main(argv: Optional[Sequence[str]]) -> int:
    args = _expose_parser().parse_args(argv)
    if args.port is not None and not 0 <= args.port <= 0xFFFF:
        raise _Fail(EXIT_USAGE, f"--port {args.port} is out of range 0..65535")
    if args.key is not None:
        from ._types import parse_key

        try:
            parse_key(args.key)
        except ValueError as e:
            raise _Fail(EXIT_USAGE, f"--key: {e}") from None
    try:
        data = _map_file(args.file)
    except (OSError, ValueError) as e:
        msg = getattr(e, "strerror", None) or e
        raise _Fail(EXIT_IO, f"cannot read {args.file}: {msg}") from None

    rgtp = _import_rgtp("rgtp-expose")
    config: Optional[Any] = None
    custom = bool(args.fec or args.chunk_size or args.merkle_proofs)
    if not custom:
        # Default settings: a NULL config, with which librgtp reads the port from
        # RGTP_PORT and the pre-shared key from RGTP_KEY (it has no other way in).
        if args.port is not None:
            os.environ["RGTP_PORT"] = str(args.port)
        if args.key is not None:
            os.environ["RGTP_KEY"] = args.key.strip()
    else:
        if args.key is not None or os.environ.get("RGTP_KEY"):
            raise _Fail(EXIT_USAGE, "a pre-shared key (--key/RGTP_KEY) cannot be combined "
                        "with --fec/--chunk-size/--merkle-proofs: librgtp takes one only "
                        "with default settings")
        port = args.port
        if port is None:
            try:
                port = int(os.environ.get("RGTP_PORT") or 9000)
            except ValueError:
                raise _Fail(EXIT_USAGE, "RGTP_PORT must be a port number") from None
        config = rgtp.Config(
            port=port,
            fec_enabled=args.fec,
            chunk_size=args.chunk_size,
            merkle_proofs=args.merkle_proofs,
        )

    status = _StatusLine(sys.stderr, enabled=not args.quiet)
    try:
        sock = rgtp.Socket(config)
        surface = rgtp.expose(sock, data, config)
    except rgtp.RgtpError as e:
        code = EXIT_IO if e.code == rgtp.RGTP_ERR_SOCKET else exit_code_for(e.code)
        hint = " (is the port in use? try --port 0)" if e.code == rgtp.RGTP_ERR_SOCKET else ""
        raise _Fail(code, f"cannot expose {args.file}: {e}{hint}") from None

    try:
        ticket = surface.ticket()
        print(ticket, flush=True)
        if not args.quiet:
            print(
                f"exposing {args.file} ({len(data)} bytes) as {surface.exposure_id().hex()} "
                f"with librgtp {rgtp.version()}. Ctrl-C to stop.",
                file=sys.stderr,
                flush=True,
            )
        if isinstance(data, mmap.mmap):
            try:
                data.close()  # librgtp sealed a copy
            except BufferError:  # pragma: no cover - a view is still alive somewhere
                pass
        del data
        start = time.monotonic()
        with _Stop() as stop:
            while not stop.flag:
                try:
                    rgtp.poll(surface, 200)
                except rgtp.RgtpError as e:
                    status.done()
                    raise _Fail(exit_code_for(e.code), f"serving failed: {e}") from None
                st = rgtp.get_stats(surface)
                up = time.monotonic() - start
                status.show(
                    f"up {fmt_duration(up)} · requests {st.nak_sent} · chunks sent "
                    f"{st.chunks_sent} · {fmt_bytes(st.bytes_sent)} sent · "
                    f"pressure {st.pull_pressure}"
                )
        status.done()
        if not args.quiet:
            print("rgtp-expose: stopped", file=sys.stderr)
    finally:
        surface.close()
        sock.close()
        rgtp.cleanup()
    return EXIT_OK


def cmd_expose(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``rgtp-expose``."""
    return _run("rgtp-expose", _expose_main, argv)


# ── rgtp-pull ────────────────────────────────────────────────────────────────


def _pull_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rgtp-pull",
        description="Pull the exposure a ticket names into OUTPUT, verified. Writes "
        "OUTPUT.rgtp-partial and renames it when complete. Also accepts 1.0.0's form "
        "HOST:PORT EXPOSURE_ID OUTPUT (key from --key or RGTP_KEY).",
    )
    p.add_argument("source", nargs="+", metavar="TICKET OUTPUT",
                   help="rgtp://HOST:PORT/ID?...#KEY and the output path")
    p.add_argument("--key", default=None, help="key (64 hex) for the HOST:PORT ID form")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="seconds to wait for the Manifest and, after it, without progress "
                   "(default: the library's, 5 s / 10 s)")
    p.add_argument("--chunk-size", type=int, default=65536, metavar="BYTES",
                   help="receive buffer per chunk (default 65536)")
    p.add_argument("--proofs", action="store_true",
                   help="ask for a Merkle proof with every chunk")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    return p


def _pull_main(argv: Optional[Sequence[str]]) -> int:
    parser = _pull_parser()
    args = parser.parse_args(argv)
    from ._files import PartialFile
    from ._types import Ticket, TicketError, parse_key

    ticket: Optional[Ticket] = None
    legacy: Optional[Tuple[str, int, bytes, bytes]] = None
    if len(args.source) == 2:
        try:
            ticket = Ticket.parse(args.source[0])
        except TicketError as e:
            raise _Fail(EXIT_USAGE, f"bad ticket: {e}") from None
        output = args.source[1]
    elif len(args.source) == 3:
        server, id_hex, output = args.source
        host, sep, port_s = server.rpartition(":")
        if not sep or not host or not port_s.isdigit() or int(port_s) > 0xFFFF:
            raise _Fail(EXIT_USAGE, f"bad server address {server!r} (expected HOST:PORT)")
        try:
            eid = bytes.fromhex(id_hex)
            if len(eid) != 16:
                raise ValueError
        except ValueError:
            raise _Fail(EXIT_USAGE, "the Exposure_ID must be 32 hex digits") from None
        key = args.key or os.environ.get("RGTP_KEY")
        if not key:
            raise _Fail(EXIT_USAGE, "HOST:PORT ID form needs the key: --key HEX or RGTP_KEY")
        try:
            legacy = (host.strip("[]"), int(port_s), eid, parse_key(key))
        except ValueError as e:
            raise _Fail(EXIT_USAGE, f"key: {e}") from None
    else:
        parser.print_usage(sys.stderr)
        raise _Fail(EXIT_USAGE, "expected TICKET OUTPUT (or HOST:PORT EXPOSURE_ID OUTPUT)")

    out_dir = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(out_dir):
        raise _Fail(EXIT_IO, f"cannot write {output}: directory {out_dir} does not exist")

    rgtp = _import_rgtp("rgtp-pull")
    config = rgtp.Config(
        timeout_ms=None if args.timeout is None else max(1, int(args.timeout * 1000)),
        merkle_proofs=args.proofs,
    )
    status = _StatusLine(sys.stderr, enabled=not args.quiet)
    where = f"{ticket.host}:{ticket.port}" if ticket else f"{legacy[0]}:{legacy[1]}"  # type: ignore[index]
    sock = rgtp.Socket(config)
    surface = None
    out: Optional[PartialFile] = None
    try:
        try:
            if ticket is not None:
                surface = rgtp.pull_ticket(sock, ticket, config)
            else:
                assert legacy is not None
                l_host, l_port, l_id, l_key = legacy
                surface = rgtp.pull_start(sock, (l_host, l_port), l_id, l_key, config)
        except OSError as e:
            raise _Fail(EXIT_USAGE, f"cannot resolve {where}: {e}") from None
        except rgtp.RgtpError as e:
            if e.code == rgtp.RGTP_ERR_TIMEOUT:
                raise _Fail(
                    EXIT_TIMEOUT,
                    f"no answer from {where} (is the exposer running there, and is the "
                    "Exposure_ID right?)",
                ) from None
            raise _Fail(exit_code_for(e.code),
                        f"cannot start the pull from {where}: {e}") from None
        try:
            out = PartialFile(output)
        except OSError as e:
            raise _Fail(EXIT_IO,
                        f"cannot create {output}.rgtp-partial: {e.strerror or e}") from None
        start = time.monotonic()
        with _Stop() as stop:
            while True:
                if stop.flag:
                    status.done()
                    raise _Fail(EXIT_PROTOCOL, "interrupted; partial data kept in "
                                f"{out.partial}")
                try:
                    data, idx = rgtp.pull_next(surface, args.chunk_size)
                except rgtp.RgtpError as e:
                    status.done()
                    code = exit_code_for(e.code)
                    msg = {
                        EXIT_TIMEOUT: "the transfer stalled: the exposer stopped answering",
                        EXIT_AUTH: "chunks failed authentication: the key does not match "
                        "this exposure (or the traffic is forged)",
                        EXIT_MERKLE: "Merkle verification failed: the data does not match "
                        "the exposure's root",
                    }.get(code, f"pull failed: {e}")
                    raise _Fail(code, msg) from None
                if idx == rgtp.RGTP_CHUNK_INDEX_NONE:
                    break
                try:
                    out.write_chunk(idx, data)
                except OSError as e:
                    raise _Fail(EXIT_IO,
                                f"writing {out.partial} failed: {e.strerror or e}") from None
                elapsed = max(time.monotonic() - start, 1e-6)
                frac = surface.progress()
                rate = out.bytes_written / elapsed
                eta = elapsed * (1 - frac) / frac if frac > 0 else 0.0
                status.show(
                    f"{fmt_bytes(out.bytes_written)} · {frac * 100:5.1f}% · "
                    f"{fmt_bytes(rate)}/s · ETA {fmt_duration(eta)}"
                )
        elapsed = max(time.monotonic() - start, 1e-6)
        try:
            out.finish()
        except OSError as e:
            raise _Fail(EXIT_IO, f"finishing {output}: {e.strerror or e}") from None
        status.show(
            f"{fmt_bytes(out.bytes_written)} · 100.0% · "
            f"{fmt_bytes(out.bytes_written / elapsed)}/s · done in {elapsed:.1f}s",
            force=True,
        )
        status.done()
        return EXIT_OK
    finally:
        if out is not None:
            out.close()
        if surface is not None:
            surface.close()
        sock.close()
        rgtp.cleanup()


def cmd_pull(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``rgtp-pull``."""
    return _run("rgtp-pull", _pull_main, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(cmd_pull() if "pull" in os.path.basename(sys.argv[0]) else cmd_expose())
