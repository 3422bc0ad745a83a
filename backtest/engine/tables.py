"""The requirement seam's standard implementation: parameter tables ``[update, row, asset]``.

Every built-in rule kind compiles to tables (``engine.types.Params``): ``asset`` is one row, ``cross``
adds a row per correlated group chosen by the account's debts, ``isolated`` fixes a row per engine
account, ``dynamic`` adds a time row per recomputation, ``liquidity-haircut`` scales by depth. The account's
parameter row, the liquidity haircut and the block bound exist here once, for both engines.

The hooks (numba functions; the reference engine runs their Python source, the fast kernel their
compiled form) — a rule kind with another requirement supplies the same seven in its own module:

``regime(kp, a, d) -> int``
    the account's parameter row given its debts (kinds without rows return 0)
``maint(kp, a, r, c, d, pc, pd, t) -> float``
    collateral value counted for maintenance: the account is liquidatable when it is below its debt
    ``Σ d·pd`` (the health factor is their ratio)
``initial(kp, a, r, c, d, pc, pd, t) -> float``
    borrowing capacity (initial margin) for ``enforce_ltv``
``eligible(kp, r, t, k) -> bool``
    collateral asset ``k`` can be seized and backs debt (counts against bad debt)
``bonus(kp, r, t, k) -> float``
    liquidation bonus of collateral ``k``
``skip(kp, level, b, r, c, d) -> bool``
    True only if the account provably stays healthy over block ``b`` of skipping level ``level`` (a kind
    without a bound returns False and is evaluated every step: correct, slower)
``stuck(kp, level, b, r, c, d, gas, share) -> int``
    for an account that may be liquidatable in the block: 1 if provably no liquidation call can pay for
    itself anywhere in it (``max_i min(share · max d_j·p_j, c_i·p_i / (1 + LB_i)) · LB_i ≤ gas`` over the
    collateral legs ``i`` a call could choose — the largest by value — : a model
    repays at most ``share · d_j`` (its ``max_share``) and takes collateral at ``1 + LB`` times the debt repaid, at most ``c_i``) and it cannot
    be under water, 2 if no call can pay but it may be under water (the kernel then adds its
    unrealised bad debt step by step), 0 otherwise (a kind without this bound returns 0)
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from .blocks import block_reduce

HOOKS = "backtest.engine.tables"

TableKp = namedtuple("TableKp", [
    "ltv3", "lt3", "lb3", "upd", "rows", "gmask", "depth", "haircut", "hk", "hfloor",
    "boff", "ltmin", "pcmin", "pcmax", "pdmax", "depthmin", "ltmax", "lbmax",
])


@njit(cache=True, nogil=True, inline="always")
def haircut_factor(c, p, depth, hk, hfloor):
    """Liquidity haircut: ``max(floor, 1 − k·size/depth)``; no size → 1, no depth → floor."""
    size = c * p
    if size == 0.0:
        return 1.0
    if depth <= 0.0:
        return hfloor
    return max(hfloor, 1.0 - hk * size / depth)


@njit(cache=True, nogil=True, inline="always")
def regime(kp, a, d):
    """Fixed row, else the first group holding every debt asset (row g + 1), else row 0."""
    fixed = kp.rows[a]
    if fixed >= 0:
        return fixed
    gmask = kp.gmask
    for g in range(gmask.shape[0]):
        ok = True
        owes = False
        for k in range(d.shape[0]):
            if d[k] > 0:
                owes = True
                if not gmask[g, k]:
                    ok = False
                    break
        if ok and owes:
            return g + 1
    return 0


@njit(cache=True, nogil=True, inline="always")
def maint(kp, a, r, c, d, pc, pd, t):
    """``Σ c·p·LT·f`` over assets with LT > 0 (f the haircut, 1 without depth data)."""
    u = kp.upd[t]
    num = 0.0
    for k in range(c.shape[0]):
        lt = kp.lt3[u, r, k]
        if lt > 0:
            if kp.haircut:
                num += c[k] * pc[t, k] * lt * haircut_factor(c[k], pc[t, k], kp.depth[t, k], kp.hk, kp.hfloor)
            else:
                num += c[k] * pc[t, k] * lt
    return num


@njit(cache=True, nogil=True, inline="always")
def initial(kp, a, r, c, d, pc, pd, t):
    """``Σ c·p·LTV·f``."""
    u = kp.upd[t]
    cap = 0.0
    for k in range(c.shape[0]):
        if kp.haircut:
            cap += c[k] * pc[t, k] * kp.ltv3[u, r, k] * haircut_factor(c[k], pc[t, k], kp.depth[t, k], kp.hk,
                                                                       kp.hfloor)
        else:
            cap += c[k] * pc[t, k] * kp.ltv3[u, r, k]
    return cap


@njit(cache=True, nogil=True, inline="always")
def eligible(kp, r, t, k):
    return kp.lt3[kp.upd[t], r, k] > 0


@njit(cache=True, nogil=True, inline="always")
def bonus(kp, r, t, k):
    return kp.lb3[kp.upd[t], r, k]


@njit(cache=True, nogil=True, inline="always")
def _bound_plain(b, bl, r, c, d, ltmin, pcmin, pdmax):
    """The skip bound at price block ``b`` with thresholds ``ltmin[bl, r]`` (``engine.plain``: bl = r = 0)."""
    has_debt = False
    upper_debt = 0.0
    for k in range(d.shape[0]):
        if d[k] > 0:
            has_debt = True
            upper_debt += d[k] * pdmax[b, k]
    if not has_debt:
        return True
    lower_coll = 0.0
    for k in range(c.shape[0]):
        if c[k] != 0.0 and ltmin[bl, r, k] > 0:
            lower_coll += c[k] * pcmin[b, k] * ltmin[bl, r, k]
    return lower_coll >= upper_debt


@njit(cache=True, nogil=True, inline="always")
def _bound_haircut(b, r, c, d, ltmin, pcmin, pcmax, pdmax, depthmin, hk, hfloor):
    has_debt = False
    upper_debt = 0.0
    for k in range(d.shape[0]):
        if d[k] > 0:
            has_debt = True
            upper_debt += d[k] * pdmax[b, k]
    if not has_debt:
        return True
    lower_coll = 0.0
    for k in range(c.shape[0]):
        if c[k] != 0.0 and ltmin[b, r, k] > 0:
            lower_coll += c[k] * pcmin[b, k] * ltmin[b, r, k] * haircut_factor(c[k], pcmax[b, k], depthmin[b, k],
                                                                               hk, hfloor)
    return lower_coll >= upper_debt


@njit(cache=True, nogil=True, inline="always")
def skip(kp, level, b, r, c, d):
    """``Σ c·p_min·LT_min·f_min ≥ Σ d·p_max`` over the block (float rounding is monotone: exact, not approximate).

    The levels' blocks are stacked along axis 0 of the bound arrays (level ``l`` starts at ``boff[l]``).
    """
    if kp.haircut:
        return _bound_haircut(kp.boff[level] + b, r, c, d, kp.ltmin, kp.pcmin, kp.pcmax, kp.pdmax, kp.depthmin,
                              kp.hk, kp.hfloor)
    b = kp.boff[level] + b
    return _bound_plain(b, b, r, c, d, kp.ltmin, kp.pcmin, kp.pdmax)


@njit(cache=True, nogil=True, inline="always")
def stuck(kp, level, b, r, c, d, gas, share):
    b = kp.boff[level] + b
    return stuck_bound(b, b, r, c, d, gas, share, kp.ltmin, kp.ltmax, kp.lbmax, kp.pcmin, kp.pcmax, kp.pdmax)


@njit(cache=True, nogil=True, inline="always")
def stuck_bound(b, bl, r, c, d, gas, share, ltmin, ltmax, lbmax, pcmin, pcmax, pdmax):
    """``stuck`` at price block ``b`` with thresholds and bonuses ``[bl, r]`` (``engine.plain``: bl = r = 0)."""
    dmax = 0.0
    upper_debt = 0.0
    for k in range(d.shape[0]):
        if d[k] > 0:
            v = d[k] * pdmax[b, k]
            upper_debt += v
            if v > dmax:
                dmax = v
    # A call seizes the largest eligible collateral by value at its step, which is worth at least the largest
    # lower bound ``c·p_min`` of any collateral eligible all block: only legs whose upper bound reaches that
    # floor are candidates (float rounding is monotone, so this is exact).
    floor = 0.0
    keeps = False  # some collateral stays eligible all block: no write-off can happen in it
    lower_coll = 0.0
    for k in range(c.shape[0]):
        if c[k] != 0.0 and ltmin[bl, r, k] > 0:
            keeps = True
            v = c[k] * pcmin[b, k]
            lower_coll += v
            if v > floor:
                floor = v
    if not keeps:
        return 0
    best = 0.0  # the most any call could earn before gas: max over candidate collateral i of
    for k in range(c.shape[0]):  # min(share·d_j·p_j, c_i·p_i / (1 + LB_i))·LB_i
        if c[k] > 0 and ltmax[bl, r, k] > 0:
            top = c[k] * pcmax[b, k]
            if top >= floor:
                lb = lbmax[bl, r, k]
                v = min(share * dmax * lb, top * lb / (1.0 + lb))
                if v > best:
                    best = v
    if best * (1.0 + 1e-9) > gas:
        return 0
    return 1 if lower_coll >= upper_debt else 2


def _by_level(values: np.ndarray, sizes: list[int], how: str) -> list[np.ndarray]:
    """Block minima or maxima over axis 0 for each block size (largest first, each dividing the one before).

    Computed from the smallest blocks up — a block's extreme is the extreme of its sub-blocks' — so the
    steps are read once, not once per level.
    """
    out = []
    prev, prev_size = values, 1
    for size in reversed(sizes):
        prev = block_reduce(prev, size // prev_size, how)
        prev_size = size
        out.append(prev)
    return out[::-1]


def pack(params, pc: np.ndarray, pd: np.ndarray, levels: np.ndarray, n_accounts: int) -> TableKp:
    """The hooks' parameters for ``params`` (``engine.types.Params``) on valuation prices ``pc``/``pd``."""
    T, K = pc.shape
    A = n_accounts
    ltv3, lt3, lb3 = params.tables()
    upd = params.updates(T)
    haircut = params.depth_usd is not None
    depth = np.ascontiguousarray(params.depth_usd, dtype=np.float64) if haircut else np.ones((1, 1))
    sizes = levels.tolist()
    if lt3.shape[0] == 1:  # no time rows: a block's extremes of the tables are the tables themselves
        nblocks = [(T + size - 1) // size for size in sizes]
        ltmin = ltmax = [np.broadcast_to(lt3[0], (n,) + lt3.shape[1:]) for n in nblocks]
        lbmax = [np.broadcast_to(lb3[0], (n,) + lb3.shape[1:]) for n in nblocks]
    else:
        lt_by_step = lt3[upd]  # (T, R, K): thresholds in force at each step
        ltmin = _by_level(lt_by_step, sizes, "min")
        ltmax = _by_level(lt_by_step, sizes, "max")
        lbmax = _by_level(lb3[upd], sizes, "max")
    pcmin, pcmax, pdmax = _by_level(pc, sizes, "min"), _by_level(pc, sizes, "max"), _by_level(pd, sizes, "max")
    depthmin = _by_level(depth, sizes, "min") if haircut else [np.ones((1, 1))] * len(sizes)
    boff = np.zeros(len(levels), dtype=np.int64)
    boff[1:] = np.cumsum([len(x) for x in pcmin])[:-1]
    return TableKp(ltv3, lt3, lb3, upd, params.rows(A), params.groups(K), depth, bool(haircut),
                   float(params.haircut_k), float(params.haircut_floor), boff,
                   *(np.ascontiguousarray(np.concatenate(x)) for x in (ltmin, pcmin, pcmax, pdmax, depthmin, ltmax, lbmax)))


# -- metrics of table kinds (vectorised numpy; used by backtest.outputs.metrics through Params) --------
def parameter_rows(params, debt: np.ndarray) -> np.ndarray:
    """Parameter row of every account given its debts (fixed rows, else the first group holding all debts)."""
    rows = params.rows(debt.shape[0]).copy()
    dynamic = rows < 0
    if dynamic.any():
        owes = debt[dynamic] > 0
        chosen = np.zeros(int(dynamic.sum()), dtype=np.int64)
        groups = params.groups(debt.shape[1])
        for g in range(len(groups) - 1, -1, -1):  # walk backwards so the first qualifying group wins
            ok = owes.any(axis=1) & ~(owes & ~groups[g]).any(axis=1)
            chosen[ok] = g + 1
        rows[dynamic] = chosen
    return rows


def borrowing_power(params, collateral: np.ndarray, debt: np.ndarray, first_prices: np.ndarray) -> float:
    """Σ over all accounts of ``c·p·LTV_eff`` at the first grid step's prices (USD)."""
    ltv3 = params.tables()[0]
    u0 = int(params.updates(1)[0])
    ltv = ltv3[u0][parameter_rows(params, debt)]
    value = collateral * first_prices
    if params.depth_usd is not None:
        depth = np.asarray(params.depth_usd, dtype=np.float64)[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.maximum(params.haircut_floor, 1.0 - params.haircut_k * value / depth)
        factor = np.where(value == 0, 1.0, np.where(depth <= 0, params.haircut_floor, factor))
        ltv = ltv * factor
    return float(np.sum(value * ltv))


def last_thresholds(params, debt: np.ndarray, n_steps: int) -> np.ndarray:
    """(A, K) liquidation thresholds that apply to each account at the last step (its parameter row)."""
    lt3 = params.tables()[1]
    u_last = int(params.updates(n_steps)[-1])
    return lt3[u_last][parameter_rows(params, debt)]


def collateral_mask(params, debt: np.ndarray, n_steps: int) -> np.ndarray:
    """(A, K) bool: assets that back debt (LT > 0) for each account at the last step."""
    lt3 = params.tables()[1]
    u_last = int(params.updates(n_steps)[-1])
    return lt3[u_last][parameter_rows(params, debt)] > 0
