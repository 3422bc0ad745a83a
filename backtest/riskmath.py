"""Risk measures shared by the portfolio rule kinds and ``mbt derive`` (PROTOCOLS §9).

Plain numpy, no store access: daily closes, RiskMetrics EWMA variances, historical VaR / expected
shortfall as the kinds define them, and the normal quantile.

Conventions (docs/rules.md):

- a *daily close* at UTC midnight ``τ`` is the last price at or before ``τ``;
- EWMA: ``σ²_{t+1} = λ·σ²_t + (1 − λ)·ρ²_t`` over the daily log returns ``ρ``; the recursion is seeded
  with the first return's own square (``σ²_{t₁} = ρ²_{t₁}``), so every return date has a forecast;
- ``VaR_α`` of ``N`` losses is the ⌈α·N⌉-th smallest; ``ES_α`` the mean of the losses ≥ ``VaR_α``.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

DAY_US = 86_400 * 1_000_000


def z_score(alpha: float) -> float:
    """The standard normal α-quantile (2.3263… for α = 0.99)."""
    return NormalDist().inv_cdf(alpha)


def midnights(first_us: int, last_us: int) -> np.ndarray:
    """UTC midnights ``τ`` with ``first_us ≤ τ ≤ last_us`` (µs)."""
    lo = -(-int(first_us) // DAY_US)
    hi = int(last_us) // DAY_US
    return np.arange(lo, hi + 1, dtype=np.int64) * DAY_US


def closes_at(ts: np.ndarray, px: np.ndarray, when: np.ndarray) -> np.ndarray:
    """The last price at or before each instant of ``when``; NaN where there is none."""
    idx = np.searchsorted(ts, when, side="right") - 1
    out = np.where(idx >= 0, px[np.maximum(idx, 0)], np.nan)
    return out.astype(np.float64)


def ewma_next(sigma: float, r: float, lam: float = 0.94) -> float:
    """One RiskMetrics update: ``σ_t = √(λσ²_{t−1} + (1 − λ)r²_{t−1})``."""
    return math.sqrt(lam * sigma * sigma + (1.0 - lam) * r * r)


def ewma_variances(returns: np.ndarray, lam: float) -> np.ndarray:
    """Forecast variances ``v`` with ``v[i]`` the variance for return ``i`` (returns before it only), and
    ``v[n]`` the one after the last return; seeded ``v[0] = returns[0]²``. Length ``n + 1`` (empty → [nan])."""
    n = len(returns)
    v = np.empty(n + 1)
    if n == 0:
        v[0] = np.nan
        return v
    v[0] = returns[0] * returns[0]
    for i in range(n):
        v[i + 1] = lam * v[i] + (1.0 - lam) * returns[i] * returns[i]
    return v


def var_index(alpha: float, n: int) -> int:
    """0-based position of ``VaR_α`` among ``n`` sorted losses: ⌈α·n⌉ − 1 (at least 0).

    ``α·n`` is rounded to 12 significant digits first so that 0.99 × 100 is 99, not 99.00000000000001.
    """
    return max(0, math.ceil(float(f"{alpha * n:.12g}")) - 1)


def var_es(losses: np.ndarray, alpha: float) -> tuple[float, float]:
    """(``VaR_α``, ``ES_α``) of a loss sample: the ⌈αN⌉-th smallest loss and the mean of losses ≥ it."""
    losses = np.asarray(losses, dtype=np.float64)
    if not len(losses):
        raise ValueError("no losses")
    k = var_index(alpha, len(losses))
    var = float(np.partition(losses, k)[k])
    tail = losses[losses >= var]
    return var, float(tail.mean())
