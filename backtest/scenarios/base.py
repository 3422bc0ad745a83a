"""What a scenario kind is and the registry of kinds (imported by the kind modules; no kind here but
``historical``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

HISTORICAL = "historical"


@dataclass(frozen=True)
class MarketPath:
    """One scenario's market: grid (µs), prices (T × K) and path-dependent market data."""

    scenario: str
    grid_us: np.ndarray
    prices: np.ndarray
    series: dict
    depth_usd: np.ndarray | None = None
    indices: dict | None = None


@dataclass(frozen=True)
class ScenarioSpec:
    """One ``[[scenarios]]`` table, resolved: its name, kind and the kind's checked settings (plain data)."""

    name: str
    kind: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    def canonical(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, **self.settings}


@dataclass(frozen=True)
class ScenarioKind:
    """A scenario kind: TOML keys (besides ``name`` and ``kind``), their parser, the path generator."""

    name: str
    keys: tuple[str, ...]
    parse: Callable[[Mapping[str, Any], str], dict[str, Any]]
    generate: Callable[[ScenarioSpec, Any, Any], list[MarketPath]]
    summary: str = ""


KINDS: dict[str, ScenarioKind] = {}


def register_kind(kind: ScenarioKind) -> ScenarioKind:
    """Add a scenario kind (its name must be new)."""
    if not kind.name or kind.name in KINDS:
        raise ValueError(f"scenario kind {kind.name!r} is empty or already registered")
    KINDS[kind.name] = kind
    return kind


def register(name: str, generator: Callable[[Any, Any], list[MarketPath]]) -> Callable:
    """A kind without settings from a plain ``generator(cfg, data)`` (the seams issue's interface)."""
    register_kind(ScenarioKind(name, (), lambda table, where: {}, lambda spec, cfg, data: generator(cfg, data)))
    return generator


def on_path(data, name: str, prices: np.ndarray) -> MarketPath:
    """A path on the run's grid with ``prices`` (T × K); the looked-back series are the stored history
    before the run's start followed by the path's own prices (so kinds that look back see this path)."""
    grid = data.grid_us
    start = int(grid[0]) if len(grid) else data.start_us
    series = {}
    for k, asset in enumerate(data.assets):
        ts, px = data.series[asset]
        keep = ts < start
        series[asset] = (np.concatenate([ts[keep], grid]), np.concatenate([px[keep], prices[:, k]]))
    return MarketPath(name, grid, np.ascontiguousarray(prices, dtype=np.float64), series, data.depth_usd, data.indices)


def _historical(spec: ScenarioSpec, cfg, data) -> list[MarketPath]:
    return [MarketPath(spec.name, data.grid_us, data.prices, data.series, data.depth_usd, data.indices)]


register_kind(ScenarioKind(HISTORICAL, (), lambda table, where: {}, _historical, "the stored path"))


