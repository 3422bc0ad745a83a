"""Parameter sweeps: ``mbt sweep CONFIG --grid KEY=VALUES …`` (docs/sweeps.md).

The grid's keys address the base rule set (``assets.WETH.liquidation_threshold``, ``market.gas_usd``, …);
its cartesian product becomes rule sets ``sweep-0001`` … that inherit from the base (``base = <base>``), so
every other setting is the base's. Points the config rejects (e.g. ``ltv`` above the threshold) are listed
and skipped. The run holds the base rule set first — the baseline of ``capital_efficiency`` — then the
points; jobs = rule sets × scenarios, run by the chosen executor in batches, every finished job committed
with its batch (one transaction per batch), so a sweep
killed at any moment and started again with the same command continues where it stopped, and ends with the
tables an uninterrupted run writes.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from . import __version__
from .config import RunConfig, parse_config
from .errors import ConfigError, MbtError
from .sweep_grid import grid_from_cli, key_path, parse_values, sweep_table  # noqa: F401  (re-exported)

@dataclass
class Point:
    rule: str
    values: dict[str, float]


def _set(table: dict, path: list[str], value: float) -> None:
    for seg in path[:-1]:
        table = table.setdefault(seg, {})
    table[path[-1]] = value


def build(doc: Mapping[str, Any], grid: Mapping[str, list[float]], base: str | None,
          path: str = "<config>") -> tuple[RunConfig, list[Point], list[tuple[dict[str, float], str]]]:
    """The sweep's run config (base first, then every valid point), the points, and the rejected ones."""
    if not grid:
        raise ConfigError("sweep: no grid (give --grid KEY=VALUES, or a [sweep.grid] table)")
    plain = {k: v for k, v in doc.items() if k != "sweep"}
    rules = plain.get("rules")
    if not isinstance(rules, list) or not rules:
        raise ConfigError("rules: at least one [[rules]] table is required (the first is the baseline)")
    names = [r.get("name") for r in rules if isinstance(r, Mapping)]
    base = base or names[0]
    if base not in names:
        raise ConfigError(f"sweep.base: no rule set named {base!r} (have {', '.join(map(str, names))})")
    parse_config(plain, path)  # the config itself must be valid before any point is tried
    keys = list(grid)
    paths = {k: key_path(k) for k in keys}
    points: list[Point] = []
    invalid: list[tuple[dict[str, float], str]] = []
    tables = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        values = dict(zip(keys, combo))
        name = f"sweep-{len(points) + len(invalid) + 1:04d}"
        table: dict[str, Any] = {"name": name, "base": base}
        for k, v in values.items():
            _set(table, paths[k], v)
        trial = copy.deepcopy(plain)
        trial["rules"] = list(rules) + [table]
        try:
            parse_config(trial, path)
        except ConfigError as exc:
            invalid.append((values, str(exc).replace(f"rules.{name}", "point")))
            continue
        points.append(Point(name, values))
        tables.append(table)
    if not points:
        raise ConfigError(f"sweep: every point of the grid is invalid (first: {invalid[0][1]})")
    full = copy.deepcopy(plain)
    full["rules"] = list(rules) + tables
    cfg = parse_config(full, path)
    by_name = {r.name: r for r in cfg.rules}
    cfg = replace(cfg, rules=(by_name[base], *(by_name[p.rule] for p in points)))
    return cfg, points, invalid


@dataclass
class SweepOutput:
    run_id: str
    name: str
    points: list[Point]
    invalid: list[tuple[dict[str, float], str]]
    jobs: int
    skipped: int
    results: list[dict]
    base: str


def run_sweep(store, doc: Mapping[str, Any], grid: Mapping[str, list[float]], base: str | None, *,
              path: str = "<config>", engine: str = "fast", executor: str = "local", scheduler: str | None = None,
              restart: bool = False, progress: Callable[[int, int], None] | None = None,
              notice: Callable[[str], None] | None = None, batch: int | None = None,
              workers: int | None = None, command: str | None = None) -> SweepOutput:
    """Build, replay and store a sweep job by job (resumable); returns what the CLI prints."""
    from .engine import kernels
    from .executors import WithResult, get_executor
    from .jobs import expand, kernel_pairs, run_job
    from .outputs.metrics import ACROSS_METRICS, across_scenarios, borrowing_power, compute_metrics, json_value, METRICS
    from .outputs.tables import across_metrics_table, result_tables
    from .inputs import load_inputs
    from .runner import RuleOutcome

    cfg, points, invalid = build(doc, grid, base, path)
    if scheduler is not None and executor != "dask":
        raise MbtError(f"--scheduler: only used with --executor dask (not {executor!r})")
    inputs = load_inputs(store, cfg)
    config_json = cfg.canonical_json()
    run_id = hashlib.sha256(f"{config_json}\n{inputs.fingerprint}".encode()).hexdigest()[:16]
    run_row = {"run_id": run_id, "name": cfg.name, "created_at": datetime.now(timezone.utc),
               "config_json": config_json, "config_hash": hashlib.sha256(config_json.encode()).hexdigest(),
               "data_fingerprint": inputs.fingerprint, "mbt_version": __version__, "engine": engine,
               "grid_steps": int(len(inputs.grid_us)), "accounts": int(len(inputs.accounts)), "assets": inputs.assets,
               **({"command": command} if command else {})}
    done = store.begin_sweep(run_row, [(p.rule, k, v) for p in points for k, v in p.values.items()], restart)
    jobs = expand(cfg, inputs.data, engine=engine)
    base_rule = cfg.rules[0].name
    baseline = {j.scenario: float(borrowing_power(j.compiled.book, j.prices[0], j.compiled.params))
                for j in jobs if j.rule.name == base_rule}
    todo = [j for j in jobs if (j.rule.name, j.scenario) not in done]
    skipped = len(jobs) - len(todo)
    cold = [p for p in kernel_pairs(todo) if not kernels.is_warm(*p)]
    if cold and notice:
        notice(kernels.COMPILE_NOTICE)
    finished = [skipped]
    names = inputs.account_names
    pending: list = []

    def commit(i: int, job, res) -> None:
        c = job.compiled
        base_bp = None if job.rule.name == base_rule else baseline[job.scenario]
        m = compute_metrics(res, c.book, job.prices, c.params, base_bp, c.owner)
        tables = result_tables(run_id, inputs.assets, inputs.accounts, inputs.grid_us,
                               [RuleOutcome(job.rule, c, res, m, job.scenario)], account_names=names,
                               with_accounts=False)
        pending.append((job.rule.name, job.scenario, tables))

    def flush() -> None:
        # the jobs finished since the last flush, in one transaction (~40 ms of DuckDB commit, not per job)
        store.commit_sweep_jobs(run_id, pending)
        finished[0] += len(pending)
        pending.clear()
        if progress:
            progress(finished[0], len(jobs))

    if progress:
        progress(skipped, len(jobs))
    with get_executor(executor, scheduler=scheduler, workers=workers) as ex:
        if notice and executor != "local":
            notice(ex.describe())
        size = batch or max(8, 4 * getattr(ex, "workers", 2))
        for lo in range(0, len(todo), size):   # batches: results are dropped once committed
            try:
                ex.map(run_job, todo[lo:lo + size], progress=WithResult(commit))
            finally:
                if pending:  # an interrupted batch still keeps the jobs that finished
                    flush()
    for p in cold:
        kernels.mark_warm(*p)
    # the scenario = '*' rows from everything stored for the run (this start's jobs and earlier ones)
    per: dict[tuple[str, str], dict[str, float]] = {}
    for rule, scenario, metric, value in store.rows("sweep_metrics", run_id=run_id):
        per.setdefault((rule, scenario), {})[metric] = value
    scenarios = sorted({s for _, s in per})
    results = []
    rules_by_name = {r.name: r for r in cfg.rules}
    across_rows = []
    for r in cfg.rules:
        for s in scenarios:
            m = per.get((r.name, s))
            if m is not None:
                results.append({"rule": r.name, "kind": r.kind, "scenario": s,
                                **{k: json_value(k, m.get(k)) for k in METRICS}})
    if len(scenarios) >= 2:
        for r in cfg.rules:
            ms = [per[(r.name, s)] for s in scenarios if (r.name, s) in per]
            a = across_scenarios(ms)
            across_rows.append((rules_by_name[r.name], a))
            results.append({"rule": r.name, "kind": r.kind, "scenario": "*",
                            **{k: json_value(k, a[k]) for k in ACROSS_METRICS}})
        store.finish_sweep(run_id, {"run_metrics": across_metrics_table(run_id, across_rows)})
    return SweepOutput(run_id, cfg.name, points, invalid, len(jobs), skipped, results, base_rule)
