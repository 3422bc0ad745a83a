"""Where the time of one ``mbt run`` goes: the steps of ``backtest.runner.run`` done one by one in a fresh
process, each timed (and the peak RSS so far), printed as one JSON document on stdout.

It imports only the standard library before the first timer starts, then what the ``mbt`` command
imports, so the import phases are those of ``mbt run``. Then it calls the real ``runner.run`` with the
functions it looks up at call time (``load_inputs``, the fast engine, ``compute_metrics``,
``_result_tables``, ``Store.write_run``; whichever exist in this version) wrapped in timers, so it keeps
measuring the real code path as the runner evolves. The numba kernel's cache load is timed apart with a
1×1 call first. Writes the same run rows as ``mbt run`` (same ``run_id``, replaced in place). Used by
``bench/end_to_end.py``.

    python bench/run_phases.py CONFIG.toml --db DB
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="time the phases of one `mbt run`")
    ap.add_argument("config")
    ap.add_argument("--db", required=True)
    args = ap.parse_args(argv)
    marks: dict[str, float] = {}
    peak: dict[str, float] = {}
    t = _T0

    def mark(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        marks[name] = now - t
        peak[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        t = now

    mark("argparse etc. (stdlib)")
    import backtest.cli.commands  # noqa: F401  (what the `mbt` entry point imports)
    try:
        import backtest.cli.rpc  # noqa: F401  (registered too, in later versions)
    except ImportError:
        pass
    mark("import cli (click, config, store: duckdb, pandas)")
    from backtest import runner
    mark("import runner (numba, engine, metrics)")
    import numpy as np

    from backtest.config import load_config
    from backtest.engine.fast import replay_fast
    from backtest.engine.types import Book, Events, Params
    from backtest.store import Store

    cfg = load_config(args.config)
    mark("load config")
    store = Store(args.db)
    mark("open store (schema check)")
    try:  # the kernel's numba cache load, apart from the first real replay
        tiny = Book(np.ones((1, 1)), np.ones((1, 1)))
        replay_fast(np.ones((1, 1)), tiny, Events.empty(), Params(np.zeros(1), np.zeros(1), np.zeros(1)))
    except Exception:  # noqa: BLE001  (an engine API change must not stop the measurement)
        pass
    mark("numba: load cached kernel")

    # Time runner.run itself, by wrapping the functions it looks up at call time (whatever they are in
    # this version of the runner); what is not wrapped is reported as the rest of run().
    inside: dict[str, float] = {}
    inside_peak: dict[str, float] = {}

    def timed(label: str, fn):
        def wrapper(*a, **kw):
            t1 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                inside[label] = inside.get(label, 0.0) + time.perf_counter() - t1
                inside_peak[label] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        return wrapper

    n_replay = [0]
    fast_fn = runner.ENGINES["fast"]

    def replay(*a, **kw):
        n_replay[0] += 1
        return timed(f"replay rule set {n_replay[0]} (engine)", fast_fn)(*a, **kw)

    runner.ENGINES["fast"] = replay
    for name, label in (("load_inputs", "load_inputs (DuckDB read, grid, fingerprint)"),
                        ("compute_metrics", "metrics (all rule sets)"),
                        ("compile_rule", "compile rule sets"),
                        ("_result_tables", "result tables (pandas)")):
        if hasattr(runner, name):
            setattr(runner, name, timed(label, getattr(runner, name)))
    Store.write_run = timed("write results (DuckDB, one transaction)", Store.write_run)
    t_run = time.perf_counter()
    output = runner.run(store, cfg)
    run_s = time.perf_counter() - t_run
    t = time.perf_counter()
    for label, secs in inside.items():
        marks[label] = secs
        peak[label] = inside_peak[label]
    marks["rest of runner.run (hashing, glue)"] = run_s - sum(inside.values())
    peak["rest of runner.run (hashing, glue)"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    store.close()
    mark("close store")
    doc = json.dumps(output.document())
    mark("JSON document")
    outcomes = output.outcomes
    tables = {"liquidations": sum(len(o.result.liquidations) for o in outcomes)}
    print(json.dumps({
        "phases_s": marks, "peak_rss_mib": peak, "rows": tables, "run_id": output.run_id,
        "json_bytes": len(doc),
        "evaluated_share": [o.result.stats["evaluated_account_steps"] / o.result.stats["account_steps"]
                            for o in outcomes],
        "shape": [int(len(output.inputs.accounts)), len(output.inputs.assets), int(len(output.inputs.grid_us))],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
