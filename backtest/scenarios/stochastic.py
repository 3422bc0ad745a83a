"""Generated scenario kinds: ``bootstrap``, ``fhs``, ``gbm`` (docs/scenarios.md, PROTOCOLS §9).

All three estimate from the stored log returns over ``lookback`` **before the run's start** only (a price
after the start cannot change a generated path), sampled every grid step ``Δ`` (``run.step``, else the
grid's median spacing): ``r_j = ln P(τ_j) − ln P(τ_{j−1})`` with ``τ_j = start − lookback + j·Δ`` and ``P`` the
last stored price at or before. A path starts from each asset's price at the first grid point and takes one
generated return per grid step. ``paths = N`` makes scenarios ``<name>#0001`` …; ``seed`` fixes them (NumPy
``default_rng``): the same seed gives the same paths on every executor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..confkit import _duration, _number, _quote_key
from ..errors import ConfigError
from .base import MarketPath, ScenarioKind, ScenarioSpec, on_path, register_kind
from .deterministic import price_at

YEAR_S = 365 * 86_400
COMMON = ("lookback", "paths", "seed")


def _int(value: Any, key: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(f"{key}: expected a whole number ≥ {lo}, got {value!r}")
    return value


def _common(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    if "lookback" not in table:
        raise ConfigError(f"{where}.lookback: missing (how much history before run.start to learn from, e.g. \"30d\")")
    return {"lookback_seconds": _duration(table["lookback"], f"{where}.lookback"),
            "paths": _int(table.get("paths", 1), f"{where}.paths", 1),
            "seed": _int(table.get("seed", 0), f"{where}.seed", 0)}


def step_seconds(cfg, data) -> int:
    if getattr(cfg, "step_s", None):
        return int(cfg.step_s)
    grid = data.grid_us
    if len(grid) < 2:
        raise ConfigError("scenarios: a generated path needs a grid of two or more points")
    return max(1, int(np.median(np.diff(grid))) // 1_000_000)


def lookback_returns(spec: ScenarioSpec, cfg, data) -> tuple[np.ndarray, int]:
    """(n × K) log returns over the lookback before start, and the step Δ in seconds."""
    where = f"scenarios.{_quote_key(spec.name)}.lookback"
    dt = step_seconds(cfg, data)
    n = spec.settings["lookback_seconds"] // dt
    if n < 2:
        raise ConfigError(f"{where}: shorter than two grid steps ({dt:,} s)")
    start = int(data.grid_us[0])
    tau = start - (np.arange(n, -1, -1, dtype=np.int64) * dt * 1_000_000)   # τ_0 … τ_n = start
    out = np.empty((n, len(data.assets)))
    for k, asset in enumerate(data.assets):
        ts, px = data.series[asset]
        p = price_at(ts, px, tau)
        if np.isnan(p).any() or (p <= 0).any():
            raise ConfigError(f"{where}: no stored {asset} price at or before "
                              f"{np.datetime64(int(tau[0]), 'us')}Z; store earlier prices or shorten the lookback")
        out[:, k] = np.diff(np.log(p))
    return out, dt


def _names(spec: ScenarioSpec) -> list[str]:
    n = spec.settings["paths"]
    return [spec.name] if n == 1 else [f"{spec.name}#{i:04d}" for i in range(1, n + 1)]


def _paths_from_returns(data, names: list[str], returns: list[np.ndarray]) -> list[MarketPath]:
    p0 = data.prices[0]
    out = []
    for name, r in zip(names, returns):
        logp = np.vstack([np.zeros((1, r.shape[1])), np.cumsum(r, axis=0)])
        out.append(on_path(data, name, p0 * np.exp(logp)))
    return out


def _blocks(rng: np.random.Generator, n: int, steps: int, b: int) -> np.ndarray:
    """Row indices of a block bootstrap: ``steps`` rows from blocks of ``b`` consecutive rows of ``n``."""
    b = max(1, min(b, n))
    starts = rng.integers(0, n - b + 1, size=-(-steps // b))
    return (starts[:, None] + np.arange(b)[None, :]).ravel()[:steps]


# -- bootstrap ----------------------------------------------------------------------------------------------
def _parse_bootstrap(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    out = _common(table, where)
    out["block_seconds"] = _duration(table.get("block", "1h"), f"{where}.block")
    return out


def _bootstrap(spec: ScenarioSpec, cfg, data) -> list[MarketPath]:
    r, dt = lookback_returns(spec, cfg, data)
    rng = np.random.default_rng(spec.settings["seed"])
    steps = len(data.grid_us) - 1
    b = max(1, spec.settings["block_seconds"] // dt)
    names = _names(spec)
    return _paths_from_returns(data, names, [r[_blocks(rng, len(r), steps, b)] for _ in names])


# -- filtered historical simulation ----------------------------------------------------------------------
def _parse_fhs(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    out = _common(table, where)
    lam = _number(table.get("lambda", 0.94), f"{where}.lambda")
    if not 0 < lam < 1:
        raise ConfigError(f"{where}.lambda: the EWMA decay must satisfy 0 < lambda < 1, got {lam!r}")
    out["lambda"] = lam
    out["block_seconds"] = _duration(table.get("block", "1h"), f"{where}.block")
    return out


VAR_FLOOR = 1e-6   # σ² never below this share of the lookback's mean r² (no division by ~0 between rare moves)


def ewma_variance(r: np.ndarray, lam: float) -> np.ndarray:
    """σ²_j for j = 0 … n (σ²_0 = the sample mean of r², σ²_{j+1} = λσ²_j + (1 − λ)r²_j, floored at
    ``VAR_FLOOR`` × that mean): (n + 1) × K. ``lam`` is the per-step decay."""
    n, K = r.shape
    var = np.empty((n + 1, K))
    mean = np.mean(r * r, axis=0)
    floor = np.maximum(mean * VAR_FLOOR, 1e-300)
    var[0] = np.maximum(mean, floor)
    for j in range(n):
        var[j + 1] = np.maximum(lam * var[j] + (1.0 - lam) * r[j] * r[j], floor)
    return var


def _fhs(spec: ScenarioSpec, cfg, data) -> list[MarketPath]:
    r, dt = lookback_returns(spec, cfg, data)
    lam = spec.settings["lambda"] ** (dt / 86_400)   # the daily decay (RiskMetrics 0.94) per grid step
    var = ewma_variance(r, lam)
    floor = var.min(axis=0)
    z = r / np.sqrt(var[:-1])                 # standardised residuals, dates kept together
    rng = np.random.default_rng(spec.settings["seed"])
    steps = len(data.grid_us) - 1
    b = max(1, spec.settings["block_seconds"] // dt)
    names = _names(spec)
    returns = []
    for _ in names:
        draws = z[_blocks(rng, len(z), steps, b)]
        out = np.empty_like(draws)
        v = var[-1].copy()                    # the volatility at start
        for t in range(steps):
            out[t] = draws[t] * np.sqrt(v)
            v = np.maximum(lam * v + (1.0 - lam) * out[t] * out[t], floor)
        returns.append(out)
    return _paths_from_returns(data, names, returns)


# -- correlated GBM with optional Merton jumps --------------------------------------------------------------
def _parse_gbm(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    out = _common(table, where)
    out["drift"] = _number(table.get("drift", 0.0), f"{where}.drift")
    out["vol_multiplier"] = _number(table.get("vol_multiplier", 1.0), f"{where}.vol_multiplier")
    if out["vol_multiplier"] < 0:
        raise ConfigError(f"{where}.vol_multiplier: must be ≥ 0")
    out["jump_intensity"] = _number(table.get("jump_intensity", 0.0), f"{where}.jump_intensity")
    if out["jump_intensity"] < 0:
        raise ConfigError(f"{where}.jump_intensity: jumps per day must be ≥ 0")
    out["jump_mean"] = _number(table.get("jump_mean", 0.0), f"{where}.jump_mean")
    out["jump_std"] = _number(table.get("jump_std", 0.0), f"{where}.jump_std")
    if out["jump_std"] < 0:
        raise ConfigError(f"{where}.jump_std: must be ≥ 0")
    return out


def gbm_estimates(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-step volatility and correlation of the lookback returns (zero-vol assets uncorrelated)."""
    sigma = r.std(axis=0, ddof=1)
    K = r.shape[1]
    corr = np.eye(K)
    live = sigma > 0
    if live.sum() > 1:
        corr[np.ix_(live, live)] = np.corrcoef(r[:, live], rowvar=False)
    return sigma, corr


def _cholesky(cov: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((cov + cov.T) / 2)
    return v * np.sqrt(np.clip(w, 0.0, None))      # L with L·Lᵀ = cov (nearest PSD)


def _gbm(spec: ScenarioSpec, cfg, data) -> list[MarketPath]:
    s = spec.settings
    r, dt = lookback_returns(spec, cfg, data)
    sigma, corr = gbm_estimates(r)
    sigma = sigma * s["vol_multiplier"]
    L = _cholesky(corr * np.outer(sigma, sigma))
    rng = np.random.default_rng(s["seed"])
    steps, K = len(data.grid_us) - 1, len(data.assets)
    mu = s["drift"] * dt / YEAR_S - 0.5 * sigma * sigma
    lam = s["jump_intensity"] * dt / 86_400
    names = _names(spec)
    returns = []
    for _ in names:
        out = mu + rng.standard_normal((steps, K)) @ L.T
        if lam > 0:
            n = rng.poisson(lam, size=(steps, K))
            out = out + n * s["jump_mean"] + np.sqrt(n) * s["jump_std"] * rng.standard_normal((steps, K))
        returns.append(out)
    return _paths_from_returns(data, names, returns)


register_kind(ScenarioKind("bootstrap", COMMON + ("block",), _parse_bootstrap, _bootstrap,
                           "block bootstrap of the lookback's returns, dates kept together"))
register_kind(ScenarioKind("fhs", COMMON + ("lambda", "block"), _parse_fhs, _fhs,
                           "filtered historical simulation: EWMA-standardised residuals at today's volatility"))
register_kind(ScenarioKind("gbm", COMMON + ("drift", "vol_multiplier", "jump_intensity", "jump_mean", "jump_std"),
                           _parse_gbm, _gbm, "correlated geometric Brownian motion, optional Merton jumps"))
