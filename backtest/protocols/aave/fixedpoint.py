"""Aave's fixed-point primitives (WadRayMath, PercentageMath, MathUtils.mulDivCeil, TokenMath) on Python ints.

The default operations round half-up, as ``wadMul``/``wadDiv``/``rayMul``/``rayDiv``/``percentMul``/
``percentDiv`` do in every version (v2 included); ``_floor``/``_ceil`` variants pin a direction as the 3.5+
contracts do. The token helpers choose per version: before 3.5 every scaled↔actual conversion is half-up;
from 3.5 TokenMath rounds in the protocol's favour (aToken mint floor, burn/transfer ceil, balance floor;
vToken mint ceil, burn floor, balance ceil). Inputs are non-negative ints; Python ints do not overflow,
where the contracts would revert above 2²⁵⁶ (never reached with real amounts).
"""

from __future__ import annotations

from .versions import Rules

WAD = 10**18
RAY = 10**27
HALF_WAD = WAD // 2
HALF_RAY = RAY // 2
PERCENTAGE_FACTOR = 10_000
HALF_PERCENTAGE_FACTOR = PERCENTAGE_FACTOR // 2
UINT256_MAX = 2**256 - 1


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def wad_mul(a: int, b: int) -> int:
    """``a·b / 1e18`` rounded half-up (wad × wad → wad)."""
    return (a * b + HALF_WAD) // WAD


def wad_div(a: int, b: int) -> int:
    """``a·1e18 / b`` rounded half-up (wad ÷ wad → wad)."""
    return (a * WAD + b // 2) // b


def ray_mul(a: int, b: int) -> int:
    """``a·b / 1e27`` rounded half-up."""
    return (a * b + HALF_RAY) // RAY


def ray_mul_floor(a: int, b: int) -> int:
    """``a·b / 1e27`` rounded down (3.5+)."""
    return a * b // RAY


def ray_mul_ceil(a: int, b: int) -> int:
    """``a·b / 1e27`` rounded up (3.5+)."""
    return _ceil_div(a * b, RAY)


def ray_div(a: int, b: int) -> int:
    """``a·1e27 / b`` rounded half-up."""
    return (a * RAY + b // 2) // b


def ray_div_floor(a: int, b: int) -> int:
    """``a·1e27 / b`` rounded down (3.5+)."""
    return a * RAY // b


def ray_div_ceil(a: int, b: int) -> int:
    """``a·1e27 / b`` rounded up (3.5+)."""
    return _ceil_div(a * RAY, b)


def percent_mul(value: int, bps: int) -> int:
    """``value·bps / 1e4`` rounded half-up (``PercentageMath.percentMul``)."""
    return (value * bps + HALF_PERCENTAGE_FACTOR) // PERCENTAGE_FACTOR


def percent_mul_floor(value: int, bps: int) -> int:
    """``value·bps / 1e4`` rounded down."""
    return value * bps // PERCENTAGE_FACTOR


def percent_mul_ceil(value: int, bps: int) -> int:
    """``value·bps / 1e4`` rounded up."""
    return _ceil_div(value * bps, PERCENTAGE_FACTOR)


def percent_div(value: int, bps: int) -> int:
    """``value·1e4 / bps`` rounded half-up (``PercentageMath.percentDiv``)."""
    return (value * PERCENTAGE_FACTOR + bps // 2) // bps


def percent_div_floor(value: int, bps: int) -> int:
    """``value·1e4 / bps`` rounded down (3.7)."""
    return value * PERCENTAGE_FACTOR // bps


def percent_div_ceil(value: int, bps: int) -> int:
    """``value·1e4 / bps`` rounded up (3.5+)."""
    return _ceil_div(value * PERCENTAGE_FACTOR, bps)


def mul_div_ceil(a: int, b: int, c: int) -> int:
    """``a·b / c`` rounded up (``MathUtils.mulDivCeil``, 3.5+)."""
    return _ceil_div(a * b, c)


def to_base(amount: int, price: int, unit: int, *, ceil: bool = False) -> int:
    """Value of a raw token amount in base-currency units: ``amount·price / unit``, floor (or ceil)."""
    return _ceil_div(amount * price, unit) if ceil else amount * price // unit


# --- per-version scaled ↔ actual conversions (aToken / variable-debt token) -----------------------------


def a_token_balance(scaled: int, index: int, rules: Rules) -> int:
    """aToken balance from the scaled balance and the liquidity index (3.5+: floor, before: half-up)."""
    return ray_mul_floor(scaled, index) if rules.directional else ray_mul(scaled, index)


def v_token_balance(scaled: int, index: int, rules: Rules) -> int:
    """Variable debt from the scaled balance and the borrow index (3.5+: ceil, before: half-up)."""
    return ray_mul_ceil(scaled, index) if rules.directional else ray_mul(scaled, index)


def a_token_burn_scaled(amount: int, index: int, rules: Rules) -> int:
    """Scaled aTokens removed when ``amount`` underlying is burned or transferred (3.5+: ceil)."""
    return ray_div_ceil(amount, index) if rules.directional else ray_div(amount, index)


def a_token_mint_scaled(amount: int, index: int, rules: Rules) -> int:
    """Scaled aTokens created for ``amount`` supplied (3.5+: floor)."""
    return ray_div_floor(amount, index) if rules.directional else ray_div(amount, index)


def v_token_mint_scaled(amount: int, index: int, rules: Rules) -> int:
    """Scaled debt created for ``amount`` borrowed (3.5+: ceil)."""
    return ray_div_ceil(amount, index) if rules.directional else ray_div(amount, index)


def v_token_burn_scaled(amount: int, index: int, rules: Rules) -> int:
    """Scaled debt removed for ``amount`` repaid (3.5+: floor, so rounding never forgives debt)."""
    return ray_div_floor(amount, index) if rules.directional else ray_div(amount, index)
