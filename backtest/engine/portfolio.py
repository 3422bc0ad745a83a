"""Requirement hooks of the portfolio kinds (``portfolio-scenario``, ``portfolio-var``; PROTOCOLS §9).

An account is liquidatable when its equity ``E = Σ c·p − Σ d·p`` (every asset it holds, no thresholds) is
below its requirement ``R``, the portfolio's loss over a set of joint price scenarios::

    L_s = −Σ_k (c_k·pc_k − d_k·pd_k)·G[s, k]          (G: the relative price move of asset k in scenario s)
    portfolio-scenario, offsets = "joint":  R = max(0, max_s L_s)
    portfolio-scenario, offsets = "none":   R = Σ_k max(0, max_s L_{k,s})   (each asset scanned alone)
    portfolio-var, measure = "var":         R = max(0, VaR_α)   (the ⌈αN⌉-th smallest L_s)
    portfolio-var, measure = "es":          R = max(0, ES_α)    (the mean of the L_s ≥ VaR_α)

For ``portfolio-scenario`` ``G[s, k] = m_s·psr_k·w_s`` (one set for the whole run); for ``portfolio-var``
``G[s, k] = e^{r_{s,k}} − 1`` with one scenario set per UTC day of the grid (``day[t]`` picks it).

On the kernel's seam (``engine/tables.py``): ``maint = Σ c·pc − R`` (so ``maint / Σ d·pd < 1`` exactly when
``E < R``), ``initial = Σ c·pc − initial_multiplier·R``; every asset is eligible collateral with its
``liquidation_bonus``.

The skip bound: over a block, ``E − R ≥ min(E, E − max_s L_s)`` and ``max_s L_s ≤ Σ_k c_k·pc_k·(−G_min,k) +
d_k·pd_k·G_max,k``, so with the block's price extremes and the block's extreme moves of every scenario
set it touches, ``Σ c·pc_min − Σ d·pd_max ≥ ε`` and ``Σ_k c_k·(1 + G_min,k)·pc − d_k·(1 + G_max,k)·pd ≥ ε``
(each price at the end of its range that makes the term smallest) prove the account healthy and solvent
all block. ``ε = 10⁻⁹ × (Σ |c|·pc_max + Σ |d|·pd_max)`` keeps float rounding from mattering. There is no
"stuck" bound (``stuck`` says 0).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from .tables import _by_level

HOOKS = "backtest.engine.portfolio"
MODE_JOINT, MODE_NONE, MODE_VAR, MODE_ES = 0, 1, 2, 3
SLACK = 1e-9

PortfolioKp = namedtuple("PortfolioKp", [
    "mode", "G", "count", "kidx", "day", "lb", "imult", "boff", "gmin", "gmax", "pcmin", "pcmax", "pdmin", "pdmax",
])


@njit(cache=True, nogil=True)
def select_kth(a, n, k):
    """The ``k``-th smallest (0-based) of ``a[:n]``, reordering ``a`` in place (Hoare's selection)."""
    lo = 0
    hi = n - 1
    while lo < hi:
        pivot = a[(lo + hi) // 2]
        i = lo
        j = hi
        while i <= j:
            while i <= hi and a[i] < pivot:
                i += 1
            while j >= lo and a[j] > pivot:
                j -= 1
            if i <= j:
                tmp = a[i]
                a[i] = a[j]
                a[j] = tmp
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return a[k]
    return a[k]


@njit(cache=True, nogil=True)
def measure(mode, losses, n, k):
    """The requirement from scenario losses ``losses[:n]`` (reordered for VaR / ES): floored at 0."""
    if n == 0:
        return 0.0
    if mode == MODE_JOINT:
        worst = 0.0
        for s in range(n):
            if losses[s] > worst:
                worst = losses[s]
        return worst
    var = select_kth(losses, n, k)
    if mode == MODE_VAR:
        return var if var > 0.0 else 0.0
    total = 0.0
    m = 0
    for s in range(n):
        if losses[s] >= var:
            total += losses[s]
            m += 1
    es = total / m if m > 0 else var
    return es if es > 0.0 else 0.0


@njit(cache=True, nogil=True)
def requirement_of(mode, G, g, n, k_var, v, losses):
    """``R`` of an account with net USD values ``v`` per asset (``c·pc − d·pd``) under scenario set ``g``;
    ``losses`` is scratch of length ≥ ``n``."""
    K = v.shape[0]
    if mode == MODE_NONE:
        total = 0.0
        for k in range(K):
            worst = 0.0
            for s in range(n):
                x = -v[k] * G[g, s, k]
                if x > worst:
                    worst = x
            total += worst
        return total
    for s in range(n):
        x = 0.0
        for k in range(K):
            x -= v[k] * G[g, s, k]
        losses[s] = x
    return measure(mode, losses, n, k_var)


@njit(cache=True, nogil=True)
def requirement_at(kp, c, d, pc, pd, t):
    """``R`` of balances ``c``, ``d`` at step ``t`` (the scenario set of the step's day)."""
    g = kp.day[t]
    n = kp.count[g]
    v = np.empty(c.shape[0])
    for k in range(c.shape[0]):
        v[k] = c[k] * pc[t, k] - d[k] * pd[t, k]
    scratch = v if kp.mode == MODE_NONE else np.empty(max(n, 1))  # per-asset scans need no loss vector
    return requirement_of(kp.mode, kp.G, g, n, kp.kidx[g], v, scratch)


@njit(cache=True, nogil=True, inline="always")
def regime(kp, a, d):
    return 0


@njit(cache=True, nogil=True, inline="always")
def _value(c, pc, t):
    total = 0.0
    for k in range(c.shape[0]):
        total += c[k] * pc[t, k]
    return total


@njit(cache=True, nogil=True, inline="always")
def maint(kp, a, r, c, d, pc, pd, t):
    """``Σ c·pc − R``: below ``Σ d·pd`` exactly when equity is below the requirement."""
    return _value(c, pc, t) - requirement_at(kp, c, d, pc, pd, t)


@njit(cache=True, nogil=True, inline="always")
def initial(kp, a, r, c, d, pc, pd, t):
    """``Σ c·pc − IM`` with ``IM = initial_multiplier · R``."""
    return _value(c, pc, t) - kp.imult * requirement_at(kp, c, d, pc, pd, t)


@njit(cache=True, nogil=True, inline="always")
def eligible(kp, r, t, k):
    return True


@njit(cache=True, nogil=True, inline="always")
def bonus(kp, r, t, k):
    return kp.lb[k]


@njit(cache=True, nogil=True, inline="always")
def skip(kp, level, b, r, c, d):
    has_debt = False
    for k in range(d.shape[0]):
        if d[k] > 0:
            has_debt = True
    if not has_debt:
        return True
    b = kp.boff[level] + b
    lower_e = 0.0
    lower_w = 0.0
    scale = 0.0
    for k in range(c.shape[0]):
        ck = c[k]
        if ck != 0.0:
            lower_e += ck * (kp.pcmin[b, k] if ck > 0 else kp.pcmax[b, k])
            f = ck * (1.0 + kp.gmin[b, k])
            lower_w += f * (kp.pcmin[b, k] if f > 0 else kp.pcmax[b, k])
            scale += abs(ck) * kp.pcmax[b, k]
        dk = d[k]
        if dk != 0.0:
            lower_e -= dk * (kp.pdmax[b, k] if dk > 0 else kp.pdmin[b, k])
            f = dk * (1.0 + kp.gmax[b, k])
            lower_w -= f * (kp.pdmax[b, k] if f > 0 else kp.pdmin[b, k])
            scale += abs(dk) * kp.pdmax[b, k]
    eps = SLACK * scale
    return lower_e >= eps and lower_w >= eps


@njit(cache=True, nogil=True, inline="always")
def stuck(kp, level, b, r, c, d, gas, share):
    return 0


def pack(params, pc: np.ndarray, pd: np.ndarray, levels: np.ndarray, n_accounts: int) -> PortfolioKp:
    """The hooks' parameters: scenario sets, per-block price extremes and extreme moves."""
    T, K = pc.shape
    G = np.ascontiguousarray(params.scenarios, dtype=np.float64)
    count = np.ascontiguousarray(params.count, dtype=np.int64)
    day = np.ascontiguousarray(params.day_index(T), dtype=np.int64)
    gmin_d = np.empty((G.shape[0], K))
    gmax_d = np.empty((G.shape[0], K))
    for g in range(G.shape[0]):
        n = int(count[g])
        gmin_d[g] = G[g, :n].min(axis=0) if n else 0.0
        gmax_d[g] = G[g, :n].max(axis=0) if n else 0.0
    sizes = levels.tolist()
    gmin = _by_level(gmin_d[day], sizes, "min")
    gmax = _by_level(gmax_d[day], sizes, "max")
    ext = [_by_level(x, sizes, how) for x, how in ((pc, "min"), (pc, "max"), (pd, "min"), (pd, "max"))]
    boff = np.zeros(len(levels), dtype=np.int64)
    boff[1:] = np.cumsum([len(x) for x in gmin])[:-1]
    cat = [np.ascontiguousarray(np.concatenate(x)) for x in (gmin, gmax, *ext)]
    return PortfolioKp(int(params.mode), G, count, np.ascontiguousarray(params.kidx, dtype=np.int64), day,
                       np.ascontiguousarray(params.lb, dtype=np.float64), float(params.initial_multiplier), boff,
                       *cat)


@njit(cache=True, nogil=True)
def _requirement_lambda(mode, G, g, n, k_var, cv, w, lam, losses):
    """``R`` of an account with collateral values ``cv`` and debt values ``lam·w`` (USD, one scenario set)."""
    v = np.empty(cv.shape[0])
    for k in range(cv.shape[0]):
        v[k] = cv[k] - lam * w[k]
    return requirement_of(mode, G, g, n, k_var, v, losses)


@njit(cache=True, nogil=True)
def debt_capacity(mode, G, g, n, k_var, imult, cv, w, grid, iters):
    """Largest total debt (USD) in the mix ``w`` (USD weights summing to 1) an account with collateral
    values ``cv`` can carry with ``E ≥ imult·R``, found on ``grid`` points of [0, Σ cv] then by bisection.

    ``f(λ) = Σ cv − λ − imult·R(λ)`` is ≤ 0 at ``λ = Σ cv``; the answer is the largest feasible grid point
    refined against the next one (exact when ``f`` is concave: ``offsets``, ES; VaR may hide a later
    feasible stretch between grid points).
    """
    C = 0.0
    for k in range(cv.shape[0]):
        C += cv[k]
    if not C > 0:
        return 0.0
    losses = np.empty(max(n, 1))
    best = -1
    for j in range(grid, -1, -1):
        lam = C * j / grid
        if C - lam - imult * _requirement_lambda(mode, G, g, n, k_var, cv, w, lam, losses) >= 0:
            best = j
            break
    if best < 0:
        return 0.0
    if best == grid:
        return C
    lo = C * best / grid
    hi = C * (best + 1) / grid
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if C - mid - imult * _requirement_lambda(mode, G, g, n, k_var, cv, w, mid, losses) >= 0:
            lo = mid
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def _capacities(mode, G, g, n, k_var, imult, cvals, wts, grid, iters):
    out = np.zeros(cvals.shape[0])
    for a in range(cvals.shape[0]):
        out[a] = debt_capacity(mode, G, g, n, k_var, imult, cvals[a], wts[a], grid, iters)
    return out


@njit(cache=True, nogil=True)
def _requirements(mode, G, g, n, k_var, vals):
    """``R`` of each row of ``vals`` (net USD values ``c·p − d·p`` per asset)."""
    A, K = vals.shape
    out = np.zeros(A)
    zero = np.zeros(K)
    losses = np.empty(max(n, 1))
    for a in range(A):
        out[a] = _requirement_lambda(mode, G, g, n, k_var, vals[a], zero, 0.0, losses)
    return out
