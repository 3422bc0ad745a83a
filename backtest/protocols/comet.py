"""Compound v3 (Comet) liquidation arithmetic (PROTOCOLS §2): an exact integer layer and its float counterpart.

The integer layer mirrors ``Comet.sol`` / ``CometCore.sol`` / ``CometMath.sol`` to the wei: present and
principal values (floor; borrow principal ceil), ``mulFactor``/``mulPrice``/``divPrice`` (floor) and the
signed ``signedMulPrice`` (truncated toward zero, as Solidity's ``int`` division), ``isLiquidatable`` /
``isBorrowCollateralized``, ``absorb`` for one account, ``quoteCollateral``, ``buyCollateral``,
``getReserves`` and the interest accrual. Custom errors become :class:`~backtest.protocols.ProtocolRevert`
with the error's name as ``reason`` (``"NotLiquidatable"``, ``"NotForSale"``, ``"InvalidUInt104"`` …);
checked-arithmetic overflow is ``"panic 0x11"`` and division by zero ``"panic 0x12"``. Malformed inputs
(non-int, negative where the contract holds a ``uint``, a principal outside ``int104``) raise ``ValueError``.

Units: raw token units (``10 * 10**18`` = 10 WETH, ``16_000 * 10**6`` = 16,000 USDC), prices as the
8-decimal Chainlink answers Comet reads (``1780 * 10**8``), factors with 18 decimals (``95 * 10**16``),
indices with ``BASE_INDEX_SCALE = 1e15``, per-second rates with 18 decimals. Asset factors pass through
:func:`truncate_factor` (Comet stores them with 4 decimals), the store-front price factor does not.

The float layer (``*_float``) is what the replay model uses for counterfactuals: token units, USD per token,
fractions, indices as ratios (``1.0`` = ``1e15``), no rounding. It agrees with the integer layer within
1e-9 relative when each amount is well above the raw-unit rounding steps (tested in
``tests/unit/test_comet.py``); see ``docs/protocols.md`` for the worked example and what is not modelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from . import ProtocolRevert, checked

FACTOR_SCALE = 10**18
"""Scale of collateral, liquidation and store-front factors, utilization and per-second rates."""
BASE_INDEX_SCALE = 10**15
"""Scale of ``baseSupplyIndex`` / ``baseBorrowIndex`` (both start at this value)."""
PRICE_SCALE = 10**8
"""Comet requires 8-decimal price feeds."""
FACTOR_DESCALE = 10**14
"""Asset factors are stored as ``uint16`` multiples of 1e14 (4 decimals)."""
SECONDS_PER_YEAR = 31_536_000
MAX_BASE_DECIMALS = 18

INT104_MIN = -(2**103)
INT104_MAX = 2**103 - 1
UINT64_MAX = 2**64 - 1
UINT104_MAX = 2**104 - 1
UINT128_MAX = 2**128 - 1
INT256_MIN = -(2**255)
INT256_MAX = 2**255 - 1


class CometAsset(NamedTuple):
    """One collateral asset as ``absorb_account`` reads it (a plain 4-tuple works the same).

    ``decimals`` (token), ``price`` (8-decimal USD, or USD per token in the float layer),
    ``liquidate_collateral_factor`` and ``liquidation_factor`` (18-decimal, or fractions in the float layer).
    """

    decimals: int
    price: int | float
    liquidate_collateral_factor: int | float
    liquidation_factor: int | float


# --- CometMath: checked conversions -------------------------------------------------------------------


def _uint(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value


def _int104(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not INT104_MIN <= value <= INT104_MAX:
        raise ValueError(f"{name} must be an int104 (|x| < 2**103), got {value!r}")
    return value


def _div(a: int, b: int) -> int:
    if b == 0:
        raise ProtocolRevert("panic 0x12", "division by zero")
    return a // b


def _int256(value: int) -> int:
    if not INT256_MIN <= value <= INT256_MAX:
        raise ProtocolRevert("panic 0x11", "int256 overflow")
    return value


def _safe(value: int, limit: int, reason: str) -> int:
    if value > limit:
        raise ProtocolRevert(reason)
    return value


def _signed104(value: int) -> int:
    return _safe(value, INT104_MAX, "InvalidInt104")


def _scale(decimals: int) -> int:
    return 10 ** _uint("decimals", decimals)


def _price(value: int) -> int:
    # getPrice: latestRoundData().answer must be positive
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"price must be an int (8-decimal USD), got {value!r}")
    if value <= 0:
        raise ProtocolRevert("BadPrice", f"price {value}")
    return value


# --- fixed-point helpers ------------------------------------------------------------------------------


def mul_factor(n: int, factor: int) -> int:
    """``n·factor / 1e18``, floor (``mulFactor``). ``factor`` 18-decimal; result in the unit of ``n``."""
    return checked(n * factor, "mulFactor") // FACTOR_SCALE


def mul_price(n: int, price: int, from_scale: int) -> int:
    """``n·price / from_scale``, floor (``mulPrice``): raw amount × 8-decimal price → 8-decimal USD."""
    return _div(checked(n * price, "mulPrice"), from_scale)


def signed_mul_price(n: int, price: int, from_scale: int) -> int:
    """``n·price / from_scale`` for a signed ``n``, truncated toward zero (``signedMulPrice``, int256 ÷)."""
    product = _int256(n * price)
    magnitude = _div(abs(product), from_scale)
    return magnitude if product >= 0 else -magnitude


def div_price(n: int, price: int, to_scale: int) -> int:
    """``n·to_scale / price``, floor (``divPrice``): 8-decimal USD → raw amount of a token priced ``price``."""
    return _div(checked(n * to_scale, "divPrice"), price)


def truncate_factor(factor: int) -> int:
    """A configured 18-decimal factor as Comet stores and returns it: floor to a multiple of 1e14.

    ``getPackedAssetInternal`` keeps ``uint16(factor / 1e14)`` (unchecked, so values above 6.5535 wrap) and
    ``getAssetInfo`` multiplies back by 1e14; ``0.82555e18`` becomes ``0.8255e18``. Idempotent.
    """
    return ((_uint("factor", factor) // FACTOR_DESCALE) & 0xFFFF) * FACTOR_DESCALE


def present_value_supply(base_supply_index: int, principal: int) -> int:
    """Supply balance of a non-negative principal: ``principal·index / 1e15``, floor (``presentValueSupply``)."""
    return checked(principal * base_supply_index, "presentValueSupply") // BASE_INDEX_SCALE


def present_value_borrow(base_borrow_index: int, principal: int) -> int:
    """Borrow balance of a principal magnitude: ``principal·index / 1e15``, floor (``presentValueBorrow``)."""
    return checked(principal * base_borrow_index, "presentValueBorrow") // BASE_INDEX_SCALE


def principal_value_supply(base_supply_index: int, present_value: int) -> int:
    """Principal of a supply balance: ``balance·1e15 / index``, floor, as ``uint104`` (``principalValueSupply``)."""
    value = _div(checked(present_value * BASE_INDEX_SCALE, "principalValueSupply"), base_supply_index)
    return _safe(value, UINT104_MAX, "InvalidUInt104")


def principal_value_borrow(base_borrow_index: int, present_value: int) -> int:
    """Principal magnitude of a borrow balance: ``balance·1e15 / index``, **ceil**, as ``uint104``."""
    numerator = checked(present_value * BASE_INDEX_SCALE + base_borrow_index - 1, "principalValueBorrow")
    return _safe(_div(numerator, base_borrow_index), UINT104_MAX, "InvalidUInt104")


def present_value(principal: int, *, base_supply_index: int, base_borrow_index: int) -> int:
    """Signed balance of a signed ``int104`` principal (``CometCore.presentValue``): negative = borrow."""
    _int104("principal", principal)
    if principal >= 0:
        return present_value_supply(base_supply_index, principal)
    if principal == INT104_MIN:  # uint104(-principal) negates int104.min
        raise ProtocolRevert("panic 0x11", "int104 negation")
    return -present_value_borrow(base_borrow_index, -principal)


def principal_value(balance: int, *, base_supply_index: int, base_borrow_index: int) -> int:
    """Signed ``int104`` principal of a signed balance (``CometCore.principalValue``): supply floor, borrow ceil."""
    if balance >= 0:
        return _signed104(principal_value_supply(base_supply_index, balance))
    return -_signed104(principal_value_borrow(base_borrow_index, -balance))


# --- interest ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateCurve:
    """One kinked per-second rate curve (supply or borrow), 18-decimal factors.

    ``rate(U) = base + slope_low·min(U, kink) + slope_high·max(0, U − kink)``, each product a ``mulFactor``.
    """

    kink: int
    per_second_base: int
    per_second_slope_low: int
    per_second_slope_high: int

    @classmethod
    def from_per_year(cls, *, kink: int, base: int, slope_low: int, slope_high: int) -> RateCurve:
        """Curve from the Configurator's per-year values, each floor-divided by 31,536,000 (Comet's constructor)."""
        return cls(kink, base // SECONDS_PER_YEAR, slope_low // SECONDS_PER_YEAR, slope_high // SECONDS_PER_YEAR)


def get_utilization(
    *, base_supply_index: int, base_borrow_index: int, total_supply_base: int, total_borrow_base: int
) -> int:
    """``totalBorrow·1e18 / totalSupply`` of the present values, 0 without supply (``getUtilization``)."""
    supply = present_value_supply(base_supply_index, total_supply_base)
    borrow = present_value_borrow(base_borrow_index, total_borrow_base)
    return 0 if supply == 0 else borrow * FACTOR_SCALE // supply


def get_rate(curve: RateCurve, utilization: int) -> int:
    """Per-second rate (18 dec) of ``curve`` at ``utilization`` (``getSupplyRate`` / ``getBorrowRate``), ``uint64``."""
    if utilization <= curve.kink:
        rate = curve.per_second_base + mul_factor(curve.per_second_slope_low, utilization)
    else:
        rate = (
            curve.per_second_base
            + mul_factor(curve.per_second_slope_low, curve.kink)
            + mul_factor(curve.per_second_slope_high, utilization - curve.kink)
        )
    return _safe(rate, UINT64_MAX, "InvalidUInt64")


def accrue(
    *, base_supply_index: int, base_borrow_index: int, supply_rate: int, borrow_rate: int, time_elapsed: int
) -> tuple[int, int]:
    """Indices after ``time_elapsed`` seconds at constant per-second rates (``accruedInterestIndices``).

    ``index += mulFactor(index, rate·Δt)``: simple interest within one step, compounding across steps.

    Parameters
    ----------
    base_supply_index, base_borrow_index : int, 1e15 scale
    supply_rate, borrow_rate : int, 18-decimal per second
    time_elapsed : int, s

    Returns
    -------
    (base_supply_index, base_borrow_index) : ints, 1e15 scale
        Increments above ``uint64`` revert ``InvalidUInt64``; an index above ``uint64`` is ``panic 0x11``.
    """
    for name, value in (("supply_rate", supply_rate), ("borrow_rate", borrow_rate), ("time_elapsed", time_elapsed)):
        _uint(name, value)
    indices = []
    for index, rate in ((base_supply_index, supply_rate), (base_borrow_index, borrow_rate)):
        _uint("index", index)
        if time_elapsed > 0:
            index += _safe(mul_factor(index, rate * time_elapsed), UINT64_MAX, "InvalidUInt64")
            if index > UINT64_MAX:
                raise ProtocolRevert("panic 0x11", "uint64 index")
        indices.append(index)
    return indices[0], indices[1]


def accrued_interest_indices(
    *,
    base_supply_index: int,
    base_borrow_index: int,
    total_supply_base: int,
    total_borrow_base: int,
    supply_curve: RateCurve,
    borrow_curve: RateCurve,
    time_elapsed: int,
) -> tuple[int, int]:
    """:func:`accrue` with the rates Comet derives from the utilization at the last accrual."""
    if time_elapsed == 0:
        return base_supply_index, base_borrow_index
    u = get_utilization(
        base_supply_index=base_supply_index,
        base_borrow_index=base_borrow_index,
        total_supply_base=total_supply_base,
        total_borrow_base=total_borrow_base,
    )
    return accrue(
        base_supply_index=base_supply_index,
        base_borrow_index=base_borrow_index,
        supply_rate=get_rate(supply_curve, u),
        borrow_rate=get_rate(borrow_curve, u),
        time_elapsed=time_elapsed,
    )


# --- reserves ----------------------------------------------------------------------------------------


def get_reserves(
    *, base_balance: int, base_supply_index: int, base_borrow_index: int, total_supply_base: int, total_borrow_base: int
) -> int:
    """Base reserves ``balanceOf(comet) − presentSupply + presentBorrow`` (``getReserves``), may be negative.

    Pass indices already accrued to the block (the view accrues them itself); amounts in base raw units.
    """
    supply = present_value_supply(base_supply_index, total_supply_base)
    borrow = present_value_borrow(base_borrow_index, total_borrow_base)
    return _uint("base_balance", base_balance) - supply + borrow


def get_collateral_reserves(*, token_balance: int, total_supply_asset: int) -> int:
    """Protocol-owned collateral ``balanceOf(comet) − totalSupplyAsset`` (``getCollateralReserves``), raw units."""
    return checked(token_balance - total_supply_asset, "getCollateralReserves")


# --- solvency ----------------------------------------------------------------------------------------


def _held(collateral: Mapping[str, int], assets: Mapping[str, tuple]) -> list[tuple[str, int, tuple]]:
    held = []
    for symbol, balance in collateral.items():
        if symbol not in assets:
            raise ValueError(f"collateral {symbol!r} has no entry in assets")
        if _uint(f"collateral[{symbol!r}]", balance) > UINT128_MAX:
            raise ValueError(f"collateral[{symbol!r}] must fit a uint128, got {balance}")
        if balance > 0:
            held.append((symbol, balance, tuple(assets[symbol])))
    return held


def _check_liquidity(
    base_decimals: int,
    base_price: int,
    base_supply_index: int,
    base_borrow_index: int,
    principal: int,
    collateral: Mapping[str, int],
    assets: Mapping[str, tuple],
) -> bool:
    """``liquidity >= 0`` with the third tuple entry as collateral factor, stopping early as the contract does."""
    liquidity = signed_mul_price(
        present_value(principal, base_supply_index=base_supply_index, base_borrow_index=base_borrow_index),
        _price(base_price),
        _scale(base_decimals),
    )
    for _, balance, (decimals, price, factor, *_rest) in _held(collateral, assets):
        if liquidity >= 0:
            return True
        liquidity += mul_factor(mul_price(balance, _price(price), _scale(decimals)), truncate_factor(factor))
    return liquidity >= 0


def account_liquidity(
    *,
    base_decimals: int,
    base_price: int,
    base_supply_index: int,
    base_borrow_index: int,
    principal: int,
    collateral: Mapping[str, int],
    assets: Mapping[str, tuple],
) -> int:
    """Signed liquidity margin in 8-decimal USD (the old ``getLiquidationMargin`` / ``getBorrowLiquidity``).

    ``signedMulPrice(presentValue(principal), basePrice, baseScale) + Σ mulFactor(mulPrice(balance_i,
    price_i, scale_i), CF_i)`` with ``CF_i`` the third entry of ``assets[symbol]`` (LCF for the liquidation
    margin, BCF for borrow liquidity); arguments as :func:`is_liquidatable`. Negative with LCF = liquidatable.
    """
    liquidity = signed_mul_price(
        present_value(principal, base_supply_index=base_supply_index, base_borrow_index=base_borrow_index),
        _price(base_price),
        _scale(base_decimals),
    )
    for _, balance, (decimals, price, factor, *_rest) in _held(collateral, assets):
        liquidity += mul_factor(mul_price(balance, _price(price), _scale(decimals)), truncate_factor(factor))
    return liquidity


def is_liquidatable(
    *,
    base_decimals: int,
    base_price: int,
    base_supply_index: int,
    base_borrow_index: int,
    principal: int,
    collateral: Mapping[str, int],
    assets: Mapping[str, tuple],
) -> bool:
    """Whether ``absorb`` accepts the account (``isLiquidatable``): a borrow and ``liquidity < 0`` under LCF.

    ``liquidity = signedMulPrice(presentValue(principal), basePrice, baseScale) + Σ mulFactor(mulPrice(
    balance_i, price_i, scale_i), LCF_i)`` over assets with a non-zero balance, in 8-decimal USD.

    Parameters
    ----------
    base_decimals : int
    base_price : int, 8-decimal USD
    base_supply_index, base_borrow_index : int, 1e15 scale (accrued to the block)
    principal : int, base raw units, int104 (negative = borrow)
    collateral : mapping symbol → int, raw token units
    assets : mapping symbol → (decimals, price, liquidate_collateral_factor, …)
        Price 8-decimal USD, factor 18-decimal; entries after the third are ignored (an
        :func:`absorb_account` ``assets`` mapping can be passed as is).
    """
    if _int104("principal", principal) >= 0:
        return False
    return not _check_liquidity(
        base_decimals, base_price, base_supply_index, base_borrow_index, principal, collateral, assets
    )


def is_borrow_collateralized(
    *,
    base_decimals: int,
    base_price: int,
    base_supply_index: int,
    base_borrow_index: int,
    principal: int,
    collateral: Mapping[str, int],
    assets: Mapping[str, tuple],
) -> bool:
    """Whether the account may hold its borrow (``isBorrowCollateralized``): ``liquidity >= 0`` under BCF.

    Same arguments as :func:`is_liquidatable`, but the third entry of each ``assets`` tuple is the
    *borrow* collateral factor (18-decimal). Supply-only accounts are always collateralized; the
    ``baseBorrowMin`` check of withdraw/transfer is the caller's business.
    """
    if _int104("principal", principal) >= 0:
        return True
    return _check_liquidity(
        base_decimals, base_price, base_supply_index, base_borrow_index, principal, collateral, assets
    )


# --- absorb ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Absorption:
    """Outcome of ``absorbInternal`` for one account (integer layer; base raw units, 8-decimal USD).

    ``collateral_absorbed`` / ``collateral_usd`` have one entry per symbol of the input ``collateral``
    (zero balances give zeros; the contract emits ``AbsorbCollateral`` only for non-zero ones).
    ``new_balance`` is the balance the contract credits (clamped at 0) and ``base_paid_out = new_balance −
    old_balance``; ``balance_after`` is the present value of the stored ``principal_after``, which can be
    a wei below ``new_balance`` (supply principal rounds down). ``repay_amount`` / ``supply_amount`` are the
    principal changes of ``totalBorrowBase`` / ``totalSupplyBase``; ``shortfall`` is the debt not covered
    by ``delta_balance`` (absorbed by reserves); ``penalty_usd = Σ (value_i − mulFactor(value_i, LF_i))``.
    """

    collateral_absorbed: dict[str, int]
    collateral_usd: dict[str, int]
    base_paid_out: int
    debt_usd: int
    principal_after: int
    balance_after: int
    old_balance: int
    new_balance: int
    delta_value: int
    delta_balance: int
    repay_amount: int
    supply_amount: int
    shortfall: int
    penalty_usd: int


def absorb_account(
    *,
    base_decimals: int,
    base_price: int,
    base_supply_index: int,
    base_borrow_index: int,
    principal: int,
    collateral: Mapping[str, int],
    assets: Mapping[str, tuple],
) -> Absorption:
    """Absorb one underwater account (``absorbInternal``): seize all collateral, credit ``Σ value·LF``.

    For each held asset ``value_i = mulPrice(balance_i, price_i, scale_i)`` (the ``AbsorbCollateral``
    usdValue) and ``deltaValue += mulFactor(value_i, LF_i)``; ``deltaBalance = divPrice(deltaValue,
    basePrice, baseScale)``; ``newBalance = max(0, oldBalance + deltaBalance)``; the principal is rewritten
    to ``principalValue(newBalance)``; ``AbsorbDebt`` reports ``basePaidOut = newBalance − oldBalance`` and
    ``mulPrice(basePaidOut, basePrice, baseScale)``.

    Parameters
    ----------
    base_decimals : int
        Decimals of the base token (``baseScale = 10**base_decimals``).
    base_price : int, 8-decimal USD
    base_supply_index, base_borrow_index : int, 1e15 scale
        Indices after ``absorb``'s ``accrueInternal`` (i.e. accrued to the block).
    principal : int, base raw units
        ``userBasic.principal`` (int104, negative for a borrower).
    collateral : mapping symbol → int, raw token units
        ``userCollateral[account][asset].balance`` (uint128).
    assets : mapping symbol → (decimals, price, liquidate_collateral_factor, liquidation_factor)
        Price 8-decimal USD, factors 18-decimal (truncated to 4 decimals as stored); :class:`CometAsset`.

    Returns
    -------
    Absorption

    Raises
    ------
    ProtocolRevert
        ``"NotLiquidatable"`` if :func:`is_liquidatable` is false; ``"BadPrice"`` for a price ≤ 0;
        ``"InvalidUInt104"`` / ``"InvalidInt104"`` if the new principal does not fit.

    Examples
    --------
    PROTOCOLS §2.6 at $1,780: the user keeps a 910 USDC supply.

    >>> out = absorb_account(base_decimals=6, base_price=10**8, base_supply_index=10**15,
    ...     base_borrow_index=10**15, principal=-16_000 * 10**6, collateral={"WETH": 10 * 10**18},
    ...     assets={"WETH": (18, 1780 * 10**8, 895 * 10**15, 95 * 10**16)})
    >>> out.base_paid_out, out.debt_usd, out.balance_after, out.collateral_usd
    (16910000000, 1691000000000, 910000000, {'WETH': 1780000000000})
    """
    for symbol, entry in assets.items():
        if len(tuple(entry)) != 4:
            raise ValueError(f"assets[{symbol!r}] must be (decimals, price, liquidate_cf, liquidation_factor)")
    if not is_liquidatable(
        base_decimals=base_decimals,
        base_price=base_price,
        base_supply_index=base_supply_index,
        base_borrow_index=base_borrow_index,
        principal=principal,
        collateral=collateral,
        assets=assets,
    ):
        raise ProtocolRevert("NotLiquidatable")
    base_scale = _scale(base_decimals)
    indices = {"base_supply_index": base_supply_index, "base_borrow_index": base_borrow_index}
    old_balance = present_value(principal, **indices)
    base_price = _price(base_price)

    absorbed = {symbol: 0 for symbol in collateral}
    usd = {symbol: 0 for symbol in collateral}
    delta_value = 0
    penalty = 0
    for symbol, balance, (decimals, price, _lcf, lf) in _held(collateral, assets):
        value = mul_price(balance, _price(price), _scale(decimals))
        credited = mul_factor(value, truncate_factor(lf))
        absorbed[symbol], usd[symbol] = balance, value
        delta_value += credited
        penalty += value - credited

    delta_balance = div_price(delta_value, base_price, base_scale)
    uncovered = old_balance + _safe(delta_balance, INT256_MAX, "InvalidInt256")
    new_balance = max(0, uncovered)
    principal_after = principal_value(new_balance, **indices)
    # repayAndSupplyAmount(oldPrincipal < 0, newPrincipal >= 0): the whole borrow is repaid
    repay_amount, supply_amount = -principal, principal_after
    base_paid_out = new_balance - old_balance
    return Absorption(
        collateral_absorbed=absorbed,
        collateral_usd=usd,
        base_paid_out=base_paid_out,
        debt_usd=mul_price(base_paid_out, base_price, base_scale),
        principal_after=principal_after,
        balance_after=present_value_supply(base_supply_index, principal_after),
        old_balance=old_balance,
        new_balance=new_balance,
        delta_value=delta_value,
        delta_balance=delta_balance,
        repay_amount=repay_amount,
        supply_amount=supply_amount,
        shortfall=max(0, -uncovered),
        penalty_usd=penalty,
    )


# --- store front -------------------------------------------------------------------------------------


def quote_collateral(
    *,
    asset_price: int,
    base_price: int,
    liquidation_factor: int,
    store_front_price_factor: int,
    asset_decimals: int,
    base_decimals: int,
    base_amount: int,
) -> int:
    """Collateral (raw units) that ``base_amount`` buys from the protocol (``quoteCollateral``).

    ``discount = mulFactor(SFPF, 1e18 − LF)``, ``discountedPrice = mulFactor(assetPrice, 1e18 − discount)``,
    ``out = basePrice·baseAmount·assetScale / discountedPrice / baseScale`` (two floors, in that order).

    Parameters
    ----------
    asset_price, base_price : int, 8-decimal USD
    liquidation_factor : int, 18-decimal
        The asset's LF (truncated to 4 decimals as stored).
    store_front_price_factor : int, 18-decimal
        The market's SFPF (full precision; ≤ 1e18 is enforced at deployment).
    asset_decimals, base_decimals : int
    base_amount : int, base raw units

    Raises
    ------
    ProtocolRevert
        ``"BadPrice"`` for a price ≤ 0; ``"panic 0x11"`` if ``LF`` or the discount exceeds 1;
        ``"panic 0x12"`` if the discounted price floors to 0.

    Examples
    --------
    >>> quote_collateral(asset_price=1780 * 10**8, base_price=10**8, liquidation_factor=95 * 10**16,
    ...     store_front_price_factor=6 * 10**17, asset_decimals=18, base_decimals=6, base_amount=17_266 * 10**6)
    10000000000000000000
    """
    asset_price, base_price = _price(asset_price), _price(base_price)
    lf = truncate_factor(liquidation_factor)
    discount = mul_factor(_uint("store_front_price_factor", store_front_price_factor), checked(FACTOR_SCALE - lf))
    discounted_price = mul_factor(asset_price, checked(FACTOR_SCALE - discount))
    numerator = checked(base_price * _uint("base_amount", base_amount) * _scale(asset_decimals), "quoteCollateral")
    return _div(numerator, discounted_price) // _scale(base_decimals)


def buy_collateral(
    *,
    asset_price: int,
    base_price: int,
    liquidation_factor: int,
    store_front_price_factor: int,
    asset_decimals: int,
    base_decimals: int,
    reserves: int,
    target_reserves: int,
    collateral_reserves: int,
    base_amount: int,
    min_amount: int,
) -> int:
    """Collateral (raw units) a ``buyCollateral(asset, minAmount, baseAmount, …)`` call pays out.

    Checks in the contract's order: ``NotForSale`` when ``reserves >= 0`` and ``reserves >= target_reserves``;
    (the base transfer in); the quote (:func:`quote_collateral`); ``TooMuchSlippage`` when it is below
    ``min_amount``; ``InsufficientReserves`` when it exceeds ``collateral_reserves``. Reserves then rise by
    ``base_amount`` and the collateral reserves fall by the result.

    Parameters
    ----------
    asset_price, base_price, liquidation_factor, store_front_price_factor, asset_decimals, base_decimals
        As :func:`quote_collateral`.
    reserves : int, base raw units
        :func:`get_reserves` before the call (signed).
    target_reserves : int, base raw units
    collateral_reserves : int, raw units of the asset
        :func:`get_collateral_reserves`.
    base_amount : int, base raw units
        Amount received (fee-on-transfer base tokens are not modelled).
    min_amount : int, raw units of the asset
    """
    if not isinstance(reserves, int) or isinstance(reserves, bool):
        raise ValueError(f"reserves must be an int, got {reserves!r}")
    _uint("target_reserves", target_reserves)
    _uint("collateral_reserves", collateral_reserves)
    _uint("min_amount", min_amount)
    if reserves >= 0 and reserves >= target_reserves:
        raise ProtocolRevert("NotForSale", f"reserves {reserves} >= target {target_reserves}")
    out = quote_collateral(
        asset_price=asset_price,
        base_price=base_price,
        liquidation_factor=liquidation_factor,
        store_front_price_factor=store_front_price_factor,
        asset_decimals=asset_decimals,
        base_decimals=base_decimals,
        base_amount=base_amount,
    )
    if out < min_amount:
        raise ProtocolRevert("TooMuchSlippage", f"{out} < {min_amount}")
    if out > collateral_reserves:
        raise ProtocolRevert("InsufficientReserves", f"{out} > {collateral_reserves}")
    return _safe(out, UINT128_MAX, "InvalidUInt128")


# --- float layer -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AbsorptionFloat:
    """:class:`Absorption` in float units: token units, USD, principal in base tokens at index 1.0."""

    collateral_absorbed: dict[str, float]
    collateral_usd: dict[str, float]
    base_paid_out: float
    debt_usd: float
    principal_after: float
    balance_after: float
    old_balance: float
    new_balance: float
    delta_value: float
    delta_balance: float
    repay_amount: float
    supply_amount: float
    shortfall: float
    penalty_usd: float


def _fin(name: str, value: float, *, positive: bool = False) -> float:
    x = float(value)
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and x <= 0.0:
        raise ProtocolRevert("BadPrice", f"{name} {value}")
    return x


def absorb_float(
    *,
    base_price: float,
    base_supply_index: float,
    base_borrow_index: float,
    principal: float,
    collateral: Mapping[str, float],
    assets: Mapping[str, tuple],
    base_decimals: int | None = None,
) -> AbsorptionFloat:
    """:func:`absorb_account` without rounding, as the replay model computes it.

    Parameters
    ----------
    base_price : float, USD per base token
    base_supply_index, base_borrow_index : float, ratio (the 1e15-scaled index / 1e15)
    principal : float, base tokens of principal (negative = borrow)
    collateral : mapping symbol → float, token units
    assets : mapping symbol → (decimals, price, liquidate_collateral_factor, liquidation_factor)
        Decimals ignored, price USD per token, factors fractions 0–1 (taken as given, not truncated).
    base_decimals : ignored
        Accepted so the integer layer's keywords can be passed unchanged.

    Raises
    ------
    ProtocolRevert
        ``"NotLiquidatable"`` unless ``principal < 0`` and ``old_balance·base_price + Σ c·p·LCF < 0``;
        ``"BadPrice"`` for a price ≤ 0.
    """
    del base_decimals
    base_price = _fin("base_price", base_price, positive=True)
    supply_index = _fin("base_supply_index", base_supply_index)
    borrow_index = _fin("base_borrow_index", base_borrow_index)
    principal = _fin("principal", principal)
    old_balance = principal * (supply_index if principal >= 0 else borrow_index)
    legs = []
    for symbol, amount in collateral.items():
        if symbol not in assets:
            raise ValueError(f"collateral {symbol!r} has no entry in assets")
        _dec, price, lcf, lf = assets[symbol]
        price = _fin(f"{symbol} price", price, positive=True)
        legs.append((symbol, _fin(symbol, amount), price, float(lcf), float(lf)))
    margin = old_balance * base_price + sum(c * p * lcf for _, c, p, lcf, _lf in legs)
    if not (principal < 0.0 and margin < 0.0):
        raise ProtocolRevert("NotLiquidatable")
    usd = {symbol: c * p for symbol, c, p, _lcf, _lf in legs}
    delta_value = sum(usd[symbol] * lf for symbol, _c, _p, _lcf, lf in legs)
    delta_balance = delta_value / base_price
    new_balance = max(0.0, old_balance + delta_balance)
    base_paid_out = new_balance - old_balance
    return AbsorptionFloat(
        collateral_absorbed={symbol: c for symbol, c, _p, _lcf, _lf in legs},
        collateral_usd=usd,
        base_paid_out=base_paid_out,
        debt_usd=base_paid_out * base_price,
        principal_after=new_balance / supply_index,
        balance_after=new_balance,
        old_balance=old_balance,
        new_balance=new_balance,
        delta_value=delta_value,
        delta_balance=delta_balance,
        repay_amount=-principal,
        supply_amount=new_balance / supply_index,
        shortfall=max(0.0, -(old_balance + delta_balance)),
        penalty_usd=sum(usd[symbol] * (1.0 - lf) for symbol, _c, _p, _lcf, lf in legs),
    )


def quote_collateral_float(
    *,
    asset_price: float,
    base_price: float,
    liquidation_factor: float,
    store_front_price_factor: float,
    base_amount: float,
    asset_decimals: int | None = None,
    base_decimals: int | None = None,
) -> float:
    """Tokens bought with ``base_amount`` base tokens: ``base_amount·p_base / (p_asset·(1 − SFPF·(1 − LF)))``.

    Prices USD per token, factors fractions; the decimals are accepted and ignored.
    """
    del asset_decimals, base_decimals
    discounted = _fin("asset_price", asset_price, positive=True) * (
        1.0 - float(store_front_price_factor) * (1.0 - float(liquidation_factor))
    )
    if discounted <= 0.0:
        raise ProtocolRevert("panic 0x11", "discount above 100 %")
    return _fin("base_amount", base_amount) * _fin("base_price", base_price, positive=True) / discounted


def buy_collateral_float(
    *,
    asset_price: float,
    base_price: float,
    liquidation_factor: float,
    store_front_price_factor: float,
    reserves: float,
    target_reserves: float,
    collateral_reserves: float,
    base_amount: float,
    min_amount: float,
    asset_decimals: int | None = None,
    base_decimals: int | None = None,
) -> float:
    """:func:`buy_collateral` without rounding: same checks in the same order, token units throughout."""
    if reserves >= 0.0 and reserves >= target_reserves:
        raise ProtocolRevert("NotForSale", f"reserves {reserves} >= target {target_reserves}")
    out = quote_collateral_float(
        asset_price=asset_price,
        base_price=base_price,
        liquidation_factor=liquidation_factor,
        store_front_price_factor=store_front_price_factor,
        base_amount=base_amount,
        asset_decimals=asset_decimals,
        base_decimals=base_decimals,
    )
    if out < min_amount:
        raise ProtocolRevert("TooMuchSlippage", f"{out} < {min_amount}")
    if out > collateral_reserves:
        raise ProtocolRevert("InsufficientReserves", f"{out} > {collateral_reserves}")
    return out


__all__ = [
    "BASE_INDEX_SCALE",
    "FACTOR_SCALE",
    "PRICE_SCALE",
    "SECONDS_PER_YEAR",
    "Absorption",
    "AbsorptionFloat",
    "CometAsset",
    "RateCurve",
    "absorb_account",
    "absorb_float",
    "account_liquidity",
    "accrue",
    "accrued_interest_indices",
    "buy_collateral",
    "buy_collateral_float",
    "div_price",
    "get_collateral_reserves",
    "get_rate",
    "get_reserves",
    "get_utilization",
    "is_borrow_collateralized",
    "is_liquidatable",
    "mul_factor",
    "mul_price",
    "present_value",
    "present_value_borrow",
    "present_value_supply",
    "principal_value",
    "principal_value_borrow",
    "principal_value_supply",
    "quote_collateral",
    "quote_collateral_float",
    "signed_mul_price",
    "truncate_factor",
]
