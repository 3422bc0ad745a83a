"""The write of a run's result rows alone: ``Store.write_run`` of the end-to-end benchmark's tables.

Replays the end-to-end dataset once (``bench/end_to_end.py`` builds it; run that first) and keeps the
result tables as Arrow IPC files in its folder (one record batch per outcome, as ``mbt run`` hands them to
the store); then, for each variant, copies the benchmark store to a temporary file and times ``write_run``
(one transaction: delete any rows of the run id, insert, commit) and the ``close`` after it, ``--repeats``
times; by default the copy first gets the same rows written and closed (untimed), so the timed write
replaces them as a repeated ``mbt run`` does (``--new-run``: time a first write instead). Variants:

- ``default``: as ``mbt run`` writes (``Store._insert_tables``: one INSERT per table, outcomes combined,
  all DuckDB threads);
- ``unordered``: ``SET preserve_insertion_order = false`` first;
- ``per-outcome``: one INSERT per outcome's batch, all threads;
- ``previous``: how f2ffddb wrote — one INSERT per outcome, tables with an account-id column on one DuckDB
  thread.

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

VARIANTS = ("default", "unordered", "per-outcome", "previous")
RUN_ID = "write-speed-0000"


def _tables(work: Path) -> dict:
    """The result tables of a replay of the benchmark dataset, cached as Arrow IPC files beside it."""
    import pyarrow as pa

    folder = work / "write_speed_batches"
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
            with pa.OSFile(str(folder / f"{name}.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as out:
                for batch in table.to_batches():
                    out.write_batch(batch)
        (folder / "done").touch()
    return {p.stem: pa.ipc.open_stream(pa.memory_map(str(p))).read_all() for p in sorted(folder.glob("*.arrow"))}


def _per_outcome(one_thread: bool):
    """``Store._insert_tables`` as it was before 2026-12-06 (an INSERT per batch; optionally one DuckDB thread
    for tables with a string column that varies), for comparison."""
    import pyarrow as pa


    def varying(frame) -> bool:
        for field, column in zip(frame.schema, frame.columns):
            if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
                return True
            if pa.types.is_dictionary(field.type) and any(len(c.dictionary) > 1 for c in column.chunks):
                return True
        return False

    def insert(self, tables) -> None:
        threads = int(self.con.execute("SELECT current_setting('threads')").fetchone()[0])
        try:
            for table, frame in tables.items():
                self.con.execute(f"SET threads = {1 if one_thread and varying(frame) else threads}")
                for batch in frame.to_batches():
                    if batch.num_rows:
                        self._insert_batch(table, batch)
        finally:
            self.con.execute(f"SET threads = {threads}")
    return insert


def time_variant(variant: str, db: Path, tables: dict, repeats: int,
                 replace: bool = True) -> list[tuple[float, float, int]]:
    from backtest.store import Store

    default = Store._insert_tables
    out = []
    try:
        if variant in ("per-outcome", "previous"):
            Store._insert_tables = _per_outcome(one_thread=variant == "previous")
        for _ in range(repeats):
            with tempfile.TemporaryDirectory(dir=db.parent) as tmp:
                copy = Path(tmp) / "copy.duckdb"
                shutil.copy(db, copy)
                run = {"run_id": RUN_ID, "name": "write-speed", "created_at": datetime.now(timezone.utc),
                       "config_json": "{}", "config_hash": "-", "data_fingerprint": "-", "mbt_version": "-",
                       "engine": "fast", "grid_steps": 0, "accounts": 0, "assets": []}
                if replace:  # the run's rows already stored and checkpointed, as by an earlier `mbt run`
                    with Store(str(copy)) as first:
                        first.write_run(run, tables)
                store = Store(str(copy))
                if "unordered" in variant:
                    store.con.execute("SET preserve_insertion_order = false")
                t0 = time.perf_counter()
                store.write_run(run, tables)
                t1 = time.perf_counter()
                store.close()
                t2 = time.perf_counter()
                out.append((t1 - t0, t2 - t1, os.path.getsize(copy)))
    finally:
        Store._insert_tables = default
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=str(common.OUT_DIR / "e2e" / "a200000-t2000-s20210519"),
                    help="the end-to-end benchmark's dataset folder (bench.toml, bench.duckdb)")
    ap.add_argument("--only", nargs="*", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--new-run", action="store_true",
                    help="time the first write of the run id (default: a rewrite of rows stored by an earlier "
                         "write, which is what each `mbt run` round of bench/end_to_end.py does)")
    args = ap.parse_args(argv)
    work = Path(args.work)
    if not (work / "bench.duckdb").exists():
        raise SystemExit(f"{work}: no benchmark store; run `python bench/end_to_end.py` first")
    print(f"# reproduce: {common.reproduce_line('bench/write_speed.py')}")
    common.print_machine()
    tables = _tables(work)
    rows = {name: t.num_rows for name, t in tables.items()}
    print(f"rows: {rows} ({sum(rows.values()):,} in all); {common.load_line()}")
    print("\n| variant | write s (each repeat) | median | close s | write + close, median | file MiB |\n"
          "|---|---|---:|---|---:|---:|")
    for variant in args.only:
        res = time_variant(variant, work / "bench.duckdb", tables, args.repeats, replace=not args.new_run)
        print(f"| {variant} | {', '.join(f'{w:.3f}' for w, _, _ in res)} | {statistics.median(w for w, _, _ in res):.3f} "
              f"| {', '.join(f'{c:.3f}' for _, c, _ in res)} | {statistics.median(w + c for w, c, _ in res):.3f} "
              f"| {res[-1][2] / 2**20:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
