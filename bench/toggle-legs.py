#!/usr/bin/env python3
"""Split toggle traces (loadgen --toggle-trace, bench/compare.sh's
toggles-*.csv) into their legs, p50 / p90 / p99 in ms, one line per file:

  last        the click until the last browser has the new LED state
  toBoard     the click until the board's socket has led/set
  board       the board's own delay: receipt until it wrote its answer
  ans->first  the answer until the first browser's socket
  first->last the first browser until the last (one writer-pool pass)
  ans->last   the answer until the last browser: the control plane's share

With several files, a last line pools every toggle of them: the click
until the last browser at p50 / p90 / p99 / p99.9 (a toggle not confirmed
to every browser counts as 2 s, as in the load generator's report), and
how many took over 20 ms.

  bench/toggle-legs.py bench/results/issue11/2026-12-04-threads/*-toggles.csv
"""
import csv
import sys


def q(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))]


def legs(path):
    rows = [r for r in csv.DictReader(open(path)) if r["confirmed"] == "true"]
    f = lambda r, k: float(r[k])
    return len(rows), {
        "last": [f(r, "last_ms") for r in rows],
        "toBoard": [f(r, "to_board_ms") for r in rows],
        "board": [f(r, "led_out_ms") - f(r, "to_board_ms") for r in rows],
        "ans->first": [f(r, "first_ms") - f(r, "led_out_ms") for r in rows],
        "first->last": [f(r, "last_ms") - f(r, "first_ms") for r in rows],
        "ans->last": [f(r, "last_ms") - f(r, "led_out_ms") for r in rows],
    }


def main(paths):
    pooled = []
    for path in paths:
        n, ls = legs(path)
        parts = [f"{k} {q(v, .5):.1f}/{q(v, .9):.1f}/{q(v, .99):.1f}" for k, v in ls.items() if v]
        print(f"{path}: {n} toggles | " + " | ".join(parts))
        pooled += [float(r["last_ms"]) if r["confirmed"] == "true" else 2000.0 for r in csv.DictReader(open(path))]
    if len(paths) > 1 and pooled:
        print(f"all {len(paths)} files: {len(pooled)} toggles | last " +
              "/".join(f"{q(pooled, p):.2f}" for p in (.5, .9, .99, .999)) +
              f" (p50/p90/p99/p99.9) | over 20 ms: {sum(1 for v in pooled if v > 20)}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
