"""The write of a run's result rows alone: ``Store.write_run`` of the end-to-end benchmark's tables.

Replays the end-to-end dataset once (``bench/end_to_end.py`` builds it; run that first) and keeps the
result tables as Parquet in its folder; then, for each variant, copies the benchmark store to a temporary
file and times ``write_run`` (one transaction: delete any rows of the run id, insert, commit) and the
``close`` after it, ``--repeats`` times. Variants:

- ``default``: as ``mbt run`` writes;
- ``unordered``: ``SET preserve_insertion_order = false`` first;
- ``threads``: every table appended on all DuckDB threads (``mbt`` uses one thread for tables with an
  account-id column, see ``Store._insert_tables``);
- ``unordered+threads``: both.

    python bench/write_speed.py                       # every variant, 3 repeats
    python bench/write_speed.py --only default --repeats 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import common

VARIANTS = ("default", "unordered", "threads", "unordered+threads")
RUN_ID = "write-speed-0000"


def _tables(work: Path) -> dict:
    """The result tables of a replay of the benchmark dataset, cached as Parquet beside it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = work / "write_speed_tables"
    if not (folder / "done").exists():
        from backtest.config import load_config
        from backtest.inputs import load_inputs
        from backtest.outputs.tables import result_tables
        from backtest.runner import across, execute
        from backtest.store import Store

        cfg = load_config(str(work / "bench.toml"))
        with Store(str(work / "bench.duckdb")) as store:
            inputs = load_inputs(store, cfg)
        outcomes = execute(cfg, inputs)
        tables = result_tables(RUN_ID, inputs.assets, inputs.accounts, inputs.grid_us, outcomes, across(outcomes),
                               account_names=inputs.account_names)
        folder.mkdir(exist_ok=True)
        for name, table in tables.items():
            if not hasattr(table, "to_batches"):
                table = pa.Table.from_pandas(table, preserve_index=False)
            pq.write_table(table, folder / f"{name}.parquet")
        (folder / "done").touch()
    return {p.stem: pq.read_table(p) for p in sorted(folder.glob("*.parquet"))}


def time_variant(variant: str, db: Path, tables: dict, repeats: int) -> list[tuple[float, float, int]]:
    import backtest.store as store_module
    from backtest.store import Store

    varying = store_module._varying_strings
    out = []
    try:
        if "threads" in variant:
            store_module._varying_strings = lambda frame: False
        for _ in range(repeats):
            with tempfile.TemporaryDirectory(dir=db.parent) as tmp:
                copy = Path(tmp) / "copy.duckdb"
                shutil.copy(db, copy)
                store = Store(str(copy))
                if "unordered" in variant:
                    store.con.execute("SET preserve_insertion_order = false")
                t0 = time.perf_counter()
                store.write_run({"run_id": RUN_ID, "name": "write-speed", "created_at": datetime.now(timezone.utc),
                                 "config_json": "{}", "config_hash": "-", "data_fingerprint": "-", "mbt_version": "-",
                                 "engine": "fast", "grid_steps": 0, "accounts": 0, "assets": []}, tables)
                t1 = time.perf_counter()
                store.close()
                t2 = time.perf_counter()
                out.append((t1 - t0, t2 - t1, os.path.getsize(copy)))
    finally:
        store_module._varying_strings = varying
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=str(common.OUT_DIR / "e2e" / "a200000-t2000-s20210519"),
                    help="the end-to-end benchmark's dataset folder (bench.toml, bench.duckdb)")
    ap.add_argument("--only", nargs="*", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    work = Path(args.work)
    if not (work / "bench.duckdb").exists():
        raise SystemExit(f"{work}: no benchmark store; run `python bench/end_to_end.py` first")
    print(f"# reproduce: {common.reproduce_line('bench/write_speed.py')}")
    common.print_machine()
    tables = _tables(work)
    rows = {name: t.num_rows for name, t in tables.items()}
    print(f"rows: {rows} ({sum(rows.values()):,} in all); {common.load_line()}")
    print("\n| variant | write s (each repeat) | median | close s | file MiB |\n|---|---|---:|---|---:|")
    for variant in args.only:
        res = time_variant(variant, work / "bench.duckdb", tables, args.repeats)
        print(f"| {variant} | {', '.join(f'{w:.3f}' for w, _, _ in res)} | {statistics.median(w for w, _, _ in res):.3f} "
              f"| {', '.join(f'{c:.3f}' for _, c, _ in res)} | {res[-1][2] / 2**20:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
