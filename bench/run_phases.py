"""Where the time of one ``mbt run`` goes: the steps of ``backtest.runner.run`` done one by one in a fresh
process, each timed (and the peak RSS so far), printed as one JSON document on stdout.

It imports only the standard library before the first timer starts, then what the ``mbt`` command
imports, so the import phases are those of ``mbt run``. Then it calls the real ``runner.run`` with the
functions it looks up at call time wrapped in timers, so it keeps measuring the real code path as the
runner evolves (whatever is absent in this version is simply not reported):

- ``runner``: ``load_inputs`` (and inside it — in ``backtest.inputs`` in later versions — every
  ``Store.query`` / ``Store.query_arrow`` by SQL file name, execute + fetch;
  other SQL; ``_grid``; blake2b fingerprint updates), ``compile_rule``, ``compute_metrics``,
  ``_result_tables``; ``Store.write_run``;
- the fast engine per rule set: ``valuation``, ``block_reduce`` or ``Params.pack`` (block bounds),
  ``events_by_account``, the numba kernel (``_replay_kernel``, or what ``kernel_for`` returns),
  ``exact_totals``; the rest of ``replay_fast`` (result assembly) is reported as such.

The steps run one after the other, without ``mbt run``'s read prefetch (``inputs.Prefetch``), which overlaps
"open store" and ``load_inputs`` with the runner's imports and "load config": the sum of the phases is
that much longer than a real ``mbt run``.

The numba kernel's cache load is timed apart with a 1×1 call first. Writes the same run rows as
``mbt run`` (same ``run_id``, replaced in place). Used by ``bench/end_to_end.py`` and
``bench/year_scale.py``.

    python bench/run_phases.py CONFIG.toml --db DB [--cprofile OUT.prof] [--os-exit]
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402


def _rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="time the phases of one `mbt run`")
    ap.add_argument("config")
    ap.add_argument("--db", required=True)
    ap.add_argument("--cprofile", metavar="FILE", help="also profile runner.run with cProfile into FILE "
                                                      "(top functions by cumulative time go to stderr)")
    ap.add_argument("--preload-kernel", action="store_true",
                    help="load the cached kernel with a 1×1 replay before runner.run (its own phase); by "
                         "default the runner's own overlap of numba's set-up with the DuckDB reads is measured")
    ap.add_argument("--os-exit", action="store_true",
                    help="leave with os._exit(0) after printing (measures what interpreter teardown costs)")
    args = ap.parse_args(argv)
    marks: dict[str, float] = {}
    peak: dict[str, float] = {}
    t = _T0

    def mark(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        marks[name] = now - t
        peak[name] = _rss()
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

    import backtest.engine.fast as fast
    from backtest.config import load_config
    from backtest.engine.types import Book, Events, Params
    from backtest.store import Store

    cfg = load_config(args.config)
    mark("load config")
    store = Store(args.db)
    mark("open store (schema check)")
    if args.preload_kernel or not hasattr(getattr(runner, "kernels", None), "warm_up_in_background"):
        try:  # the kernel's numba cache load, apart from the first real replay
            tiny = Book(np.ones((1, 1)), np.ones((1, 1)))
            fast.replay_fast(np.ones((1, 1)), tiny, Events.empty(), Params(np.zeros(1), np.zeros(1), np.zeros(1)))
        except Exception:  # noqa: BLE001  (an engine API change must not stop the measurement)
            pass
        mark("numba: load cached kernel")
    # else runner.run sets numba up on a thread while load_inputs reads DuckDB (inside the load_inputs phase)

    # ---- timers around what runner.run calls ------------------------------------------------------
    import threading

    inside: dict[str, float] = {}
    inside_peak: dict[str, float] = {}
    spans: dict[str, list[tuple[float, float]]] = {}
    order: list[str] = []
    ctx: list[str] = []  # enclosing timed phase, for attributing SQL
    lock = threading.Lock()
    tl = threading.local()  # which rule set this thread is replaying (executors may run them in threads)

    def add(label: str, t1: float, t2: float) -> None:
        with lock:
            if label not in inside:
                order.append(label)
            inside[label] = inside.get(label, 0.0) + (t2 - t1)
            spans.setdefault(label, []).append((t1, t2))
            inside_peak[label] = _rss()

    def timed(label, fn, *, top: bool = False):
        def wrapper(*a, **kw):
            name = label() if callable(label) else label
            if top:
                ctx.append(name)
            t1 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                add(name, t1, time.perf_counter())
                if top and ctx:
                    ctx.pop()
        return wrapper

    class TimedCursor:
        """A DuckDB result whose fetches are charged to the query that produced it."""

        def __init__(self, cur, label):
            self._cur, self._label = cur, label

        def __getattr__(self, name):
            attr = getattr(self._cur, name)
            if name.startswith("fetch") and callable(attr):
                return timed(self._label, attr)
            return attr

    class TimedCon:
        """The store's connection, with ``execute`` (and the fetches after it) timed while inside
        ``load_inputs``; everything else passes through."""

        def __init__(self, con):
            self._con = con

        def execute(self, *a, **kw):
            if ctx and ctx[-1].startswith("load_inputs"):
                label = "  load_inputs: other SQL (execute + fetch)"
                return TimedCursor(timed(label, self._con.execute)(*a, **kw), label)
            return self._con.execute(*a, **kw)

        def __getattr__(self, name):
            return getattr(self._con, name)

    real_query = Store.query

    def query(self, name, **params):
        label = f"  load_inputs: SQL {name} (execute + fetch)"
        return TimedCursor(timed(label, real_query, top=True)(self, name, **params), label)

    Store.query = query
    if hasattr(Store, "query_arrow"):  # later stores: a query fetched as Arrow in one call
        real_query_arrow = Store.query_arrow

        def query_arrow(self, name, **params):
            return timed(f"  load_inputs: SQL {name} (execute + fetch)", real_query_arrow, top=True)(self, name, **params)

        Store.query_arrow = query_arrow
    store.con = TimedCon(store.con)

    class TimedHash:
        def __init__(self, h):
            self._h = h

        def update(self, data):
            timed("  load_inputs: fingerprint (blake2b updates)",
                  self._h.update)(data)

        def __getattr__(self, name):
            return getattr(self._h, name)

    import hashlib
    import types

    try:  # later versions read the inputs in their own module
        import backtest.inputs as inputs_module
    except ImportError:
        inputs_module = runner
    for module in {runner, inputs_module}:
        if hasattr(module, "hashlib"):
            module.hashlib = types.SimpleNamespace(
                blake2b=lambda *a, **kw: TimedHash(hashlib.blake2b(*a, **kw)), sha256=hashlib.sha256)

    rule_no = [0]
    if hasattr(inputs_module, "_grid"):
        inputs_module._grid = timed("  load_inputs: grid (_grid)", inputs_module._grid)
    if hasattr(runner, "load_inputs"):
        runner.load_inputs = timed("load_inputs (DuckDB read, grid, fingerprint)", runner.load_inputs, top=True)
    if hasattr(runner, "compile_rule"):
        def compile_label():
            return f"compile rule set {rule_no[0] + 1} (compile_rule)"
        real_compile = runner.compile_rule

        def compile_rule(*a, **kw):
            try:
                return timed(compile_label, real_compile)(*a, **kw)
            finally:
                rule_no[0] += 1
        runner.compile_rule = compile_rule
    if hasattr(runner, "expand"):  # later runners: rule sets (× scenarios) compiled into jobs
        runner.expand = timed("compile rule sets (expand into jobs)", runner.expand)
    n_replay = [0]
    fast_fn = runner.ENGINES["fast"]

    def rule_of_thread() -> int:
        return getattr(tl, "rule", n_replay[0])

    def replay(*a, **kw):
        with lock:
            n_replay[0] += 1
            tl.rule = n_replay[0]
        t1 = time.perf_counter()
        try:
            return fast_fn(*a, **kw)
        finally:
            add(f"  replay rule set {tl.rule} (replay_fast, total)", t1, time.perf_counter())

    runner.ENGINES["fast"] = replay
    for attr, what in (("valuation", "valuation prices"), ("block_reduce", "block bounds (block_reduce)"),
                       ("events_by_account", "events by account"), ("_replay_kernel", "numba kernel"),
                       ("exact_totals", "exact_totals"), ("book_exact_totals", "exact totals (both sides)")):
        if hasattr(fast, attr):
            setattr(fast, attr, timed(lambda what=what: f"  replay rule set {rule_of_thread()}: {what}",
                                      getattr(fast, attr)))
    if hasattr(fast, "kernel_for"):  # generated kernels (one per model × kind): time what it returns
        real_kernel_for = fast.kernel_for

        def kernel_for(*a, **kw):
            return timed(lambda: f"  replay rule set {rule_of_thread()}: numba kernel", real_kernel_for(*a, **kw))
        fast.kernel_for = kernel_for
    if hasattr(Params, "pack"):  # block bounds and the kind's tables, in later versions
        Params.pack = timed(lambda: f"  replay rule set {rule_of_thread()}: block bounds + kind tables (Params.pack)",
                            Params.pack)
    import backtest.jobs as jobs_module
    if hasattr(jobs_module, "run_job_measured"):
        # metrics are computed in each job, where it ran
        jobs_module.compute_metrics = timed(
            lambda: f"  replay rule set {rule_of_thread()}: metrics (in the job's thread, after replay_fast)",
            jobs_module.compute_metrics)
    for name, label in (("compute_metrics", "metrics (all rule sets)"),
                        ("_result_tables", "result tables (Arrow)"),
                        ("result_tables", "result tables (Arrow)")):
        if hasattr(runner, name):
            setattr(runner, name, timed(label, getattr(runner, name)))
    Store.write_run = timed("write results (DuckDB, one transaction)", Store.write_run, top=True)

    profiler = None
    if args.cprofile:
        import cProfile

        profiler = cProfile.Profile()
    t_run = time.perf_counter()
    if profiler:
        profiler.enable()
    output = runner.run(store, cfg)
    if profiler:
        profiler.disable()
    run_s = time.perf_counter() - t_run
    t = time.perf_counter()
    # top-level phases add up to run(); nested ones ("  " + label) are parts of the one printed above them.
    # Replays may run in parallel threads (later executors): their top-level figure is the wall span from
    # the first start to the last end; each rule set's own total and parts are listed under it.
    replay_labels = [k for k in order if k.startswith("  replay rule set") and k.endswith("(replay_fast, total)")]
    if replay_labels:
        first = min(a for k in replay_labels for a, _ in spans[k])
        after = [k for k in spans if "after replay_fast" in k]  # the jobs' metrics, in the same threads
        last = max(b for k in replay_labels + after for _, b in spans[k])
        label = (f"replay, {len(replay_labels)} rule sets (wall from first start to last end"
                 + (", the jobs' metrics included" if after else "")
                 + ("; they overlapped: run in parallel" if sum(inside[k] for k in replay_labels) > 1.02 * (last - first)
                    else "") + ")")
        inside[label] = last - first
        inside_peak[label] = max(inside_peak[k] for k in replay_labels)
        order.insert(order.index(replay_labels[0]), label)

    def children(label: str) -> list[str]:
        if label.startswith("load_inputs"):
            return [k for k in order if k.startswith("  load_inputs:")]
        if label.startswith("replay, "):
            out = []
            for r in sorted(replay_labels, key=lambda k: int(k.split()[3])):
                n = r.split()[3]
                parts = [k for k in order if k.startswith(f"  replay rule set {n}:")]
                out += [r] + parts
            return out
        return []

    top_sum = 0.0
    for label in order:
        if label.startswith(" "):
            continue
        marks[label] = inside[label]
        peak[label] = inside_peak[label]
        top_sum += inside[label]
        kids = children(label)
        for i, k in enumerate(kids):
            marks[k] = inside[k]
            peak[k] = inside_peak[k]
            if label.startswith("replay, ") and (i + 1 == len(kids) or kids[i + 1] in replay_labels):
                r = next(x for x in reversed(kids[:i + 1]) if x in replay_labels)  # this rule set's total
                n = r.split()[3]
                rest = f"  replay rule set {n}: the rest of replay_fast (result assembly)"
                marks[rest] = inside[r] - sum(inside[x] for x in kids if x.startswith(f"  replay rule set {n}:")
                                              and "after replay_fast" not in x)
                peak[rest] = inside_peak[r]
        if label.startswith("load_inputs") and kids:
            marks["  load_inputs: the rest (NumPy glue)"] = inside[label] - sum(inside[k] for k in kids)
            peak["  load_inputs: the rest (NumPy glue)"] = inside_peak[label]
    marks["rest of runner.run (config hash, glue)"] = run_s - top_sum
    peak["rest of runner.run (config hash, glue)"] = _rss()
    store.close()
    mark("close store")
    doc = json.dumps(output.document())
    mark("JSON document")
    outcomes = output.outcomes
    tables = {"liquidations": sum(len(o.result.liquidations) for o in outcomes)}
    print(json.dumps({
        "phases_s": marks, "peak_rss_mib": peak, "rows": tables, "run_id": output.run_id,
        "json_bytes": len(doc), "metrics": output.document()["results"],
        "evaluated_share": [o.result.stats["evaluated_account_steps"] / o.result.stats["account_steps"]
                            for o in outcomes],
        "stats": [{k: v for k, v in o.result.stats.items() if isinstance(v, (int, float))} for o in outcomes],
        "shape": [int(len(output.inputs.accounts)), len(output.inputs.assets), int(len(output.inputs.grid_us))],
    }))
    if profiler:
        import pstats

        profiler.dump_stats(args.cprofile)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
    if args.os_exit:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
