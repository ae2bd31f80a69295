"""Waiting for events on many flows, with the API of pyOuroboros' ``ouroboros.event``:
a :class:`FlowSet` gathers flows, :meth:`FlowSet.wait` fills an :class:`FEventQueue`,
:meth:`FEventQueue.next` hands the events out as ``(flow, type)``.

Beyond pyOuroboros, :meth:`FlowSet.watch_allocs` reports allocations to this process's
names too (``FEventType.FlowAlloc``; :func:`flow_accept` then gives the flow), so one
thread can accept and serve many flows. A joined (broadcast) flow cannot be in a set.
"""

from __future__ import annotations

import collections
import ctypes
import time
from enum import IntFlag
from typing import Any, Deque, Dict, List, Tuple

from ..flow import *  # noqa: F401,F403
from ..flow import Flow, _lib, _ms, _node, _raise, _ERR_TIMEOUT, _SLICE_MS
from ..flow import __all__ as _dev_all

__all__ = _dev_all + [
    "FlowEventError",
    "FlowEventTimeout",
    "FEventType",
    "FEventQueue",
    "FlowSet",
]


# async API
class FlowEventError(Exception):
    pass


class FlowEventTimeout(FlowEventError, TimeoutError):
    """FlowSet.wait saw no event before its timeout."""


class FEventType(IntFlag):
    FlowPkt = 1 << 0
    FlowDown = 1 << 1
    FlowUp = 1 << 2
    FlowAlloc = 1 << 3
    FlowDealloc = 1 << 4
    FlowPeer = 1 << 5


class FEventQueue:
    """
    A queue of events waiting to be handled
    """

    def __init__(self) -> None:
        self.__events: Deque[Tuple[Flow, FEventType]] = collections.deque()

    def __len__(self) -> int:
        return len(self.__events)

    def _push(self, flow: Flow, kind: int) -> None:
        self.__events.append((flow, FEventType(kind)))

    def next(self) -> Tuple[Flow, FEventType]:
        """
        Get the next event
        :return: Flow and eventtype on that flow
        """
        if not self.__events:
            raise FlowEventError("no event in the queue: wait on a FlowSet first")
        return self.__events.popleft()


class FlowSet:
    """
    A set of flows that can be monitored for events
    """

    def __init__(self, flows: List[Flow] = None) -> None:
        out = _lib.FlowSetPtr()
        _raise(_lib.load().fn("rgtp_flow_set_create")(_node(), ctypes.byref(out)))
        self.__set: Any = out
        self.__flows: Dict[int, Flow] = {}
        if flows is not None:
            for flow in flows:
                self.add(flow)

    def __enter__(self) -> "FlowSet":
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, tb: Any) -> None:
        self.destroy()

    def __del__(self) -> None:
        try:
            self.destroy()
        except Exception:
            pass

    def __len__(self) -> int:
        return len(self.__flows)

    def _set(self) -> Any:
        if self.__set is None:
            raise ValueError("the FlowSet was destroyed")
        return self.__set

    def add(self, flow: Flow) -> None:
        """
        Add a Flow

        :param flow: The flow object to add
        """
        s = self._set()
        _raise(_lib.load().fn("rgtp_flow_set_add")(s, flow._handle()))
        self.__flows[flow._id()] = flow

    def zero(self) -> None:
        """
        Remove all Flows from this set
        """
        for flow in list(self.__flows.values()):
            self.remove(flow)

    def remove(self, flow: Flow) -> None:
        """
        Remove a flow from a set

        :param flow:
        """
        s = self._set()
        fid = flow._id()
        if fid is not None:
            _lib.load().fn("rgtp_flow_set_remove")(s, flow._handle())
        for k, v in list(self.__flows.items()):
            if v is flow:
                del self.__flows[k]

    def watch_allocs(self, on: bool = True) -> None:
        """Also report allocations to this process's names (FEventType.FlowAlloc)."""
        _raise(_lib.load().fn("rgtp_flow_set_watch_allocs")(self._set(), bool(on)))

    def wait(self, fq: FEventQueue, timeo: float = None) -> None:
        """
        Wait for at least one event on one of the monitored flows; the events go to fq.
        Raises FlowEventTimeout (a FlowEventError and a TimeoutError) if none came.
        """
        s = self._set()
        events = (_lib.rgtp_flow_event_t * 64)()
        n = ctypes.c_size_t()
        wait = _lib.load().fn("rgtp_flow_set_wait")
        deadline = None if timeo is None else time.monotonic() + max(timeo, 0)
        while True:
            if deadline is None:
                ms = _SLICE_MS
            else:
                ms = min(_SLICE_MS, _ms(deadline - time.monotonic()))
            rc = wait(s, events, len(events), ctypes.byref(n), ms)
            if rc == _ERR_TIMEOUT:
                if deadline is None or time.monotonic() < deadline:
                    continue
                raise FlowEventTimeout("no event on the flow set before the timeout")
            if rc != 0:
                try:
                    _raise(rc)
                except Exception as e:
                    raise FlowEventError(str(e)) from e
            pushed = 0
            for ev in events[: n.value]:
                flow = self.__flows.get(int(ev.flow))
                if flow is None:
                    if ev.kind != FEventType.FlowAlloc:
                        continue  # a flow removed since: its late events are dropped
                    flow = Flow()  # not accepted yet: flow_accept() gives it
                fq._push(flow, int(ev.kind))
                pushed += 1
            if pushed:
                return

    def destroy(self) -> None:
        if self.__set is not None:
            s, self.__set = self.__set, None
            self.__flows = {}
            _lib.load().fn("rgtp_flow_set_destroy")(s)
