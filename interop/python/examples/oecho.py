#!/usr/bin/env python3
"""An echo server and client over flows (rgtp.flow).

Server: echoes every message of every flow to its name, one thread per flow.

    rgtp flow bind oecho -- python3 oecho.py --listen       # or: oecho.py --listen --name oecho

Client: allocates a flow to the name, sends messages and checks each echo.

    python3 oecho.py [--name oecho] [--qos data] [--count 10]

The client exits with status 1 if an echo differs or does not come.
"""

import argparse
import os
import sys
import threading

from rgtp.flow import PRESETS, FlowDownException, flow_accept, flow_alloc, init, register


def serve(flow):
    with flow:
        while True:
            try:
                msg = flow.read(1 << 20)
            except FlowDownException:
                return
            flow.write(msg)


def server(name):
    addr = init()
    if os.environ.get("RGTP_FLOW_BIND") != name:
        register(name)
    print(f"oecho: serving {name!r} on {addr}", flush=True)
    while True:
        f = flow_accept()
        threading.Thread(target=serve, args=(f,), daemon=True).start()


def client(name, qos, count, timeo):
    with flow_alloc(name, PRESETS[qos], timeo) as f:
        f.set_rcv_timeout(timeo)
        for i in range(count):
            line = f"Hello, flow! ({i})"
            f.writeline(line)
            back = f.readline()
            if back != line:
                print(f"oecho: sent {line!r}, got {back!r}", file=sys.stderr)
                return 1
        print(f"oecho: {count} messages echoed by {f.peer()} [{f.layers()}]")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="A simple echo client/server over flows")
    p.add_argument("-l", "--listen", action="store_true", help="run as a server")
    p.add_argument("--name", default=os.environ.get("RGTP_FLOW_BIND") or "oecho")
    p.add_argument("--qos", default="data", choices=sorted(PRESETS))
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per step")
    a = p.parse_args()
    if a.listen:
        server(a.name)
    else:
        sys.exit(client(a.name, a.qos, a.count, a.timeout))
