"""Where the time of one ``mbt run`` goes: the steps of ``backtest.runner.run`` done one by one in a fresh
process, each timed (and the peak RSS so far), printed as one JSON document on stdout.

It imports only the standard library before the first timer starts, then what the ``mbt`` command
imports, so the import phases are those of ``mbt run``. Steps mirror ``runner.run`` (load inputs, replay
and measure each rule set, build the result tables, write them in one transaction); the numba kernel's
cache load is timed apart from the first replay with a 1×1 call. Writes the same run rows as ``mbt run``
(same ``run_id``, replaced in place). Used by ``bench/end_to_end.py``.

    python bench/run_phases.py CONFIG.toml --db DB
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
from datetime import datetime, timezone  # noqa: E402


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
    mark("import cli (click, config, store: duckdb, pandas)")
    from backtest import __version__, runner
    mark("import runner (numba, engine, metrics)")
    import numpy as np

    from backtest.config import load_config
    from backtest.engine.fast import replay_fast
    from backtest.engine.types import Book, Events, Params
    from backtest.metrics import compute_metrics
    from backtest.store import Store

    cfg = load_config(args.config)
    mark("load config")
    store = Store(args.db)
    mark("open store (schema check)")
    inputs = runner.load_inputs(store, cfg)
    mark("load_inputs (DuckDB read, grid, fingerprint)")
    tiny = Book(np.ones((1, 1)), np.ones((1, 1)))
    replay_fast(np.ones((1, 1)), tiny, Events.empty(), Params(np.zeros(1), np.zeros(1), np.zeros(1)))
    mark("numba: load cached kernel")
    config_json = cfg.canonical_json()
    run_id = hashlib.sha256(f"{config_json}\n{inputs.fingerprint}".encode()).hexdigest()[:16]
    outcomes = []
    baseline_bp = None
    for rule in cfg.rules:
        p = rule.params(inputs.assets)
        res = replay_fast(inputs.prices, inputs.book, inputs.events, p)
        mark(f"replay {rule.name}")
        m = compute_metrics(res, inputs.book, inputs.prices, p, baseline_bp)
        if baseline_bp is None:
            baseline_bp = float(m["borrowing_power_usd"])
        outcomes.append(runner.RuleOutcome(rule, p, res, m))
        mark(f"metrics {rule.name}")
    tables = runner._result_tables(run_id, inputs, outcomes)
    mark("result tables (pandas)")
    store.write_run({
        "run_id": run_id, "name": cfg.name, "created_at": datetime.now(timezone.utc),
        "config_json": config_json, "config_hash": hashlib.sha256(config_json.encode()).hexdigest(),
        "data_fingerprint": inputs.fingerprint, "mbt_version": __version__, "engine": "fast",
        "grid_steps": int(len(inputs.grid_us)), "accounts": int(len(inputs.accounts)), "assets": inputs.assets,
    }, tables)
    mark("write results (DuckDB, one transaction)")
    store.close()
    mark("close store")
    doc = json.dumps(runner.RunOutput(run_id, cfg.name, outcomes, inputs).document())
    mark("JSON document")
    print(json.dumps({
        "phases_s": marks, "peak_rss_mib": peak, "rows": {k: len(v) for k, v in tables.items()}, "run_id": run_id,
        "json_bytes": len(doc),
        "evaluated_share": [o.result.stats["evaluated_account_steps"] / o.result.stats["account_steps"]
                            for o in outcomes],
        "shape": [int(len(inputs.accounts)), len(inputs.assets), int(len(inputs.grid_us))],
        "events": len(inputs.events),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
