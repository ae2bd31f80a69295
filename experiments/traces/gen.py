#!/usr/bin/env python3
"""Writes the delivery traces the experiments use, in the Mahimahi link-trace format.

Each line is a time in milliseconds at which the link may send one 1500-byte
packet; a time repeated on n lines lets n packets through in that millisecond.
The simulator repeats a trace when it ends, with its last time as the period.

    python3 experiments/traces/gen.py        # rewrites the .trace files beside it

The output depends on nothing but this script: the varying trace draws its steps
from a fixed-seed generator.
"""

import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKET_BITS = 1500 * 8


def constant(mbit_per_s, period_ms):
    """A fixed rate: packets spread evenly over each millisecond's budget."""
    out = []
    owed = 0.0
    per_ms = mbit_per_s * 1e6 / 1000 / PACKET_BITS
    for t in range(1, period_ms + 1):
        owed += per_ms
        while owed >= 1.0:
            out.append(t)
            owed -= 1.0
    return out


def stepping(levels, step_ms, steps, seed):
    """A cellular-like link: every step_ms the rate jumps to a level drawn at random
    (never the same twice in a row), and packets are spread evenly within a step."""
    rng = random.Random(seed)
    out = []
    owed = 0.0
    level = None
    for s in range(steps):
        level = rng.choice([x for x in levels if x != level])
        per_ms = level * 1e6 / 1000 / PACKET_BITS
        for t in range(s * step_ms + 1, (s + 1) * step_ms + 1):
            owed += per_ms
            while owed >= 1.0:
                out.append(t)
                owed -= 1.0
    # The last line is the period: make sure the trace ends at the last millisecond.
    if not out or out[-1] != steps * step_ms:
        out.append(steps * step_ms)
    return out


def write(name, times):
    (HERE / name).write_text("".join(f"{t}\n" for t in times))
    period = times[-1]
    mean = len(times) * PACKET_BITS / (period / 1000) / 1e6
    print(f"{name}: {len(times)} opportunities over {period} ms, mean {mean:.2f} Mbit/s")


def main():
    write("const-12mbit.trace", constant(12, 1000))
    write("cellular-2-24mbit.trace", stepping([2, 6, 12, 18, 24], 500, 24, seed=2024))


if __name__ == "__main__":
    main()
