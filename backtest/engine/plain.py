"""The requirement hooks of the plain table: one parameter row, no time rows, no liquidity haircut.

``kind = "asset"`` (DESIGN §3's default) and any table kind that compiles to one row with neither
``dynamic`` updates nor depth data run these instead of ``backtest.engine.tables``'s general ones: the
same arithmetic in the same order (so results are identical bit for bit), over ``(K,)`` vectors instead of
``[update, row, asset]`` tables, with no per-step time row and no haircut branch. ``Params.hooks`` picks
the module; see ``backtest.engine.tables`` for what each hook means.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from .tables import _by_level

HOOKS = "backtest.engine.plain"

PlainKp = namedtuple("PlainKp", ["ltv", "lt", "lb", "boff", "pcmin", "pcmax", "pdmax"])


@njit(cache=True, nogil=True, inline="always")
def regime(kp, a, d):
    return 0


@njit(cache=True, nogil=True, inline="always")
def maint(kp, a, r, c, d, pc, pd, t):
    """``Σ c·p·LT`` over assets with LT > 0."""
    lt = kp.lt
    num = 0.0
    for k in range(c.shape[0]):
        if lt[k] > 0:
            num += c[k] * pc[t, k] * lt[k]
    return num


@njit(cache=True, nogil=True, inline="always")
def initial(kp, a, r, c, d, pc, pd, t):
    """``Σ c·p·LTV``."""
    ltv = kp.ltv
    cap = 0.0
    for k in range(c.shape[0]):
        cap += c[k] * pc[t, k] * ltv[k]
    return cap


@njit(cache=True, nogil=True, inline="always")
def eligible(kp, r, t, k):
    return kp.lt[k] > 0


@njit(cache=True, nogil=True, inline="always")
def bonus(kp, r, t, k):
    return kp.lb[k]


@njit(cache=True, nogil=True, inline="always")
def _bound(b, c, d, lt, pcmin, pdmax):
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
        if c[k] != 0.0 and lt[k] > 0:
            lower_coll += c[k] * pcmin[b, k] * lt[k]
    return lower_coll >= upper_debt


@njit(cache=True, nogil=True, inline="always")
def skip(kp, level, b, r, c, d):
    """``Σ c·p_min·LT ≥ Σ d·p_max`` over the block (see ``tables.skip``)."""
    return _bound(kp.boff[level] + b, c, d, kp.lt, kp.pcmin, kp.pdmax)


@njit(cache=True, nogil=True, inline="always")
def _stuck(b, c, d, gas, share, lt, lb, pcmin, pcmax, pdmax):
    dmax = 0.0
    upper_debt = 0.0
    for k in range(d.shape[0]):
        if d[k] > 0:
            v = d[k] * pdmax[b, k]
            upper_debt += v
            if v > dmax:
                dmax = v
    floor = 0.0  # candidates: see tables.stuck
    keeps = False
    lower_coll = 0.0
    for k in range(c.shape[0]):
        if c[k] != 0.0 and lt[k] > 0:
            keeps = True
            v = c[k] * pcmin[b, k]
            lower_coll += v
            if v > floor:
                floor = v
    if not keeps:
        return 0
    best = 0.0
    for k in range(c.shape[0]):
        if c[k] > 0 and lt[k] > 0:
            top = c[k] * pcmax[b, k]
            if top >= floor:
                v = min(share * dmax * lb[k], top * lb[k] / (1.0 + lb[k]))
                if v > best:
                    best = v
    if best * (1.0 + 1e-9) > gas:
        return 0
    return 1 if lower_coll >= upper_debt else 2


@njit(cache=True, nogil=True, inline="always")
def stuck(kp, level, b, r, c, d, gas, share):
    """See ``tables.stuck``: the same bound with one row of thresholds and bonuses."""
    return _stuck(kp.boff[level] + b, c, d, gas, share, kp.lt, kp.lb, kp.pcmin, kp.pcmax, kp.pdmax)


def applies(params) -> bool:
    """True when ``params`` (``types.Params``) is one row of thresholds with no time rows and no depth."""
    if params.update_index is not None or params.depth_usd is not None or params.group_assets is not None:
        return False
    if params.account_row is not None and np.any(np.asarray(params.account_row) != 0):
        return False
    return all(np.ndim(x) == 1 or np.shape(x)[:2] == (1, 1)
               for x in (params.ltv, params.liquidation_threshold, params.liquidation_bonus))


def pack(params, pc: np.ndarray, pd: np.ndarray, levels: np.ndarray, n_accounts: int) -> PlainKp:
    """The hooks' parameters: the three vectors and the stacked per-level price bounds."""
    ltv3, lt3, lb3 = params.tables()
    sizes = levels.tolist()
    pcmin, pcmax = _by_level(pc, sizes, "min"), _by_level(pc, sizes, "max")
    pdmax = pcmax if pd is pc else _by_level(pd, sizes, "max")
    boff = np.zeros(len(levels), dtype=np.int64)
    boff[1:] = np.cumsum([len(x) for x in pcmin])[:-1]
    return PlainKp(np.ascontiguousarray(ltv3[0, 0]), np.ascontiguousarray(lt3[0, 0]),
                   np.ascontiguousarray(lb3[0, 0]), boff,
                   *(np.ascontiguousarray(np.concatenate(x)) for x in (pcmin, pcmax, pdmax)))
