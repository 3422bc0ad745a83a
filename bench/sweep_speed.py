"""Benchmark of ``mbt sweep``: 1,000+ jobs (51 rule sets × 20 GBM scenarios) of 10,000 accounts × one day of
10-minute steps, as one sweep and against separate ``mbt run`` calls (issue #10: ≤ 60 s with
``--executor processes``, ≤ 1/20 of the separate calls).

1. Builds (cached in ``bench/out/e2e/``, through ``end_to_end.prepare``) 10,000 accounts × 6 assets × 576
   ten-minute prices: three days of history for the GBM lookback, then the swept day (144 steps).
2. Writes a config: the ``current`` rule set of the end-to-end benchmark, ``[[scenarios]]`` gbm with
   ``lookback = "3d"``, ``paths = 20``; the grid ``market.close_factor = 0.1:1.0:0.1`` ×
   ``assets.WETH.liquidation_bonus = 0.03:0.07:0.01`` (50 points + the base = 51 rule sets → 1,020 jobs).
3. Times ``mbt sweep`` as a child process (start to exit, fresh database copy each) with ``--executor
   processes`` (2 and 1 workers), ``local`` and ``dask`` (LocalCluster), and ``mbt run`` of one rule set on
   one scenario (3 runs, median) × 1,020 for the separate-calls figure.

    python bench/sweep_speed.py          # --help for the knobs

Figures only; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import common
import end_to_end

ACCOUNTS, STEPS, LOOKBACK = 10_000, 576, 432


def config(start: str, end: str, paths: int, grid: bool = True) -> str:
    lines = ["[run]", 'name = "bench-sweep"', f'start = "{start}"', f'end = "{end}"', "", "[market]",
             'liquidation = "aave"', "close_factor = 0.5", "gas_usd = 1.0", "", "[[rules]]", 'name = "current"']
    for a in common.ASSETS_6:
        ltv, lt, lb = common.RISK_PARAMS[a]
        lines += [f"[rules.assets.{a}]", f"ltv = {ltv}", f"liquidation_threshold = {lt}", f"liquidation_bonus = {lb}"]
    lines += ["", "[[scenarios]]", 'name = "mc"', 'kind = "gbm"', 'lookback = "3d"', f"paths = {paths}", "seed = 1"]
    if grid:
        lines += ["", "[sweep]", "[sweep.grid]", '"market.close_factor" = "0.1:1.0:0.1"',
                  '"assets.WETH.liquidation_bonus" = "0.03:0.07:0.01"']
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paths", type=int, default=20, help="GBM scenarios (default 20 → 1,020 jobs)")
    ap.add_argument("--only", default="processes,processes1,local,dask,separate",
                    help="comma-separated subset of: processes, processes1, local, dask, separate")
    args = ap.parse_args()
    common.print_machine()
    print(common.reproduce_line("bench/sweep_speed.py"))
    cfg0, db = end_to_end.prepare(common.OUT_DIR / "e2e", ACCOUNTS, STEPS, 1.0, 20210519)
    import pandas as pd

    grid = pd.date_range(end_to_end.GRID_START, periods=STEPS, freq=end_to_end.STEP)
    iso = end_to_end._iso(grid)
    start, end = iso[LOOKBACK], iso[-1]
    work = Path(tempfile.mkdtemp(prefix="mbt-sweep-bench-"))
    sweep_toml = work / "sweep.toml"
    sweep_toml.write_text(config(start, end, args.paths))
    one_toml = work / "one.toml"
    one_toml.write_text(config(start, end, 1, grid=False))
    jobs = 51 * args.paths
    mbt = end_to_end._mbt()
    env = common.thread_env("1")
    results = {}
    runs = {"processes": ["--executor", "processes"], "processes1": ["--executor", "processes", "--workers", "1"],
            "local": ["--executor", "local"], "dask": ["--executor", "dask"]}
    for name in args.only.split(","):
        if name == "separate":
            walls = []
            for i in range(3):
                copy = work / f"one{i}.duckdb"
                shutil.copy(db, copy)
                r = common.timed_child([mbt, "run", str(one_toml), "--db", str(copy), "--json"], env=env)
                if r.returncode != 0:
                    raise SystemExit(r.stderr)
                walls.append(r.wall_s)
            per = statistics.median(walls)
            results[name] = per * jobs
            print(f"separate `mbt run` of one rule set × one scenario: {', '.join(f'{w:.2f}' for w in walls)} s "
                  f"(median {per:.2f} s) × {jobs:,} jobs = {per * jobs:,.0f} s")
            continue
        copy = work / f"{name}.duckdb"
        shutil.copy(db, copy)
        cmd = [mbt, "sweep", str(sweep_toml), "--db", str(copy), *runs[name]]
        r = common.timed_child(cmd, env=env)
        if r.returncode != 0:
            raise SystemExit(f"{name}: {r.stderr}")
        results[name] = r.wall_s
        print(f"mbt sweep {' '.join(runs[name])}: {r.wall_s:.1f} s for {jobs:,} jobs ({jobs / r.wall_s:,.1f} jobs/s), "
              f"CPU {r.cpu_s:.1f} s, peak RSS {r.maxrss_mib:.0f} MiB")
        print(f"  {common.shell_line(cmd)}")
    if "processes" in results and "separate" in results:
        print(f"**processes: {results['processes']:.1f} s (target ≤ 60 s); {results['processes'] / results['separate']:.4f} "
              f"of separate runs (target ≤ 0.05)**")
    if "dask" in results and "processes" in results:
        print(f"dask LocalCluster overhead per job vs processes: "
              f"{(results['dask'] - results['processes']) / jobs * 1000:+.1f} ms")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
