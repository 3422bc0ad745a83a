"""Exact integer layer of Aave v2 and v3 (3.0 … 3.7): health factor, close factor, liquidation, interest.

Every function takes a ``version`` (``"v2"``, ``"v3.0"``, ``"v3.1"``, ``"v3.2"``, ``"v3.3"``, ``"v3.4"``,
``"v3.5"``, ``"v3.7"``; ``"v3"`` = latest) and reproduces that version's integer rounding: half-up
wad/ray/percent math before 3.5, directional TokenMath rounding from 3.5, explicit floor/ceil in the 3.7
liquidation maths. Amounts are raw token units (``int``), prices base-currency units per whole token
(8-decimal USD on v3 markets, wei of ETH on the v2 main market), percentages bps, indices ray, HF wad.
See ``docs/aave.md`` for the version table and examples; the float counterparts live in
:mod:`backtest.protocols.aave_float`.

Public API
----------
:func:`health_factor`, :func:`account_data`, :func:`collateral_to_seize`, :func:`available_collateral`,
:func:`close_factor_bps`, :func:`max_debt_to_cover`, :func:`liquidation_call`, the interest functions
(:func:`linear_interest`, :func:`compounded_interest`, :func:`next_liquidity_index`,
:func:`next_variable_borrow_index`, :func:`treasury_accrual_scaled`), isolation helpers and the state types
(:class:`Reserve`, :class:`EModeCategory`, :class:`Market`, :class:`UserPosition`).
"""

from .account import (
    AaveRevert,
    AccountData,
    EModeCategory,
    Market,
    Reserve,
    UserPosition,
    account_data,
    check_isolated_borrow,
    health_factor,
    isolated_debt_units,
    isolation_mode_state,
)
from .fixedpoint import PERCENTAGE_FACTOR, RAY, UINT256_MAX, WAD
from .interest import (
    SECONDS_PER_YEAR,
    compounded_interest,
    linear_interest,
    next_liquidity_index,
    next_variable_borrow_index,
    treasury_accrual_scaled,
)
from .liquidation import (
    CLOSE_FACTOR_HF_THRESHOLD,
    HEALTH_FACTOR_LIQUIDATION_THRESHOLD,
    MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD,
    MIN_LEFTOVER_BASE,
    CollateralQuote,
    LiquidationOutcome,
    available_collateral,
    close_factor_bps,
    collateral_to_seize,
    liquidation_call,
    max_debt_to_cover,
)
from .versions import ALIASES, VERSIONS, Rules, resolve

__all__ = [
    "ALIASES",
    "CLOSE_FACTOR_HF_THRESHOLD",
    "HEALTH_FACTOR_LIQUIDATION_THRESHOLD",
    "MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD",
    "MIN_LEFTOVER_BASE",
    "PERCENTAGE_FACTOR",
    "RAY",
    "SECONDS_PER_YEAR",
    "UINT256_MAX",
    "VERSIONS",
    "WAD",
    "AaveRevert",
    "AccountData",
    "CollateralQuote",
    "EModeCategory",
    "LiquidationOutcome",
    "Market",
    "Reserve",
    "Rules",
    "UserPosition",
    "account_data",
    "available_collateral",
    "check_isolated_borrow",
    "close_factor_bps",
    "collateral_to_seize",
    "compounded_interest",
    "health_factor",
    "isolated_debt_units",
    "isolation_mode_state",
    "linear_interest",
    "liquidation_call",
    "max_debt_to_cover",
    "next_liquidity_index",
    "next_variable_borrow_index",
    "resolve",
    "treasury_accrual_scaled",
]
