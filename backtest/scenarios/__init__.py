"""Scenarios: market paths by kind, chosen by the run's ``[[scenarios]]`` tables (docs/scenarios.md).

A market path is one scenario's market — its grid, prices and the market data that depends on the path
(liquidity depth, interest indices, the price series kinds look back on) — kept apart from rule
parameters. A scenario *kind* declares its TOML keys, parses and checks them (``parse(table, where)`` →
settings), and generates paths (``generate(spec, cfg, data)`` → list of :class:`MarketPath`). Without
``[[scenarios]]`` a run has the historical path only; with them, exactly the listed scenarios. Every path is
replayed under every rule set (``backtest.jobs.expand``); the ``scenario`` column of the result tables is
the path's name (``<name>#0001``… for ``paths = N``, ``<name>@-0.05``… for a shock grid).

Built-in kinds: ``historical`` (here), ``shock``, ``shock-grid``, ``depeg``, ``window``
(``deterministic``), ``bootstrap``, ``fhs``, ``gbm`` (``stochastic``). Adding one is a module that calls
:func:`register_kind`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..confkit import _check_keys, _hint, _quote_key, _string
from ..errors import ConfigError

from .base import (HISTORICAL, KINDS, MarketPath, ScenarioKind, ScenarioSpec, _historical,  # noqa: F401
                   on_path, register, register_kind)


def parse_scenarios(raw: Any) -> tuple[ScenarioSpec, ...]:
    """The ``[[scenarios]]`` array of a config, checked (one line naming the key on error)."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError("scenarios: expected one or more [[scenarios]] tables")
    out: list[ScenarioSpec] = []
    seen: set[str] = set()
    for n, table in enumerate(raw):
        where = f"scenarios[{n}]"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: expected a table")
        if "kind" not in table:
            raise ConfigError(f"{where}.kind: missing (one of {', '.join(KINDS)})")
        kind_name = _string(table["kind"], f"{where}.kind")
        kind = KINDS.get(kind_name)
        if kind is None:
            raise ConfigError(f"{where}.kind: unknown scenario kind {kind_name!r}{_hint(kind_name, list(KINDS))}")
        name = _string(table.get("name", kind_name), f"{where}.name")
        if any(c in name for c in "#@*"):
            raise ConfigError(f"{where}.name: {name!r} may not contain #, @ or * (they name generated paths)")
        if name in seen:
            raise ConfigError(f"{where}.name: duplicate scenario name {name!r}")
        seen.add(name)
        where = f"scenarios.{_quote_key(name)}"
        _check_keys(table, ("name", "kind") + kind.keys, where)
        settings = kind.parse({k: v for k, v in table.items() if k not in ("name", "kind")}, where)
        out.append(ScenarioSpec(name, kind_name, settings))
    return tuple(out)


def paths(cfg, data) -> list[MarketPath]:
    """Every market path of a run: the historical one, or exactly those of ``cfg.scenarios``."""
    specs = getattr(cfg, "scenarios", None) or ()
    if not specs:
        return _historical(ScenarioSpec(HISTORICAL, HISTORICAL), cfg, data)
    out: list[MarketPath] = []
    for spec in specs:
        out.extend(KINDS[spec.kind].generate(spec, cfg, data))
    names = [p.scenario for p in out]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"scenarios: two generated paths are both named {dup!r}; rename one scenario")
    return out


__all__ = ["HISTORICAL", "KINDS", "MarketPath", "ScenarioKind", "ScenarioSpec", "on_path", "parse_scenarios",
           "paths", "register", "register_kind"]


from . import deterministic, stochastic  # noqa: E402,F401  (the built-in kinds register themselves)
