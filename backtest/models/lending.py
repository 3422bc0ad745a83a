"""Compound v2 and Morpho Blue liquidation calls in float64 (``liquidation = "compound-v2" | "morpho-blue"``).

Both fit the per-call seam of ``backtest.models`` (largest debt against largest eligible collateral, one
call at a time, at most 100 per account and step); the integer layers they are held to are
``backtest.protocols.compound_v2`` and ``backtest.protocols.morpho_blue`` (docs/protocols.md).

- **compound-v2** (PROTOCOLS §3): liquidatable when ``Σ c·p·CF < Σ d·p`` (shortfall > 0: give each asset
  ``liquidation_threshold = ltv = CF``); one call repays at most ``close_factor · borrowBalance`` of the
  chosen debt and seizes ``repay · incentive · p_j / p_i`` of collateral (``incentive = 1 +
  liquidation_bonus``), capped at the balance; ``protocol_seize_share`` of the seized tokens go to the
  protocol's reserves (the borrower's penalty includes them, the liquidator's profit does not).
- **morpho-blue** (PROTOCOLS §6): no close factor — one call may repay the whole debt; the collateral taken
  is ``repaid · LIF · p_j / p_i`` with ``LIF = 1 + liquidation_bonus`` (for Morpho's own markets
  ``min(1.15, 1/(1 − 0.3·(1 − LLTV)))``, which ``[[rules.markets]]`` with ``lltv`` fills in); a call that takes
  the whole collateral leaves the rest of the debt as bad debt (the engine's write-off).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from numba import njit

from ..errors import ConfigError
from . import Model, register


@njit(cache=True, nogil=True, inline="always")
def _capped(repay, p_j, c_i, p_i, bonus):
    """(repaid, seized, whole balance taken) with the seize capped at the collateral balance."""
    seized = repay * p_j * (1.0 + bonus) / p_i
    if seized >= c_i:
        return c_i * p_i / (p_j * (1.0 + bonus)), c_i, True
    return repay, seized, False


@njit(cache=True, nogil=True, inline="always")
def compound_v2_call(args, d_j, p_j, c_i, p_i, bonus, fee, hf, debt_usd):
    """``repay = min(close_factor·d_j, what c_i covers)``, ``seize = repay·(1 + LB)·p_j/p_i``; the protocol
    keeps ``protocol_seize_share`` of the seized tokens (``args = [close_factor, protocol_seize_share]``)."""
    repaid, seized, whole = _capped(args[0] * d_j, p_j, c_i, p_i, bonus)
    return repaid, seized, seized * args[1], whole, True


@njit(cache=True, nogil=True, inline="always")
def morpho_blue_call(args, d_j, p_j, c_i, p_i, bonus, fee, hf, debt_usd):
    """``repay = min(d_j, what c_i covers at LIF)``, ``seize = repay·LIF·p_j/p_i`` (``LIF = 1 + LB``)."""
    repaid, seized, whole = _capped(d_j, p_j, c_i, p_i, bonus)
    return repaid, seized, 0.0, whole, True


def _fraction(table: Mapping[str, Any], key: str, where: str, lo: float, hi: float, *, lo_open: bool = False) -> float:
    from ..confkit import _number

    v = _number(table[key], f"{where}.{key}")
    if (v <= lo if lo_open else v < lo) or v > hi:
        raise ConfigError(f"{where}.{key}: must satisfy {lo} {'<' if lo_open else '≤'} {key} ≤ {hi}, got {v}")
    return v


def _parse_compound(table: Mapping[str, Any], where: str, written: frozenset) -> dict:
    return {"close_factor": _fraction(table, "close_factor", where, 0.0, 1.0, lo_open=True),
            "protocol_seize_share": _fraction(table, "protocol_seize_share", where, 0.0, 1.0)}


COMPOUND_V2 = register(Model(
    name="compound-v2",
    keys={"close_factor": 0.5, "protocol_seize_share": 0.028},
    parse=_parse_compound,
    engine_args=lambda s: np.array([s["close_factor"], s["protocol_seize_share"]], dtype=np.float64),
    call=compound_v2_call,
    max_share=lambda args: args[0],
    summary="Compound v2: close factor per call, incentive on seized cTokens, 2.8 % protocol seize share",
))
MORPHO_BLUE = register(Model(
    name="morpho-blue",
    keys={},
    parse=lambda table, where, written: {},
    engine_args=lambda s: np.zeros(1, dtype=np.float64),
    call=morpho_blue_call,
    summary="Morpho Blue: the whole debt in one call at the market's LIF; bad debt when collateral runs out",
))
