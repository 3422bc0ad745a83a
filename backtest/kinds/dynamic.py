"""``kind = "dynamic"``: volatility-driven thresholds — an EWMA σ of past returns sets each collateral's LT
at every update (``start + n·update_every``), from prices strictly before the update: no look-ahead by
construction. One parameter time row per update.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Mapping

import numpy as np

from ..confkit import AssetParams, _check_keys, _duration, _number
from ..engine.types import Params
from ..errors import ConfigError
from . import Compiled, Kind, register
from .asset import asset_vectors

DYNAMIC_DEFAULTS: dict[str, Any] = {
    "lambda": 0.94, "vol_interval": "1d", "min_history": 30, "confidence": 0.99, "horizon_days": 1.0,
    "floor": 0.5, "cap": 0.95, "update_every": "1d", "max_step": 0.05,
}


@dataclass(frozen=True)
class DynamicSettings:
    """Volatility-driven thresholds (``kind = "dynamic"``); durations in seconds."""

    lam: float
    vol_interval_s: int
    min_history: int
    confidence: float
    horizon_days: float
    floor: float
    cap: float
    update_every_s: int
    max_step: float


def parse_dynamic(table: Any, where: str) -> DynamicSettings:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table")
    _check_keys(table, tuple(DYNAMIC_DEFAULTS), where)
    t = {**DYNAMIC_DEFAULTS, **table}
    lam = _number(t["lambda"], f"{where}.lambda")
    if not 0 < lam < 1:
        raise ConfigError(f"{where}.lambda: must satisfy 0 < lambda < 1, got {lam}")
    mh = t["min_history"]
    if isinstance(mh, bool) or not isinstance(mh, int) or mh < 2:
        raise ConfigError(f"{where}.min_history: expected an integer ≥ 2, got {mh!r}")
    conf = _number(t["confidence"], f"{where}.confidence")
    if not 0.5 <= conf < 1:
        raise ConfigError(f"{where}.confidence: must satisfy 0.5 ≤ confidence < 1, got {conf}")
    horizon = _number(t["horizon_days"], f"{where}.horizon_days")
    if horizon <= 0:
        raise ConfigError(f"{where}.horizon_days: must be > 0, got {horizon}")
    floor, cap = _number(t["floor"], f"{where}.floor"), _number(t["cap"], f"{where}.cap")
    if not 0 <= floor <= cap < 1:
        raise ConfigError(f"{where}.cap: must satisfy 0 ≤ floor ≤ cap < 1, got floor {floor}, cap {cap}")
    step = _number(t["max_step"], f"{where}.max_step")
    if step <= 0:
        raise ConfigError(f"{where}.max_step: must be > 0, got {step}")
    return DynamicSettings(lam, _duration(t["vol_interval"], f"{where}.vol_interval"), mh, conf, horizon,
                           floor, cap, _duration(t["update_every"], f"{where}.update_every"), step)


def _parse(table: Mapping[str, Any], where: str, assets: Mapping[str, AssetParams]) -> dict:
    return {"dynamic": parse_dynamic(table.get("dynamic", {}), f"{where}.dynamic")}


def _ewma_sigma(ts: np.ndarray, px: np.ndarray, when: np.ndarray, interval_us: int, lam: float,
                min_history: int) -> np.ndarray:
    """σ per time in ``when`` from returns of last prices at multiples of ``interval_us`` strictly before it.

    The EWMA is seeded with the sample variance of the first ``min_history`` returns; NaN where fewer
    returns exist.
    """
    out = np.full(len(when), np.nan)
    if len(ts) == 0:
        return out
    first = ts[0] // interval_us + (1 if ts[0] % interval_us else 0)
    last = (int(when.max()) - 1) // interval_us
    if last < first + 1:
        return out
    samples = np.arange(first, last + 1, dtype=np.int64) * interval_us
    last_px = px[np.searchsorted(ts, samples, side="right") - 1]
    r = np.diff(np.log(last_px))  # r[n] is known from samples[n + 1] on
    if len(r) < min_history:
        return out
    var = np.empty(len(r))
    var[: min_history - 1] = np.nan
    var[min_history - 1] = np.var(r[:min_history], ddof=1)
    for n in range(min_history, len(r)):
        var[n] = lam * var[n - 1] + (1 - lam) * r[n] ** 2
    # returns available strictly before τ: those whose closing sample is < τ
    n_known = np.searchsorted(samples, when, side="left") - 1  # samples[0..n] < τ → returns r[0..n−1]
    ok = n_known >= min_history
    out[ok] = np.sqrt(var[n_known[ok] - 1])
    return out


def dynamic_thresholds(rule: RuleSet, data: RunData, ltv: np.ndarray, lt: np.ndarray, lb: np.ndarray):
    """(ltv table, lt table, update index) for ``kind = "dynamic"`` — no look-ahead by construction.

    Updates happen at ``start + n·update_every``; each uses only prices strictly before its own time.
    """
    dyn = rule.dynamic
    grid = data.grid_us
    every = dyn.update_every_s * 1_000_000
    n_updates = int((grid[-1] - data.start_us) // every) + 1
    times = data.start_us + every * np.arange(n_updates, dtype=np.int64)
    z = NormalDist().inv_cdf(dyn.confidence)
    scale = math.sqrt(dyn.horizon_days * 86400 / dyn.vol_interval_s)
    K = len(data.assets)
    lt_t = np.zeros((n_updates, K))
    for k, asset in enumerate(data.assets):
        if lt[k] == 0:
            continue  # not collateral in this rule set: stays so
        ts, px = data.series[asset]
        sigma = _ewma_sigma(ts, px, times, dyn.vol_interval_s * 1_000_000, dyn.lam, dyn.min_history)
        target = np.clip((1 - z * sigma * scale) / (1 + lb[k]), dyn.floor, dyn.cap)
        value = target[0] if np.isfinite(target[0]) else lt[k]
        lt_t[0, k] = value
        for u in range(1, n_updates):
            if np.isfinite(target[u]):
                value = value + float(np.clip(target[u] - value, -dyn.max_step, dyn.max_step))
            lt_t[u, k] = value
    ltv_t = np.maximum(0.0, lt_t - (lt - ltv))
    upd = np.searchsorted(times, grid, side="right") - 1
    return ltv_t[:, None, :], lt_t[:, None, :], upd.astype(np.int64)


def _compile(rule, data, base):
    ltv, lt, lb = asset_vectors(rule, data.assets)
    ltv3, lt3, upd = dynamic_thresholds(rule, data, ltv, lt, lb)
    lb3 = np.broadcast_to(lb, lt3.shape).copy()
    return Compiled(data.book, data.events, Params(ltv3, lt3, lb3, update_index=upd, **base))


KIND = register(Kind(
    name="dynamic", keys=("dynamic",), parse=_parse, canonical=lambda rule: {"dynamic": vars(rule.dynamic).copy()},
    compile=_compile, summary="EWMA-volatility thresholds, recomputed every update_every",
))
