"""Jobs: what one run replays, and the one function that expands a run into them.

A **market path** (``backtest.scenarios``) is one scenario's market, kept apart from rule parameters. A
**job** is one (scenario, rule set) replay over the same book: the rule set compiled on the
path (``rules.compile_rule``) plus the engine to run. Jobs are independent and picklable, so any executor
(``backtest.executors``: local threads, local processes, Dask) can run them; results come back in job
order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import scenarios
from .config import RuleSet, RunConfig
from .engine.fast import replay_fast
from .engine.reference import replay_reference
from .engine.types import ReplayResult
from .outputs.metrics import compute_metrics
from .rules import Compiled, RunData, compile_rule
from .scenarios import HISTORICAL, MarketPath  # noqa: F401  (re-exported)

ENGINES = {"fast": replay_fast, "reference": replay_reference}


@dataclass
class Job:
    """One (scenario, rule set) replay: the compiled rule set on one market path."""

    index: int
    scenario: str
    rule: RuleSet
    compiled: Compiled
    prices: np.ndarray
    engine: str = "fast"

    @property
    def label(self) -> str:
        return self.rule.name if self.scenario == HISTORICAL else f"{self.rule.name} / {self.scenario}"


def expand(cfg: RunConfig, data: RunData, *, engine: str = "fast") -> list[Job]:
    """The jobs of a run: every scenario × every rule set, scenario-major, rule sets in config order."""
    jobs: list[Job] = []
    for path in scenarios.paths(cfg, data):
        on_path = data if path.scenario == HISTORICAL else replace(
            data, grid_us=path.grid_us, prices=path.prices, series=path.series, depth_usd=path.depth_usd,
            indices=path.indices)
        for rule in cfg.rules:
            jobs.append(Job(len(jobs), path.scenario, rule, compile_rule(rule, on_path), path.prices, engine))
    return jobs


def run_job(job: Job) -> ReplayResult:
    """Replay one job (module-level so that process and Dask workers can run it)."""
    c = job.compiled
    return ENGINES[job.engine](job.prices, c.book, c.events, c.params, growth=c.growth)


def run_job_measured(job: Job) -> tuple[ReplayResult, dict]:
    """``run_job`` and the replay's metrics, computed where the job ran (in parallel with the other jobs).
    ``capital_efficiency`` is the rule set's own (baseline None): ``runner.execute`` rescales it by the
    baseline rule set of the scenario once every job is back."""
    res = run_job(job)
    c = job.compiled
    return res, compute_metrics(res, c.book, job.prices, c.params, None, c.owner)


def kernel_pairs(jobs: list[Job]) -> set[tuple]:
    """The (model call, hooks module) pairs the fast engine will need for ``jobs``."""
    out = set()
    for job in jobs:
        if job.engine == "fast":
            model, _ = job.compiled.params.liquidation()
            out.add((model.call, job.compiled.params.hooks))
    return out
