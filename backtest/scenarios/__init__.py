"""Scenarios: generators of market paths, found by name.

A market path is one scenario's market — its grid, prices and the market data that depends on the path
(liquidity depth, interest indices, the price series kinds look back on) — kept apart from rule
parameters. A generator is ``generator(cfg, data) -> list[MarketPath]``; ``register(name, generator)`` adds
one. Only ``historical`` exists so far: the path the store holds. Every path is replayed under every rule
set (``backtest.jobs.expand``); the ``scenario`` column of the result tables is the path's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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


def historical(cfg, data) -> list[MarketPath]:
    """The path the store holds: the run's own grid and prices."""
    return [MarketPath(HISTORICAL, data.grid_us, data.prices, data.series, data.depth_usd, data.indices)]


GENERATORS: dict[str, Callable] = {HISTORICAL: historical}


def register(name: str, generator: Callable) -> Callable:
    GENERATORS[name] = generator
    return generator


def paths(cfg, data) -> list[MarketPath]:
    """Every market path of a run: the historical one (scenario sets arrive with their issue)."""
    return GENERATORS[HISTORICAL](cfg, data)
