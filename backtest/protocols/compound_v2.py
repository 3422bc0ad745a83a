"""Compound v2 (and forks): the Comptroller's and CToken's liquidation arithmetic on Python ints, plus floats.

The integer layer reproduces the contracts to the raw unit (PROTOCOLS §3): ``Exp`` mantissas are 1e18, oracle
prices are ``getUnderlyingPrice`` mantissas scaled ``1e(36 − underlyingDecimals)`` (so ``price × amount / 1e18``
is USD·1e18), exchange rates are ``exchangeRateStored`` (underlying raw units per cToken raw unit, ×1e18),
cToken amounts are raw (8 decimals). Every product and quotient truncates in the contracts' order
(``ExponentialNoError``); ``legacy_rounding=True`` gives the Comptrollers built on ``Exponential``/``CarefulMath``
(G1–G3 and many forks), whose ``Exp × Exp`` products round half-up. Failures raise
:class:`~backtest.protocols.ProtocolRevert` whose ``reason`` is the Comptroller ``Error`` name the contract
returns (``"INSUFFICIENT_SHORTFALL"``, ``"TOO_MUCH_REPAY"``, ``"PRICE_ERROR"``), the CToken's custom error or
``require`` string (``"LiquidateCloseAmountIsZero"``, ``"LIQUIDATE_SEIZE_TOO_MUCH"``), or a Solidity panic.
:func:`liquidate_float` and :func:`account_liquidity_float` are the float64 counterparts in token units and
USD that the replay model (``liquidation = "compound-v2"`` in ``backtest.models.lending``) computes.
Pause guardians, listing, freshness, addresses, fee-on-transfer tokens and COMP rewards are not modelled.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from . import UINT256_MAX, ProtocolRevert

EXP_SCALE = 10**18
HALF_EXP_SCALE = EXP_SCALE // 2
C_TOKEN_DECIMALS = 8
PROTOCOL_SEIZE_SHARE_MANTISSA = 28 * 10**15
"""2.8 % of seized cTokens go to reserves (CToken implementations from 2021 on). Older ones give everything to
the liquidator: pass 0 (probably also for the non-upgradeable 2019 cETH — check its seize ``Transfer`` events)."""
BORROW_RATE_MAX_MANTISSA = 5 * 10**12
"""0.0005 % per block; ``accrueInterest`` reverts above it."""
BLOCKS_PER_YEAR = 2_102_400
"""JumpRateModelV2's assumption (15-second blocks)."""
CLOSE_FACTOR_MIN_MANTISSA = 5 * 10**16
CLOSE_FACTOR_MAX_MANTISSA = 9 * 10**17
COLLATERAL_FACTOR_MAX_MANTISSA = 9 * 10**17


class ComptrollerError(IntEnum):
    """``ComptrollerErrorReporter.Error`` (ErrorReporter.sol): the codes the Comptroller returns."""

    NO_ERROR = 0
    UNAUTHORIZED = 1
    COMPTROLLER_MISMATCH = 2
    INSUFFICIENT_SHORTFALL = 3
    INSUFFICIENT_LIQUIDITY = 4
    INVALID_CLOSE_FACTOR = 5
    INVALID_COLLATERAL_FACTOR = 6
    INVALID_LIQUIDATION_INCENTIVE = 7
    MARKET_NOT_ENTERED = 8
    MARKET_NOT_LISTED = 9
    MARKET_ALREADY_LISTED = 10
    MATH_ERROR = 11
    NONZERO_BORROW_BALANCE = 12
    PRICE_ERROR = 13
    REJECTION = 14
    SNAPSHOT_ERROR = 15
    TOO_MANY_ASSETS = 16
    TOO_MUCH_REPAY = 17


def _fail(err: ComptrollerError, detail: str = "") -> ProtocolRevert:
    return ProtocolRevert(err.name, detail or f"Comptroller error {err.value}")


def _uint(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= UINT256_MAX:
        raise ValueError(f"{name} must be an int in [0, 2**256 - 1], got {value!r}")
    return value


def _uints(**values: int) -> None:
    for name, value in values.items():
        _uint(name, value)


def _over(value: int, what: str, legacy: bool) -> int:
    # Solidity 0.8 panics on overflow; CarefulMath returns MathError, which the Comptroller maps to MATH_ERROR.
    if value > UINT256_MAX:
        raise _fail(ComptrollerError.MATH_ERROR, what) if legacy else ProtocolRevert("panic 0x11", what)
    return value


def _sub(a: int, b: int, what: str) -> int:
    if b > a:
        raise ProtocolRevert("panic 0x11", what)
    return a - b


def _div(a: int, b: int, what: str, legacy: bool = False) -> int:
    if b == 0:
        raise _fail(ComptrollerError.MATH_ERROR, what) if legacy else ProtocolRevert("panic 0x12", what)
    return a // b


def _mul_exp(a: int, b: int, what: str, legacy: bool) -> int:
    """``Exp × Exp``: truncating (``mul_``) or half-up (legacy ``mulExp``)."""
    product = _over(a * b, what, legacy)
    if legacy:
        product = _over(product + HALF_EXP_SCALE, what, legacy)
    return product // EXP_SCALE


def _mul_truncate(exp: int, scalar: int, what: str, legacy: bool = False) -> int:
    """``mul_ScalarTruncate``: ``exp × scalar / 1e18``, floor."""
    return _over(exp * scalar, what, legacy) // EXP_SCALE


# --- CToken state ------------------------------------------------------------------------------------------


def exchange_rate(
    cash: int, total_borrows: int, total_reserves: int, total_supply: int, *, initial_exchange_rate: int | None = None
) -> int:
    """``CToken.exchangeRateStoredInternal``: ``(cash + totalBorrows − totalReserves)·1e18 / totalSupply``, floor.

    Parameters
    ----------
    cash, total_borrows, total_reserves : int, underlying raw units
    total_supply : int, cToken raw units
    initial_exchange_rate : int, optional, mantissa
        Returned when ``total_supply`` is 0 (the contract's ``initialExchangeRateMantissa``).

    Returns
    -------
    int, mantissa: underlying raw units per cToken raw unit × 1e18 (0.02 ETH per cETH → ``2e26``).
    """
    _uints(cash=cash, total_borrows=total_borrows, total_reserves=total_reserves, total_supply=total_supply)
    if total_supply == 0:
        if initial_exchange_rate is None:
            raise ValueError("total_supply is 0: pass initial_exchange_rate")
        return _uint("initial_exchange_rate", initial_exchange_rate)
    underlying = _sub(_over(cash + total_borrows, "cash + borrows", False), total_reserves, "− reserves")
    return _over(underlying * EXP_SCALE, "exchange rate", False) // total_supply


def borrow_balance(principal: int, interest_index: int, borrow_index: int) -> int:
    """``CToken.borrowBalanceStoredInternal``: ``principal·borrowIndex / interestIndex``, floor (0 without principal).

    Parameters
    ----------
    principal : int, underlying raw units
        ``accountBorrows[a].principal`` (the balance at the account's last borrow or repay).
    interest_index : int, mantissa
        ``accountBorrows[a].interestIndex``, the market index at that moment.
    borrow_index : int, mantissa
        The market's current ``borrowIndex``.
    """
    _uints(principal=principal, interest_index=interest_index, borrow_index=borrow_index)
    if principal == 0:
        return 0
    return _div(_over(principal * borrow_index, "principal × index", False), interest_index, "interest index")


@dataclass(frozen=True)
class JumpRateModel:
    """``BaseJumpRateModelV2`` with its per-block parameters (mantissas; ``kink`` is a utilisation mantissa)."""

    base_rate_per_block: int
    multiplier_per_block: int
    jump_multiplier_per_block: int
    kink: int

    @classmethod
    def from_per_year(
        cls, base_rate_per_year: int, multiplier_per_year: int, jump_multiplier_per_year: int, kink: int,
        *, blocks_per_year: int = BLOCKS_PER_YEAR,
    ) -> JumpRateModel:
        """``updateJumpRateModelInternal``: ``base/blocks``, ``mult·1e18/(blocks·kink)``, ``jump/blocks``, floors.

        All arguments are mantissas (0.04e18 = 4 % a year; kink 0.8e18)."""
        return cls(
            base_rate_per_year // blocks_per_year,
            multiplier_per_year * EXP_SCALE // (blocks_per_year * kink),
            jump_multiplier_per_year // blocks_per_year,
            kink,
        )

    def utilization_rate(self, cash: int, borrows: int, reserves: int) -> int:
        """``borrows·1e18 / (cash + borrows − reserves)``, floor; 0 without borrows (raw units in, mantissa out)."""
        if borrows == 0:
            return 0
        return _div(borrows * EXP_SCALE, _sub(cash + borrows, reserves, "− reserves"), "utilisation")

    def borrow_rate(self, cash: int, borrows: int, reserves: int) -> int:
        """``getBorrowRate``: per-block mantissa, ``util·mult/1e18 + base`` up to the kink, plus
        ``(util − kink)·jump/1e18`` above it."""
        util = self.utilization_rate(cash, borrows, reserves)
        if util <= self.kink:
            return util * self.multiplier_per_block // EXP_SCALE + self.base_rate_per_block
        normal = self.kink * self.multiplier_per_block // EXP_SCALE + self.base_rate_per_block
        return (util - self.kink) * self.jump_multiplier_per_block // EXP_SCALE + normal

    def supply_rate(self, cash: int, borrows: int, reserves: int, reserve_factor: int) -> int:
        """``getSupplyRate``: ``util · (borrowRate·(1e18 − reserveFactor)/1e18) / 1e18``, per-block mantissa."""
        to_pool = self.borrow_rate(cash, borrows, reserves) * _sub(EXP_SCALE, reserve_factor, "1 − RF") // EXP_SCALE
        return self.utilization_rate(cash, borrows, reserves) * to_pool // EXP_SCALE


class Accrual(NamedTuple):
    """What ``accrueInterest`` writes (and its ``AccrueInterest`` event reports)."""

    interest_accumulated: int
    total_borrows: int
    total_reserves: int
    borrow_index: int


def accrue_interest(
    *, cash: int, total_borrows: int, total_reserves: int, borrow_index: int, block_delta: int,
    reserve_factor: int, borrow_rate: int | None = None, model: JumpRateModel | None = None,
) -> Accrual:
    """``CToken.accrueInterest``: simple interest over ``block_delta`` blocks at the rate read before the accrual.

    Parameters
    ----------
    cash, total_borrows, total_reserves : int, underlying raw units, before the accrual
    borrow_index : int, mantissa, before the accrual
    block_delta : int, blocks since ``accrualBlockNumber`` (0: nothing changes, as on-chain)
    reserve_factor : int, mantissa
    borrow_rate : int, optional, per-block mantissa
        The model's ``getBorrowRate(cash, borrows, reserves)``; or pass ``model`` to compute it.

    Returns
    -------
    Accrual
        ``factor = rate·Δ``; ``interest = factor·borrows/1e18``; ``borrows + interest``;
        ``reserves + RF·interest/1e18``; ``index + factor·index/1e18`` (every step a floor).

    Raises
    ------
    ProtocolRevert
        ``"borrow rate is absurdly high"`` above :data:`BORROW_RATE_MAX_MANTISSA`.
    """
    if (borrow_rate is None) == (model is None):
        raise ValueError("pass exactly one of borrow_rate and model")
    if block_delta == 0:  # the contract returns before reading the rate
        return Accrual(0, total_borrows, total_reserves, borrow_index)
    if borrow_rate is None:
        borrow_rate = model.borrow_rate(cash, total_borrows, total_reserves)
    if borrow_rate > BORROW_RATE_MAX_MANTISSA:
        raise ProtocolRevert("borrow rate is absurdly high", f"{borrow_rate} per block")
    factor = _over(borrow_rate * _uint("block_delta", block_delta), "rate × blocks", False)
    interest = _mul_truncate(factor, total_borrows, "interest")
    return Accrual(
        interest,
        _over(total_borrows + interest, "total borrows", False),
        _over(_mul_truncate(reserve_factor, interest, "reserves") + total_reserves, "total reserves", False),
        _over(_mul_truncate(factor, borrow_index, "index") + borrow_index, "borrow index", False),
    )


# --- Comptroller ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketSnapshot:
    """One market of an account, as ``getAccountSnapshot`` and the Comptroller see it.

    ``c_token_balance`` (cToken raw units), ``borrow_balance`` (underlying raw units, ``borrowBalanceStored``),
    ``exchange_rate`` (mantissa, ``exchangeRateStored``), ``price`` (oracle mantissa, 1e(36 − decimals)),
    ``collateral_factor`` (mantissa ≤ 0.9e18); ``entered`` is membership in ``accountAssets`` (markets not
    entered do not count for liquidity but can still be seized)."""

    c_token_balance: int
    borrow_balance: int
    exchange_rate: int
    price: int
    collateral_factor: int
    entered: bool = True


def _snapshot(m: MarketSnapshot | Sequence[int]) -> MarketSnapshot:
    return m if isinstance(m, MarketSnapshot) else MarketSnapshot(*m)


def account_sums(
    markets: Iterable[MarketSnapshot | Sequence[int]], *, modify: int | None = None, redeem_tokens: int = 0,
    borrow_amount: int = 0, legacy_rounding: bool = False,
) -> tuple[int, int]:
    """``(sumCollateral, sumBorrowPlusEffects)`` of ``getHypotheticalAccountLiquidityInternal``, USD·1e18.

    Parameters
    ----------
    markets : iterable of MarketSnapshot or ``(c_token_balance, borrow_balance, exchange_rate, price,
        collateral_factor)`` tuples, in ``accountAssets`` order.
    modify : int, optional
        Index of ``cTokenModify``: its ``redeem_tokens`` (cToken raw) and ``borrow_amount`` (underlying raw)
        are added to the borrow side, as ``redeemAllowed``/``borrowAllowed`` ask.
    legacy_rounding : bool
        Half-up ``mulExp3`` for ``CF × exchangeRate × price`` (Exponential-based Comptrollers).

    Returns
    -------
    (sum_collateral, sum_borrow) : ints
        ``Σ trunc(trunc(trunc(CF·ER)·price)·cTokens)`` and ``Σ trunc(price·borrow)`` (each ``/1e18``).

    Raises
    ------
    ProtocolRevert
        ``"PRICE_ERROR"`` when an entered market's price is 0.
    """
    sum_collateral = sum_borrow = 0
    for i, raw in enumerate(markets):
        m = _snapshot(raw)
        if not m.entered:
            continue
        if m.price == 0:
            raise _fail(ComptrollerError.PRICE_ERROR, f"market {i} has no price")
        legacy = legacy_rounding  # short name: it is passed to every step below
        to_denom = _mul_exp(_mul_exp(m.collateral_factor, m.exchange_rate, "CF × ER", legacy), m.price,
                            "× price", legacy)
        sum_collateral = _over(_mul_truncate(to_denom, m.c_token_balance, "collateral", legacy) + sum_collateral,
                               "sum collateral", legacy)
        sum_borrow = _over(_mul_truncate(m.price, m.borrow_balance, "borrow", legacy) + sum_borrow, "sum borrow",
                           legacy)
        if i == modify:
            sum_borrow = _over(_mul_truncate(to_denom, redeem_tokens, "redeem", legacy) + sum_borrow, "redeem", legacy)
            sum_borrow = _over(_mul_truncate(m.price, borrow_amount, "borrow", legacy) + sum_borrow, "borrow", legacy)
    return sum_collateral, sum_borrow


def account_liquidity(
    markets: Iterable[MarketSnapshot | Sequence[int]], *, modify: int | None = None, redeem_tokens: int = 0,
    borrow_amount: int = 0, legacy_rounding: bool = False,
) -> tuple[int, int]:
    """``Comptroller.getAccountLiquidity`` (``getHypotheticalAccountLiquidity`` with ``modify``): ``(liquidity,
    shortfall)`` in USD·1e18, at most one of them non-zero; the account is liquidatable iff shortfall > 0.

    Takes the arguments of :func:`account_sums`; equal sums give ``(0, 0)``.
    """
    coll, borrow = account_sums(markets, modify=modify, redeem_tokens=redeem_tokens, borrow_amount=borrow_amount,
                                legacy_rounding=legacy_rounding)
    return (coll - borrow, 0) if coll > borrow else (0, borrow - coll)


def max_repay(borrow_balance: int, close_factor: int) -> int:
    """``maxClose`` of ``liquidateBorrowAllowed``: ``closeFactor × borrowBalanceStored / 1e18``, floor.

    Parameters
    ----------
    borrow_balance : int, underlying raw units of the borrowed market
    close_factor : int, mantissa (0.5e18)
    """
    return _mul_truncate(_uint("close_factor", close_factor), _uint("borrow_balance", borrow_balance), "max close")


def liquidate_borrow_allowed(
    *, shortfall: int, borrow_balance: int, repay_amount: int, close_factor: int, deprecated: bool = False,
) -> int:
    """``Comptroller.liquidateBorrowAllowed`` after the listing checks; returns the largest repay it accepts.

    Parameters
    ----------
    shortfall : int, USD·1e18, from :func:`account_liquidity`
    borrow_balance : int, underlying raw units (``borrowBalanceStored`` of the borrowed market)
    repay_amount : int, underlying raw units
    close_factor : int, mantissa
    deprecated : bool
        ``isDeprecated(cTokenBorrowed)`` (CF 0, borrowing paused, reserve factor 1e18; Comptrollers from 2021
        on): any borrow may be repaid in full, shortfall or not.

    Raises
    ------
    ProtocolRevert
        ``"INSUFFICIENT_SHORTFALL"`` (shortfall 0), ``"TOO_MUCH_REPAY"`` (repay > :func:`max_repay`); deprecated:
        ``"Can not repay more than the total borrow"``.
    """
    _uint("repay_amount", repay_amount)
    if deprecated:
        if repay_amount > borrow_balance:
            raise ProtocolRevert("Can not repay more than the total borrow")
        return borrow_balance
    if shortfall == 0:
        raise _fail(ComptrollerError.INSUFFICIENT_SHORTFALL)
    limit = max_repay(borrow_balance, close_factor)
    if repay_amount > limit:
        raise _fail(ComptrollerError.TOO_MUCH_REPAY, f"repay {repay_amount} > maxClose {limit}")
    return limit


def seize_ratio(
    *, price_borrowed: int, price_collateral: int, exchange_rate: int, liquidation_incentive: int,
    legacy_rounding: bool = False,
) -> int:
    """The ``ratio`` Exp of ``liquidateCalculateSeizeTokens``: collateral cTokens (raw) per borrowed raw unit × 1e18.

    ``numerator = trunc(incentive·priceBorrowed)``, ``denominator = trunc(priceCollateral·exchangeRate)`` (half-up
    with ``legacy_rounding``), ``ratio = numerator·1e18 / denominator``, floor. Only ~``log10(ratio)`` digits
    survive: 3,000,000 (7 digits) for DAI repaid against cETH at $1,800.

    Raises
    ------
    ProtocolRevert
        ``"PRICE_ERROR"`` when a price is 0; ``"panic 0x12"`` when the denominator truncates to 0.
    """
    _uints(price_borrowed=price_borrowed, price_collateral=price_collateral, exchange_rate=exchange_rate,
           liquidation_incentive=liquidation_incentive)
    if price_borrowed == 0 or price_collateral == 0:
        raise _fail(ComptrollerError.PRICE_ERROR)
    numerator = _mul_exp(liquidation_incentive, price_borrowed, "incentive × price", legacy_rounding)
    denominator = _mul_exp(price_collateral, exchange_rate, "price × exchange rate", legacy_rounding)
    return _div(_over(numerator * EXP_SCALE, "ratio", legacy_rounding), denominator, "denominator", legacy_rounding)


def liquidate_calculate_seize_tokens(
    *, price_borrowed: int, price_collateral: int, exchange_rate: int, liquidation_incentive: int,
    repay_amount: int, legacy_rounding: bool = False,
) -> int:
    """``Comptroller.liquidateCalculateSeizeTokens``: collateral cTokens (raw) seized for ``repay_amount``.

    Parameters
    ----------
    price_borrowed, price_collateral : int, oracle mantissas (``getUnderlyingPrice``, 1e(36 − decimals))
    exchange_rate : int, mantissa, the collateral cToken's ``exchangeRateStored``
    liquidation_incentive : int, mantissa (1.08e18 = 8 % bonus, principal included)
    repay_amount : int, borrowed underlying raw units (``actualRepayAmount``)

    Returns
    -------
    int, cToken raw units: ``trunc(seize_ratio(...) × repay / 1e18)``. The borrower's balance is not checked
    here (the CToken reverts with ``"LIQUIDATE_SEIZE_TOO_MUCH"``; see :func:`liquidate_borrow`).
    """
    ratio = seize_ratio(price_borrowed=price_borrowed, price_collateral=price_collateral,
                        exchange_rate=exchange_rate, liquidation_incentive=liquidation_incentive,
                        legacy_rounding=legacy_rounding)
    return _mul_truncate(ratio, _uint("repay_amount", repay_amount), "seize tokens", legacy_rounding)


def max_repay_for_collateral(
    *, c_token_balance: int, price_borrowed: int, price_collateral: int, exchange_rate: int,
    liquidation_incentive: int, legacy_rounding: bool = False,
) -> int:
    """Largest repay (borrowed raw units) whose seizure fits ``c_token_balance``: ``⌊((B + 1)·1e18 − 1)/ratio⌋``.

    Not a contract function: what a liquidator passes so that ``LIQUIDATE_SEIZE_TOO_MUCH`` cannot happen.
    ``2**256 − 2`` when the ratio is 0 (every repay seizes nothing).
    """
    ratio = seize_ratio(price_borrowed=price_borrowed, price_collateral=price_collateral,
                        exchange_rate=exchange_rate, liquidation_incentive=liquidation_incentive,
                        legacy_rounding=legacy_rounding)
    if ratio == 0:
        return UINT256_MAX - 1
    return min(((_uint("c_token_balance", c_token_balance) + 1) * EXP_SCALE - 1) // ratio, UINT256_MAX - 1)


def seize_split(
    seize_tokens: int, exchange_rate: int, protocol_seize_share: int = PROTOCOL_SEIZE_SHARE_MANTISSA,
) -> tuple[int, int, int]:
    """``CToken.seizeInternal``'s split of the seized cTokens.

    Parameters
    ----------
    seize_tokens : int, cToken raw units
    exchange_rate : int, mantissa, the collateral's ``exchangeRateStored`` (before the seize)
    protocol_seize_share : int, mantissa (2.8e16; 0 for implementations without a protocol share)

    Returns
    -------
    (liquidator_tokens, protocol_tokens, reserves_added) : ints
        ``protocol = trunc(seize·share)`` cTokens are burned (``totalSupply −= protocol``) and
        ``trunc(exchangeRate·protocol)`` underlying raw units join ``totalReserves``; the liquidator gets the rest.
    """
    _uints(seize_tokens=seize_tokens, exchange_rate=exchange_rate, protocol_seize_share=protocol_seize_share)
    protocol = _mul_truncate(protocol_seize_share, seize_tokens, "protocol share")
    liquidator = _sub(seize_tokens, protocol, "liquidator tokens")
    return liquidator, protocol, _mul_truncate(exchange_rate, protocol, "protocol seize amount")


@dataclass(frozen=True)
class LiquidationOutcome:
    """One ``liquidateBorrow``: amounts in raw units (repay/borrow: borrowed underlying; tokens: collateral
    cTokens; reserves: collateral underlying); ``shortfall_before`` is USD·1e18 (None on the deprecated path)."""

    repay_amount: int
    seize_tokens: int
    liquidator_tokens: int
    protocol_tokens: int
    reserves_added: int
    borrow_balance_after: int
    collateral_tokens_after: int
    shortfall_before: int | None


def liquidate_borrow(
    markets: Sequence[MarketSnapshot | Sequence[int]], *, borrowed: int, collateral: int, repay_amount: int,
    close_factor: int, liquidation_incentive: int, protocol_seize_share: int = PROTOCOL_SEIZE_SHARE_MANTISSA,
    deprecated: bool = False, legacy_rounding: bool = False,
) -> LiquidationOutcome:
    """``CToken.liquidateBorrowFresh`` on one borrower, interest already accrued in both markets.

    Parameters
    ----------
    markets : the borrower's markets (see :func:`account_sums`)
    borrowed, collateral : int
        Indices into ``markets`` of ``cTokenBorrowed`` and ``cTokenCollateral`` (may be equal).
    repay_amount : int, borrowed underlying raw units
    close_factor, liquidation_incentive, protocol_seize_share : int, mantissas
    deprecated, legacy_rounding : bool, see :func:`liquidate_borrow_allowed` and :func:`account_sums`

    Raises
    ------
    ProtocolRevert
        In the contract's order: the Comptroller's rejection by its ``Error`` name (``"PRICE_ERROR"``,
        ``"INSUFFICIENT_SHORTFALL"``, ``"TOO_MUCH_REPAY"``; the CToken wraps it as
        ``LiquidateComptrollerRejection(code)``, legacy ``LIQUIDATE_COMPTROLLER_REJECTION``); then
        ``"LiquidateCloseAmountIsZero"``, ``"LiquidateCloseAmountIsUintMax"``,
        ``"LIQUIDATE_COMPTROLLER_CALCULATE_AMOUNT_SEIZE_FAILED"`` (collateral price 0) and
        ``"LIQUIDATE_SEIZE_TOO_MUCH"`` (seize > the borrower's cTokens).
    """
    snaps = [_snapshot(m) for m in markets]
    debt, coll = snaps[borrowed], snaps[collateral]
    shortfall = None
    try:
        if not deprecated:
            shortfall = account_liquidity(snaps, legacy_rounding=legacy_rounding)[1]
        liquidate_borrow_allowed(shortfall=shortfall or 0, borrow_balance=debt.borrow_balance,
                                 repay_amount=repay_amount, close_factor=close_factor, deprecated=deprecated)
    except ProtocolRevert as err:
        code = ComptrollerError.__members__.get(err.reason)
        if code is not None:
            raise ProtocolRevert(err.reason, f"LiquidateComptrollerRejection({code.value})") from None
        raise
    if repay_amount == 0:
        raise ProtocolRevert("LiquidateCloseAmountIsZero", "legacy: LIQUIDATE_CLOSE_AMOUNT_IS_ZERO")
    if repay_amount == UINT256_MAX:
        raise ProtocolRevert("LiquidateCloseAmountIsUintMax", "legacy: LIQUIDATE_CLOSE_AMOUNT_IS_UINT_MAX")
    debt_after = _sub(debt.borrow_balance, repay_amount, "account borrows − repay")
    try:
        seize = liquidate_calculate_seize_tokens(
            price_borrowed=debt.price, price_collateral=coll.price, exchange_rate=coll.exchange_rate,
            liquidation_incentive=liquidation_incentive, repay_amount=repay_amount, legacy_rounding=legacy_rounding)
    except ProtocolRevert as err:
        if err.reason != "PRICE_ERROR":
            raise
        raise ProtocolRevert("LIQUIDATE_COMPTROLLER_CALCULATE_AMOUNT_SEIZE_FAILED", "PRICE_ERROR") from None
    if coll.c_token_balance < seize:
        raise ProtocolRevert("LIQUIDATE_SEIZE_TOO_MUCH", f"seize {seize} > balance {coll.c_token_balance}")
    liquidator, protocol, reserves = seize_split(seize, coll.exchange_rate, protocol_seize_share)
    return LiquidationOutcome(repay_amount, seize, liquidator, protocol, reserves, debt_after,
                              coll.c_token_balance - seize, shortfall)


def residual_bad_debt(markets: Iterable[MarketSnapshot | Sequence[int]]) -> int:
    """PROTOCOLS §10.2 for Compound v2: ``Σ trunc(price·borrow)`` (USD·1e18) if the account holds no cTokens in
    any of ``markets``, else 0 — v2 never writes such debt off, it keeps accruing."""
    snaps = [_snapshot(m) for m in markets]
    if any(m.c_token_balance for m in snaps):
        return 0
    return sum(_mul_truncate(m.price, m.borrow_balance, "bad debt") for m in snaps)


# --- float64 counterpart (what the replay model computes) ---------------------------------------------------


class FloatLiquidation(NamedTuple):
    """One liquidation in floats: ``repay`` (borrowed tokens), ``seized`` and ``protocol`` (collateral underlying
    tokens; ``protocol`` is the part that joins reserves), ``capped`` (the collateral balance, not the close
    factor or the offer, set the size) and ``penalty_usd`` (§10.6: ``seized·p_c − repay·p_b``)."""

    repay: float
    seized: float
    protocol: float
    capped: bool
    penalty_usd: float


_TIE = 1e-14  # a ratio a few ulps below an integer mantissa is that integer (exact inputs such as 0.03 · 1e8)


def liquidate_float(
    *, borrow_balance: float, collateral_balance: float, price_borrowed: float, price_collateral: float,
    close_factor: float = 0.5, liquidation_incentive: float = 1.08, protocol_seize_share: float = 0.028,
    repay_amount: float = math.inf, exchange_rate: float | None = None, borrowed_decimals: int | None = None,
    c_token_decimals: int = C_TOKEN_DECIMALS,
) -> FloatLiquidation:
    """One Compound v2 liquidation in float64: repay at the close factor, seize with the incentive.

    ``repay = min(close_factor·borrow, repay_amount, what the collateral covers)`` and
    ``seized = repay·incentive·p_b/p_c``; ``protocol = seized·protocol_seize_share``. This is the formula of the
    replay model (``liquidation = "compound-v2"``, ``backtest.models.lending``). Where the contract would revert with
    ``LIQUIDATE_SEIZE_TOO_MUCH`` it shrinks the repay to take the whole balance, as a liquidator would.

    Parameters
    ----------
    borrow_balance : float, borrowed tokens
    collateral_balance : float, collateral underlying tokens (cTokens × exchange rate)
    price_borrowed, price_collateral : float, USD per token
    close_factor : float, fraction; 1.0 for a deprecated market
    liquidation_incentive : float, ≥ 1 (1.08 = 8 % bonus)
    protocol_seize_share : float, fraction of the seized tokens (0 before 2021 / cETH)
    repay_amount : float, borrowed tokens the liquidator offers (``inf``: as much as allowed)
    exchange_rate : float, optional, collateral underlying tokens per cToken
    borrowed_decimals : int, optional
        With ``exchange_rate``, truncate the seize ratio to the contract's 1e18 Exp grid (1e(18 + cToken
        decimals − borrowed decimals) steps per cToken per borrowed token). Without it the ratio is exact,
        which seizes up to ``1e18/ratio`` (relative) more than the contract: 3e-7 for DAI against cETH.

    Returns
    -------
    FloatLiquidation
    """
    if not (price_borrowed > 0 and price_collateral > 0):
        raise ValueError(f"prices must be positive, got {price_borrowed!r}, {price_collateral!r}")
    per_token = liquidation_incentive * price_borrowed / price_collateral  # collateral tokens per borrowed token
    if exchange_rate is not None and borrowed_decimals is not None:
        steps = 10.0 ** (18 + c_token_decimals - borrowed_decimals)
        ratio = per_token / exchange_rate * steps
        per_token = math.floor(ratio * (1.0 + _TIE)) / steps * exchange_rate
    wanted = min(close_factor * borrow_balance, repay_amount)
    cover = collateral_balance / per_token if per_token > 0 else math.inf
    repay = min(wanted, cover)
    seized = collateral_balance if cover < wanted else repay * per_token
    return FloatLiquidation(repay, seized, seized * protocol_seize_share, cover < wanted,
                            seized * price_collateral - repay * price_borrowed)


def account_liquidity_float(markets: Iterable[Sequence[float]]) -> tuple[float, float]:
    """``(liquidity, shortfall)`` in USD from ``(collateral_balance, borrow_balance, price, collateral_factor)``
    per entered market (underlying tokens, tokens, USD per token, fraction): ``Σ c·p·CF`` against ``Σ d·p``."""
    coll = borrow = 0.0
    for c, d, p, cf in markets:
        coll += c * p * cf
        borrow += d * p
    return (coll - borrow, 0.0) if coll > borrow else (0.0, borrow - coll)


__all__ = [
    "BLOCKS_PER_YEAR",
    "BORROW_RATE_MAX_MANTISSA",
    "CLOSE_FACTOR_MAX_MANTISSA",
    "CLOSE_FACTOR_MIN_MANTISSA",
    "COLLATERAL_FACTOR_MAX_MANTISSA",
    "C_TOKEN_DECIMALS",
    "EXP_SCALE",
    "PROTOCOL_SEIZE_SHARE_MANTISSA",
    "Accrual",
    "ComptrollerError",
    "FloatLiquidation",
    "JumpRateModel",
    "LiquidationOutcome",
    "MarketSnapshot",
    "account_liquidity",
    "account_liquidity_float",
    "account_sums",
    "accrue_interest",
    "borrow_balance",
    "exchange_rate",
    "liquidate_borrow",
    "liquidate_borrow_allowed",
    "liquidate_calculate_seize_tokens",
    "liquidate_float",
    "max_repay",
    "max_repay_for_collateral",
    "seize_ratio",
    "seize_split",
]
