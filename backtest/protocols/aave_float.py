"""Float64 reference of Aave's liquidation mechanics, per account, for counterfactual replays.

These are the plain-Python originals that the numba engine ports (one account, one call at a time). They
use token units (``1.5`` WETH, not wei), USD prices per token, fractions for thresholds and bonuses, and
small int codes instead of version strings so that a kernel can branch on them.

What is exact and what is modelled
----------------------------------
*Exact (identical in real arithmetic to the integer layer* :mod:`backtest.protocols.aave` *):* the health
factor ``Σ c_i·p_i·LT_i / Σ d_j·p_j``; the close-factor rules of every version (v2 50 %; 3.0–3.2 50 % above
HF 0.95 and 100 % at or below; 3.3+ the whole reserve debt unless both the collateral and the debt reserve
are worth ≥ $2,000, HF > 0.95 and the reserve debt exceeds half of the total debt, in which case half of
the total debt); the collateral cap (take the whole balance and scale the debt down); the bonus and the
protocol fee taken out of the bonus part; the 3.3+ dust rule (3.3 values the collateral left gross of the
protocol fee, 3.4+ net of it).

*Modelled:* integer rounding is ignored — every floor/ceil/half-up step of the contracts moves a result by
at most a raw unit or two, so when each amount compared (debt repaid, collateral seized, protocol fee) is at
least ~1e10 raw units and each leg is worth at least $1,000, the float result is within 1e-9 relative of the
integer one (property-tested in ``tests/unit/test_aave_float.py``). Rounding
can flip a comparison that the exact values put within ~1e-9 of a threshold (HF 1.0 or 0.95, $2,000,
$1,000, "bonus collateral > balance"); such near-ties are the only disagreements. Not modelled at all:
interest accrual (pass current balances), e-mode and ≤3.1 category prices (pass the effective LT, bonus
and price), isolation ceilings, 3.3+ deficit bookkeeping (the caller books debt left on an account without
collateral), liquidity, pause and grace-period checks, and the 1-wei fee cap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..models.aave import aave_core

RULE_V2 = 0
"""Aave v2: 50 % of the reserve debt per call."""
RULE_V3_HF = 1
"""Aave 3.0–3.2: 50 % of the reserve debt above HF 0.95, 100 % at or below."""
RULE_V33 = 2
"""Aave 3.3: whole-position rule, $2,000 threshold, dust rule with the collateral left gross of the fee."""
RULE_V34 = 3
"""Aave 3.4+: as 3.3, but the dust rule values the collateral left net of the protocol fee."""

DUST_REVERT = 0
"""A 3.3+ call that would leave dust does nothing (the contract reverts with MustNotLeaveDust)."""
DUST_REDUCE = 1
"""A 3.3+ call that would leave dust is shrunk to leave exactly $1,000 of debt and of collateral."""

CLOSE_FACTOR_HF_THRESHOLD = 0.95
MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD_USD = 2_000.0
MIN_LEFTOVER_USD = 1_000.0

_RULES = {"v2": RULE_V2, "v3.0": RULE_V3_HF, "v3.1": RULE_V3_HF, "v3.2": RULE_V3_HF, "v3.3": RULE_V33}


def close_factor_rule(version: str | int) -> int:
    """Rule code of a version string (``"v2"``, ``"v3.0"`` … ``"v3.7"``, ``"v3"``); codes pass through.

    Raises
    ------
    ValueError
        Unknown version or code.
    """
    if isinstance(version, int) and not isinstance(version, bool):
        if version not in (RULE_V2, RULE_V3_HF, RULE_V33, RULE_V34):
            raise ValueError(f"unknown close-factor rule code {version}")
        return version
    if version in _RULES:
        return _RULES[version]
    if version in ("v3", "v3.4", "v3.5", "v3.6", "v3.7"):
        return RULE_V34
    raise ValueError(f"unknown Aave version {version!r}")


def health_factor_float(coll_usd_weighted: float, debt_usd: float) -> float:
    """``HF = Σ c_i·p_i·LT_i / Σ d_j·p_j``.

    Parameters
    ----------
    coll_usd_weighted : float, USD
        Collateral value weighted by liquidation thresholds (fractions 0–1), over enabled assets with LT > 0.
    debt_usd : float, USD

    Returns
    -------
    float
        ``+inf`` without debt (the integer layer returns ``2**256 − 1``).
    """
    return coll_usd_weighted / debt_usd if debt_usd > 0.0 else math.inf


def account_totals_float(
    collateral: Sequence[float],
    collateral_prices: Sequence[float],
    liquidation_thresholds: Sequence[float],
    debt: Sequence[float],
    debt_prices: Sequence[float],
) -> tuple[float, float, float]:
    """Totals of one account from its per-asset legs.

    Parameters
    ----------
    collateral, collateral_prices, liquidation_thresholds : sequences of float
        Token units, USD per token, fraction 0–1 (assets with LT 0 contribute to neither collateral sum).
    debt, debt_prices : sequences of float
        Token units, USD per token.

    Returns
    -------
    (coll_usd_weighted, coll_usd, debt_usd) : floats, USD
        ``Σ c·p·LT``, ``Σ c·p`` over LT > 0, ``Σ d·p``.
    """
    weighted = 0.0
    value = 0.0
    for c, p, lt in zip(collateral, collateral_prices, liquidation_thresholds, strict=True):
        if lt > 0.0:
            weighted += c * p * lt
            value += c * p
    owed = 0.0
    for d, q in zip(debt, debt_prices, strict=True):
        owed += d * q
    return weighted, value, owed


def max_debt_to_cover_float(
    rule: int | str, hf: float, debt_j: float, debt_usd_total: float, coll_usd_i: float, p_j: float
) -> float:
    """Most of debt ``j`` one call may repay, before the collateral cap (token units of ``j``).

    Parameters
    ----------
    rule : int or str
        :data:`RULE_V2`, :data:`RULE_V3_HF`, :data:`RULE_V33`, :data:`RULE_V34` or a version string.
    hf : float
        Health factor before the call.
    debt_j : float, token units
        The account's debt in the chosen debt asset.
    debt_usd_total : float, USD
        The account's total debt (3.3+ cap is half of it).
    coll_usd_i : float, USD
        The account's value in the chosen collateral asset (3.3+ $2,000 test).
    p_j : float, USD per token
        Price of the debt asset (3.3+ converts the USD cap back to tokens).

    Returns
    -------
    float, token units of ``j``
    """
    code = close_factor_rule(rule)
    if code == RULE_V2:
        return 0.5 * debt_j
    if code == RULE_V3_HF:
        return debt_j if hf <= CLOSE_FACTOR_HF_THRESHOLD else 0.5 * debt_j
    reserve_debt_usd = debt_j * p_j
    if (
        coll_usd_i >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD_USD
        and reserve_debt_usd >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD_USD
        and hf > CLOSE_FACTOR_HF_THRESHOLD
    ):
        half = 0.5 * debt_usd_total
        if reserve_debt_usd > half:
            return half / p_j
    return debt_j


def liquidation_call_float(
    rule: int | str,
    d_j: float,
    p_j: float,
    c_i: float,
    p_i: float,
    bonus: float,
    protocol_fee: float,
    hf: float,
    debt_usd_total: float,
    debt_to_cover: float = math.inf,
    dust: int = DUST_REVERT,
) -> tuple[float, float, float]:
    """One liquidation call on one (debt ``j``, collateral ``i``) pair of an account.

    Parameters
    ----------
    rule : int or str
        Close-factor rule code or version string (see :func:`close_factor_rule`).
    d_j : float, token units
        Debt in asset ``j`` before the call.
    p_j, p_i : float, USD per token
        Oracle prices of the debt and the collateral asset.
    c_i : float, token units
        Collateral balance of asset ``i``.
    bonus : float, fraction
        Liquidation bonus *excluding* principal (0.05 for Aave's 10500).
    protocol_fee : float, fraction of the bonus part
        0.10 for Aave's 1000 bps; must be 0 for v2.
    hf : float
        Health factor before the call (the caller checks ``hf < 1``).
    debt_usd_total : float, USD
        The account's total debt before the call.
    debt_to_cover : float, token units of ``j``
        What the liquidator offers; ``inf`` = as much as allowed.
    dust : int
        3.3+: :data:`DUST_REVERT` (the call does nothing) or :data:`DUST_REDUCE` (shrink it to leave
        exactly $1,000 of debt and collateral; nothing if that is impossible).

    Returns
    -------
    (repaid, seized_total, protocol_fee_amount) : floats
        Debt repaid (token units of ``j``); collateral leaving the account, liquidator's part plus protocol
        fee (token units of ``i``); the protocol fee part (token units of ``i``). ``(0, 0, 0)`` when the
        call reverts under the dust rule.
    """
    code = close_factor_rule(rule)
    # one source with the engines: the model module's plain-Python call (numba compiles the same function)
    repaid, seized, fee, _whole, ok = aave_core.py_func(code, dust, d_j, p_j, c_i, p_i, bonus, protocol_fee, hf,
                                                        debt_usd_total, debt_to_cover)
    if not ok:
        return 0.0, 0.0, 0.0
    return repaid, seized, fee
