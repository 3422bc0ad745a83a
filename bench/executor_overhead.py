"""Executor overhead (issue 8): what running jobs through ``backtest.executors`` costs beyond the jobs.

For each executor (``local`` threads, ``processes``, ``dask`` with a LocalCluster it starts, and optionally
an existing cluster given by ``--scheduler``) it times: starting it (``with`` entry), a first cold ``map``
of 16 trivial jobs (worker processes start and import here), then warm ``map``s (the best of
``--repeats``, the least disturbed by other load) of three workloads, and closing it:

- 16 trivial jobs (return the item): the fixed cost per job;
- 4 jobs of ≈ 0.2 s of a numba ``nogil`` kernel each: wall time against the ideal
  ``ceil(4 / parallel) × t₁`` (``t₁`` = one job in this process), the excess per job;
- 4 jobs that each carry an 8 MB float64 array (a 170,000-account × 6-asset book) and return its sum:
  the cost of shipping a job's data, per job.

A plain loop in this process is the reference row. Figures are noisy on a shared machine: the load
average is printed with them.

    python bench/executor_overhead.py [--repeats 5] [--workers N] [--scheduler tcp://HOST:PORT]

With ``--scheduler``, the cluster's workers must be able to import this file's module: start them with
``PYTHONPATH=bench`` from the repository root.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
from numba import njit

TRIVIAL_JOBS = 16
NUMBA_JOBS = 4
NUMBA_TARGET_S = 0.2
PAYLOAD_JOBS = 4
PAYLOAD_SHAPE = (170_000, 6)  # 8.2 MB of float64


@dataclass(frozen=True)
class Burn:
    iterations: int
    seed: float


@dataclass(frozen=True)
class Payload:
    index: int
    book: np.ndarray


@njit(cache=True, nogil=True)
def _burn(iterations, seed):
    acc = 0.0
    for i in range(iterations):
        acc += math.sin(seed + i * 1e-3) * math.sqrt(i + 1.0)
    return acc


def trivial(item: int) -> int:
    return item


def burn(job: Burn) -> float:
    return float(_burn(job.iterations, job.seed))


def payload_sum(job: Payload) -> float:
    return float(job.book.sum())


def calibrate(target_s: float) -> tuple[int, float]:
    """Iterations of ``_burn`` that take ``target_s`` in this process, and the measured time of one call."""
    _burn(1000, 0.0)  # compile or load from the cache
    n = 1_000_000
    while True:
        t0 = time.perf_counter()
        _burn(n, 0.0)
        dt = time.perf_counter() - t0
        if dt > 0.05:
            break
        n *= 4
    n = int(n * target_s / dt)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        _burn(n, 0.5)
        times.append(time.perf_counter() - t0)
    return n, min(times)


def timed(fn, *args) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


class _Loop:
    """The reference: a plain loop in this process, shaped like an executor."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def map(self, fn, items, progress=None):
        return [fn(item) for item in items]

    def describe(self):
        return "loop: a plain for-loop in this process"


def measure(label: str, make, parallel: int, workloads: dict, t1: float, repeats: int) -> dict:
    ex = make()
    start, _ = timed(ex.__enter__)
    try:
        print(f"  {ex.describe()}", file=sys.stderr, flush=True)
        fn, items, _ = workloads["trivial"]
        first, _ = timed(ex.map, fn, items)
        row = {"executor": label, "start_s": start, "first_s": first}
        for name, (fn, items, expected) in workloads.items():
            walls = []
            for _ in range(repeats):
                wall, out = timed(ex.map, fn, items)
                assert out == expected, f"{label}: {name}: results differ from the plain loop"
                walls.append(wall)
            row[name] = min(walls)
    finally:
        close, _ = timed(ex.__exit__, None, None, None)
    row["close_s"] = close
    row["trivial_ms"] = row["trivial"] / TRIVIAL_JOBS * 1e3
    ideal = math.ceil(NUMBA_JOBS / max(1, min(parallel, NUMBA_JOBS))) * t1
    row["numba_ideal_s"] = ideal
    row["numba_excess_ms"] = (row["numba"] - ideal) / NUMBA_JOBS * 1e3
    row["payload_ms"] = row["payload"] / PAYLOAD_JOBS * 1e3
    return row


def main(argv: list[str] | None = None) -> None:
    import executor_overhead as me  # the workers import the jobs from this module, not from __main__
    from common import print_machine

    from backtest.executors import cores, get_executor

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="warm map calls per workload (the best is reported)")
    ap.add_argument("--workers", type=int, default=None, help="threads / processes / LocalCluster workers")
    ap.add_argument("--scheduler", default=None, help="also time an existing Dask cluster at this address")
    args = ap.parse_args(argv)

    parallel = args.workers or cores()
    iterations, t1 = calibrate(NUMBA_TARGET_S)
    rng = np.random.default_rng(8)
    burns = [me.Burn(iterations, float(i)) for i in range(NUMBA_JOBS)]
    payloads = [me.Payload(i, rng.random(PAYLOAD_SHAPE)) for i in range(PAYLOAD_JOBS)]
    workloads = {
        "trivial": (me.trivial, list(range(TRIVIAL_JOBS)), list(range(TRIVIAL_JOBS))),
        "numba": (me.burn, burns, [me.burn(b) for b in burns]),
        "payload": (me.payload_sum, payloads, [me.payload_sum(p) for p in payloads]),
    }
    print_machine()
    print(f"numba job: {iterations:,} iterations, t1 = {t1:.3f} s in this process; parallel = {parallel}; "
          f"payload = {payloads[0].book.nbytes / 1e6:.1f} MB per job; repeats = {args.repeats}")

    runs = [("loop", _Loop, 1),
            ("local", lambda: get_executor("local", workers=args.workers), parallel),
            ("processes", lambda: get_executor("processes", workers=args.workers), parallel),
            ("dask", lambda: get_executor("dask", workers=args.workers), parallel)]
    if args.scheduler:
        runs.append(("dask --scheduler", lambda: get_executor("dask", scheduler=args.scheduler), parallel))
    rows = [measure(label, make, par, workloads, t1, args.repeats) for label, make, par in runs]

    header = ("executor", "start s", "1st map s", "trivial ms/job", f"numba {NUMBA_JOBS}×{t1:.2f}s wall s",
              "ideal s", "excess ms/job", "8 MB job ms/job", "close s")
    table = [header] + [(r["executor"], f"{r['start_s']:.2f}", f"{r['first_s']:.2f}", f"{r['trivial_ms']:.2f}",
                         f"{r['numba']:.3f}", f"{r['numba_ideal_s']:.3f}", f"{r['numba_excess_ms']:+.1f}",
                         f"{r['payload_ms']:.1f}", f"{r['close_s']:.2f}") for r in rows]
    widths = [max(len(row[c]) for row in table) for c in range(len(header))]
    print()
    for n, row in enumerate(table):
        print("  ".join(cell.rjust(w) if c else cell.ljust(w) for c, (cell, w) in enumerate(zip(row, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"\nload average at the end: {load}")
    print("reproduce (repository root, project virtualenv active): python bench/executor_overhead.py"
          + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])))


if __name__ == "__main__":
    import executor_overhead

    executor_overhead.main()
