"""Statistics the benchmark scripts share (run from the repository's root).

    python3 benches/stats.py interval VALUE...

prints the median of the values, then where the median of what they sample
may lie: low, high, and the chance that it lies between (see median_interval).
"""
import statistics
import sys
from math import comb


def median_interval(values, level=0.95):
    """A distribution-free interval for the median of what `values` sample: their
    k-th smallest and k-th largest, k as large as keeps the chance that the median
    lies between at `level` or more (k = 1 where too few values reach it, as 5 or
    fewer do for 95%); with that chance. None for no values.

    The chance comes from the order of the values alone (each falls below the
    median with probability one half), so it holds whatever their distribution,
    for independent runs."""
    xs = sorted(values)
    n = len(xs)
    if n == 0:
        return None

    def coverage(k):
        return 1 - 2 * sum(comb(n, i) for i in range(k)) / 2**n

    k = 1
    while k + 1 <= (n + 1) // 2 and coverage(k + 1) >= level:
        k += 1
    return xs[k - 1], xs[n - k], max(coverage(k), 0.0)


def _check():
    """Raises if an interval is not the one the binomial gives (plain `if`s, not
    `assert`, so that `python3 -O` checks them too)."""

    def expect(got, want):
        if got != want:
            raise SystemExit(f"median_interval: got {got}, want {want}")

    # 11 values: 2nd to 10th, 1 - 2 * (1 + 11) / 2048 = 98.8%.
    expect(median_interval(range(11, 0, -1)), (2, 10, 1 - 24 / 2048))
    # 6 values reach 95% with the extremes (96.9%); 5 do not (93.8%).
    expect(median_interval([3, 1, 2, 6, 5, 4]), (1, 6, 1 - 2 / 64))
    expect(median_interval([1, 2, 3, 4, 5]), (1, 5, 1 - 2 / 32))
    # 30 values: the 10th to the 21st (95.7%); one step in, the 11th to the 20th
    # (90.1%), is what a 90% level takes.
    c95 = 1 - 2 * sum(comb(30, i) for i in range(10)) / 2**30
    c90 = 1 - 2 * sum(comb(30, i) for i in range(11)) / 2**30
    expect(median_interval(range(30)), (9, 20, c95))
    expect(median_interval(range(30), level=0.90), (10, 19, c90))
    expect(median_interval([7]), (7, 7, 0.0))
    expect(median_interval([]), None)

if __name__ == "__main__":
    if sys.argv[1:2] == ["check"]:
        _check()
        print("ok")
    elif sys.argv[1:2] == ["interval"] and len(sys.argv) > 2:
        values = [float(v) for v in sys.argv[2:]]
        low, high, chance = median_interval(values)
        print(f"{statistics.median(values):.6f} {low:.6f} {high:.6f} {chance:.6f}")
    else:
        sys.exit(__doc__)
