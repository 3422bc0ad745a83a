"""A rule set compiled to engine inputs: its kind's compile step (``backtest.kinds``) plus its model's
arguments and interest growth (``backtest.models``), from run data the runner passes in.

Nothing here reads the database. ``RunData`` is what the kinds and models may ask for; ``Compiled`` is what
one job hands an engine.
"""

from __future__ import annotations

import math

import numpy as np

from .config import RuleSet
from .errors import MbtError
from .kinds import Compiled, RunData  # noqa: F401  (the compile step's contract, re-exported)
from .kinds.dynamic import dynamic_thresholds  # noqa: F401  (re-exported)

DEPTH_FACTOR = 1 / math.sqrt(0.98) - 1  # constant-product: quote sold to move the price −2 %, per unit reserve
YEAR_SECONDS = 365 * 86400  # Aave's SECONDS_PER_YEAR


def compile_rule(rule: RuleSet, data: RunData) -> Compiled:
    """Engine inputs for ``rule`` on ``data`` (raises ``MbtError`` naming what is missing).

    The rule set's kind compiles the book, events and parameters; its model supplies the liquidation
    call's arguments and protocol fees, and balance growth when it needs interest indices.
    """
    m = rule.market
    model = m.plugin
    settings = m.model_settings()
    K = len(data.assets)
    args = model.bind(settings, data.assets) if model.bind is not None else model.engine_args(settings)
    base = dict(close_factor=m.close_factor, gas_usd=m.gas_usd, enforce_ltv=rule.enforce_ltv, model=model.name,
                model_args=args, protocol_fee=model.fee_vector(settings, K))
    compiled = rule.plugin.compile(rule, data, base)
    if "indices" in model.needs:
        compiled.growth = interest_growth(rule, data)
    return compiled


# -- interest ---------------------------------------------------------------------------------------
def borrow_rate(curve, utilisation: float) -> float:
    """Annual variable borrow rate of a two-slope curve at ``utilisation`` (fractions)."""
    u, opt = utilisation, curve.optimal_utilisation
    if u <= opt:
        return curve.base + curve.slope1 * u / opt
    return curve.base + curve.slope1 + curve.slope2 * (u - opt) / (1 - opt)


def interest_growth(rule: RuleSet, data: RunData) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-step balance multipliers (collateral, debt) relative to the first grid step, or None.

    An asset with stored indices uses them (carried forward; ratio to the value at the first grid point);
    otherwise its rate curve in ``[market.interest.<SYM>]`` (constant utilisation: the configured one or the
    snapshot's Σ debt ÷ Σ collateral); otherwise it earns and owes nothing.
    """
    grid = data.grid_us
    T, K = len(grid), len(data.assets)
    gc, gd = np.ones((T, K)), np.ones((T, K))
    dt = np.diff(grid) / 1e6 / YEAR_SECONDS
    curves = rule.market.interest or {}
    used = False
    for k, asset in enumerate(data.assets):
        if data.indices and asset in data.indices:
            ts, li, bi = data.indices[asset]
            idx = np.searchsorted(ts, grid, side="right") - 1
            if idx[0] < 0:
                raise MbtError(f"asset {asset!r}: no interest index at or before the first grid point")
            gc[:, k] = li[idx] / li[idx[0]]
            gd[:, k] = bi[idx] / bi[idx[0]]
            used = True
        elif asset in curves:
            curve = curves[asset]
            if curve.utilisation is not None:
                u = curve.utilisation
            else:
                supplied = float(data.book.collateral[:, k].sum())
                u = min(1.0, float(data.book.debt[:, k].sum()) / supplied) if supplied > 0 else 0.0
            rb = borrow_rate(curve, u)
            rs = rb * u * (1 - curve.reserve_factor)
            gd[1:, k] = np.exp(np.cumsum(rb * dt))  # variable debt compounds
            gc[1:, k] = np.cumprod(1 + rs * dt)  # the liquidity index accrues linearly between updates
            used = True
    return (gc, gd) if used else None
