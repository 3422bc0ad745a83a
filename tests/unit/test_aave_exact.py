"""Exact integer layer of Aave (``backtest.protocols.aave``): worked examples, version rules, rounding.

The PROTOCOLS §1.11 table gives the v3.3 (half-up) and v3.7 (floor/ceil) columns; 3.0–3.4 share the 3.3
amounts (3.0–3.2 leave the residual debt on the account instead of booking a deficit), 3.5 keeps 3.3's
collateral maths but computes the HF from the unnormalised sum. v2 has a fixed 50 % close factor, no
protocol fee and applies the bonus before the division.
"""

from __future__ import annotations

import doctest
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.protocols import aave
from backtest.protocols.aave import (
    RAY,
    SECONDS_PER_YEAR,
    UINT256_MAX,
    VERSIONS,
    AaveRevert,
    EModeCategory,
    Market,
    Reserve,
    UserPosition,
    account_data,
    available_collateral,
    check_isolated_borrow,
    close_factor_bps,
    collateral_to_seize,
    compounded_interest,
    health_factor,
    isolation_mode_state,
    linear_interest,
    liquidation_call,
    max_debt_to_cover,
    next_liquidity_index,
    next_variable_borrow_index,
    resolve,
    treasury_accrual_scaled,
)
from backtest.protocols.aave import fixedpoint as fp

ETH = 10**18
USDC = 10**6
USD = 10**8  # 8-decimal USD base currency


def worked_market(weth_usd: int, *, fee_bps: int = 1000) -> Market:
    """PROTOCOLS §1.11: WETH (18 dec, LT 83 %, bonus 5 %, protocol fee 10 %) and USDC at $1."""
    return Market(
        {
            "WETH": Reserve(18, weth_usd * USD, 8300, 10500, ltv_bps=8000, liquidation_protocol_fee_bps=fee_bps),
            "USDC": Reserve(6, 1 * USD, 8700, 10450, ltv_bps=8600, reserve_id=1),
        }
    )


def worked_user(market: Market, version: str) -> UserPosition:
    return UserPosition.from_balances(market, {"WETH": 10 * ETH}, {"USDC": 14_000 * USDC}, version=version)


def liquidate(weth_usd: int, version: str) -> aave.LiquidationOutcome:
    market = worked_market(weth_usd, fee_bps=0 if version == "v2" else 1000)
    return liquidation_call(
        market, worked_user(market, version), collateral_asset="WETH", debt_asset="USDC", version=version
    )


# --- PROTOCOLS §1.11, every version column ------------------------------------------------------------------

# price → (HF, debt repaid, WETH to liquidator, protocol fee, WETH left (wei), USDC debt left)
V33 = {
    1650: (978214285714285714, 7_000_000_000, 4_433_333_333_333_333_333, 21_212_121_212_121_212,
           5_545_454_545_454_545_455, 7_000_000_000),
    1500: (889285714285714286, 14_000_000_000, 9_753_333_333_333_333_333, 46_666_666_666_666_667,
           200_000_000_000_000_000, 0),
    1300: (770714285714285714, 12_380_952_381, 9_952_380_952_380_952_381, 47_619_047_619_047_619, 0, 1_619_047_619),
}
V37 = {
    1650: (978214285714285714, 7_000_000_000, 4_433_333_333_333_333_332, 21_212_121_212_121_213,
           5_545_454_545_454_545_455, 7_000_000_000),
    1500: (889285714285714285, 14_000_000_000, 9_753_333_333_333_333_332, 46_666_666_666_666_667,
           200_000_000_000_000_001, 0),
    1300: (770714285714285714, 12_380_952_381, 9_952_380_952_380_952_380, 47_619_047_619_047_620, 0, 1_619_047_619),
}
# 3.5: 3.3's half-up collateral maths, HF from the unnormalised sum (1,500 row: …285 instead of …286).
V35 = {**V33, 1500: (889285714285714285, *V33[1500][1:])}
# v2: 50 % always, bonus applied before the division, no fee: Pd·debt·uc·1.05 / (Pc·ud).
V2 = {
    1650: (978214285714285714, 7_000_000_000, 4_454_545_454_545_454_545, 0, 5_545_454_545_454_545_455, 7_000_000_000),
    1500: (889285714285714286, 7_000_000_000, 4_900_000_000_000_000_000, 0, 5_100_000_000_000_000_000, 7_000_000_000),
    1300: (770714285714285714, 7_000_000_000, 5_653_846_153_846_153_846, 0, 4_346_153_846_153_846_154, 7_000_000_000),
}
COLUMNS = {"v2": V2, "v3.0": V33, "v3.1": V33, "v3.2": V33, "v3.3": V33, "v3.4": V33, "v3.5": V35, "v3.7": V37,
           "v3": V37}


@pytest.mark.parametrize("version", list(COLUMNS))
@pytest.mark.parametrize("price", [1650, 1500, 1300])
def test_worked_example_every_version(version: str, price: int) -> None:
    hf, repaid, to_liquidator, fee, weth_left, usdc_left = COLUMNS[version][price]
    out = liquidate(price, version)
    assert out.health_factor_before == hf
    assert (out.debt_repaid, out.collateral_to_liquidator, out.protocol_fee) == (repaid, to_liquidator, fee)
    assert out.user.scaled_collateral["WETH"] == weth_left  # indices are 1 ray: scaled = actual
    rules = resolve(version)
    if price == 1300 and rules.deficit:
        assert out.deficit == {"USDC": usdc_left} and out.user.scaled_debt == {}
        assert out.market.reserves["USDC"].deficit == usdc_left
        assert out.health_factor_after == UINT256_MAX
    else:
        assert out.deficit == {} and out.user.scaled_debt.get("USDC", 0) == usdc_left


def test_worked_example_healthy_at_2000() -> None:
    for version in VERSIONS:
        with pytest.raises(AaveRevert) as err:
            liquidate(2000, version)
        assert err.value.reason == "HEALTH_FACTOR_NOT_BELOW_THRESHOLD"
    assert account_data(worked_market(2000), worked_user(worked_market(2000), "v3.3"), version="v3.3").health_factor \
        == 1185714285714285714


def test_worked_example_details() -> None:
    # Post-liquidation HF at $1,650 = 5.5454… × 1650 × 0.83 / 7000 = 1.08493 (PROTOCOLS prints 1.0850, i.e.
    # 1.085 to three decimals); 3.0–3.2 leave 1,619.047619 USDC
    # on an account without collateral; the penalty is 5 % of the debt repaid, 10 % of it to the treasury.
    out = liquidate(1650, "v3.3")
    assert out.health_factor_after == 1084928571428571429
    assert round(out.health_factor_after / 1e18, 3) == 1.085
    gross = (out.collateral_to_liquidator * 1650) / ETH - out.debt_repaid / USDC
    assert round(gross) == 315 and round(out.protocol_fee * 1650 / ETH) == 35
    old = liquidate(1300, "v3.2")
    assert old.no_collateral_left and old.deficit == {} and old.user.scaled_debt == {"USDC": 1_619_047_619}
    assert old.health_factor_after == 0 and old.collateral_disabled
    assert liquidate(1300, "v3.3").no_collateral_left and not liquidate(1650, "v3.3").no_collateral_left


def test_public_collateral_to_seize_matches_the_table() -> None:
    # Liquidator's part + protocol fee of the worked example = collateral_to_seize (no balance cap).
    for version, column in (("v3.3", V33), ("v3.7", V37)):
        for price in (1650, 1500):
            _, repaid, to_liquidator, fee, _, _ = column[price]
            total = collateral_to_seize(repaid, USD, 6, price * USD, 18, 10500, version=version, protocol_fee_bps=1000)
            assert total == to_liquidator + fee
    assert collateral_to_seize(7_000 * USDC, USD, 6, 1650 * USD, 18, 10500) == 4_454_545_454_545_454_545


# --- v2 vs v3 order of operations ----------------------------------------------------------------------------


def test_v2_applies_the_bonus_before_the_division() -> None:
    # 1 raw unit of a 0-decimal debt at price 3, collateral price 7, bonus 10 %:
    # v2 floor(3·1.1/7) = floor(0.4714…)=0; with uc=100: v2 floor(330/7)=47, v3 percentMul(floor(300/7)=42)=46.
    assert collateral_to_seize(1, 3, 0, 7, 2, 11000, version="v2") == 47
    assert collateral_to_seize(1, 3, 0, 7, 2, 11000, version="v3.3") == 46
    assert collateral_to_seize(1, 3, 0, 7, 2, 11000, version="v3.7") == 46


def test_collateral_to_seize_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="protocol fee"):
        collateral_to_seize(1, 1, 0, 1, 0, 10500, version="v2", protocol_fee_bps=1000)
    with pytest.raises(ValueError, match="collateral_price"):
        collateral_to_seize(1, 1, 0, 0, 0, 10500)
    with pytest.raises(ValueError, match="debt_to_cover"):
        collateral_to_seize(-1, 1, 0, 1, 0, 10500)
    with pytest.raises(ValueError, match="unknown Aave version"):
        collateral_to_seize(1, 1, 0, 1, 0, 10500, version="v4")


def test_collateral_cap_rounds_the_debt_up_from_3_5() -> None:
    # Capped branch: debt = percentDiv(value, LB); 3.5+ percentDivCeil. 13000e6·1e4/10500 = 12380952380.95…
    kwargs = dict(collateral_balance=10 * ETH, protocol_fee_bps=0)
    half_up = available_collateral(14_000 * USDC, USD, 6, 1300 * USD, 18, 10500, version="v3.4", **kwargs)
    ceil = available_collateral(14_000 * USDC, USD, 6, 1300 * USD, 18, 10500, version="v3.5", **kwargs)
    assert half_up.debt_to_repay == ceil.debt_to_repay == 12_380_952_381
    # 1,000 USDC of collateral at a 10.4 % bonus: 1e9·1e4/11040 = 905797101.449… → half-up …101, ceil …102
    kwargs = dict(collateral_balance=1_000 * USDC, protocol_fee_bps=0)
    quotes = {v: available_collateral(2_000 * USDC, USD, 6, USD, 6, 11040, version=v, **kwargs)
              for v in ("v3.4", "v3.5")}
    assert quotes["v3.4"].debt_to_repay == 905_797_101 and quotes["v3.5"].debt_to_repay == 905_797_102


# --- health factor -------------------------------------------------------------------------------------------


def test_health_factor_simple_api() -> None:
    prices, decimals = {"WETH": 1650 * USD, "USDC": USD}, {"WETH": 18, "USDC": 6}
    lt = {"WETH": 8300, "USDC": 0}
    coll = {"WETH": 10 * ETH, "USDC": 5_000 * USDC}  # USDC with LT 0 is ignored
    assert health_factor(coll, {"USDC": 14_000 * USDC}, prices, decimals, lt, version="v3.3") == 978214285714285714
    assert health_factor(coll, {}, prices, decimals, lt) == UINT256_MAX
    assert health_factor({}, {"USDC": 1}, prices, decimals, lt) == 0
    with pytest.raises(ValueError, match="'DAI'"):
        health_factor({"DAI": 1}, {}, prices, decimals, lt)
    with pytest.raises(ValueError, match="price"):
        health_factor({}, {"DAI": 1}, prices, decimals, lt)


def test_health_factor_rounding_differs_by_version() -> None:
    # Two collaterals whose weighted-average LT is not an integer: ≤3.4 floors avgLT first.
    prices, decimals = {"A": USD, "B": USD, "D": USD}, {"A": 0, "B": 0, "D": 0}
    lt = {"A": 8000, "B": 7501}
    coll, debt = {"A": 1, "B": 2}, {"D": 3}
    old = health_factor(coll, debt, prices, decimals, lt, version="v3.4")
    new = health_factor(coll, debt, prices, decimals, lt, version="v3.5")
    # avgLT = floor((8000 + 15002)/3) = 7667 → 0.7667; unnormalised: 23002/3/1e4 = 0.766733…
    assert old == 766700000000000000 and new == 766733333333333333
    # 3.5+ values a tiny debt with ceil: 1 raw unit of an 18-dec token at $1 is 1 base unit, not 0.
    assert health_factor({"A": 1}, {"E": 1}, {"A": USD, "E": USD}, {"A": 0, "E": 18}, {"A": 8000},
                         version="v3.4") == UINT256_MAX
    assert health_factor({"A": 1}, {"E": 1}, {"A": USD, "E": USD}, {"A": 0, "E": 18}, {"A": 8000},
                         version="v3.5") == 8 * 10**25  # $1·0.8 / 1e-8 $


def test_account_data_scaled_balances_and_indices() -> None:
    idx = RAY + RAY // 3  # 1.333… ray
    market = Market({"A": Reserve(0, USD, 8000, 10500, liquidity_index=idx, variable_borrow_index=idx)})
    user = UserPosition({"A": 10}, {"A": 5})
    # 10·1.333… = 13.33 → 13 (half-up and floor agree); 5·1.333… = 6.67 → 7 (half-up, ceil)
    for version in ("v3.4", "v3.5"):
        data = account_data(market, user, version=version)
        assert data.collateral_balance == {"A": 13} and data.debt_balance == {"A": 7}
    user = UserPosition({"A": 11}, {"A": 4})  # 14.67 → 15 half-up / 14 floor; 5.33 → 5 half-up / 6 ceil
    assert account_data(market, user, version="v3.4").collateral_balance == {"A": 15}
    assert account_data(market, user, version="v3.5").collateral_balance == {"A": 14}
    assert account_data(market, user, version="v3.4").debt_balance == {"A": 5}
    assert account_data(market, user, version="v3.5").debt_balance == {"A": 6}


# --- close factor ----------------------------------------------------------------------------------------------


def test_close_factor_per_version() -> None:
    just_above, at = 95 * 10**16 + 1, 95 * 10**16
    assert close_factor_bps(at, version="v2") == 5000
    assert close_factor_bps(just_above, version="v3.2") == 5000 and close_factor_bps(at, version="v3.2") == 10000
    big = 2_000 * USD
    assert close_factor_bps(just_above, version="v3.3", reserve_collateral_base=big, reserve_debt_base=big) == 5000
    assert close_factor_bps(just_above, version="v3.3", reserve_collateral_base=big - 1, reserve_debt_base=big) == 10000
    assert close_factor_bps(just_above, version="v3.3", reserve_collateral_base=big, reserve_debt_base=big - 1) == 10000
    assert close_factor_bps(at, version="v3.3", reserve_collateral_base=big, reserve_debt_base=big) == 10000
    with pytest.raises(ValueError, match="reserve_collateral_base"):
        close_factor_bps(just_above, version="v3.3")


def test_max_debt_to_cover_whole_position_rule() -> None:
    hf = 97 * 10**16
    common = dict(health_factor=hf, version="v3.3", debt_price=USD, debt_decimals=6, reserve_collateral_base=10**13)
    # Reserve debt 6,000 of a 10,000 total: more than half → capped at 5,000.
    assert max_debt_to_cover(6_000 * USDC, total_debt_base=10_000 * USD, **common) == 5_000 * USDC
    # Reserve debt 4,000 of 10,000: not more than half → all of it.
    assert max_debt_to_cover(4_000 * USDC, total_debt_base=10_000 * USD, **common) == 4_000 * USDC
    # Small reserve debt (< $2,000) → 100 %.
    assert max_debt_to_cover(1_999 * USDC, total_debt_base=1_999 * USD, **common) == 1_999 * USDC
    # ≤3.2: a share of the reserve debt, half-up.
    assert max_debt_to_cover(3, health_factor=hf, version="v3.2") == 2
    assert max_debt_to_cover(3, health_factor=hf, version="v2") == 2
    assert max_debt_to_cover(3, health_factor=hf - 3 * 10**16, version="v3.2") == 3


# --- dust rule, deficit, e-mode, isolation -------------------------------------------------------------------


def two_asset_market(fee_bps: int = 1000, **overrides: Reserve) -> Market:
    reserves = {
        "WETH": Reserve(18, 2_000 * USD, 8000, 10500, liquidation_protocol_fee_bps=fee_bps, reserve_id=0),
        "USDC": Reserve(6, USD, 8500, 10500, reserve_id=1),
        "DAI": Reserve(18, USD, 8500, 10500, reserve_id=2),
    }
    reserves.update(overrides)
    return Market(reserves)


def test_dust_rule_reverts_and_full_liquidation_passes() -> None:
    market = two_asset_market()
    # 2.8 WETH ($5,600) against 2,500 USDC + 2,000 DAI: HF = 5,600·0.8/4,500 = 0.9956 > 0.95, both legs ≥ $2,000
    # and the USDC debt exceeds half of the total, so one call may repay at most $2,250 of USDC — which would
    # leave $250: even "as much as possible" reverts; the liquidator must leave ≥ $1,000.
    user = UserPosition.from_balances(market, {"WETH": 28 * ETH // 10}, {"USDC": 2_500 * USDC, "DAI": 2_000 * ETH})
    kw = dict(collateral_asset="WETH", debt_asset="USDC")
    for amount in (aave.UINT256_MAX, 1_501 * USDC):
        with pytest.raises(AaveRevert) as err:
            liquidation_call(market, user, version="v3.3", debt_to_cover=amount, **kw)
        assert err.value.reason == "MUST_NOT_LEAVE_DUST"
    out = liquidation_call(market, user, version="v3.3", debt_to_cover=1_500 * USDC, **kw)
    assert out.debt_repaid == 1_500 * USDC
    # ≤3.2 knows no dust rule: 50 % of the reserve debt above HF 0.95.
    assert liquidation_call(market, user, version="v3.2", **kw).debt_repaid == 1_250 * USDC


def test_dust_rule_counts_the_fee_from_3_4() -> None:
    # Collateral left is ≥ $1,000 only if the protocol fee is not deducted (3.3 quirk).
    market = two_asset_market(fee_bps=5000)
    # 2 WETH ($4,000) vs 3,900 USDC: HF 0.82 → 100 %; repay 2,770 → seize 2,770·1.05/2,000 = 1.45425 WETH,
    # fee = 0.5·0.06925 = 0.034625 WETH; left gross of the fee 0.580375 WETH = $1,160.75, net 0.54575 = $1,091.5.
    user = UserPosition.from_balances(market, {"WETH": 2 * ETH}, {"USDC": 3_900 * USDC})
    kw = dict(collateral_asset="WETH", debt_asset="USDC", debt_to_cover=2_770 * USDC)
    assert liquidation_call(market, user, version="v3.3", **kw).debt_repaid == 2_770 * USDC
    assert liquidation_call(market, user, version="v3.4", **kw).debt_repaid == 2_770 * USDC
    kw["debt_to_cover"] = 2_800 * USDC  # gross left $1,130, net left $1,060 (still fine) …
    liquidation_call(market, user, version="v3.4", **kw)
    kw["debt_to_cover"] = 2_860 * USDC  # … gross left $1,068.5 (3.3 passes), net $996 (3.4 reverts)
    assert liquidation_call(market, user, version="v3.3", **kw).debt_repaid == 2_860 * USDC
    with pytest.raises(AaveRevert, match="MUST_NOT_LEAVE_DUST"):
        liquidation_call(market, user, version="v3.4", **kw)


def test_deficit_burns_every_debt_of_an_account_without_collateral() -> None:
    market = two_asset_market()
    user = UserPosition.from_balances(market, {"WETH": ETH}, {"USDC": 1_500 * USDC, "DAI": 1_500 * ETH})
    kw = dict(collateral_asset="WETH", debt_asset="USDC")
    out = liquidation_call(market, user, version="v3.3", **kw)
    # All 1 WETH ($2,000) goes for 2,000/1.05 = 1,904.76… USDC — more than the 1,500 USDC debt: repay all USDC.
    assert out.debt_repaid == 1_500 * USDC and not out.no_collateral_left and out.deficit == {}
    user = UserPosition.from_balances(market, {"WETH": ETH}, {"USDC": 2_500 * USDC, "DAI": 1_500 * ETH})
    out = liquidation_call(market, user, version="v3.3", **kw)
    assert out.no_collateral_left and out.user.scaled_debt == {}
    assert out.deficit == {"USDC": 2_500 * USDC - out.debt_repaid, "DAI": 1_500 * ETH}
    assert out.market.reserves["DAI"].deficit == 1_500 * ETH
    old = liquidation_call(market, user, version="v3.2", **kw)
    assert old.no_collateral_left and old.deficit == {} and old.user.scaled_debt["DAI"] == 1_500 * ETH


def test_liquidation_validation() -> None:
    market = worked_market(1500)
    user = worked_user(market, "v3.3")
    with pytest.raises(AaveRevert, match="SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER"):
        liquidation_call(market, user, collateral_asset="WETH", debt_asset="WETH")
    with pytest.raises(AaveRevert, match="COLLATERAL_CANNOT_BE_LIQUIDATED"):
        liquidation_call(market, user, collateral_asset="USDC", debt_asset="USDC")
    disabled = UserPosition(user.scaled_collateral, user.scaled_debt, frozenset())
    with pytest.raises(AaveRevert, match="HEALTH_FACTOR_NOT_BELOW_THRESHOLD"):  # no debt: HF = 2**256 − 1
        liquidation_call(market, UserPosition(user.scaled_collateral, {}, frozenset({"WETH"})),
                         collateral_asset="WETH", debt_asset="USDC")
    with pytest.raises(AaveRevert, match="COLLATERAL_CANNOT_BE_LIQUIDATED"):
        liquidation_call(market, disabled, collateral_asset="WETH", debt_asset="USDC")
    with pytest.raises(KeyError, match="'XYZ'"):
        liquidation_call(market, user, collateral_asset="XYZ", debt_asset="USDC")


def test_emode_category_per_asset_with_price_source() -> None:
    # ≤3.1: membership by the reserve's category; the category price replaces the oracle for members.
    market = Market(
        {
            "stETH": Reserve(18, 1_900 * USD, 8000, 10750, emode_category=1, reserve_id=0),
            "WETH": Reserve(18, 2_000 * USD, 8250, 10500, emode_category=1, reserve_id=1),
        },
        {1: EModeCategory(9000, 9300, 10100, price=2_000 * USD)},
    )
    user = UserPosition.from_balances(market, {"stETH": 10 * ETH}, {"WETH": 9 * ETH}, emode_category=1, version="v3.1")
    # Both at the category price: HF = 10·0.93/9 = 1.0333…; outside e-mode: 10·1900·0.8/(9·2000) = 0.8444…
    assert account_data(market, user, version="v3.1").health_factor == 1033333333333333333
    plain = UserPosition(user.scaled_collateral, user.scaled_debt)
    assert account_data(market, plain, version="v3.1").health_factor == 844444444444444444
    # 3.2+: membership by the category's collateral bitmap; no category price.
    bitmap = Market(market.reserves, {1: EModeCategory(9000, 9300, 10100, collateral_bitmap=0b01)})
    # 10·1900·0.93 / (9·2000) = 0.981666…7 (half-up wadDiv)
    assert account_data(bitmap, user, version="v3.2").health_factor == 981666666666666667
    no_member = Market(market.reserves, {1: EModeCategory(9000, 9300, 10100, collateral_bitmap=0b10)})
    assert account_data(no_member, user, version="v3.2").health_factor == 844444444444444444


def test_emode_bonus_in_liquidation() -> None:
    market = Market(
        {"stETH": Reserve(18, 1_900 * USD, 8000, 10750, reserve_id=0), "WETH": Reserve(18, 2_000 * USD, 8250, 10500,
                                                                                      reserve_id=1)},
        {1: EModeCategory(9000, 9300, 10100, collateral_bitmap=0b01)},
    )
    user = UserPosition.from_balances(market, {"stETH": 10 * ETH}, {"WETH": 9_5 * ETH // 10}, emode_category=1)
    out = liquidation_call(market, user, collateral_asset="stETH", debt_asset="WETH", version="v3.2")
    # HF = 19,000·0.93/19,000 = 0.93 → 100 %; seized = 9.5·2000/1900·1.01 = 10.1 > 10 → all 10 stETH.
    assert out.collateral_to_liquidator == 10 * ETH
    assert out.debt_repaid == fp.percent_div(10 * 1_900 * ETH // 2_000, 10100)


def test_isolation_mode() -> None:
    market = Market(
        {
            "ISO": Reserve(18, 10 * USD, 7000, 11000, debt_ceiling=1_000_000_00, isolation_mode_total_debt=500_000_00),
            "USDC": Reserve(6, USD, 8500, 10500, borrowable_in_isolation=True, reserve_id=1),
            "DAI": Reserve(18, USD, 8500, 10500, reserve_id=2),
        }
    )
    user = UserPosition.from_balances(market, {"ISO": 1_000 * ETH}, {}, version="v3.3")
    assert isolation_mode_state(market, user, version="v3.3") == (True, "ISO", 1_000_000_00)
    assert isolation_mode_state(market, user, version="v3.7") == (False, None, 0)
    assert check_isolated_borrow(market, user, "USDC", 1_234_567_891, version="v3.3") == 500_000_00 + 1_234_56
    with pytest.raises(AaveRevert, match="DEBT_CEILING_EXCEEDED"):
        check_isolated_borrow(market, user, "USDC", 500_001 * USDC, version="v3.3")
    with pytest.raises(AaveRevert, match="ASSET_NOT_BORROWABLE_IN_ISOLATION"):
        check_isolated_borrow(market, user, "DAI", 1, version="v3.3")
    # Liquidating the whole isolated collateral: 3.3 checks isolation after clearing the flag (no update),
    # 3.4–3.6 update whenever the collateral has a ceiling, 3.7 has no isolation mode.
    user = UserPosition.from_balances(market, {"ISO": 1_000 * ETH}, {"USDC": 9_500 * USDC}, version="v3.3")
    kw = dict(collateral_asset="ISO", debt_asset="USDC")
    assert liquidation_call(market, user, version="v3.3", **kw).isolated_debt_repaid == 0
    out = liquidation_call(market, user, version="v3.4", **kw)
    assert out.isolated_debt_repaid == out.debt_repaid // 10**4
    assert out.market.reserves["ISO"].isolation_mode_total_debt == 500_000_00 - out.isolated_debt_repaid
    assert liquidation_call(market, user, version="v3.7", **kw).isolated_debt_repaid == 0
    # A partial liquidation keeps the user isolated, so 3.3 updates the counter too.
    user = UserPosition.from_balances(market, {"ISO": 1_000 * ETH}, {"USDC": 7_200 * USDC}, version="v3.3")
    out = liquidation_call(market, user, version="v3.3", **kw)
    assert not out.collateral_disabled and out.isolated_debt_repaid == out.debt_repaid // 10**4 > 0


# --- interest ------------------------------------------------------------------------------------------------


def test_interest_worked_figures() -> None:
    five_percent = 5 * 10**25
    assert linear_interest(five_percent, SECONDS_PER_YEAR) == RAY + five_percent
    # 3.4+: x = 0.05; 1 + x + x·(x/2 + x·x/6) with half-up rayMul, x/6 floored:
    # x/6 = 8333333333333333333333333, rayMul(x, ·) = 416666666666666666666667, rayMul(x, 25416666666666666666666667)
    # = 1270833333333333333333333 → 1.051270833333333333333333333
    assert compounded_interest(five_percent, SECONDS_PER_YEAR, version="v3.4") == 1051270833333333333333333333
    assert compounded_interest(five_percent, 0, version="v3.0") == RAY
    assert compounded_interest(five_percent, 1, version="v3.0") == RAY + five_percent // SECONDS_PER_YEAR
    assert compounded_interest(five_percent, 1, version="v2") == RAY + five_percent // SECONDS_PER_YEAR
    for version in ("v2", "v3.0", "v3.4"):
        value = compounded_interest(five_percent, SECONDS_PER_YEAR, version=version)
        # Truncation after x³/6 under-charges: e^0.05 − 1e-5 < value ≤ e^0.05.
        assert 1.05126 * RAY < value <= 1.0512710963760241 * RAY
    with pytest.raises(ValueError):
        linear_interest(-1, 1)


def test_index_updates_and_treasury() -> None:
    idx = next_liquidity_index(RAY, 4 * 10**25, SECONDS_PER_YEAR // 2)
    assert idx == RAY + 2 * 10**25
    assert next_liquidity_index(idx, 0, 10**6) == idx
    borrow = next_variable_borrow_index(RAY, 10**26, 86_400, version="v3.3")
    assert borrow == compounded_interest(10**26, 86_400, version="v3.3")
    assert next_variable_borrow_index(RAY, 10**26, 86_400, has_debt=False) == RAY
    # 1,000 scaled debt, index 1 → 1.1, 10 % reserve factor → 10 of interest to the treasury, at liquidity index 1.
    assert treasury_accrual_scaled(1_000, RAY, RAY + RAY // 10, RAY, 1000, version="v3.3") == 10
    assert treasury_accrual_scaled(1_000, RAY, RAY + RAY // 10, RAY, 1000, version="v3.5") == 10
    assert treasury_accrual_scaled(1_000, RAY, RAY + RAY // 10, RAY, 0) == 0
    # 3.5 floors the accrual: 3 scaled × 0.5 ray = 1.5 → 1 (before: rayMul(3, 1.5) − 3 = 5 − 3 = 2).
    assert treasury_accrual_scaled(3, RAY, RAY * 3 // 2, RAY, 10000, version="v3.5") == 1
    assert treasury_accrual_scaled(3, RAY, RAY * 3 // 2, RAY, 10000, version="v3.4") == 2


# --- versions --------------------------------------------------------------------------------------------------


def test_version_resolution() -> None:
    assert resolve("v3").name == "v3.7" and resolve("v3.6").name == "v3.5"
    assert resolve(resolve("v3.3")) is resolve("v3.3")
    with pytest.raises(ValueError, match=r"v3\.7"):
        resolve("3.3")
    table = {v: resolve(v) for v in VERSIONS}
    assert [v for v, r in table.items() if r.deficit] == ["v3.3", "v3.4", "v3.5", "v3.7"]
    assert [v for v, r in table.items() if r.directional] == ["v3.5", "v3.7"]
    assert [v for v, r in table.items() if r.emode_category_per_asset] == ["v3.0", "v3.1"]
    assert [v for v, r in table.items() if r.isolation] == ["v3.0", "v3.1", "v3.2", "v3.3", "v3.4", "v3.5"]


def test_docstring_examples() -> None:
    import backtest.protocols.aave.account as account
    import backtest.protocols.aave.liquidation as liquidation

    for module in (account, liquidation):
        failures, tried = doctest.testmod(module)
        assert tried > 0 and failures == 0


# --- rounding direction per version (property) -----------------------------------------------------------------

amounts = st.integers(min_value=0, max_value=10**30)
indices = st.integers(min_value=RAY, max_value=50 * RAY)
bps = st.integers(min_value=1, max_value=20_000)


@settings(max_examples=300, deadline=None)
@given(scaled=amounts, index=indices)
def test_token_balance_rounding_direction(scaled: int, index: int) -> None:
    exact = Fraction(scaled * index, RAY)
    for version in VERSIONS:
        rules = resolve(version)
        a, v = fp.a_token_balance(scaled, index, rules), fp.v_token_balance(scaled, index, rules)
        if rules.directional:
            assert a <= exact < a + 1 and v - 1 < exact <= v
        else:
            assert abs(a - exact) <= Fraction(1, 2) and a == v


@settings(max_examples=300, deadline=None)
@given(amount=amounts, index=indices)
def test_scaled_conversion_rounding_direction(amount: int, index: int) -> None:
    exact = Fraction(amount * RAY, index)
    for version in VERSIONS:
        rules = resolve(version)
        burn, mint = fp.a_token_burn_scaled(amount, index, rules), fp.a_token_mint_scaled(amount, index, rules)
        vmint, vburn = fp.v_token_mint_scaled(amount, index, rules), fp.v_token_burn_scaled(amount, index, rules)
        if rules.directional:  # in the protocol's favour
            assert burn >= exact and vmint >= exact and mint <= exact and vburn <= exact
            assert burn - exact < 1 and exact - mint < 1
        else:
            assert all(abs(x - exact) <= Fraction(1, 2) for x in (burn, mint, vmint, vburn))


@settings(max_examples=300, deadline=None)
@given(
    debt=st.integers(min_value=1, max_value=10**27),
    pd=st.integers(min_value=1, max_value=10**14),
    pc=st.integers(min_value=1, max_value=10**14),
    dd=st.sampled_from([0, 6, 8, 18]),
    dc=st.sampled_from([0, 6, 8, 18]),
    bonus=st.integers(min_value=10_001, max_value=15_000),
    fee=st.integers(min_value=0, max_value=10_000),
    balance=amounts,
)
def test_liquidation_rounding_direction(debt: int, pd: int, pc: int, dd: int, dc: int, bonus: int, fee: int,
                                        balance: int) -> None:
    ud, uc = 10**dd, 10**dc
    for version in VERSIONS:
        rules = resolve(version)
        fee_bps = 0 if rules.v2 else fee
        total = collateral_to_seize(debt, pd, dd, pc, dc, bonus, version=version, protocol_fee_bps=fee_bps)
        if rules.v2:  # floor of the half-up bonus product: within one unit of the exact value
            assert abs(total - Fraction(pd * debt * uc * bonus, 10_000 * pc * ud)) < 1
        else:
            base = pd * debt * uc // (pc * ud)
            exact = Fraction(base * bonus, 10_000)
            if rules.explicit_liquidation_rounding:
                assert total <= exact < total + 1
            else:
                assert abs(total - exact) <= Fraction(1, 2)
        quote = available_collateral(debt, pd, dd, pc, dc, bonus, balance, version=version, protocol_fee_bps=fee_bps)
        seized = quote.collateral_seized
        assert seized <= max(total, 0) and seized <= balance
        if total > balance:
            exact_debt = Fraction(pc * balance * ud // (pd * uc) * 10_000, bonus)
            if rules.directional:
                assert exact_debt <= quote.debt_to_repay < exact_debt + 1
            else:
                assert abs(quote.debt_to_repay - exact_debt) <= Fraction(1, 2)
        if fee_bps:
            coll = seized
            if rules.explicit_liquidation_rounding:  # bonus part rounded up, fee rounded up: protocol's favour
                bonus_part = coll - coll * 10_000 // bonus
                assert quote.protocol_fee == -(-bonus_part * fee_bps // 10_000)
                assert bonus_part >= coll - Fraction(coll * 10_000, bonus)
            else:
                bonus_part = coll - fp.percent_div(coll, bonus)
                assert abs(quote.protocol_fee - Fraction(bonus_part * fee_bps, 10_000)) <= Fraction(1, 2)
