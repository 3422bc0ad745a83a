"""Run orchestration: store → arrays → engine per rule set → metrics → result tables → store.

``inputs.load_inputs`` reads everything a run needs from DuckDB in bulk and checks it (assets with
parameters and prices, price-source choice, a non-empty grid); ``execute`` replays each rule set (in-process or in
local processes); ``run`` ties it together, derives ``run_id`` from the canonical config and the data
fingerprint, and stores the rows in one transaction.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from . import __version__
from .config import RunConfig, RuleSet
from .engine import kernels
from .engine.types import ReplayResult
from .errors import MbtError
from .executors import EXECUTORS, get_executor
from .inputs import RunInputs, load_inputs
from .jobs import ENGINES, HISTORICAL, expand, kernel_pairs, run_job_measured
from .outputs.metrics import ACROSS_METRICS, ALL_SCENARIOS, METRICS, across_scenarios, capital_efficiency, json_value
from .outputs.tables import result_tables
from .rules import Compiled
from .store import Store

SCENARIO = HISTORICAL


@dataclass
class RuleOutcome:
    rule: RuleSet
    compiled: Compiled
    result: ReplayResult
    metrics: dict
    scenario: str = HISTORICAL
    last_prices: np.ndarray | None = None  # (K,) valuation prices of the last step (account_states)


def execute(cfg: RunConfig, inputs: RunInputs, *, engine: str = "fast", executor: str = "local",
            scheduler: str | None = None, progress=None, notice=None) -> list[RuleOutcome]:
    """Replay every job of ``cfg`` on ``inputs`` with ``executor`` and compute its metrics.

    ``progress(label)`` is called as each job finishes; ``notice(text)`` for one-off messages (compiling
    kernels, where the jobs run). Results are the same, bit for bit, whatever the executor.
    """
    jobs = expand(cfg, inputs.data, engine=engine)
    pairs = kernel_pairs(jobs)
    cold = [p for p in pairs if not kernels.is_warm(*p)]
    if cold and notice:
        notice(kernels.COMPILE_NOTICE)
    with get_executor(executor, scheduler=scheduler) as ex:
        if notice and executor != "local":
            notice(ex.describe())
        results = ex.map(run_job_measured, jobs,
                         progress=(lambda i, job: progress(job.label)) if progress else None)
    for p in cold:
        kernels.mark_warm(*p)
    outcomes: list[RuleOutcome] = []
    baseline_bp: dict[str, float] = {}
    for job, (res, m) in zip(jobs, results):
        # the first rule set of each scenario is the baseline of capital_efficiency
        base = baseline_bp.setdefault(job.scenario, float(m["borrowing_power_usd"]))
        m["capital_efficiency"] = capital_efficiency(float(m["borrowing_power_usd"]), base)
        outcomes.append(RuleOutcome(job.rule, job.compiled, res, m, job.scenario, job.prices[-1]))
    return outcomes


def across(outcomes: list[RuleOutcome]) -> list[tuple[RuleSet, dict]]:
    """The ``scenario = "*"`` metrics per rule set (config order), when the run has two or more scenarios."""
    scenarios = {o.scenario for o in outcomes}
    if len(scenarios) < 2:
        return []
    rules: dict[str, RuleSet] = {}
    per: dict[str, list[dict]] = {}
    for o in outcomes:
        rules.setdefault(o.rule.name, o.rule)
        per.setdefault(o.rule.name, []).append(o.metrics)
    return [(rules[name], across_scenarios(per[name])) for name in rules]


@dataclass
class RunOutput:
    run_id: str
    name: str
    outcomes: list[RuleOutcome]
    inputs: RunInputs
    across: list[tuple[RuleSet, dict]] | None = None

    def results(self) -> list[dict]:
        """One dict per rule set and scenario: rule, kind, scenario and every §5 metric (JSON-ready values);
        then, with two or more scenarios, one ``scenario = "*"`` dict per rule set with the across metrics."""
        rows = [{"rule": o.rule.name, "kind": o.rule.kind, "scenario": o.scenario,
                 **{m: json_value(m, o.metrics[m]) for m in METRICS}} for o in self.outcomes]
        for rule, m in self.across or []:
            rows.append({"rule": rule.name, "kind": rule.kind, "scenario": ALL_SCENARIOS,
                         **{k: json_value(k, m[k]) for k in ACROSS_METRICS}})
        return rows

    def document(self) -> dict:
        return {"run_id": self.run_id, "results": self.results()}


def run(store: Store, cfg: RunConfig, *, engine: str = "fast", executor: str = "local",
        scheduler: str | None = None, command: str | None = None, prefetched=None) -> RunOutput:
    """Load, replay, measure and store one run; returns what the CLI prints.

    ``prefetched``: an ``inputs.Prefetch`` of ``store`` started before ``cfg`` was loaded (``mbt run``)."""
    if engine not in ENGINES:
        raise MbtError(f"--engine: unknown engine {engine!r} (fast, reference)")
    if executor not in EXECUTORS:
        raise MbtError(f"--executor: {executor!r} is not available; use one of {', '.join(EXECUTORS)}")
    # numba's target set-up (most of a cached kernel's load) runs while the DuckDB reads release the GIL
    warm = kernels.warm_up_in_background() if engine == "fast" and executor == "local" else None
    try:
        inputs = load_inputs(store, cfg, prefetched)
    finally:
        if warm is not None:
            warm.join()
    config_json = cfg.canonical_json()
    config_hash = hashlib.sha256(config_json.encode()).hexdigest()
    run_id = hashlib.sha256(f"{config_json}\n{inputs.fingerprint}".encode()).hexdigest()[:16]
    if scheduler is not None and executor != "dask":
        raise MbtError(f"--scheduler: only used with --executor dask (not {executor!r})")
    tty = sys.stderr.isatty()
    outcomes = execute(cfg, inputs, engine=engine, executor=executor, scheduler=scheduler,
                       progress=(lambda name: print(f"replayed rule set {name!r}", file=sys.stderr)) if tty else None,
                       notice=lambda text: print(f"mbt: {text}", file=sys.stderr))
    over = across(outcomes)
    tables = result_tables(run_id, inputs.assets, inputs.accounts, inputs.grid_us, outcomes, over,
                           account_names=inputs.account_names)
    store.write_run({
        "run_id": run_id, "name": cfg.name, "created_at": datetime.now(timezone.utc),
        "config_json": config_json, "config_hash": config_hash, "data_fingerprint": inputs.fingerprint,
        "mbt_version": __version__, "engine": engine, "grid_steps": int(len(inputs.grid_us)),
        "accounts": int(len(inputs.accounts)), "assets": inputs.assets,
        **({"command": command} if command else {}),
    }, tables)
    return RunOutput(run_id, cfg.name, outcomes, inputs, over)
