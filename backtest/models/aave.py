"""Aave v2 and v3.0–v3.7 liquidation calls in float64 (``liquidation = "aave-v2" | "aave-v3"``).

One source for both engines: :func:`aave_core` is plain Python that numba compiles; the reference engine
and :func:`backtest.protocols.aave_float.liquidation_call_float` run the Python function, the fast kernel
its compiled form. What is exact and what is modelled is written in ``backtest.protocols.aave_float`` (and
held to the integer layer ``backtest.protocols.aave`` by its tests). Both models need interest indices (or
``[market.interest]`` curves) so that balances grow between steps.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
from numba import njit

from ..errors import ConfigError
from . import Model, register

RULE_V2, RULE_V3_HF, RULE_V33, RULE_V34 = 0, 1, 2, 3
HF_FULL_CLOSE = 0.95  # v3: at or below this HF one call may repay the whole debt
MIN_POSITION_USD = 2000.0  # v3.3+: the close-factor cap applies only when both legs are at least this
MIN_LEFTOVER_USD = 1000.0  # v3.3+: a partial call may not leave less than this of debt or collateral
DUST_REVERT, DUST_REDUCE = 0, 1
V3_VERSIONS = {"v3.0": RULE_V3_HF, "v3.1": RULE_V3_HF, "v3.2": RULE_V3_HF, "v3.3": RULE_V33, "v3.4": RULE_V34,
               "v3.5": RULE_V34, "v3.6": RULE_V34, "v3.7": RULE_V34, "v3": RULE_V34}
DUST_MODES = ("revert", "reduce")


@njit(cache=True, nogil=True, inline="always")
def _seize(repay, p_j, c_i, p_i, bonus):
    """(repaid, seized incl. fee, whole balance taken) after the collateral cap."""
    seized = repay * p_j * (1.0 + bonus) / p_i
    if seized > c_i:
        return c_i * p_i / (p_j * (1.0 + bonus)), c_i, True
    return repay, seized, False


@njit(cache=True, nogil=True)
def aave_core(code, dust, d_j, p_j, c_i, p_i, bonus, fee, hf, debt_usd, debt_to_cover):
    """One Aave call: (repaid, seized incl. protocol fee, protocol fee, whole collateral taken, call made)."""
    if code == RULE_V2:
        cap = 0.5 * d_j
    elif code == RULE_V3_HF:
        cap = d_j if hf <= HF_FULL_CLOSE else 0.5 * d_j
    else:
        cap = d_j
        reserve_usd = d_j * p_j
        if c_i * p_i >= MIN_POSITION_USD and reserve_usd >= MIN_POSITION_USD and hf > HF_FULL_CLOSE:
            half = 0.5 * debt_usd
            if reserve_usd > half:
                cap = half / p_j
    repaid, seized, whole = _seize(min(debt_to_cover, cap), p_j, c_i, p_i, bonus)
    share = bonus / (1.0 + bonus) * fee
    fee_amt = seized * share
    if code >= RULE_V33 and repaid < d_j and seized < c_i:
        left = c_i - seized if code == RULE_V34 else c_i - (seized - fee_amt)
        if (d_j - repaid) * p_j < MIN_LEFTOVER_USD or left * p_i < MIN_LEFTOVER_USD:
            if dust != DUST_REDUCE:
                return 0.0, 0.0, 0.0, False, False
            by_debt = d_j - MIN_LEFTOVER_USD / p_j
            keep = (1.0 if code == RULE_V34 else 1.0 - share) * p_j * (1.0 + bonus) / p_i
            by_coll = (c_i - MIN_LEFTOVER_USD / p_i) / keep
            repay = min(repaid, by_debt, by_coll)
            if repay <= 0.0:
                return 0.0, 0.0, 0.0, False, False
            repaid, seized, whole = _seize(repay, p_j, c_i, p_i, bonus)
            fee_amt = seized * share
    return repaid, seized, fee_amt, whole, True


@njit(cache=True, nogil=True)
def aave_call(args, d_j, p_j, c_i, p_i, bonus, fee, hf, debt_usd):
    """The engine call: ``args = [close-factor rule code, dust mode]``."""
    return aave_core(int(args[0]), int(args[1]), d_j, p_j, c_i, p_i, bonus, fee, hf, debt_usd, math.inf)


def _parse_v2(table: Mapping[str, Any], where: str, written: frozenset) -> dict:
    return {}


def _parse_v3(table: Mapping[str, Any], where: str, written: frozenset) -> dict:
    from ..confkit import _choice, _hint, _number, _string

    version = _string(table["version"], f"{where}.version")
    if version not in V3_VERSIONS:
        raise ConfigError(f"{where}.version: invalid value {version!r}{_hint(version, tuple(V3_VERSIONS))}")
    fee = _number(table["protocol_fee"], f"{where}.protocol_fee")
    if not 0 <= fee <= 1:
        raise ConfigError(f"{where}.protocol_fee: must satisfy 0 ≤ protocol_fee ≤ 1 (a share of the bonus), got {fee}")
    dust = _choice(table["dust"], f"{where}.dust", DUST_MODES, ())
    if "dust" in written and V3_VERSIONS[version] < RULE_V33:
        raise ConfigError(f"{where}.dust: the dust rule starts with v3.3 (version is {version!r})")
    return {"version": version, "protocol_fee": fee, "dust": dust}


def v3_args(settings: Mapping[str, Any]) -> np.ndarray:
    return np.array([V3_VERSIONS[settings["version"]], DUST_MODES.index(settings["dust"])], dtype=np.float64)


AAVE_V2 = register(Model(
    name="aave-v2",
    keys={},
    parse=_parse_v2,
    engine_args=lambda s: np.array([RULE_V2, DUST_REVERT], dtype=np.float64),
    call=aave_call,
    needs=frozenset({"indices"}),
    interest=True,
    max_share=lambda args: 0.5,
    summary="Aave v2: 50 % close factor, interest indices",
))

AAVE_V3 = register(Model(
    name="aave-v3",
    keys={"version": "v3", "protocol_fee": 0.0, "dust": "revert"},
    parse=_parse_v3,
    engine_args=v3_args,
    call=aave_call,
    fees=lambda s, k: np.full(k, s["protocol_fee"]),
    needs=frozenset({"indices"}),
    interest=True,
    summary="Aave v3.0–v3.7: close-factor rules per version, protocol fee, 3.3+ dust rule, interest indices",
))
