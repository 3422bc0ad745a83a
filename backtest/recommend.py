"""``mbt recommend`` and ``mbt frontier`` over a stored sweep (docs/sweeps.md).

A sweep run holds its base rule set and its points (``sweep_points``). A metric of a rule set is read from
its ``scenario = '*'`` row when the metric is an across-scenario one, else from its ``historical`` row, else
the mean over its scenarios. ``recommend`` picks, among the points that meet every ``--constraint`` and
``--max-change`` limit, the one with the best objective (ties: the smallest total change from the base);
``frontier`` lists the Pareto set of two metrics.
"""

from __future__ import annotations

import fnmatch
import json
import math
import operator
import re
from dataclasses import dataclass
from typing import Any

from .errors import MbtError
from .outputs.metrics import ACROSS_METRICS, METRICS
from .sweep_grid import key_path

OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq}
_CONSTRAINT = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|>=|==|<|>)\s*([-+0-9.eE]+)\s*$")
LOWER_IS_BETTER = {"bad_debt_usd", "realised_bad_debt_usd", "unrealised_bad_debt_usd", "liquidations",
                   "liquidated_debt_usd", "liquidation_penalty_usd", "insolvent_accounts", "capped_events_usd",
                   "blocked_borrow_usd", "blocked_withdraw_usd", *ACROSS_METRICS}
KNOWN = set(METRICS) | set(ACROSS_METRICS)


@dataclass(frozen=True)
class Constraint:
    metric: str
    op: str
    bound: float

    def holds(self, value: float | None) -> bool:
        return value is not None and OPS[self.op](value, self.bound)

    def miss(self, value: float | None) -> float:
        """How far ``value`` is from meeting the constraint, relative to the bound (0 when it holds)."""
        if value is None:
            return math.inf
        if self.holds(value):
            return 0.0
        return abs(value - self.bound) / max(abs(self.bound), 1e-12)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.bound:g}"


def parse_constraint(text: str) -> Constraint:
    m = _CONSTRAINT.match(text)
    if m is None:
        raise MbtError(f"--constraint {text!r}: expected METRIC OP NUMBER, e.g. \"var_99_bad_debt_usd <= 250000\"")
    metric, op, bound = m.groups()
    _check_metric(metric, "--constraint")
    return Constraint(metric, op, float(bound))


def parse_max_change(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    try:
        limit = float(value)
    except ValueError:
        limit = -1.0
    if not sep or limit < 0:
        raise MbtError(f"--max-change {text!r}: expected KEY_PATTERN=LIMIT, e.g. assets.*.liquidation_threshold=0.03")
    return key.strip(), limit


def _check_metric(metric: str, flag: str) -> None:
    if metric not in KNOWN:
        raise MbtError(f"{flag}: unknown metric {metric!r} (one of {', '.join(sorted(KNOWN))})")


@dataclass
class Sweep:
    run_id: str
    base: str
    rules: dict[str, dict]                    # canonical rule sets by name (from runs.config_json)
    points: dict[str, dict[str, float]]       # rule → swept key → value
    metrics: dict[str, dict[str, float | None]]   # rule → metric → value (see the module docstring)


def load_sweep(store, run_id: str) -> Sweep:
    row = store.rows("sweep_run", run_id=run_id)
    if not row:
        raise MbtError(f"run {run_id}: not in this database (mbt runs lists them)")
    config = json.loads(row[0][0])
    rules = {r["name"]: r for r in config["rules"]}
    points: dict[str, dict[str, float]] = {}
    for rule, key, value in store.rows("sweep_points_of", run_id=run_id):
        points.setdefault(rule, {})[key] = float(value)
    if not points:
        raise MbtError(f"run {run_id}: not a sweep (no sweep_points; run one with mbt sweep)")
    base = config["rules"][0]["name"]
    raw: dict[str, dict[str, dict[str, float | None]]] = {}
    for rule, scenario, metric, value in store.rows("sweep_all_metrics", run_id=run_id):
        raw.setdefault(rule, {}).setdefault(scenario, {})[metric] = None if value is None else float(value)
    metrics: dict[str, dict[str, float | None]] = {}
    for rule, by_scenario in raw.items():
        m: dict[str, float | None] = dict(by_scenario.get("*", {}))
        per = {s: v for s, v in by_scenario.items() if s != "*"}
        for name in METRICS:
            if "historical" in per:
                m[name] = per["historical"].get(name)
            else:
                vals = [v.get(name) for v in per.values() if v.get(name) is not None]
                m[name] = math.fsum(vals) / len(vals) if vals else None
        metrics[rule] = m
    return Sweep(run_id, base, rules, points, metrics)


def base_value(sweep: Sweep, key: str) -> float | None:
    node: Any = sweep.rules[sweep.base]
    for seg in key_path(key):
        if not isinstance(node, dict) or seg not in node:
            return None
        node = node[seg]
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def change(sweep: Sweep, rule: str) -> dict[str, float]:
    return {k: v - (base_value(sweep, k) or 0.0) for k, v in sweep.points[rule].items()}


@dataclass
class Recommendation:
    rule: str | None
    qualifying: int
    closest: str | None
    closest_misses: list[str]


def recommend(sweep: Sweep, objective: str, constraints: list[Constraint],
              max_change: list[tuple[str, float]]) -> Recommendation:
    _check_metric(objective, "--objective")
    lower = objective in LOWER_IS_BETTER
    ok: list[tuple[float, float, str]] = []
    misses: list[tuple[float, str, list[str]]] = []
    for rule in sweep.points:
        m = sweep.metrics.get(rule, {})
        delta = change(sweep, rule)
        why = []
        total_miss = 0.0
        for c in constraints:
            miss = c.miss(m.get(c.metric))
            if miss > 0:
                why.append(f"{c} (is {m.get(c.metric)!r})")
                total_miss += miss
        for pattern, limit in max_change:
            for key, d in delta.items():
                if fnmatch.fnmatchcase(key, pattern) and abs(d) > limit + 1e-12:
                    why.append(f"change of {key} {d:+g} beyond ±{limit:g}")
                    total_miss += (abs(d) - limit) / max(limit, 1e-12)
        value = m.get(objective)
        if value is None:
            why.append(f"{objective} is undefined")
            total_miss = math.inf
        if why:
            misses.append((total_miss, rule, why))
            continue
        size = math.fsum(abs(d) for d in delta.values())
        ok.append(((value if lower else -value), size, rule))
    if not ok:
        misses.sort()
        closest = misses[0] if misses else None
        return Recommendation(None, 0, closest[1] if closest else None, closest[2] if closest else [])
    ok.sort()
    return Recommendation(ok[0][2], len(ok), None, [])


def frontier(sweep: Sweep, x: str, y: str, maximize_x: bool = True, minimize_y: bool = True,
             include_base: bool = True) -> list[str]:
    """The rule sets no other rule set beats on both metrics (Pareto set), sorted by ``x``."""
    _check_metric(x, "--x")
    _check_metric(y, "--y")
    names = ([sweep.base] if include_base else []) + list(sweep.points)
    pts = []
    for n in names:
        mx, my = sweep.metrics.get(n, {}).get(x), sweep.metrics.get(n, {}).get(y)
        if mx is None or my is None:
            continue
        pts.append((n, mx if maximize_x else -mx, -my if minimize_y else my))
    out = []
    for n, a, b in pts:
        dominated = any((a2 >= a and b2 >= b) and (a2 > a or b2 > b) for _, a2, b2 in pts)
        if not dominated:
            out.append((a, n))
    return [n for _, n in sorted(out)]


def rule_toml(rule: dict, name: str) -> str:
    """A resolved rule set (canonical form) as a ``[[rules]]`` table TOML a config accepts."""
    lines = ["[[rules]]", f'name = "{name}"', f'kind = "{rule.get("kind", "asset")}"']
    if rule.get("enforce_ltv"):
        lines.append("enforce_ltv = true")

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        return repr(v)

    def quote(k: str) -> str:
        return k if re.match(r"^[A-Za-z0-9_-]+$", k) else json.dumps(k)

    def table(prefix: str, d: dict) -> None:
        flat = {k: v for k, v in d.items() if not isinstance(v, dict)}
        nested = {k: v for k, v in d.items() if isinstance(v, dict)}
        if flat:
            lines.append("")
            lines.append(f"[{prefix}]")
            lines.extend(f"{quote(k)} = {scalar(v)}" for k, v in flat.items())
        for k, v in nested.items():
            table(f"{prefix}.{quote(k)}", v)

    if isinstance(rule.get("market"), dict):
        table("rules.market", {k: v for k, v in rule["market"].items() if v is not None})
    for sym, params in (rule.get("assets") or {}).items():
        table(f"rules.assets.{quote(sym)}", params)
    for name, g in (rule.get("groups") or []):
        table(f"rules.groups.{quote(name)}", g)
    return "\n".join(lines) + "\n"
