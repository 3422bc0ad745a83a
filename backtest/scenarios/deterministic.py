"""Deterministic scenario kinds: ``shock``, ``shock-grid``, ``depeg``, ``window`` (docs/scenarios.md).

Each multiplies (``shock``, ``shock-grid``, ``depeg``) or replaces (``window``) the stored path on the run's
grid; the snapshot and the event ledger are the same in every scenario.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..confkit import _duration, _instant, _number, _quote_key, _string
from ..errors import ConfigError
from ..timeutil import format_instant
from .base import MarketPath, ScenarioKind, ScenarioSpec, on_path, register_kind


def instant_text(value: Any, key: str) -> str:
    return format_instant(_instant(value, key))


def _move(value: Any, key: str) -> float:
    m = _number(value, key)
    if m <= -1.0:
        raise ConfigError(f"{key}: a move must be > -1 (a price cannot fall below zero), got {value!r}")
    return m


def _at_us(spec: ScenarioSpec, data) -> int:
    at = spec.settings.get("at")
    if at is not None:
        return _instant(at, f"scenarios.{_quote_key(spec.name)}.at")
    grid = data.grid_us
    if len(grid) < 2:
        raise ConfigError(f"scenarios.{_quote_key(spec.name)}.at: the grid has one point; give `at`")
    return int(grid[1])


def _asset_index(data, asset: str, key: str) -> int:
    if asset not in data.assets:
        raise ConfigError(f"{key}: {asset!r} is not an asset of this run ({', '.join(data.assets)})")
    return data.assets.index(asset)


def _weight(grid_us: np.ndarray, at_us: int, ramp_s: int) -> np.ndarray:
    """0 before the shock, 1 from ``at`` on; with a ramp, rising linearly from ``at − ramp`` to ``at``."""
    if ramp_s <= 0:
        return (grid_us >= at_us).astype(np.float64)
    t0 = at_us - ramp_s * 1_000_000
    return np.clip((grid_us - t0) / (ramp_s * 1_000_000), 0.0, 1.0)


# -- shock, shock-grid ----------------------------------------------------------------------------------
def _parse_shock(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    moves = table.get("moves")
    if not isinstance(moves, Mapping) or not moves:
        raise ConfigError(f"{where}.moves: expected a table of asset = move (e.g. WETH = -0.30)")
    out: dict[str, Any] = {"moves": {str(a): _move(m, f"{where}.moves.{_quote_key(str(a))}") for a, m in moves.items()}}
    if "at" in table:
        out["at"] = instant_text(table["at"], f"{where}.at")
    if "ramp" in table:
        out["ramp_seconds"] = _duration(table["ramp"], f"{where}.ramp")
    return out


def shocked(data, name: str, moves: Mapping[str, float], at_us: int, ramp_s: int, where: str) -> MarketPath:
    w = _weight(data.grid_us, at_us, ramp_s)
    prices = data.prices.copy()
    for asset, m in moves.items():
        k = _asset_index(data, asset, f"{where}.moves.{_quote_key(asset)}")
        prices[:, k] = data.prices[:, k] * (1.0 + m * w)
    return on_path(data, name, prices)


def _shock(spec: ScenarioSpec, cfg, data) -> list[MarketPath]:
    s = spec.settings
    return [shocked(data, spec.name, s["moves"], _at_us(spec, data), s.get("ramp_seconds", 0),
                    f"scenarios.{_quote_key(spec.name)}")]


def _parse_grid(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    moves = table.get("moves")
    if not isinstance(moves, list) or not moves:
        raise ConfigError(f"{where}.moves: expected a list of moves, e.g. [-0.05, -0.10, -0.20]")
    assets = table.get("assets")
    if not isinstance(assets, list) or not assets:
        raise ConfigError(f"{where}.assets: expected a list of the assets to move, e.g. [\"WETH\", \"WBTC\"]")
    out: dict[str, Any] = {"moves": [_move(m, f"{where}.moves[{i}]") for i, m in enumerate(moves)],
                           "assets": [_string(a, f"{where}.assets[{i}]") for i, a in enumerate(assets)]}
    if len(set(out["moves"])) != len(out["moves"]):
        raise ConfigError(f"{where}.moves: a move is listed twice")
    if "at" in table:
        out["at"] = instant_text(table["at"], f"{where}.at")
    if "ramp" in table:
        out["ramp_seconds"] = _duration(table["ramp"], f"{where}.ramp")
    return out


def _shock_grid(spec: ScenarioSpec, cfg, data) -> list[MarketPath]:
    s = spec.settings
    at = _at_us(spec, data)
    where = f"scenarios.{_quote_key(spec.name)}"
    return [shocked(data, f"{spec.name}@{m:g}", {a: m for a in s["assets"]}, at, s.get("ramp_seconds", 0), where)
            for m in s["moves"]]


# -- depeg ------------------------------------------------------------------------------------------------
def _parse_depeg(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    for key in ("asset", "floor", "down"):
        if key not in table:
            raise ConfigError(f"{where}.{key}: missing")
    floor = _number(table["floor"], f"{where}.floor")
    if floor <= 0:
        raise ConfigError(f"{where}.floor: the price the stablecoin falls to must be > 0, got {floor!r}")
    out: dict[str, Any] = {"asset": _string(table["asset"], f"{where}.asset"), "floor": floor,
                           "down_seconds": _duration(table["down"], f"{where}.down"),
                           "hold_seconds": _duration(table["hold"], f"{where}.hold") if "hold" in table else 0,
                           "recover_seconds": (_duration(table["recover"], f"{where}.recover")
                                               if "recover" in table else 0)}
    if "at" in table:
        out["at"] = instant_text(table["at"], f"{where}.at")
    return out


def depeg_factor(grid_us: np.ndarray, at_us: int, base: float, floor: float, down: int, hold: int,
                 recover: int) -> np.ndarray:
    """Multiplier of the stored price: 1 until ``at``, linearly to ``floor / base`` over ``down``, held for
    ``hold``, linearly back to 1 over ``recover`` (1 from then on; ``recover = 0``: stays at the floor)."""
    t = (grid_us - at_us) / 1e6
    low = floor / base
    f = np.ones(len(grid_us))
    falling = (t >= 0) & (t < down)
    f[falling] = 1.0 + (low - 1.0) * (t[falling] / down if down else 1.0)
    held = t >= down
    f[held] = low
    if recover > 0:
        rising = (t >= down + hold) & (t < down + hold + recover)
        f[rising] = low + (1.0 - low) * ((t[rising] - down - hold) / recover)
        f[t >= down + hold + recover] = 1.0
    return f


def _depeg(spec: ScenarioSpec, cfg, data) -> list[MarketPath]:
    s = spec.settings
    where = f"scenarios.{_quote_key(spec.name)}"
    k = _asset_index(data, s["asset"], f"{where}.asset")
    at = _at_us(spec, data)
    grid = data.grid_us
    i = int(np.searchsorted(grid, at, side="right")) - 1
    base = float(data.prices[max(i, 0), k])
    prices = data.prices.copy()
    prices[:, k] *= depeg_factor(grid, at, base, s["floor"], s["down_seconds"], s["hold_seconds"],
                                 s["recover_seconds"])
    return [on_path(data, spec.name, prices)]


# -- window -------------------------------------------------------------------------------------------------
def _parse_window(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    if "from" not in table:
        raise ConfigError(f"{where}.from: missing (the start of the stored window whose returns are replayed)")
    return {"from": instant_text(table["from"], f"{where}.from")}


def price_at(ts: np.ndarray, px: np.ndarray, when: np.ndarray) -> np.ndarray:
    """Last stored price at or before each instant (NaN before the first)."""
    i = np.searchsorted(ts, when, side="right") - 1
    out = np.where(i >= 0, px[np.maximum(i, 0)], np.nan)
    return out


def _window(spec: ScenarioSpec, cfg, data) -> list[MarketPath]:
    where = f"scenarios.{_quote_key(spec.name)}.from"
    frm = _instant(spec.settings["from"], where)
    grid = data.grid_us
    start = int(grid[0])
    span = int(grid[-1]) - start
    if frm + span > start:
        raise ConfigError(f"{where}: the window {spec.settings['from']} + {span // 1_000_000:,} s runs past the run's "
                          f"start; it must lie before it (no look-ahead)")
    prices = np.empty_like(data.prices)
    for k, asset in enumerate(data.assets):
        ts, px = data.series[asset]
        hist = price_at(ts, px, frm + (grid - start))
        if np.isnan(hist).any():
            raise ConfigError(f"{where}: no stored {asset} price at or before {spec.settings['from']}")
        prices[:, k] = data.prices[0, k] * hist / hist[0]
    return [on_path(data, spec.name, prices)]


register_kind(ScenarioKind("shock", ("moves", "at", "ramp"), _parse_shock, _shock,
                           "the stored path times (1 + move) per asset from `at` on"))
register_kind(ScenarioKind("shock-grid", ("moves", "assets", "at", "ramp"), _parse_grid, _shock_grid,
                           "one shock per move, applied to every listed asset"))
register_kind(ScenarioKind("depeg", ("asset", "floor", "down", "hold", "recover", "at"), _parse_depeg, _depeg,
                           "a stablecoin falls to `floor`, holds, recovers"))
register_kind(ScenarioKind("window", ("from",), _parse_window, _window,
                           "the returns of a stored historical window applied from the run's start"))
