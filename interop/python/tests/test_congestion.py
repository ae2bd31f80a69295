"""Choosing the congestion controller of pulls: Socket.set_congestion and Socket(cc=...)."""

from __future__ import annotations

from typing import List

import pytest

import rgtp

from conftest import payload

PULL_CFG = rgtp.Config(timeout_ms=5000)


def _puller_controllers(events: List[rgtp.LogEvent]) -> List[str]:
    return [
        ev.fields.get("cc", "")
        for ev in events
        if ev.message == "surface created" and ev.fields.get("kind") == "puller"
    ]


def test_unknown_names_are_refused(lib: str) -> None:
    with rgtp.Socket() as sock:
        for name in ("delay", "reno", "cubic"):
            sock.set_congestion(name)
        for name in ("bbr", "", "CUBIC"):
            with pytest.raises(rgtp.RgtpError) as ei:
                sock.set_congestion(name)
            assert ei.value.code == rgtp.RGTP_ERR_INVALID_ARG
        with pytest.raises(ValueError):
            sock.set_congestion("reno\0x")
        with pytest.raises(TypeError):
            sock.set_congestion(b"reno")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sock.set_congestion("reno")  # closed socket
    with pytest.raises(rgtp.RgtpError) as ei:
        rgtp.Socket(cc="vegas")
    assert ei.value.code == rgtp.RGTP_ERR_INVALID_ARG


def test_pulls_run_the_chosen_controller(serve) -> None:
    data = payload(200_000, seed=3)
    e = serve(data)
    events: List[rgtp.LogEvent] = []
    rgtp.set_log_callback(events.append, rgtp.LogLevel.INFO)
    try:
        with rgtp.Socket() as sock:
            with rgtp.pull_ticket(sock, e.ticket, PULL_CFG) as s:
                assert rgtp.pull_bytes(s, idle_timeout=20) == data
            sock.set_congestion("cubic")
            with rgtp.pull_ticket(sock, e.ticket, PULL_CFG) as s:
                assert rgtp.pull_bytes(s, idle_timeout=20) == data
        with rgtp.Socket(cc="reno") as sock, rgtp.pull_ticket(sock, e.ticket, PULL_CFG) as s:
            assert rgtp.pull_bytes(s, idle_timeout=20) == data
    finally:
        rgtp.set_log_callback(None)
    assert _puller_controllers(events) == ["delay", "cubic", "reno"]
