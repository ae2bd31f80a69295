#!/usr/bin/env python3
"""An echo server serving many flows from one thread with a FlowSet and an event
queue (rgtp.flow.event), and a client that opens many flows at once.

Server: accepts every flow to its name and echoes its messages, all in one thread.

    rgtp flow bind oecho_set -- python3 oecho_set.py --listen

Client: allocates --flows flows, sends --count messages on each, checks every echo.

    python3 oecho_set.py [--name oecho_set] [--flows 100] [--count 3]

The client exits with status 1 if an echo differs or does not come.
"""

import argparse
import os
import sys

from rgtp.flow import PRESETS, FlowDownException, FlowProperties, FlowWouldBlock, flow_accept
from rgtp.flow import flow_alloc, init
from rgtp.flow import register
from rgtp.flow.event import FEventQueue, FEventType, FlowSet


def server(name):
    addr = init()
    if os.environ.get("RGTP_FLOW_BIND") != name:
        register(name)
    fq = FEventQueue()
    fs = FlowSet()
    fs.watch_allocs(True)
    print(f"oecho_set: serving {name!r} on {addr}", flush=True)
    flows = 0
    while True:
        fs.wait(fq)
        while len(fq):
            f, t = fq.next()
            if t == FEventType.FlowAlloc:
                f = flow_accept(0)
                f.set_flags(FlowProperties.ReadWrite | FlowProperties.NonBlockingRead)
                fs.add(f)
                flows += 1
            elif t == FEventType.FlowPkt:
                while True:
                    try:
                        f.write(f.read(1 << 20))
                    except (FlowWouldBlock, FlowDownException):
                        break  # drained, or the peer left (its DEALLOC event follows)
            elif t in (FEventType.FlowDealloc, FEventType.FlowDown):
                fs.remove(f)
                f.dealloc()


def client(name, qos, n, count, timeo):
    flows = [flow_alloc(name, PRESETS[qos], timeo) for _ in range(n)]
    try:
        for i in range(count):
            for j, f in enumerate(flows):
                f.writeline(f"flow {j} message {i}")
            for j, f in enumerate(flows):
                f.set_rcv_timeout(timeo)
                want = f"flow {j} message {i}"
                back = f.readline()
                if back != want:
                    print(f"oecho_set: sent {want!r}, got {back!r}", file=sys.stderr)
                    return 1
        print(f"oecho_set: {n} flows x {count} messages echoed")
        return 0
    finally:
        for f in flows:
            f.dealloc()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="An echo server on one thread, many flows")
    p.add_argument("-l", "--listen", action="store_true", help="run as a server")
    p.add_argument("--name", default=os.environ.get("RGTP_FLOW_BIND") or "oecho_set")
    p.add_argument("--qos", default="data", choices=sorted(PRESETS))
    p.add_argument("--flows", type=int, default=100)
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per step")
    a = p.parse_args()
    if a.listen:
        server(a.name)
    else:
        sys.exit(client(a.name, a.qos, a.flows, a.count, a.timeout))
