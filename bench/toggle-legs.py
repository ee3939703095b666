#!/usr/bin/env python3
"""Split toggle traces (loadgen --toggle-trace, bench/compare.sh's
toggles-*.csv) into their legs, p50 / p90 / p99 in ms, one line per file:

  last        the click until the last browser has the new LED state
  toBoard     the click until the board's socket has led/set
  board       the board's own delay: receipt until it wrote its answer
  ans->first  the answer until the first browser's socket
  first->last the first browser until the last (one writer-pool pass)
  ans->last   the answer until the last browser: the control plane's share

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
    for path in paths:
        n, ls = legs(path)
        parts = [f"{k} {q(v, .5):.1f}/{q(v, .9):.1f}/{q(v, .99):.1f}" for k, v in ls.items() if v]
        print(f"{path}: {n} toggles | " + " | ".join(parts))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
