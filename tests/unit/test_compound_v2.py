"""Compound v2 (``backtest.protocols.compound_v2``): the PROTOCOLS §3 worked example, revert reasons, interest,
the legacy half-up Comptrollers, invariants of a liquidation, and the float layer held to the integer one.

Units: ``E`` = 1e18 (Exp mantissas and 18-decimal tokens), cTokens have 8 decimals, oracle prices are
``1e(36 − decimals)`` mantissas, exchange rates are underlying raw per cToken raw × 1e18.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st

from backtest.protocols import UINT256_MAX, ProtocolRevert
from backtest.protocols.compound_v2 import (
    PROTOCOL_SEIZE_SHARE_MANTISSA,
    Accrual,
    ComptrollerError,
    JumpRateModel,
    MarketSnapshot,
    account_liquidity,
    account_liquidity_float,
    account_sums,
    accrue_interest,
    borrow_balance,
    exchange_rate,
    liquidate_borrow,
    liquidate_borrow_allowed,
    liquidate_calculate_seize_tokens,
    liquidate_float,
    max_repay,
    max_repay_for_collateral,
    residual_bad_debt,
    seize_ratio,
    seize_split,
)

E = 10**18
CTOKEN = 10**8
TOL = 1e-9

# PROTOCOLS §3: cETH at 0.02 ETH (2e26), ETH $1,800, DAI $1, incentive 1.08, close factor 0.5, CF 0.825.
CETH_RATE = 2 * 10**26
INCENTIVE = 108 * 10**16
CLOSE = 5 * 10**17


def worked_markets(eth_usd: int = 1800, *, eth_ctokens: int = 500, dai_debt: int = 15_000) -> list[MarketSnapshot]:
    """[cETH (collateral, index 0), cDAI (debt, index 1)] of the §3 borrower."""
    return [
        MarketSnapshot(eth_ctokens * CTOKEN, 0, CETH_RATE, eth_usd * E, 825 * 10**15),
        MarketSnapshot(0, dai_debt * E, 21 * 10**25, E, 75 * 10**16),
    ]


def liquidate(markets, repay: int, **kw) -> object:
    return liquidate_borrow(markets, borrowed=1, collateral=0, repay_amount=repay, close_factor=CLOSE,
                            liquidation_incentive=INCENTIVE, **kw)


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


# --- PROTOCOLS §3 worked example ---------------------------------------------------------------------------


def test_worked_example_liquidity():
    markets = worked_markets()
    assert account_sums(markets) == (14_850 * E, 15_000 * E)
    assert account_liquidity(markets) == (0, 150 * E)
    # plain tuples work too, in the same field order
    assert account_liquidity([tuple(vars(m).values())[:5] for m in markets]) == (0, 150 * E)


def test_worked_example_seize():
    assert max_repay(15_000 * E, CLOSE) == 7_500 * E
    assert seize_ratio(price_borrowed=E, price_collateral=1800 * E, exchange_rate=CETH_RATE,
                       liquidation_incentive=INCENTIVE) == 3_000_000
    seize = liquidate_calculate_seize_tokens(price_borrowed=E, price_collateral=1800 * E, exchange_rate=CETH_RATE,
                                             liquidation_incentive=INCENTIVE, repay_amount=7_500 * E)
    assert seize == 22_500_000_000  # 225 cETH = 4.5 ETH
    assert seize_split(seize, CETH_RATE) == (21_870_000_000, 630_000_000, 126 * 10**15)  # 0.126 ETH to reserves


def test_worked_example_whole_call():
    out = liquidate(worked_markets(), 7_500 * E)
    assert (out.repay_amount, out.seize_tokens, out.liquidator_tokens, out.protocol_tokens) == (
        7_500 * E, 22_500_000_000, 21_870_000_000, 630_000_000)
    assert out.reserves_added == 126 * 10**15
    assert out.borrow_balance_after == 7_500 * E
    assert out.collateral_tokens_after == 27_500_000_000  # 275 cETH left
    assert out.shortfall_before == 150 * E


def test_worked_example_float():
    f = liquidate_float(borrow_balance=15_000.0, collateral_balance=10.0, price_borrowed=1.0,
                        price_collateral=1800.0, close_factor=0.5, liquidation_incentive=1.08)
    assert f.repay == 7_500.0 and not f.capped
    assert math.isclose(f.seized, 4.5, rel_tol=1e-15)
    assert math.isclose(f.protocol, 0.126, rel_tol=1e-15)
    assert math.isclose(f.penalty_usd, 0.08 * 7_500, rel_tol=1e-12)  # §10.6: (incentive − 1)·repay
    # the same call on the contract's ratio grid (exact here: the ratio mantissa is 3,000,000 on the nose)
    g = liquidate_float(borrow_balance=15_000.0, collateral_balance=10.0, price_borrowed=1.0,
                        price_collateral=1800.0, exchange_rate=0.02, borrowed_decimals=18)
    assert math.isclose(g.seized / 0.02, 225.0, rel_tol=1e-15)
    assert account_liquidity_float([(10.0, 0.0, 1800.0, 0.825), (0.0, 15_000.0, 1.0, 0.75)]) == pytest.approx(
        (0.0, 150.0), rel=1e-12)


def test_seize_ratio_is_truncated_before_the_repay():
    """The Exp ratio keeps 7 digits for DAI against cETH: at $1,850 it is 2,918,918 (2,918,918.9…), so 7,500 DAI
    seize 21,891,885,000 raw cETH, 6,891 fewer (3.1e-7) than ``repay·num/den`` in one division."""
    k = dict(price_borrowed=E, price_collateral=1850 * E, exchange_rate=CETH_RATE, liquidation_incentive=INCENTIVE)
    assert seize_ratio(**k) == 2_918_918
    assert liquidate_calculate_seize_tokens(**k, repay_amount=7_500 * E) == 21_891_885_000
    assert 7_500 * E * INCENTIVE // (1850 * CETH_RATE) == 21_891_891_891  # the untruncated ratio
    float_args = dict(borrow_balance=15_000.0, collateral_balance=10.0, price_borrowed=1.0, price_collateral=1850.0)
    on_grid = liquidate_float(**float_args, exchange_rate=0.02, borrowed_decimals=18)
    assert rel(on_grid.seized / 0.02 * CTOKEN, 21_891_885_000) <= TOL
    assert rel(liquidate_float(**float_args).seized / 0.02 * CTOKEN, 21_891_891_891) <= TOL


# --- reasons ------------------------------------------------------------------------------------------------


def reason(fn, *args, **kw) -> str:
    with pytest.raises(ProtocolRevert) as info:
        fn(*args, **kw)
    return info.value.reason


def test_healthy_account_is_not_liquidatable():
    markets = worked_markets(2000)  # 16,500 of borrowing power against 15,000
    assert account_liquidity(markets) == (1_500 * E, 0)
    assert reason(liquidate, markets, 7_500 * E) == "INSUFFICIENT_SHORTFALL"
    assert reason(liquidate_borrow_allowed, shortfall=0, borrow_balance=15_000 * E, repay_amount=1,
                  close_factor=CLOSE) == "INSUFFICIENT_SHORTFALL"
    # the Comptroller's check comes first: a zero repay on a healthy account is INSUFFICIENT_SHORTFALL too
    assert reason(liquidate, markets, 0) == "INSUFFICIENT_SHORTFALL"


def test_close_factor_is_inclusive():
    assert liquidate_borrow_allowed(shortfall=1, borrow_balance=15_000 * E, repay_amount=7_500 * E,
                                    close_factor=CLOSE) == 7_500 * E
    assert reason(liquidate_borrow_allowed, shortfall=1, borrow_balance=15_000 * E, repay_amount=7_500 * E + 1,
                  close_factor=CLOSE) == "TOO_MUCH_REPAY"
    with pytest.raises(ProtocolRevert) as info:
        liquidate(worked_markets(), 7_500 * E + 1)
    assert info.value.reason == "TOO_MUCH_REPAY"
    assert "LiquidateComptrollerRejection(17)" in str(info.value)
    assert ComptrollerError.TOO_MUCH_REPAY == 17 and ComptrollerError.INSUFFICIENT_SHORTFALL == 3


def test_deprecated_market_allows_the_whole_borrow():
    markets = worked_markets(2000)  # healthy, but the debt market is deprecated
    out = liquidate(markets, 7_600 * E, deprecated=True)
    assert out.shortfall_before is None and out.borrow_balance_after == 7_400 * E
    assert reason(liquidate, markets, 15_000 * E + 1, deprecated=True) == "Can not repay more than the total borrow"
    assert liquidate_borrow_allowed(shortfall=0, borrow_balance=5, repay_amount=5, close_factor=CLOSE,
                                    deprecated=True) == 5


def test_cToken_level_reasons():
    assert reason(liquidate, worked_markets(), 0) == "LiquidateCloseAmountIsZero"
    # uint max only gets past the Comptroller when the whole balance may be repaid and equals it
    huge = [MarketSnapshot(1, 0, E, E, 0), MarketSnapshot(0, UINT256_MAX, E, 1, 0)]
    assert reason(liquidate, huge, UINT256_MAX, deprecated=True) == "LiquidateCloseAmountIsUintMax"
    # ETH at $700: 7,500 DAI would seize 578.57 cETH out of 500
    assert reason(liquidate, worked_markets(700), 7_500 * E) == "LIQUIDATE_SEIZE_TOO_MUCH"


def test_price_errors():
    markets = worked_markets()
    zero = [markets[0], MarketSnapshot(0, 15_000 * E, 21 * 10**25, 0, 0)]
    assert reason(account_liquidity, zero) == "PRICE_ERROR"
    assert reason(liquidate, zero, 1) == "PRICE_ERROR"
    assert reason(liquidate_calculate_seize_tokens, price_borrowed=E, price_collateral=0, exchange_rate=CETH_RATE,
                  liquidation_incentive=INCENTIVE, repay_amount=1) == "PRICE_ERROR"
    # a collateral market the borrower never entered does not count for liquidity, but its price still matters
    unpriced = [MarketSnapshot(500 * CTOKEN, 0, CETH_RATE, 0, 0, entered=False), markets[1]]
    assert account_liquidity(unpriced) == (0, 15_000 * E)
    assert reason(liquidate, unpriced, 1) == "LIQUIDATE_COMPTROLLER_CALCULATE_AMOUNT_SEIZE_FAILED"


def test_panics_and_bad_inputs():
    assert reason(exchange_rate, 1, 1, 3, 1) == "panic 0x11"  # reserves above cash + borrows
    assert reason(seize_ratio, price_borrowed=E, price_collateral=1, exchange_rate=1,
                  liquidation_incentive=E) == "panic 0x12"  # denominator truncates to 0
    assert reason(seize_ratio, price_borrowed=UINT256_MAX, price_collateral=E, exchange_rate=E,
                  liquidation_incentive=2 * E) == "panic 0x11"
    with pytest.raises(ValueError):
        max_repay(-1, CLOSE)
    with pytest.raises(ValueError):
        exchange_rate(0, 0, 0, 0)  # no supply and no initial rate


# --- legacy (Exponential / CarefulMath) Comptrollers -------------------------------------------------------


def test_legacy_rounding_rounds_exp_products_half_up():
    args = dict(price_borrowed=E // 2, price_collateral=E, exchange_rate=E, liquidation_incentive=1)
    assert seize_ratio(**args) == 0 and seize_ratio(**args, legacy_rounding=True) == 1
    assert liquidate_calculate_seize_tokens(**args, repay_amount=E, legacy_rounding=True) == 1
    market = [MarketSnapshot(E, 0, E // 2, E, 1)]
    assert account_sums(market) == (0, 0) and account_sums(market, legacy_rounding=True) == (1, 0)
    # overflow is MATH_ERROR (a returned code) instead of a panic
    assert reason(seize_ratio, price_borrowed=UINT256_MAX, price_collateral=E, exchange_rate=E,
                  liquidation_incentive=2 * E, legacy_rounding=True) == "MATH_ERROR"
    # at real magnitudes the two agree: the worked example is the same under both
    assert liquidate(worked_markets(), 7_500 * E, legacy_rounding=True) == liquidate(worked_markets(), 7_500 * E)


def test_hypothetical_redeem_and_borrow():
    markets = worked_markets(2000)  # liquidity 1,500
    # redeeming 100 cETH removes 100·0.02·2000·0.825 = 3,300 of borrowing power
    assert account_liquidity(markets, modify=0, redeem_tokens=100 * CTOKEN) == (0, 1_800 * E)
    assert account_liquidity(markets, modify=1, borrow_amount=1_500 * E) == (0, 0)


def test_residual_bad_debt():
    assert residual_bad_debt(worked_markets()) == 0
    assert residual_bad_debt(worked_markets(eth_ctokens=0)) == 15_000 * E


# --- interest and exchange rate ----------------------------------------------------------------------------


def test_exchange_rate_and_borrow_balance():
    assert exchange_rate(1_000 * E, 500 * E, 100 * E, 70_000 * CTOKEN) == CETH_RATE  # 1,400 ETH / 70,000 cETH
    assert exchange_rate(0, 0, 0, 0, initial_exchange_rate=CETH_RATE) == CETH_RATE
    assert borrow_balance(0, 0, E) == 0
    assert borrow_balance(500 * E, E, E + 10**12) == 500 * E + 5 * 10**14
    assert borrow_balance(3, 2 * E, 3 * E) == 4  # 4.5 truncated


def test_accrue_interest():
    got = accrue_interest(cash=0, total_borrows=1_000_000 * E, total_reserves=0, borrow_index=E, block_delta=100,
                          reserve_factor=10**17, borrow_rate=10**10)
    assert got == Accrual(E, 1_000_001 * E, 10**17, E + 10**12)
    same = accrue_interest(cash=0, total_borrows=7, total_reserves=1, borrow_index=E, block_delta=0,
                           reserve_factor=0, borrow_rate=10**18)
    assert same == Accrual(0, 7, 1, E)  # no blocks: nothing is read or checked
    assert reason(accrue_interest, cash=0, total_borrows=1, total_reserves=0, borrow_index=E, block_delta=1,
                  reserve_factor=0, borrow_rate=5 * 10**12 + 1) == "borrow rate is absurdly high"


def test_jump_rate_model_v2():
    model = JumpRateModel.from_per_year(0, 4 * 10**16, 109 * 10**16, 8 * 10**17)  # a cDAI-like curve
    assert model == JumpRateModel(0, 23_782_343_987, 518_455_098_934, 8 * 10**17)
    assert model.utilization_rate(10, 0, 0) == 0
    assert model.borrow_rate(30, 70, 0) == 16_647_640_790  # util 0.7: 0.7e18·mult/1e18
    assert model.borrow_rate(10, 90, 0) == 19_025_875_189 + 51_845_509_893  # kink part + jump part
    assert model.supply_rate(10, 90, 0, 15 * 10**16) == 54_216_609_587
    rate = model.borrow_rate(10 * E, 90 * E, 0)
    via_model = accrue_interest(cash=10 * E, total_borrows=90 * E, total_reserves=0, borrow_index=E,
                                block_delta=3, reserve_factor=0, model=model)
    assert via_model == accrue_interest(cash=10 * E, total_borrows=90 * E, total_reserves=0, borrow_index=E,
                                        block_delta=3, reserve_factor=0, borrow_rate=rate)


# --- properties ---------------------------------------------------------------------------------------------

DECIMALS = st.sampled_from([6, 8, 18])
COLLATERAL_FACTOR = st.one_of(st.just(0), st.integers(10**16, 9 * 10**17))


def magnitude(lo: int, hi: int) -> st.SearchStrategy[int]:
    """Integers spread evenly over the decades 10**lo … 10**(hi + 1)."""
    return st.integers(lo, hi).flatmap(lambda e: st.integers(10**e, 10 ** (e + 1) - 1))


@st.composite
def asset(draw, *, decimals: int | None = None) -> dict:
    """One market: decimals, price mantissa ($0.01–$100,000), exchange rate (0.005–0.5 underlying per cToken)."""
    d = draw(DECIMALS) if decimals is None else decimals
    return {
        "d": d,
        "price": draw(st.integers(10 ** (36 - d - 2), 10 ** (36 - d + 5))),
        "rate": draw(st.integers(10 ** (10 + d) // 200, 10 ** (10 + d) // 2)),
        "cf": draw(COLLATERAL_FACTOR),
    }


@st.composite
def positions(draw, *, sized: bool = False) -> dict:
    """A borrower; ``sized``: at least 100 cTokens and 10 borrowed tokens (the float comparison's domain)."""
    debt, coll = draw(asset()), draw(asset())
    c_tokens = magnitude(10, 17) if sized else st.one_of(st.just(0), magnitude(0, 17))
    borrow = magnitude(debt["d"] + 1, debt["d"] + 8) if sized else st.one_of(st.just(0), magnitude(0, debt["d"] + 8))
    return {
        "debt": debt,
        "coll": coll,
        "same": draw(st.booleans()),
        "c_tokens": draw(c_tokens),
        "borrow": draw(borrow),
        "close": draw(st.integers(5 * 10**16 + 1, 9 * 10**17)),
        "incentive": draw(st.integers(E, 15 * 10**17)),
        "share": draw(st.sampled_from([0, PROTOCOL_SEIZE_SHARE_MANTISSA, draw(st.integers(0, E))])),
        "repay_frac": draw(st.floats(0, 1.05)),
    }


def snapshots(p: dict) -> tuple[list[MarketSnapshot], int, int]:
    debt, coll = p["debt"], p["coll"]
    if p["same"]:  # borrow and collateral in one cToken
        return [MarketSnapshot(p["c_tokens"], p["borrow"], debt["rate"], debt["price"], debt["cf"])], 0, 0
    return [MarketSnapshot(p["c_tokens"], 0, coll["rate"], coll["price"], coll["cf"]),
            MarketSnapshot(0, p["borrow"], debt["rate"], debt["price"], debt["cf"])], 1, 0


@given(p=positions())
def test_liquidation_invariants(p):
    markets, borrowed, collateral = snapshots(p)
    limit = max_repay(p["borrow"], p["close"])
    repay = int(limit * Fraction(p["repay_frac"]))
    try:
        out = liquidate_borrow(markets, borrowed=borrowed, collateral=collateral, repay_amount=repay,
                               close_factor=p["close"], liquidation_incentive=p["incentive"],
                               protocol_seize_share=p["share"])
    except ProtocolRevert as err:
        event(err.reason)
        assert err.reason in {"INSUFFICIENT_SHORTFALL", "TOO_MUCH_REPAY", "LiquidateCloseAmountIsZero",
                              "LIQUIDATE_SEIZE_TOO_MUCH"}
        if err.reason == "TOO_MUCH_REPAY":
            assert repay > limit
        if err.reason == "LIQUIDATE_SEIZE_TOO_MUCH":
            assert repay > max_repay_for_collateral(
                c_token_balance=p["c_tokens"], price_borrowed=markets[borrowed].price,
                price_collateral=markets[collateral].price, exchange_rate=markets[collateral].exchange_rate,
                liquidation_incentive=p["incentive"])
        return
    event("liquidated")
    coll = markets[collateral]
    assert out.shortfall_before > 0
    assert 0 < out.repay_amount <= limit <= p["borrow"]
    assert out.seize_tokens <= coll.c_token_balance  # never more than the borrower holds
    assert out.collateral_tokens_after == coll.c_token_balance - out.seize_tokens >= 0
    assert out.borrow_balance_after == p["borrow"] - out.repay_amount >= 0
    assert out.liquidator_tokens + out.protocol_tokens == out.seize_tokens
    assert min(out.liquidator_tokens, out.protocol_tokens, out.reserves_added) >= 0
    assert out.reserves_added == coll.exchange_rate * out.protocol_tokens // E
    if p["share"] == 0:
        assert out.protocol_tokens == 0 and out.liquidator_tokens == out.seize_tokens


@given(cash=st.integers(0, 10**30), borrows=st.integers(0, 10**30), reserve_frac=st.floats(0, 1),
       supply=st.integers(1, 10**24), seize_frac=st.floats(0, 1), share=st.integers(0, E))
def test_seize_split_never_lowers_the_exchange_rate(cash, borrows, reserve_frac, supply, seize_frac, share):
    reserves = int((cash + borrows) * Fraction(reserve_frac))
    rate = exchange_rate(cash, borrows, reserves, supply)
    seize = int(supply * Fraction(seize_frac))
    liquidator, protocol, added = seize_split(seize, rate, share)
    assert liquidator + protocol == seize and 0 <= protocol <= seize
    assert added <= Fraction(rate * protocol, E)
    if supply - protocol > 0:
        # reserves grow by at most what the burned cTokens were worth, so suppliers never lose
        assert exchange_rate(cash, borrows, reserves + added, supply - protocol) >= rate


@st.composite
def seize_inputs(draw) -> dict:
    debt, coll = draw(asset()), draw(asset())
    return {"price_borrowed": debt["price"], "price_collateral": coll["price"], "exchange_rate": coll["rate"],
            "liquidation_incentive": draw(st.integers(E, 15 * 10**17))}


@given(k=seize_inputs(), repay=st.integers(1, 10**30), balance=st.integers(0, 10**20))
def test_seize_tokens_monotone_bounded_and_invertible(k, repay, balance):
    seize = liquidate_calculate_seize_tokens(**k, repay_amount=repay)
    assert liquidate_calculate_seize_tokens(**k, repay_amount=repay + 1) >= seize
    exact = Fraction(k["liquidation_incentive"] * k["price_borrowed"] * repay,
                     k["price_collateral"] * k["exchange_rate"])
    num = k["liquidation_incentive"] * k["price_borrowed"] // E
    den = k["price_collateral"] * k["exchange_rate"] // E
    # truncating the numerator, the ratio and the product only lowers it; truncating the denominator raises it
    assert seize <= exact * (1 + Fraction(2, den))
    assert seize >= exact * (1 - Fraction(1, num)) - Fraction(repay, E) - 1
    top = max_repay_for_collateral(c_token_balance=balance, **k)
    assert liquidate_calculate_seize_tokens(**k, repay_amount=top) <= balance
    assert liquidate_calculate_seize_tokens(**k, repay_amount=top + 1) > balance


def _near_integer_from_below(num: int, den: int) -> bool:
    """The ratio ``num/den`` sits within 2e-14 (relative) under an integer and is small enough (< 1e10) for a
    one-unit slip to show at 1e-9: the float's tie nudge could cross that integer."""
    q, r = divmod(num, den)
    return q < 10**10 and r != 0 and (den - r) * 10**14 < 2 * (q + 1) * den


def near(x: float, n: int, units: float = 2.0) -> bool:
    """``x`` within 1e-9 (relative) of ``n``, plus ``units`` raw units for the contract's floors."""
    return abs(x - n) <= TOL * max(abs(x), abs(n)) + units


@given(p=positions(sized=True))
def test_float_layer_within_1e9_of_integer_layer(p):
    debt, coll = p["debt"], p["coll"]
    k = {"price_borrowed": debt["price"], "price_collateral": coll["price"], "exchange_rate": coll["rate"],
         "liquidation_incentive": p["incentive"]}
    ratio = seize_ratio(**k)
    num = p["incentive"] * debt["price"] // E
    den = coll["price"] * coll["rate"] // E
    assume(ratio > 0 and not _near_integer_from_below(num * E, den))

    wanted = max_repay(p["borrow"], p["close"])
    cover = max_repay_for_collateral(c_token_balance=p["c_tokens"], **k)
    repay = min(wanted, cover)
    seize = liquidate_calculate_seize_tokens(**k, repay_amount=repay)
    liquidator, protocol, added = seize_split(seize, coll["rate"], p["share"])

    price_b, price_c = debt["price"] / 10 ** (36 - debt["d"]), coll["price"] / 10 ** (36 - coll["d"])
    rate = coll["rate"] / 10 ** (10 + coll["d"])  # underlying tokens per cToken
    common = dict(borrow_balance=p["borrow"] / 10 ** debt["d"], collateral_balance=p["c_tokens"] / CTOKEN * rate,
                  price_borrowed=price_b, price_collateral=price_c, close_factor=p["close"] / E,
                  liquidation_incentive=p["incentive"] / E, protocol_seize_share=p["share"] / E)
    f = liquidate_float(**common, exchange_rate=rate, borrowed_decimals=debt["d"])
    event("capped" if cover < wanted else "close factor")
    event("every amount ≥ 1e10 raw" if min(repay, seize, protocol or seize, added or seize) >= 10**10
          else "some amount < 1e10 raw")
    # The contract moves in whole raw units: one unit of repay seizes ratio/1e18 raw cTokens, and a capped
    # repay can only be found to within E/ratio units (the float takes exactly the whole balance).
    step = ratio / E + 2.0
    grain = E / ratio + 2.0 if f.capped or cover < wanted else 2.0
    if abs(wanted - cover) > grain + 1e-8 * max(wanted, cover):
        assert f.capped == (cover < wanted)
    assert near(f.repay * 10 ** debt["d"], repay, grain)
    assert near(f.seized / rate * CTOKEN, seize, step)
    assert near((f.seized - f.protocol) / rate * CTOKEN, liquidator, step + 1)
    assert near(f.protocol / rate * CTOKEN, protocol, step * p["share"] / E + 1)
    assert near(f.protocol * 10 ** coll["d"], added, (step * p["share"] / E + 2) * coll["rate"] / E + 1)

    # without the ratio grid (the engine's formula) the float seizes at most 1/ratio (relative) more
    plain = liquidate_float(**common)
    if plain.repay > 0 and f.repay > 0:
        assert rel(plain.seized / plain.repay, f.seized / f.repay) <= 1.0 / ratio + TOL
    event("ratio grid matters (> 1e-9)" if 1.0 / ratio > TOL else "ratio grid negligible")


@given(p=positions(), other=asset())
def test_float_liquidity_within_1e9(p, other):
    markets, _, _ = snapshots(p)
    markets.append(MarketSnapshot(p["c_tokens"] // 3, p["borrow"] // 5, other["rate"], other["price"], other["cf"]))
    coll, borrow = account_sums(markets)
    decimals = [p["debt"]["d"]] if p["same"] else [p["coll"]["d"], p["debt"]["d"]]
    decimals.append(other["d"])
    rows = []
    for m, d in zip(markets, decimals):
        rate = m.exchange_rate / 10 ** (10 + d)
        rows.append((m.c_token_balance / CTOKEN * rate, m.borrow_balance / 10**d, m.price / 10 ** (36 - d),
                     m.collateral_factor / E))
    f_coll = sum(c * price * cf for c, _, price, cf in rows)
    f_borrow = sum(d * price for _, d, price, _ in rows)
    if coll >= 10**10:
        assert rel(f_coll * E, coll) <= TOL
    if borrow >= 10**10:
        assert rel(f_borrow * E, borrow) <= TOL
    liquidity, shortfall = account_liquidity_float(rows)
    assert liquidity == max(f_coll - f_borrow, 0.0) and shortfall == max(f_borrow - f_coll, 0.0)
