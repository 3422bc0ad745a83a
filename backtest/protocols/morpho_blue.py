"""Morpho Blue's ``liquidate`` as an exact integer replica on Python ints, with its float counterpart.

The integer layer reproduces ``Morpho.liquidate`` of morpho-org/morpho-blue v1 (``src/Morpho.sol`` with
``SharesMathLib``, ``MathLib``, ``UtilsLib``, ``ConstantsLib``) to the wei, on state whose interest has
already been accrued (the contract calls ``_accrueInterest`` first; pass the accrued totals). Every
intermediate result is a checked ``uint256``: under/overflow reverts with ``"panic 0x11"``, a division by
zero with ``"panic 0x12"``, a ``toUint128`` cast of a too-large amount with ``"max uint128 exceeded"``, and
the contract's own checks with ``"inconsistent input"`` and ``"position is healthy"``, all as
:class:`~backtest.protocols.ProtocolRevert`. Inputs that no contract call could carry (negative numbers,
storage fields above ``2**128 - 1``, non-ints) raise ``ValueError`` instead.

Units: amounts are raw token units (``10 * 10**18`` = 10 WETH, ``15_000 * 10**6`` = 15,000 USDC), borrow
shares are raw shares (a fresh market mints ``10**6`` shares per loan-token unit), ``lltv`` and the
liquidation incentive factor are WAD (``86 * 10**16`` = 86 %), and ``oracle_price`` is what
``IOracle.price()`` returns: loan-token units per collateral-token unit scaled by ``1e36``
(``P_coll/P_loan · 1e36 · 10**(dec_loan − dec_coll)``; WETH at $1,700 in USDC is ``17 * 10**26``).

>>> r = liquidate(lltv=86 * 10**16, oracle_price=17 * 10**26, borrow_shares=15 * 10**15,
...               collateral=10 * 10**18, total_borrow_assets=15_000 * 10**6,
...               total_borrow_shares=15 * 10**15, total_supply_assets=20_000 * 10**6,
...               repaid_shares=15 * 10**15)
>>> r.seized_assets, r.collateral_after, r.bad_debt_assets
(9210364730000000000, 789635270000000000, 0)

:func:`liquidate_float` is the same call in float64 without any rounding (see its docstring for how it
relates to the replay model ``morpho-blue`` of :mod:`backtest.models.lending`).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import UINT256_MAX, ProtocolRevert, checked

WAD = 10**18
ORACLE_PRICE_SCALE = 10**36
VIRTUAL_SHARES = 10**6
VIRTUAL_ASSETS = 1
LIQUIDATION_CURSOR = 3 * 10**17
MAX_LIQUIDATION_INCENTIVE_FACTOR = 115 * 10**16
UINT128_MAX = 2**128 - 1

HEALTHY_POSITION = "position is healthy"
INCONSISTENT_INPUT = "inconsistent input"
MAX_UINT128_EXCEEDED = "max uint128 exceeded"
PANIC_ARITHMETIC = "panic 0x11"
PANIC_DIVISION_BY_ZERO = "panic 0x12"


def _uint(name: str, value: int, limit: int = UINT256_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: expected an int, got {type(value).__name__}")
    if value < 0 or value > limit:
        raise ValueError(f"{name}: must satisfy 0 ≤ {name} ≤ {limit}, got {value}")
    return value


def _to_uint128(value: int) -> int:
    # UtilsLib.toUint128: a require, not a panic
    if value > UINT128_MAX:
        raise ProtocolRevert(MAX_UINT128_EXCEEDED, str(value))
    return value


# --- MathLib -----------------------------------------------------------------------------------------------


def mul_div_down(x: int, y: int, d: int) -> int:
    """``x·y / d`` rounded down (``MathLib.mulDivDown``), raw ints.

    Raises
    ------
    ProtocolRevert
        ``"panic 0x11"`` when ``x·y`` exceeds ``2**256 − 1``; ``"panic 0x12"`` when ``d == 0``.
    """
    product = checked(x * y, "mulDivDown: x·y")
    if d == 0:
        raise ProtocolRevert(PANIC_DIVISION_BY_ZERO, "mulDivDown by zero")
    return product // d


def mul_div_up(x: int, y: int, d: int) -> int:
    """``(x·y + (d − 1)) / d``, i.e. ``x·y / d`` rounded up (``MathLib.mulDivUp``), raw ints.

    Raises
    ------
    ProtocolRevert
        ``"panic 0x11"`` when ``x·y + d − 1`` leaves uint256, and also when ``d == 0`` (``d − 1``
        underflows before the division is reached).
    """
    numerator = checked(checked(x * y, "mulDivUp: x·y") + checked(d - 1, "mulDivUp: d − 1"), "mulDivUp")
    return numerator // d


def w_mul_down(x: int, y: int) -> int:
    """``x·y / 1e18`` rounded down (``MathLib.wMulDown``; wad × wad → wad, or amount × wad → amount)."""
    return mul_div_down(x, y, WAD)


def w_div_down(x: int, y: int) -> int:
    """``x·1e18 / y`` rounded down (``MathLib.wDivDown``)."""
    return mul_div_down(x, WAD, y)


def w_div_up(x: int, y: int) -> int:
    """``x·1e18 / y`` rounded up (``MathLib.wDivUp``)."""
    return mul_div_up(x, WAD, y)


# --- SharesMathLib (virtual shares 1e6, virtual assets 1) -------------------------------------------------


def to_shares_down(assets: int, total_assets: int, total_shares: int) -> int:
    """Shares worth ``assets``, rounded down: ``assets·(TS + 1e6) / (TA + 1)`` (``SharesMathLib.toSharesDown``).

    Parameters
    ----------
    assets : int, raw loan-token units
    total_assets, total_shares : int, the market's raw totals (borrow or supply side)
    """
    return mul_div_down(assets, checked(total_shares + VIRTUAL_SHARES), checked(total_assets + VIRTUAL_ASSETS))


def to_shares_up(assets: int, total_assets: int, total_shares: int) -> int:
    """Shares worth ``assets``, rounded up (``SharesMathLib.toSharesUp``); units as :func:`to_shares_down`."""
    return mul_div_up(assets, checked(total_shares + VIRTUAL_SHARES), checked(total_assets + VIRTUAL_ASSETS))


def to_assets_down(shares: int, total_assets: int, total_shares: int) -> int:
    """Assets (raw loan units) worth ``shares``, rounded down: ``shares·(TA + 1) / (TS + 1e6)``
    (``SharesMathLib.toAssetsDown``)."""
    return mul_div_down(shares, checked(total_assets + VIRTUAL_ASSETS), checked(total_shares + VIRTUAL_SHARES))


def to_assets_up(shares: int, total_assets: int, total_shares: int) -> int:
    """Assets (raw loan units) worth ``shares``, rounded up (``SharesMathLib.toAssetsUp``)."""
    return mul_div_up(shares, checked(total_assets + VIRTUAL_ASSETS), checked(total_shares + VIRTUAL_SHARES))


# --- health and incentive ---------------------------------------------------------------------------------


def liquidation_incentive_factor(lltv: int) -> int:
    """``min(1.15e18, wDivDown(1e18, 1e18 − wMulDown(0.3e18, 1e18 − lltv)))``, WAD, as ``liquidate`` computes it.

    Parameters
    ----------
    lltv : int, WAD (``86 * 10**16`` → ``1_043_841_336_116_910_229``)

    Raises
    ------
    ProtocolRevert
        ``"panic 0x11"`` for ``lltv > 1e18`` (no market can have it: ``enableLltv`` requires ``lltv < 1e18``).
    """
    discount = w_mul_down(LIQUIDATION_CURSOR, checked(WAD - lltv, "WAD − lltv"))
    return min(MAX_LIQUIDATION_INCENTIVE_FACTOR, w_div_down(WAD, checked(WAD - discount)))


def max_borrow(collateral: int, oracle_price: int, lltv: int) -> int:
    """Most a position may owe and stay healthy: ``wMulDown(mulDivDown(collateral, price, 1e36), lltv)``.

    Parameters
    ----------
    collateral : int, raw collateral-token units
    oracle_price : int, loan units per collateral unit × 1e36 (``IOracle.price()``)
    lltv : int, WAD

    Returns
    -------
    int, raw loan-token units (the ``maxBorrow`` of ``Morpho._isHealthy``)
    """
    return w_mul_down(mul_div_down(collateral, oracle_price, ORACLE_PRICE_SCALE), lltv)


def is_healthy(
    lltv: int, oracle_price: int, borrow_shares: int, collateral: int, total_borrow_assets: int,
    total_borrow_shares: int,
) -> bool:
    """``Morpho._isHealthy``: ``max_borrow(collateral, price, lltv) ≥ toAssetsUp(borrow_shares)``.

    Parameters
    ----------
    lltv : int, WAD
    oracle_price : int, 1e36-scaled (``IOracle.price()``)
    borrow_shares : int, the position's raw borrow shares
    collateral : int, the position's raw collateral units
    total_borrow_assets, total_borrow_shares : int, the market's accrued raw totals

    Returns
    -------
    bool, True when the position may not be liquidated (always True without borrow shares)
    """
    borrowed = to_assets_up(borrow_shares, total_borrow_assets, total_borrow_shares)
    return max_borrow(collateral, oracle_price, lltv) >= borrowed


# --- liquidate --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Liquidation:
    """Outcome of one ``liquidate`` call, raw ints. The first five fields are the ``Liquidate`` event's data
    (``repaidAssets, repaidShares, seizedAssets, badDebtAssets, badDebtShares``); the ``*_after`` fields are
    the position's and market's storage once the call returns."""

    repaid_assets: int
    repaid_shares: int
    seized_assets: int
    bad_debt_assets: int
    bad_debt_shares: int
    borrow_shares_after: int
    collateral_after: int
    total_borrow_assets_after: int
    total_borrow_shares_after: int
    total_supply_assets_after: int


def liquidate(
    *, lltv: int, oracle_price: int, borrow_shares: int, collateral: int, total_borrow_assets: int,
    total_borrow_shares: int, total_supply_assets: int, seized_assets: int = 0, repaid_shares: int = 0,
) -> Liquidation:
    """``Morpho.liquidate(marketParams, borrower, seizedAssets, repaidShares, data)`` after interest accrual.

    Steps, in the contract's order: exactly one of ``seized_assets`` / ``repaid_shares`` must be non-zero;
    the position must be unhealthy at ``oracle_price``; with ``LIF = liquidation_incentive_factor(lltv)``
    either ``repaidShares = toSharesUp(wDivUp(mulDivUp(seized, price, 1e36), LIF))`` or
    ``seized = mulDivDown(wMulDown(toAssetsDown(repaidShares), LIF), 1e36, price)``; then
    ``repaidAssets = toAssetsUp(repaidShares)``; the position's and the market's borrow shares drop by
    ``repaidShares`` (checked), ``totalBorrowAssets`` by ``repaidAssets`` floored at 0 (``zeroFloorSub``:
    ``repaidAssets`` may exceed it by one), the collateral by ``seized`` (checked). If the collateral is
    then exactly 0, the remaining borrow shares are bad debt: ``badDebtAssets = min(totalBorrowAssets,
    toAssetsUp(badDebtShares))`` on the already reduced totals, subtracted from ``totalBorrowAssets`` and
    ``totalSupplyAssets`` (suppliers' loss), and the shares from ``totalBorrowShares`` and the position.

    Parameters
    ----------
    lltv : int, WAD, ``0 ≤ lltv < 1e18``
    oracle_price : int, loan units per collateral unit × 1e36 (``IOracle.price()``)
    borrow_shares, collateral : int, the borrower's position (raw shares; raw collateral units)
    total_borrow_assets, total_borrow_shares, total_supply_assets : int, the market after ``_accrueInterest``
        (raw loan units; raw shares; raw loan units)
    seized_assets : int, raw collateral units the liquidator asks for (0 when giving ``repaid_shares``)
    repaid_shares : int, raw borrow shares the liquidator repays (0 when giving ``seized_assets``)

    Returns
    -------
    Liquidation

    Raises
    ------
    ProtocolRevert
        ``"inconsistent input"``; ``"position is healthy"``; ``"panic 0x11"`` (repaying more shares than the
        position has, seizing more collateral than it holds, a product leaving uint256); ``"panic 0x12"``
        (``repaid_shares`` with ``oracle_price == 0``); ``"max uint128 exceeded"`` (an amount above
        ``2**128 − 1``).
    ValueError
        An argument no call could carry: not an int, negative, a storage field above ``2**128 − 1``, or
        ``lltv ≥ 1e18``.
    """
    _uint("lltv", lltv, WAD - 1)
    _uint("oracle_price", oracle_price)
    for name, value in (("borrow_shares", borrow_shares), ("collateral", collateral),
                        ("total_borrow_assets", total_borrow_assets), ("total_borrow_shares", total_borrow_shares),
                        ("total_supply_assets", total_supply_assets)):
        _uint(name, value, UINT128_MAX)
    _uint("seized_assets", seized_assets)
    _uint("repaid_shares", repaid_shares)

    if (seized_assets == 0) == (repaid_shares == 0):
        raise ProtocolRevert(INCONSISTENT_INPUT, "exactly one of seized_assets and repaid_shares must be non-zero")
    if is_healthy(lltv, oracle_price, borrow_shares, collateral, total_borrow_assets, total_borrow_shares):
        raise ProtocolRevert(HEALTHY_POSITION)

    lif = liquidation_incentive_factor(lltv)
    if seized_assets > 0:
        seized_quoted = mul_div_up(seized_assets, oracle_price, ORACLE_PRICE_SCALE)
        repaid_shares = to_shares_up(w_div_up(seized_quoted, lif), total_borrow_assets, total_borrow_shares)
    else:
        repaid_value = w_mul_down(to_assets_down(repaid_shares, total_borrow_assets, total_borrow_shares), lif)
        seized_assets = mul_div_down(repaid_value, ORACLE_PRICE_SCALE, oracle_price)
    repaid_assets = to_assets_up(repaid_shares, total_borrow_assets, total_borrow_shares)

    shares_out = _to_uint128(repaid_shares)
    borrow_shares = checked(borrow_shares - shares_out, "position.borrowShares − repaidShares")
    total_borrow_shares = checked(total_borrow_shares - shares_out, "totalBorrowShares − repaidShares")
    total_borrow_assets = max(0, total_borrow_assets - repaid_assets)
    collateral = checked(collateral - _to_uint128(seized_assets), "position.collateral − seizedAssets")

    bad_debt_shares = bad_debt_assets = 0
    if collateral == 0:
        bad_debt_shares = borrow_shares
        bad_debt_assets = min(total_borrow_assets,
                              to_assets_up(bad_debt_shares, total_borrow_assets, total_borrow_shares))
        total_borrow_assets = checked(total_borrow_assets - bad_debt_assets, "totalBorrowAssets − badDebt")
        total_supply_assets = checked(total_supply_assets - bad_debt_assets, "totalSupplyAssets − badDebt")
        total_borrow_shares = checked(total_borrow_shares - bad_debt_shares, "totalBorrowShares − badDebtShares")
        borrow_shares = 0

    return Liquidation(repaid_assets, repaid_shares, seized_assets, bad_debt_assets, bad_debt_shares,
                       borrow_shares, collateral, total_borrow_assets, total_borrow_shares, total_supply_assets)


# --- float counterpart ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiquidationFloat:
    """:class:`Liquidation` in float64, same fields and units (from :func:`liquidate_float`)."""

    repaid_assets: float
    repaid_shares: float
    seized_assets: float
    bad_debt_assets: float
    bad_debt_shares: float
    borrow_shares_after: float
    collateral_after: float
    total_borrow_assets_after: float
    total_borrow_shares_after: float
    total_supply_assets_after: float


def liquidate_float(
    *, lltv: float, oracle_price: float, borrow_shares: float, collateral: float, total_borrow_assets: float,
    total_borrow_shares: float, total_supply_assets: float, seized_assets: float = 0.0, repaid_shares: float = 0.0,
) -> LiquidationFloat:
    """:func:`liquidate` in float64 with every floor/ceil removed: the mechanics the replay model uses.

    Same arguments and units as :func:`liquidate` (``lltv`` WAD-scaled, ``oracle_price`` 1e36-scaled, raw
    amounts and shares, virtual offsets kept), as floats. In real arithmetic, with ``LIF = min(1.15,
    1/(1 − 0.3·(1 − LLTV)))`` and ``p = oracle_price/1e36``, a call repays ``seized·p/LIF`` of debt for
    ``seized`` collateral, and a call taking all the collateral turns the rest of the debt into bad debt
    charged to suppliers. The replay model ``morpho-blue`` (:mod:`backtest.models.lending`) is this
    function applied once per call with the whole debt: ``repaid_shares = borrow_shares`` when the
    collateral covers ``debt·LIF/p``, else ``seized_assets = collateral`` (``repay = min(d, c·p/LIF)``,
    ``seize = repay·LIF/p``), in token units where the virtual offsets are negligible.

    Each contract rounding moves a result by a raw unit or two (a share-side rounding by up to
    ``(TS + 1e6)/(TA + 1)`` shares, a loan-side one by up to ``1e36/price`` collateral units), so when the
    debt repaid and the collateral seized are each ≥ ~1e10 raw units the results are within 1e-9 relative
    of :func:`liquidate` (property-tested in ``tests/unit/test_morpho_blue.py``). Near-ties (health
    exactly at the LLTV, seizing or repaying within rounding of the whole balance, bad debt triggered by a
    computed seize hitting the balance exactly) may take the other branch. Not modelled: the uint256/uint128
    limits (``"max uint128 exceeded"``, overflow panics).

    Raises
    ------
    ProtocolRevert
        ``"inconsistent input"``, ``"position is healthy"``, ``"panic 0x11"`` (more shares repaid than held,
        more collateral seized than held), ``"panic 0x12"`` (``repaid_shares`` with a zero price), as
        :func:`liquidate`.
    ValueError
        A negative or non-finite argument, or ``lltv`` outside ``[0, 1e18)`` (``0.86`` is ``0.86e18``).
    """
    args = {"lltv": lltv, "oracle_price": oracle_price, "borrow_shares": borrow_shares, "collateral": collateral,
            "total_borrow_assets": total_borrow_assets, "total_borrow_shares": total_borrow_shares,
            "total_supply_assets": total_supply_assets, "seized_assets": seized_assets,
            "repaid_shares": repaid_shares}
    for name, value in args.items():
        if not (value >= 0.0 and value < float("inf")):
            raise ValueError(f"{name}: must be finite and ≥ 0, got {value}")
    if lltv >= WAD or 0.0 < lltv < 1.0:
        raise ValueError(f"lltv: WAD-scaled, 0 ≤ lltv < 1e18 (86 % is 0.86e18), got {lltv}")
    wad, scale = float(WAD), float(ORACLE_PRICE_SCALE)
    assets_per_share = (total_borrow_assets + VIRTUAL_ASSETS) / (total_borrow_shares + VIRTUAL_SHARES)

    if (seized_assets == 0.0) == (repaid_shares == 0.0):
        raise ProtocolRevert(INCONSISTENT_INPUT, "exactly one of seized_assets and repaid_shares must be non-zero")
    if collateral * oracle_price / scale * lltv / wad >= borrow_shares * assets_per_share:
        raise ProtocolRevert(HEALTHY_POSITION)

    lif = min(MAX_LIQUIDATION_INCENTIVE_FACTOR / wad, 1.0 / (1.0 - LIQUIDATION_CURSOR / wad * (1.0 - lltv / wad)))
    if seized_assets > 0.0:
        repaid_shares = seized_assets * oracle_price / scale / lif / assets_per_share
    else:
        if oracle_price == 0.0:
            raise ProtocolRevert(PANIC_DIVISION_BY_ZERO, "mulDivDown by zero")
        seized_assets = repaid_shares * assets_per_share * lif * scale / oracle_price
    repaid_assets = repaid_shares * assets_per_share

    if repaid_shares > borrow_shares or repaid_shares > total_borrow_shares:
        raise ProtocolRevert(PANIC_ARITHMETIC, "position.borrowShares − repaidShares")
    if seized_assets > collateral:
        raise ProtocolRevert(PANIC_ARITHMETIC, "position.collateral − seizedAssets")
    borrow_shares -= repaid_shares
    total_borrow_shares -= repaid_shares
    total_borrow_assets = max(0.0, total_borrow_assets - repaid_assets)
    collateral -= seized_assets

    bad_debt_shares = bad_debt_assets = 0.0
    if collateral == 0.0:
        bad_debt_shares = borrow_shares
        bad_debt_assets = min(total_borrow_assets, bad_debt_shares * (total_borrow_assets + VIRTUAL_ASSETS)
                              / (total_borrow_shares + VIRTUAL_SHARES))
        if bad_debt_assets > total_supply_assets:
            raise ProtocolRevert(PANIC_ARITHMETIC, "totalSupplyAssets − badDebt")
        total_borrow_assets -= bad_debt_assets
        total_supply_assets -= bad_debt_assets
        total_borrow_shares -= bad_debt_shares
        borrow_shares = 0.0

    return LiquidationFloat(repaid_assets, repaid_shares, seized_assets, bad_debt_assets, bad_debt_shares,
                            borrow_shares, collateral, total_borrow_assets, total_borrow_shares, total_supply_assets)


__all__ = [
    "HEALTHY_POSITION",
    "INCONSISTENT_INPUT",
    "LIQUIDATION_CURSOR",
    "MAX_LIQUIDATION_INCENTIVE_FACTOR",
    "MAX_UINT128_EXCEEDED",
    "ORACLE_PRICE_SCALE",
    "PANIC_ARITHMETIC",
    "PANIC_DIVISION_BY_ZERO",
    "UINT128_MAX",
    "VIRTUAL_ASSETS",
    "VIRTUAL_SHARES",
    "WAD",
    "Liquidation",
    "LiquidationFloat",
    "is_healthy",
    "liquidate",
    "liquidate_float",
    "liquidation_incentive_factor",
    "max_borrow",
    "mul_div_down",
    "mul_div_up",
    "to_assets_down",
    "to_assets_up",
    "to_shares_down",
    "to_shares_up",
    "w_div_down",
    "w_div_up",
    "w_mul_down",
]
