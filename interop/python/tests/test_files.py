"""rgtp.send / rgtp.get: a tree served from a background thread and fetched with
progress events, a callback that stops the transfer, and bad tickets."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Dict, List

import pytest

import rgtp
from rgtp.files import STOP, EventKind, FilesEvent, GetResult, GetStopped


def make_tree(root: Path) -> Dict[str, bytes]:
    """A tree of a few files (one empty, one nested two deep, one ~3 MB); their
    paths in the set and contents."""
    t = root / "tree"
    (t / "a" / "b").mkdir(parents=True)
    files = {
        "tree/big.bin": bytes((i * 31) % 251 for i in range(3 * 1024 * 1024)),
        "tree/empty": b"",
        "tree/a/b/deep.txt": b"nested two deep\n",
        "tree/a/small.txt": b"small",
    }
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    return files


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    src.mkdir()
    files = make_tree(src)
    with rgtp.send([src / "tree"], host="127.0.0.1", port=0) as sender:
        yield sender, files


def test_a_tree_arrives_with_ordered_progress(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sender, files = served
    assert sender.ticket.startswith("rgtp://127.0.0.1:")
    events: List[FilesEvent] = []
    threads = set()

    def progress(ev: FilesEvent) -> None:
        events.append(ev)
        threads.add(threading.get_ident())

    dest = tmp_path / "dest"
    result = rgtp.get(sender.ticket, dest, progress=progress)

    total = sum(len(d) for d in files.values())
    assert isinstance(result, GetResult)
    assert (result.files, result.bytes) == (len(files), total)
    assert result.entries == len(files) + 3  # tree, tree/a, tree/a/b
    assert result.seconds > 0
    for rel, data in files.items():
        assert (dest / rel).read_bytes() == data, rel

    assert events[0].kind is EventKind.CATALOG
    assert (events[0].files, events[0].total) == (len(files), total)
    done = [e for e in events if e.kind is EventKind.DONE]
    assert sorted(e.path for e in done) == sorted(files)
    assert [e.total_done for e in done] == sorted(e.total_done for e in done)
    assert done[-1].total_done == total
    for d in done:
        mine = [e for e in events[1:] if e.index == d.index]
        assert mine[0].kind is EventKind.STARTED and mine[0].path == d.path
        assert mine[-1] is d and d.done == len(files[d.path]) and not d.skipped
        counts = [e.done for e in mine if e.kind is EventKind.BYTES]
        assert counts == sorted(counts) and len(set(counts)) == len(counts), counts
        assert all(c <= mine[0].total for c in counts)
    big = [e for e in events if e.path == "tree/big.bin" and e.kind is EventKind.BYTES]
    assert len(big) >= 1 and big[-1].done == len(files["tree/big.bin"])

    # A second run finds every file in place: DONE only, each skipped.
    again: List[FilesEvent] = []
    rgtp.get(sender.ticket, dest, progress=again.append)
    assert [e.kind for e in again[1:]] == [EventKind.DONE] * len(files)
    assert all(e.skipped for e in again[1:])


def test_parallel_files_fetch_the_same_bytes(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sender, files = served
    dest = tmp_path / "par"
    result = rgtp.get(sender.ticket, str(dest), parallel_files=3, max_rate=200_000_000)
    assert result.files == len(files)
    for rel, data in files.items():
        assert (dest / rel).read_bytes() == data, rel


def test_returning_stop_aborts_the_get(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sender, _ = served
    seen: List[FilesEvent] = []

    def stop_at_first_file(ev: FilesEvent):  # type: ignore[no-untyped-def]
        seen.append(ev)
        return STOP if ev.kind is EventKind.STARTED else None

    with pytest.raises(GetStopped, match="stopped by the progress callback"):
        rgtp.get(sender.ticket, tmp_path / "stopped", progress=stop_at_first_file)
    assert not any(e.kind is EventKind.DONE for e in seen)


def test_a_raising_callback_aborts_the_get_with_its_exception(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sender, _ = served

    class Boom(Exception):
        pass

    def boom(ev: FilesEvent) -> None:
        if ev.kind is EventKind.BYTES:
            raise Boom("no more")

    with pytest.raises(Boom, match="no more"):
        rgtp.get(sender.ticket, tmp_path / "boom", progress=boom)
    assert not (tmp_path / "boom" / "tree" / "big.bin").exists()


def test_a_bad_ticket_raises_naming_it(tmp_path: Path) -> None:
    with pytest.raises(rgtp.RgtpError) as e:
        rgtp.get("rgtp://nowhere/garbage", tmp_path)
    assert e.value.code == rgtp.RGTP_ERR_INVALID_ARG
    assert "rgtp://nowhere/garbage" in str(e.value) and "bad ticket" in str(e.value)


def test_send_refuses_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(rgtp.RgtpError) as e:
        rgtp.send(tmp_path / "absent")
    assert "absent" in str(e.value)


def test_stop_is_idempotent_and_ends_serving(tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_bytes(b"one")
    s = rgtp.send(tmp_path / "one.txt", host="127.0.0.1", key="00" * 32)
    assert s.serving
    s.stop()
    s.stop()
    assert not s.serving
    with pytest.raises(rgtp.RgtpError) as e:
        rgtp.get(s.ticket, tmp_path / "late", connect_timeout=0.5)
    assert e.value.code == rgtp.RGTP_ERR_TIMEOUT


def test_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        rgtp.get("rgtp://x", tmp_path, parallel_files=0)
    with pytest.raises(ValueError):
        rgtp.get("rgtp://x", tmp_path, max_rate=-1)
    with pytest.raises(ValueError):
        rgtp.send([], port=0)
    assert not os.listdir(tmp_path)


def test_ctrl_c_stops_the_get(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import _thread

    sender, _ = served
    seen: List[FilesEvent] = []

    def interrupt(ev: FilesEvent) -> None:
        seen.append(ev)
        # Again at every file started until get notices: as a user pressing Ctrl-C
        # more than once.
        if ev.kind is EventKind.STARTED:
            _thread.interrupt_main()

    import time

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        # Capped so the ~3 MB file takes seconds: the interrupt lands in the middle.
        rgtp.get(sender.ticket, tmp_path / "ctrl-c", max_rate=1_000_000, progress=interrupt)
    assert time.monotonic() - t0 < 2.5
    assert not any(e.kind is EventKind.DONE and e.path == "tree/big.bin" for e in seen)


def test_sender_progress_and_stats_count_what_was_served(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    files = make_tree(src)
    seen: List[rgtp.files.SenderStats] = []
    got_some = threading.Event()

    def served(st: rgtp.files.SenderStats) -> None:
        seen.append(st)
        if st.chunks_sent > 0:
            got_some.set()

    with rgtp.send(
        [src / "tree"], host="127.0.0.1", port=0, progress=served, progress_interval=0.05
    ) as sender:
        before = sender.stats()
        assert before.serving and before.bytes_out == 0 and before.pulls == 0
        rgtp.get(sender.ticket, tmp_path / "dest")
        assert got_some.wait(5.0), seen
        after = sender.stats()
    total = sum(len(d) for d in files.values())
    # Every byte went out at least once (chunks, with headers), a pull for the
    # catalog and for each of the three files with bytes, nothing dropped on a
    # clean loopback.
    assert after.bytes_out > total
    assert after.pulls >= 4
    assert after.chunks_sent >= total // 1200
    assert after.dropped == 0
    counts = [s.bytes_out for s in seen]
    assert counts == sorted(counts), counts
    with pytest.raises(rgtp.RgtpError):
        sender.stats()


def test_a_progress_callback_returning_stop_stops_serving(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 1000)
    calls: List[int] = []

    def once(st: rgtp.files.SenderStats) -> object:
        calls.append(1)
        return STOP

    sender = rgtp.send([tmp_path / "f"], host="127.0.0.1", port=0, progress=once, progress_interval=0.05)
    deadline = threading.Event()
    for _ in range(100):
        if not sender.serving:
            break
        deadline.wait(0.05)
    assert not sender.serving and sender.stopped_by_callback and calls == [1]
    sender.stop()


def test_sources_pull_from_every_sender_of_the_set(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    big = bytes((i * 7) % 253 for i in range(4 * 1024 * 1024))
    (src / "big.bin").write_bytes(big)
    key = bytes(range(32))
    with rgtp.send([src / "big.bin"], host="127.0.0.1", port=0, key=key) as a, rgtp.send(
        [src / "big.bin"], host="127.0.0.1", port=0, key=key
    ) as b:
        other = b.ticket.split("://", 1)[1].split("/", 1)[0]
        rgtp.get(a.ticket, tmp_path / "dest", sources=[other])
        # The counters are updated about every 200 ms while serving.
        for _ in range(50):
            sa, sb = a.stats(), b.stats()
            if sa.chunks_sent > 0 and sb.chunks_sent > 0:
                break
            threading.Event().wait(0.1)
    assert (tmp_path / "dest" / "big.bin").read_bytes() == big
    # Both senders served chunks of the one file.
    assert sa.chunks_sent > 0 and sb.chunks_sent > 0, (sa, sb)


def test_sources_are_checked(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sender, _ = served
    with pytest.raises(TypeError):
        rgtp.get(sender.ticket, tmp_path / "d", sources="127.0.0.1:1")  # type: ignore[arg-type]
    with pytest.raises(rgtp.RgtpError, match="not HOST:PORT or a ticket"):
        rgtp.get(sender.ticket, tmp_path / "d", sources=["nonsense"])
    with pytest.raises(ValueError):
        rgtp.get(sender.ticket, tmp_path / "d", sources=["127.0.0.1:1"] * 65)
