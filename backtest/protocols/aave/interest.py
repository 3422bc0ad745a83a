"""Aave interest indices (PROTOCOLS §1.8): linear supply index, compounded borrow index, treasury accrual.

Rates are per year in ray (``1e27`` = 100 %/yr), times in seconds, ``SECONDS_PER_YEAR = 365 days``. The
supply side accrues simple interest between updates; the borrow side uses the protocol's truncated binomial
(or, from 3.4, Taylor/Horner) approximation of ``(1 + r/Y)^Δt``, which slightly under-charges borrowers. Each
version's exact integer steps are reproduced so replayed indices match ``ReserveDataUpdated`` events.
"""

from __future__ import annotations

from .fixedpoint import (
    RAY,
    a_token_mint_scaled,
    percent_mul,
    ray_mul,
    ray_mul_floor,
)
from .versions import Rules, resolve

SECONDS_PER_YEAR = 365 * 24 * 3600


def _check(rate: int, seconds: int) -> None:
    if rate < 0 or seconds < 0:
        raise ValueError(f"rate and elapsed time must be non-negative, got rate={rate}, seconds={seconds}")


def linear_interest(rate: int, seconds: int) -> int:
    """Supply-side growth factor ``1 + rate·Δt / year`` (ray, floor), identical in every version.

    Parameters
    ----------
    rate : int, ray per year
        ``currentLiquidityRate``.
    seconds : int, s
        Time since the last update.

    Returns
    -------
    int, ray
    """
    _check(rate, seconds)
    return RAY + rate * seconds // SECONDS_PER_YEAR


def compounded_interest(rate: int, seconds: int, *, version: str = "v3") -> int:
    """Borrow-side growth factor ``≈ (1 + rate/year)^Δt`` with the version's integer approximation (ray).

    Parameters
    ----------
    rate : int, ray per year
        ``currentVariableBorrowRate``.
    seconds : int, s
        Time since the last update; 0 gives exactly ``RAY``.
    version : str
        ``"v2"``: rate per second first, ``RAY + n·r + n(n-1)·rayMul(r,r)/2 + n(n-1)(n-2)·rayMul(r²,r)/6``.
        3.0–3.3: ``RAY + r·n/Y + n(n-1)·(rayMul(r,r)/Y²)/2 + n(n-1)(n-2)·(rayMul(r²/Y², r)/Y)/6``.
        3.4+: ``x = r·n/Y``, ``RAY + x + rayMul(x, x/2 + rayMul(x, x/6))``.

    Returns
    -------
    int, ray
    """
    _check(rate, seconds)
    rules = resolve(version)
    n = seconds
    if n == 0:
        return RAY
    if rules.compounding == "v3.4":
        x = rate * n // SECONDS_PER_YEAR
        return RAY + x + ray_mul(x, x // 2 + ray_mul(x, x // 6))
    n1 = n - 1
    n2 = n - 2 if n > 2 else 0
    if rules.compounding == "v2":
        per_second = rate // SECONDS_PER_YEAR
        power_two = ray_mul(per_second, per_second)
        power_three = ray_mul(power_two, per_second)
        return RAY + per_second * n + n * n1 * power_two // 2 + n * n1 * n2 * power_three // 6
    power_two = ray_mul(rate, rate) // (SECONDS_PER_YEAR * SECONDS_PER_YEAR)
    power_three = ray_mul(power_two, rate) // SECONDS_PER_YEAR
    return RAY + rate * n // SECONDS_PER_YEAR + n * n1 * power_two // 2 + n * n1 * n2 * power_three // 6


def next_liquidity_index(index: int, liquidity_rate: int, seconds: int) -> int:
    """Liquidity index after ``seconds`` at ``liquidity_rate``: ``rayMul(linear_interest, index)`` (ray).

    Same in every version; with a zero rate the index is unchanged (the contracts skip the update).
    """
    if liquidity_rate == 0:
        return index
    return ray_mul(linear_interest(liquidity_rate, seconds), index)


def next_variable_borrow_index(
    index: int, borrow_rate: int, seconds: int, *, version: str = "v3", has_debt: bool = True
) -> int:
    """Variable borrow index after ``seconds``: ``rayMul(compounded_interest, index)`` (ray).

    Parameters
    ----------
    index : int, ray
        Index at the last update.
    borrow_rate : int, ray per year
    seconds : int, s
    version : str
        Selects the compounding approximation (see :func:`compounded_interest`).
    has_debt : bool
        The contracts move the borrow index only while the reserve has scaled variable debt.
    """
    if not has_debt:
        return index
    return ray_mul(compounded_interest(borrow_rate, seconds, version=version), index)


def treasury_accrual_scaled(
    scaled_variable_debt: int,
    old_borrow_index: int,
    new_borrow_index: int,
    new_liquidity_index: int,
    reserve_factor_bps: int,
    *,
    version: str = "v3",
) -> int:
    """Scaled aTokens owed to the treasury for the interest accrued between two borrow indices.

    Variable debt only (stable debt is not modelled). Before 3.5 the accrued interest is
    ``rayMul(s, new) − rayMul(s, old)`` and is scaled by ``rayDiv``; from 3.5 it is ``rayMulFloor(s, new − old)``
    scaled with floor (``getATokenMintScaledAmount``). v2 mints the same amount to the treasury directly.

    Parameters
    ----------
    scaled_variable_debt : int
        ``scaledTotalSupply`` of the variable debt token before the update.
    old_borrow_index, new_borrow_index, new_liquidity_index : int, ray
    reserve_factor_bps : int, bps
    version : str

    Returns
    -------
    int
        Scaled amount added to ``accruedToTreasury``.
    """
    rules: Rules = resolve(version)
    if reserve_factor_bps == 0:
        return 0
    if rules.directional:
        accrued = ray_mul_floor(scaled_variable_debt, new_borrow_index - old_borrow_index)
    else:
        accrued = ray_mul(scaled_variable_debt, new_borrow_index) - ray_mul(scaled_variable_debt, old_borrow_index)
    amount = percent_mul(accrued, reserve_factor_bps)
    return a_token_mint_scaled(amount, new_liquidity_index, rules) if amount else 0
