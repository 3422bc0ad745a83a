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

from .tables import _bound_plain, _by_level, stuck_bound

HOOKS = "backtest.engine.plain"

PlainKp = namedtuple("PlainKp", ["ltv", "lt", "lb", "lt3", "lb3", "boff", "pcmin", "pcmax", "pdmax"])


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
def skip(kp, level, b, r, c, d):
    """``Σ c·p_min·LT ≥ Σ d·p_max`` over the block (``tables.skip`` with the one row)."""
    return _bound_plain(kp.boff[level] + b, 0, 0, c, d, kp.lt3, kp.pcmin, kp.pdmax)


@njit(cache=True, nogil=True, inline="always")
def stuck(kp, level, b, r, c, d, gas, share):
    """``tables.stuck`` with the one row of thresholds and bonuses."""
    return stuck_bound(kp.boff[level] + b, 0, 0, c, d, gas, share, kp.lt3, kp.lt3, kp.lb3, kp.pcmin, kp.pcmax,
                       kp.pdmax)


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
    return PlainKp(ltv3[0, 0], lt3[0, 0], lb3[0, 0], lt3, lb3, boff,  # (K,) vectors, and (1, 1, K) for the bounds
                   *(np.ascontiguousarray(np.concatenate(x)) for x in (pcmin, pcmax, pdmax)))
