"""Morpho Blue ``liquidate`` (``backtest.protocols.morpho_blue``): PROTOCOLS §6 worked example, revert reasons,
invariants of the integer layer, and the float layer held to it.

The float comparison draws realistic raw states (debt and collateral each 1e11 … 1e27 raw units, 0.5e6 …
1e6 shares per asset, LTV at least 1e-6 above the LLTV, the liquidator repaying or seizing 10 … 100 % of
the position), so every amount compared is ≥ 1e10 raw units and the one-unit roundings of the contract
stay below 1e-9 relative. Draws where the two layers take different branches are accepted only as
near-ties (the amount repaid or seized within 1e-8 of the whole balance).
"""

from __future__ import annotations

import doctest
import math
from fractions import Fraction

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from backtest.protocols import ProtocolRevert, morpho_blue
from backtest.protocols.morpho_blue import (
    ORACLE_PRICE_SCALE,
    UINT128_MAX,
    VIRTUAL_SHARES,
    WAD,
    Liquidation,
    is_healthy,
    liquidate,
    liquidate_float,
    liquidation_incentive_factor,
    max_borrow,
    mul_div_down,
    mul_div_up,
    to_assets_down,
    to_assets_up,
    to_shares_down,
    to_shares_up,
    w_div_down,
    w_div_up,
    w_mul_down,
)

USDC = 10**6
ETH = 10**18
LLTV_86 = 86 * 10**16
LIF_86 = 1_043_841_336_116_910_229
ENABLED_LLTVS = [0, 385 * 10**15, 625 * 10**15, 77 * 10**16, 86 * 10**16, 915 * 10**15, 945 * 10**15,
                 965 * 10**15, 98 * 10**16]
FIELDS = ("repaid_assets", "repaid_shares", "seized_assets", "bad_debt_assets", "bad_debt_shares",
          "borrow_shares_after", "collateral_after", "total_borrow_assets_after", "total_borrow_shares_after",
          "total_supply_assets_after")


def weth_usdc(usd_per_weth: int, **amount: int) -> dict:
    """PROTOCOLS §6: 10 WETH against 15,000 USDC, the sole borrower (15e15 shares), 20,000 USDC supplied."""
    return dict(lltv=LLTV_86, oracle_price=usd_per_weth * ORACLE_PRICE_SCALE * USDC // ETH,
                borrow_shares=15 * 10**15, collateral=10 * ETH, total_borrow_assets=15_000 * USDC,
                total_borrow_shares=15 * 10**15, total_supply_assets=20_000 * USDC, **amount)


def reason(call) -> str:
    with pytest.raises(ProtocolRevert) as info:
        call()
    return info.value.reason


# --- PROTOCOLS §6 worked example ------------------------------------------------------------------------------


def test_lif_of_lltv_86_is_the_documented_integer() -> None:
    assert liquidation_incentive_factor(LLTV_86) == LIF_86


@pytest.mark.parametrize(("lltv", "lif", "digits"), [
    (77 * 10**16, 1.0741, 4), (86 * 10**16, 1.04384, 5), (915 * 10**15, 1.02617, 5),
    (945 * 10**15, 1.01678, 5), (965 * 10**15, 1.01061, 5),
])
def test_lltv_to_lif_table(lltv: int, lif: float, digits: int) -> None:
    exact = liquidation_incentive_factor(lltv)
    assert round(exact / WAD, digits) == lif
    # the contract's form: floor(1e36 / (1e18 − floor(0.3e18·(1e18 − lltv)/1e18)))
    assert exact == WAD * WAD // (WAD - 3 * 10**17 * (WAD - lltv) // WAD)


@pytest.mark.parametrize("lltv", [0, 385 * 10**15, 5 * 10**17, 565 * 10**15])
def test_lif_is_capped_at_1_15(lltv: int) -> None:
    # 1/(1 − 0.3·(1 − LLTV)) reaches 1.15 at LLTV ≈ 0.5652
    assert liquidation_incentive_factor(lltv) == 115 * 10**16


def test_worked_example_1700_liquidates_all_shares_without_bad_debt() -> None:
    args = weth_usdc(1_700, repaid_shares=15 * 10**15)
    assert args["oracle_price"] == 17 * 10**26
    assert max_borrow(10 * ETH, args["oracle_price"], LLTV_86) == 14_620 * USDC
    assert not is_healthy(LLTV_86, args["oracle_price"], 15 * 10**15, 10 * ETH, 15_000 * USDC, 15 * 10**15)
    assert liquidate(**args) == Liquidation(
        repaid_assets=15_000 * USDC, repaid_shares=15 * 10**15, seized_assets=9_210_364_730_000_000_000,
        bad_debt_assets=0, bad_debt_shares=0, borrow_shares_after=0, collateral_after=789_635_270_000_000_000,
        total_borrow_assets_after=0, total_borrow_shares_after=0, total_supply_assets_after=20_000 * USDC)


def test_worked_example_1400_seizes_everything_and_realises_bad_debt() -> None:
    r = liquidate(**weth_usdc(1_400, seized_assets=10 * ETH))
    assert r.repaid_shares == 13_412_000_001_000_000
    assert r.repaid_assets == 13_412_000_001
    assert r.seized_assets == 10 * ETH and r.collateral_after == 0
    assert r.bad_debt_assets == 1_587_999_999
    assert r.bad_debt_shares == 1_587_999_999_000_000
    assert r.borrow_shares_after == r.total_borrow_shares_after == r.total_borrow_assets_after == 0
    assert r.total_supply_assets_after == 20_000 * USDC - 1_587_999_999  # suppliers lose ≈ 1,588 USDC


@pytest.mark.parametrize(("usd", "amount"), [(1_700, {"repaid_shares": 15 * 10**15}),
                                             (1_400, {"seized_assets": 10 * ETH})])
def test_worked_example_in_float(usd: int, amount: dict) -> None:
    exact = liquidate(**weth_usdc(usd, **amount))
    approx = liquidate_float(**{k: float(v) for k, v in weth_usdc(usd, **amount).items()})
    for f in FIELDS:
        assert getattr(approx, f) == pytest.approx(getattr(exact, f), rel=1e-9, abs=1e-9 * 15e15), f


def test_module_doctest() -> None:
    assert doctest.testmod(morpho_blue).failed == 0


# --- primitives -----------------------------------------------------------------------------------------------


def test_rounding_primitives() -> None:
    assert mul_div_down(7, 3, 2) == 10 and mul_div_up(7, 3, 2) == 11 and mul_div_up(6, 3, 2) == 9
    assert w_mul_down(3, WAD // 2) == 1 and w_div_down(1, 3 * WAD) == 0 and w_div_up(1, 3 * WAD) == 1
    # a fresh market: one asset is 1e6 shares, both ways, both roundings
    assert to_shares_down(5, 0, 0) == to_shares_up(5, 0, 0) == 5 * VIRTUAL_SHARES
    assert to_assets_down(5 * VIRTUAL_SHARES, 0, 0) == to_assets_up(5 * VIRTUAL_SHARES, 0, 0) == 5
    assert (to_assets_down(1, 0, 0), to_assets_up(1, 0, 0)) == (0, 1)
    # 100 assets backing 50e6 shares: one share is worth 101/50_000_001 assets
    assert to_assets_up(1, 100, 50 * VIRTUAL_SHARES) == 1
    assert (to_assets_down(10**6, 100, 50 * VIRTUAL_SHARES), to_assets_up(10**6, 100, 50 * VIRTUAL_SHARES)) == (1, 2)


def test_primitive_reverts() -> None:
    assert reason(lambda: mul_div_down(1, 1, 0)) == "panic 0x12"
    assert reason(lambda: mul_div_up(1, 1, 0)) == "panic 0x11"  # d − 1 underflows first
    assert reason(lambda: mul_div_down(2**255, 2, 1)) == "panic 0x11"
    assert reason(lambda: mul_div_up(2**256 - 1, 1, 2)) == "panic 0x11"  # x·y + (d − 1) overflows
    assert reason(lambda: liquidation_incentive_factor(WAD + 1)) == "panic 0x11"
    assert liquidation_incentive_factor(WAD) == WAD


def test_health_boundary_is_inclusive() -> None:
    # maxBorrow 14,620 USDC at $1,700: owing exactly that is healthy, one unit more is not
    shares = to_shares_down(14_620 * USDC, 14_620 * USDC, 14_620 * 10**12)
    assert is_healthy(LLTV_86, 17 * 10**26, shares, 10 * ETH, 14_620 * USDC, shares)
    assert not is_healthy(LLTV_86, 17 * 10**26, shares + 10**6, 10 * ETH, 14_620 * USDC + 1, shares + 10**6)
    assert is_healthy(LLTV_86, 17 * 10**26, 0, 0, 0, 0)  # no debt


# --- reverts --------------------------------------------------------------------------------------------------


def test_revert_reasons() -> None:
    assert reason(lambda: liquidate(**weth_usdc(1_700))) == "inconsistent input"
    assert reason(lambda: liquidate(**weth_usdc(1_700, seized_assets=1, repaid_shares=1))) == "inconsistent input"
    # the input check comes before the health check
    assert reason(lambda: liquidate(**weth_usdc(2_000))) == "inconsistent input"
    assert reason(lambda: liquidate(**weth_usdc(2_000, seized_assets=ETH))) == "position is healthy"
    assert reason(lambda: liquidate(**weth_usdc(1_700, repaid_shares=15 * 10**15 + 1))) == "panic 0x11"
    assert reason(lambda: liquidate(**weth_usdc(1_700, seized_assets=10 * ETH))) == "panic 0x11"  # repays > owed
    assert reason(lambda: liquidate(**weth_usdc(1_400, seized_assets=10 * ETH + 1))) == "panic 0x11"
    assert reason(lambda: liquidate(**weth_usdc(1_700, repaid_shares=2**128))) == "max uint128 exceeded"
    # a zero price: the position is unhealthy, and repaying shares divides by it
    assert reason(lambda: liquidate(**weth_usdc(0, repaid_shares=10**6))) == "panic 0x12"
    # a product outside uint256 in the health check
    big = dict(weth_usdc(1_700, seized_assets=1), oracle_price=2**200, collateral=UINT128_MAX)
    assert reason(lambda: liquidate(**big)) == "panic 0x11"


def test_seizing_above_uint128_fails_the_cast() -> None:
    # price 1 (1e-36 loan units per collateral unit) keeps the repayment tiny, so the collateral cast is reached
    args = dict(weth_usdc(1_700), oracle_price=1, seized_assets=2**128)
    assert reason(lambda: liquidate(**args)) == "max uint128 exceeded"


def test_seizing_for_free_at_a_zero_price() -> None:
    # what the contract does: the quote is 0, so no shares are repaid, and the position is left without collateral
    r = liquidate(**weth_usdc(0, seized_assets=10 * ETH))
    assert (r.repaid_shares, r.repaid_assets, r.collateral_after) == (0, 0, 0)
    assert r.bad_debt_shares == 15 * 10**15 and r.bad_debt_assets == 15_000 * USDC


@pytest.mark.parametrize("bad", [
    {"borrow_shares": -1}, {"collateral": 2**128}, {"total_supply_assets": 1.0}, {"seized_assets": True},
    {"lltv": WAD}, {"seized_assets": 2**256},
])
def test_impossible_inputs_raise_value_error(bad: dict) -> None:
    with pytest.raises(ValueError):
        liquidate(**{**weth_usdc(1_700, repaid_shares=1), **bad})


def test_float_layer_rejects_a_fraction_lltv_and_reverts_like_the_contract() -> None:
    args = {k: float(v) for k, v in weth_usdc(1_700, repaid_shares=10**6).items()}
    with pytest.raises(ValueError, match="WAD"):
        liquidate_float(**{**args, "lltv": 0.86})
    with pytest.raises(ValueError):
        liquidate_float(**{**args, "collateral": math.nan})
    assert reason(lambda: liquidate_float(**{**args, "seized_assets": 1.0})) == "inconsistent input"
    assert reason(lambda: liquidate_float(**{**args, "oracle_price": 2e27})) == "position is healthy"
    assert reason(lambda: liquidate_float(**{**args, "repaid_shares": 1.6e16})) == "panic 0x11"
    assert reason(lambda: liquidate_float(**{**args, "oracle_price": 0.0})) == "panic 0x12"


# --- bookkeeping details --------------------------------------------------------------------------------------


def test_dust_collateral_keeps_its_debt() -> None:
    r = liquidate(**weth_usdc(1_400, seized_assets=10 * ETH - 1))
    assert r.collateral_after == 1 and r.bad_debt_assets == r.bad_debt_shares == 0
    assert r.borrow_shares_after == 15 * 10**15 - r.repaid_shares > 0


def test_repaid_assets_may_exceed_total_borrow_by_one() -> None:
    # 10 assets backing 2e7 shares (share price below 1e-6): all shares are worth ceil(2e7·11/2.1e7) = 11
    r = liquidate(lltv=LLTV_86, oracle_price=10**36, borrow_shares=2 * 10**7, collateral=10,
                  total_borrow_assets=10, total_borrow_shares=2 * 10**7, total_supply_assets=10,
                  repaid_shares=2 * 10**7)
    assert r.repaid_assets == 11 and r.total_borrow_assets_after == 0  # zeroFloorSub, no revert


def test_bad_debt_is_capped_at_total_borrow_assets() -> None:
    # search small states for one where toAssetsUp(remaining shares) > totalBorrowAssets after the repayment
    found = 0
    for tba in range(1, 8):
        for tbs in range(10**6, 6 * 10**6, 250_000):
            for seized in range(1, 4):
                args = dict(lltv=LLTV_86, oracle_price=10**36, borrow_shares=tbs, collateral=seized,
                            total_borrow_assets=tba, total_borrow_shares=tbs, total_supply_assets=tba,
                            seized_assets=seized)
                try:
                    r = liquidate(**args)
                except ProtocolRevert:
                    continue
                left_assets = max(0, tba - r.repaid_assets)
                uncapped = to_assets_up(r.bad_debt_shares, left_assets, tbs - r.repaid_shares)
                assert r.bad_debt_assets == min(left_assets, uncapped)
                # the virtual shares own what rounding leaves: assets may stay with no borrow shares at all
                assert r.total_borrow_shares_after == 0
                assert r.total_borrow_assets_after == left_assets - r.bad_debt_assets
                assert r.total_supply_assets_after == tba - r.bad_debt_assets
                found += uncapped > left_assets
    assert found > 0


# --- properties of the integer layer --------------------------------------------------------------------------


@st.composite
def liquidatable(draw) -> dict:
    """An unhealthy position in an arbitrary (also odd) market, and a liquidator's amount up to the balance."""
    tba = draw(st.integers(0, 10**30))
    shares_per_asset = draw(st.integers(1, 2 * 10**6))
    tbs = tba * shares_per_asset + draw(st.integers(1, 10**7))
    borrow_shares = draw(st.integers(1, tbs))
    collateral = draw(st.integers(0, 10**30))
    lltv = draw(st.sampled_from(ENABLED_LLTVS) | st.integers(0, WAD - 1))
    borrowed = to_assets_up(borrow_shares, tba, tbs)
    if collateral and lltv:
        at_lltv = Fraction(borrowed * ORACLE_PRICE_SCALE * WAD, collateral * lltv)
        price = min(2**256 - 1, max(1, math.floor(at_lltv * Fraction(draw(st.integers(1, 999)), 1000))))
    else:
        price = draw(st.integers(1, 10**42))
    tsa = tba + draw(st.integers(0, 10**30))
    if draw(st.booleans()):
        amount = {"seized_assets": draw(st.sampled_from([max(1, collateral)]) | st.integers(1, max(1, collateral)))}
    else:
        amount = {"repaid_shares": draw(st.sampled_from([borrow_shares]) | st.integers(1, borrow_shares))}
    return dict(lltv=lltv, oracle_price=price, borrow_shares=borrow_shares, collateral=collateral,
                total_borrow_assets=tba, total_borrow_shares=tbs, total_supply_assets=tsa, **amount)


def _lif_quote(a: dict) -> tuple[int, int]:
    """(repaid shares, seized assets) of the call, recomputed from the primitives."""
    lif = liquidation_incentive_factor(a["lltv"])
    tba, tbs = a["total_borrow_assets"], a["total_borrow_shares"]
    if a.get("seized_assets"):
        quoted = mul_div_up(a["seized_assets"], a["oracle_price"], ORACLE_PRICE_SCALE)
        return to_shares_up(w_div_up(quoted, lif), tba, tbs), a["seized_assets"]
    value = w_mul_down(to_assets_down(a["repaid_shares"], tba, tbs), lif)
    return a["repaid_shares"], mul_div_down(value, ORACLE_PRICE_SCALE, a["oracle_price"])


@settings(max_examples=400, deadline=None)
@given(liquidatable())
def test_liquidate_invariants(a: dict) -> None:
    tba, tbs, tsa = a["total_borrow_assets"], a["total_borrow_shares"], a["total_supply_assets"]
    try:
        r = liquidate(**a)
    except ProtocolRevert as exc:
        # an unhealthy position's call within the balance fails only when the other leg overshoots (beyond
        # uint128 too, at tiny prices), or when a product leaves uint256 (prices here reach ~1e66)
        try:
            healthy = is_healthy(a["lltv"], a["oracle_price"], a["borrow_shares"], a["collateral"], tba, tbs)
            repaid_shares, seized = _lif_quote(a)
        except ProtocolRevert as inner:
            assert exc.reason == inner.reason == "panic 0x11"
            event("reverted: uint256 overflow")
            return
        assert not healthy
        if exc.reason == "max uint128 exceeded":
            assert repaid_shares > UINT128_MAX or (seized > UINT128_MAX and repaid_shares <= a["borrow_shares"])
        else:
            assert exc.reason == "panic 0x11"
            assert repaid_shares > a["borrow_shares"] or seized > a["collateral"]
        event(f"reverted: the other leg exceeds the balance ({exc.reason})")
        return
    assert not is_healthy(a["lltv"], a["oracle_price"], a["borrow_shares"], a["collateral"], tba, tbs)
    event("bad debt" if r.bad_debt_shares else "no bad debt")
    lif = liquidation_incentive_factor(a["lltv"])

    assert all(getattr(r, f) >= 0 for f in FIELDS)
    assert r.seized_assets <= a["collateral"] and r.repaid_shares <= a["borrow_shares"]
    assert r.collateral_after == a["collateral"] - r.seized_assets
    # the position's and the market's shares and assets after the call
    assert r.bad_debt_shares == (a["borrow_shares"] - r.repaid_shares if r.collateral_after == 0 else 0)
    assert r.borrow_shares_after == a["borrow_shares"] - r.repaid_shares - r.bad_debt_shares
    assert r.borrow_shares_after == 0 or r.collateral_after > 0
    assert r.total_borrow_shares_after == tbs - r.repaid_shares - r.bad_debt_shares
    assert r.total_borrow_assets_after == max(0, tba - r.repaid_assets) - r.bad_debt_assets
    assert r.bad_debt_assets <= max(0, tba - r.repaid_assets)
    # suppliers lose exactly the bad debt
    assert tsa - r.total_supply_assets_after == r.bad_debt_assets
    # rounding favours the protocol: repaid assets cover the shares' value, the collateral given ≤ repaid·LIF
    assert r.repaid_assets * (tbs + VIRTUAL_SHARES) >= r.repaid_shares * (tba + 1)
    seized_value = Fraction(r.seized_assets * a["oracle_price"], ORACLE_PRICE_SCALE)
    assert seized_value <= Fraction(r.repaid_assets * lif, WAD)
    if "repaid_shares" in a:
        share_value = Fraction(r.repaid_shares * (tba + 1), tbs + VIRTUAL_SHARES)
        assert seized_value <= share_value * Fraction(lif, WAD)


@settings(max_examples=200, deadline=None)
@given(liquidatable(), st.sampled_from(["both", "neither"]))
def test_inconsistent_input_always_wins(a: dict, how: str) -> None:
    a = {k: v for k, v in a.items() if k not in ("seized_assets", "repaid_shares")}
    if how == "both":
        a.update(seized_assets=1, repaid_shares=1)
    assert reason(lambda: liquidate(**a)) == "inconsistent input"


# --- the float layer against the integer layer ----------------------------------------------------------------


def _log_uniform(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(math.log(lo), math.log(hi)).map(math.exp)


@st.composite
def realistic(draw) -> dict:
    debt = int(draw(_log_uniform(1e11, 1e27)))  # raw loan units owed by the position
    coll = int(draw(_log_uniform(1e11, 1e27)))
    lltv = draw(st.sampled_from(ENABLED_LLTVS[1:]))
    ltv = lltv / WAD * (1 + 1e-6) + draw(st.floats(0.0, 0.6))
    price = int(debt * ORACLE_PRICE_SCALE / (coll * ltv))
    shares_per_asset = draw(st.floats(5e5, 1e6))
    share_of_market = draw(st.floats(0.01, 1.0))
    tba = int(debt / share_of_market)
    tbs = int(tba * shares_per_asset)
    borrow_shares = min(tbs, int(debt * shares_per_asset))
    tsa = int(tba / draw(st.floats(0.5, 1.0)))
    fraction = draw(st.sampled_from([1.0]) | st.floats(0.1, 1.0))
    if draw(st.booleans()):
        amount = {"seized_assets": max(1, int(coll * fraction))}
    else:
        amount = {"repaid_shares": max(1, int(borrow_shares * fraction))}
    return dict(lltv=lltv, oracle_price=price, borrow_shares=borrow_shares, collateral=coll,
                total_borrow_assets=tba, total_borrow_shares=tbs, total_supply_assets=tsa, **amount)


def _near_whole(a: dict, r) -> bool:
    return (r.repaid_shares >= a["borrow_shares"] * (1 - 1e-8)) or (r.seized_assets >= a["collateral"] * (1 - 1e-8))


@settings(max_examples=500, deadline=None)
@given(realistic())
def test_float_layer_matches_integer_layer(a: dict) -> None:
    f_args = {k: float(v) for k, v in a.items()}
    try:
        exact = liquidate(**a)
    except ProtocolRevert as exc:
        try:
            liquidate_float(**f_args)
        except ProtocolRevert as fexc:
            assert fexc.reason == exc.reason
            event("both revert")
            return
        repaid_shares, seized = _lif_quote(a)
        assert exc.reason == "panic 0x11"
        assume(not (repaid_shares >= a["borrow_shares"] * (1 - 1e-8) or seized >= a["collateral"] * (1 - 1e-8)))
        raise AssertionError(f"integer layer reverted ({exc.reason}) where the float layer did not")
    try:
        approx = liquidate_float(**f_args)
    except ProtocolRevert:
        assert _near_whole(a, exact), "float layer reverted away from a near-tie"
        assume(False)
    if (exact.collateral_after == 0) != (approx.collateral_after == 0.0):
        assert _near_whole(a, exact)
        assume(False)
    event("bad debt" if exact.bad_debt_shares else "no bad debt")

    debt_assets = to_assets_up(a["borrow_shares"], a["total_borrow_assets"], a["total_borrow_shares"])
    scale = {"repaid_assets": debt_assets, "bad_debt_assets": debt_assets, "total_borrow_assets_after": debt_assets,
             "total_supply_assets_after": debt_assets, "repaid_shares": a["borrow_shares"],
             "bad_debt_shares": a["borrow_shares"], "borrow_shares_after": a["borrow_shares"],
             "total_borrow_shares_after": a["borrow_shares"], "seized_assets": a["collateral"],
             "collateral_after": a["collateral"]}
    for f in FIELDS:
        want, got = getattr(exact, f), getattr(approx, f)
        assert abs(got - want) <= 1e-9 * max(abs(want), scale[f]), (f, want, got)
    for f in ("repaid_assets", "repaid_shares", "seized_assets"):  # ≥ 10 % of the position: plain relative
        want, got = getattr(exact, f), getattr(approx, f)
        assert abs(got - want) <= 1e-9 * want, (f, want, got)
