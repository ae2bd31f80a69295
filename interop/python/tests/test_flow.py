"""rgtp.flow (the pyOuroboros-shaped flow API) against librgtp: allocation by name and
echo, non-blocking reads, timeouts, deallocation from another thread, clear errors for
unknown names and oversized SDUs, a FlowSet serving 100+ flows from one thread, context
managers, flags, QoS presets and broadcast groups (flow_join).

The servers and the other members run in child processes (one node per process),
found through a file directory of the test's own."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from conftest import first_line, running

pytestmark = pytest.mark.usefixtures("lib")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
T = 10.0


@pytest.fixture(scope="module")
def flowdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A file directory for names, used by this process's node and by every child."""
    import rgtp.flow as rf

    d = tmp_path_factory.mktemp("flow-names")
    old = os.environ.get("RGTP_FLOW_DIR")
    os.environ["RGTP_FLOW_DIR"] = str(d)
    rf.shutdown()  # the next call opens a node that reads the variable
    yield d
    rf.shutdown()
    if old is None:
        del os.environ["RGTP_FLOW_DIR"]
    else:
        os.environ["RGTP_FLOW_DIR"] = old


def env_with(**extra: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


_n = [0]


def unique(what: str) -> str:
    _n[0] += 1
    return f"py-{what}-{os.getpid()}-{_n[0]}"


def echo_server(name: str, script: str = "oecho.py"):
    """The example echo server, given `name` through RGTP_FLOW_BIND."""
    return running(
        [sys.executable, str(EXAMPLES / script), "--listen"],
        env=env_with(RGTP_FLOW_BIND=name),
    )


def test_alloc_accept_echo_and_context_manager(flowdir: Path) -> None:
    from rgtp.flow import (
        FlowNotAllocatedException,
        FlowProperties,
        flow_alloc,
        qos_data,
    )

    name = unique("echo")
    with echo_server(name) as p:
        assert "serving" in first_line(p)
        with flow_alloc(name, qos_data, T) as f:
            assert f.get_qos() == qos_data
            assert "arq" in f.layers() and "reorder" in f.layers()
            assert f.peer().startswith(name + "@")
            assert f.get_flags() == FlowProperties.ReadWrite
            for i in range(20):
                line = f"hello {i} " + "z" * (i * 50)
                assert f.writeline(line) == len(line.encode())
                assert f.readline() == line
            big = bytes(range(256)) * 40
            f.write(big)
            assert f.read(len(big)) == big
            # A short read gives the start, the next read the rest.
            f.write(b"0123456789")
            assert f.read(4) == b"0123"
            assert f.read() == b"456789"
        # Leaving the block deallocated the flow.
        with pytest.raises(FlowNotAllocatedException):
            f.write(b"x")


def test_nonblocking_read_timeout_and_dealloc_wakes_reader(flowdir: Path) -> None:
    from rgtp.flow import (
        FlowDeallocatedException,
        FlowProperties,
        FlowWouldBlock,
        flow_alloc,
    )

    name = unique("nb")
    with echo_server(name) as p:
        first_line(p)
        f = flow_alloc(name, timeo=T)
        f.set_flags(FlowProperties.ReadWrite | FlowProperties.NonBlockingRead)
        with pytest.raises(FlowWouldBlock):
            f.read()
        with pytest.raises(BlockingIOError):
            f.read()
        f.set_flags(FlowProperties.ReadWrite)
        f.set_rcv_timeout(0.05)
        assert f.get_rcv_timeout() == 0.05
        with pytest.raises(TimeoutError):
            f.read()
        f.set_rcv_timeout(None)
        got: List[BaseException] = []

        def reader() -> None:
            try:
                f.read()
            except BaseException as e:  # noqa: BLE001 - recorded for the assertion
                got.append(e)

        t = threading.Thread(target=reader)
        t.start()
        time.sleep(0.1)
        f.dealloc()
        t.join(T)
        assert not t.is_alive(), "the blocked reader did not wake"
        assert len(got) == 1 and isinstance(got[0], FlowDeallocatedException), got


def test_unknown_name_is_a_clear_error(flowdir: Path) -> None:
    from rgtp.flow import FlowUnknownNameError, flow_alloc

    name = unique("nobody")
    with pytest.raises(FlowUnknownNameError) as e:
        flow_alloc(name, timeo=1.0)
    msg = str(e.value)
    assert name in msg and str(flowdir) in msg and "rgtp flow bind" in msg, msg


def test_unsupported_qos_and_async_alloc_are_clear_errors(flowdir: Path) -> None:
    from rgtp.flow import FlowException, flow_alloc, qos_data_crypt

    # NAME@HOST:PORT skips the lookup; without a flow key an encrypted QoS is refused
    # before anything is sent, naming how to give one.
    with pytest.raises(FlowException) as e:
        flow_alloc("anyone@127.0.0.1:9", qos_data_crypt, 1.0)
    assert "RGTP_FLOW_KEY" in str(e.value), str(e.value)
    with pytest.raises(ValueError) as v:
        flow_alloc("anyone@127.0.0.1:9", None, 0)
    assert "asynchronous" in str(v.value)


def test_sdu_over_the_limit(flowdir: Path) -> None:
    from rgtp.flow import FlowProperties, FlowTooLargeError, flow_alloc

    name = unique("big")
    limit = 1 << 20
    with echo_server(name) as p:
        first_line(p)
        with flow_alloc(name, timeo=T) as f:
            f.set_flags(FlowProperties.ReadWrite | FlowProperties.NoPartialWrite)
            with pytest.raises(FlowTooLargeError) as e:
                f.write(b"x" * (limit + 1))
            assert str(limit) in str(e.value) and "split" in str(e.value)
            assert isinstance(e.value, ValueError)
            # Without NoPartialWrite, the first limit's worth goes.
            f.set_flags(FlowProperties.ReadWrite)
            assert f.write(b"y" * (limit + 1)) == limit
            # No partial reads: the SDU stays for a large enough buffer.
            f.set_flags(FlowProperties.ReadWrite | FlowProperties.NoPartialRead)
            f.set_rcv_timeout(T)
            with pytest.raises(FlowTooLargeError):
                f.read(1000)
            assert f.read(limit) == b"y" * limit


def test_queue_lens_count_unread_and_unacknowledged(flowdir: Path) -> None:
    from rgtp.flow import flow_alloc
    from rgtp.flow.qos import qos_data

    name = unique("queues")
    with echo_server(name) as p:
        first_line(p)
        with flow_alloc(name, qos_data, T) as f:
            assert (f.get_rx_queue_len(), f.get_tx_queue_len()) == (0, 0)
            for m in (b"one", b"two", b"three"):
                f.write(m)
            # The echoes wait here unread; what was written is acknowledged.
            deadline = time.monotonic() + T
            while (
                f.get_rx_queue_len() < 3 or f.get_tx_queue_len() > 0
            ) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert (f.get_rx_queue_len(), f.get_tx_queue_len()) == (3, 0)
            f.set_rcv_timeout(T)
            assert f.read(100) == b"one"
            assert f.get_rx_queue_len() == 2


def test_flags_access_mode_and_down(flowdir: Path) -> None:
    from rgtp.flow import (
        FlowDownException,
        FlowPermissionException,
        FlowProperties,
        QoSSpec,
        flow_alloc,
    )

    name = unique("flags")
    with echo_server(name) as p:
        first_line(p)
        # A one-second peer timeout: the flow goes down soon after the server dies.
        f = flow_alloc(name, QoSSpec(loss=0, in_order=1, timeout=1000), T)
        f.set_flags(FlowProperties.ReadOnly)
        with pytest.raises(FlowPermissionException):
            f.write(b"x")
        f.set_flags(FlowProperties.WriteOnly)
        with pytest.raises(FlowPermissionException):
            f.read()
        f.set_flags(FlowProperties.ReadWrite)
        f.writeline("last")
        assert f.readline() == "last"
        assert not f.get_flags() & FlowProperties.Down
        p.kill()
        p.wait(T)
    # SIGKILL: no deallocation reached the peer; the QoS timeout takes the flow down.
    f.set_rcv_timeout(T)
    with pytest.raises(FlowDownException):
        f.read()
    assert f.get_flags() & FlowProperties.Down
    f.dealloc()


def test_flow_set_serves_many_flows_from_one_thread(flowdir: Path) -> None:
    from rgtp.flow import FlowDownException, FlowProperties, FlowWouldBlock, flow_accept
    from rgtp.flow import register, unregister
    from rgtp.flow.event import FEventQueue, FEventType, FlowEventTimeout, FlowSet

    name = unique("set")
    n = 120
    register(name)
    fq = FEventQueue()
    accepted = echoed = ended = 0
    with FlowSet() as fs:
        fs.watch_allocs(True)
        with pytest.raises(FlowEventTimeout):
            fs.wait(fq, timeo=0.05)
        client = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "oecho_set.py"), "--name", name]
            + ["--flows", str(n), "--count", "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while ended < n and time.monotonic() < deadline:
            try:
                fs.wait(fq, timeo=0.5)
            except FlowEventTimeout:
                if client.poll() is not None:
                    break
                continue
            while len(fq):
                f, t = fq.next()
                if t == FEventType.FlowAlloc:
                    f = flow_accept(0)
                    f.set_flags(FlowProperties.ReadWrite | FlowProperties.NonBlockingRead)
                    fs.add(f)
                    accepted += 1
                elif t == FEventType.FlowPkt:
                    while True:
                        try:
                            f.write(f.read(1 << 20))
                            echoed += 1
                        except (FlowWouldBlock, FlowDownException):
                            break
                elif t == FEventType.FlowDealloc:
                    fs.remove(f)
                    f.dealloc()
                    ended += 1
        out, err = client.communicate(timeout=30)
        assert client.returncode == 0, err
        assert f"{n} flows x 2 messages echoed" in out
        assert len(fs) == 0
    with pytest.raises(ValueError):
        fs.add(f)  # the with block destroyed the set
    unregister(name)
    assert (accepted, echoed, ended) == (n, 2 * n, n)


def test_pyouroboros_set_idiom(flowdir: Path) -> None:
    """oecho_set.py's pattern: a set around one flow, waited in a with block."""
    from rgtp.flow import flow_alloc
    from rgtp.flow.event import FEventQueue, FEventType, FlowEventError, FlowSet

    name = unique("idiom")
    with echo_server(name) as p:
        first_line(p)
        with flow_alloc(name, timeo=T) as f:
            f.writeline("ping")
            fq = FEventQueue()
            with FlowSet([f]) as fs:
                fs.wait(fq, timeo=T)
            f2, t = fq.next()
            assert t == FEventType.FlowPkt and f2 is f
            assert f2.readline() == "ping"
            with pytest.raises(FlowEventError):
                fq.next()


def test_qos_presets_match_the_library() -> None:
    import rgtp.flow as rf
    from rgtp.flow.qos import DEFAULT_PEER_TIMEOUT, PRESETS, QoSSpec, UINT32_MAX

    for name, q in PRESETS.items():
        assert rf.qos_preset(name) == q, name
    d = QoSSpec()
    assert (d.delay, d.loss, d.in_order, d.max_gap, d.timeout) == (
        UINT32_MAX,
        1,
        0,
        UINT32_MAX,
        DEFAULT_PEER_TIMEOUT,
    )
    assert rf.qos_data.loss == 0 and rf.qos_voice.bandwidth == 100000
    with pytest.raises(ValueError):
        rf.qos_preset("no-such-preset")


def test_pyouroboros_names() -> None:
    import rgtp.flow as dev
    import rgtp.flow.event as event

    for n in (
        "Flow",
        "flow_alloc",
        "flow_accept",
        "flow_join",
        "FlowProperties",
        "QoSSpec",
        "FlowAllocatedException",
        "FlowNotAllocatedException",
        "FlowDownException",
        "FlowPermissionException",
        "FlowException",
        "FlowDeallocWarning",
        "FRCT_RETRANSMIT",
        "FRCT_RESCNTL",
        "FRCT_LINGER",
        "MILLION",
        "BILLION",
        "qos_raw",
        "qos_best_effort",
        "qos_video",
        "qos_voice",
        "qos_data",
    ):
        assert hasattr(dev, n), n
    for n in ("FEventQueue", "FEventType", "FlowSet", "FlowEventError", "flow_alloc"):
        assert hasattr(event, n), n
    P = dev.FlowProperties
    assert (P.ReadOnly, P.WriteOnly, P.ReadWrite, P.Down) == (0, 1, 2, 4)
    assert (P.NonBlockingRead, P.NonBlockingWrite, P.NoPartialRead, P.NoPartialWrite) == (
        0o1000,
        0o2000,
        0o10000,
        0o200000,
    )
    f = dev.Flow()
    with pytest.raises(dev.FlowNotAllocatedException):
        f.read()
    with pytest.raises(dev.FlowDeallocWarning):
        f.dealloc()


MEMBER = """
import sys
from rgtp.flow import flow_join
me = sys.argv[1]
g = flow_join(sys.argv[2], None, 10.0)
print("joined", flush=True)
g.set_rcv_timeout(10.0)
assert g.readline() == "go"
g.writeline("hello from " + me)
heard = set()
while len(heard) < 1:
    m = g.readline()
    if m.startswith("hello from ") and m != "hello from " + me:
        heard.add(m)
print("heard", sorted(heard)[0], flush=True)
sys.stdin.read()
"""


def test_join_broadcasts_to_every_member(flowdir: Path) -> None:
    from rgtp.flow import flow_join

    name = unique("group")
    with flow_join(name, timeo=T) as g:
        assert g.peer() == name + "#*"
        kids = []
        try:
            for k in ("a", "b"):
                kid = subprocess.Popen(
                    [sys.executable, "-c", MEMBER, k, name],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                kids.append(kid)
                assert first_line(kid) == "joined"
            # One write reaches both other members.
            g.writeline("go")
            g.set_rcv_timeout(T)
            got = sorted(g.readline() for _ in kids)
            assert got == ["hello from a", "hello from b"]
            # Each member heard the other (not itself).
            assert first_line(kids[0]) == "heard hello from b"
            assert first_line(kids[1]) == "heard hello from a"
        finally:
            for kid in kids:
                kid.stdin.close()
                kid.wait(T)
                kid.stdout.close()
                kid.stderr.close()


def test_an_encrypted_flow_echoes_when_both_ends_hold_the_key(flowdir: Path) -> None:
    import rgtp.flow as rf
    from rgtp.flow import FlowException, flow_alloc, qos_data_crypt

    key = "5a" * 32
    name = unique("crypt")
    old = os.environ.get("RGTP_FLOW_KEY")
    os.environ["RGTP_FLOW_KEY"] = key
    rf.shutdown()  # the next node reads the key
    try:
        with running(
            [sys.executable, str(EXAMPLES / "oecho.py"), "--listen"],
            env=env_with(RGTP_FLOW_BIND=name, RGTP_FLOW_KEY=key),
        ) as p:
            assert "serving" in first_line(p)
            with flow_alloc(name, qos_data_crypt, T) as f:
                assert "aead" in f.layers(), f.layers()
                f.writeline("sealed hello")
                assert f.readline() == "sealed hello"
        # A server holding another key refuses the flow, and the error says so.
        other = unique("crypt-other")
        with running(
            [sys.executable, str(EXAMPLES / "oecho.py"), "--listen"],
            env=env_with(RGTP_FLOW_BIND=other, RGTP_FLOW_KEY="a5" * 32),
        ) as p:
            assert "serving" in first_line(p)
            with pytest.raises(FlowException) as e:
                flow_alloc(other, qos_data_crypt, T)
            assert "key" in str(e.value), str(e.value)
    finally:
        if old is None:
            del os.environ["RGTP_FLOW_KEY"]
        else:
            os.environ["RGTP_FLOW_KEY"] = old
        rf.shutdown()
