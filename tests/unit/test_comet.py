"""Compound v3 (Comet) integer layer and its float counterpart (``backtest.protocols.comet``).

The PROTOCOLS §2.6 worked example is checked to the wei in both cases (WETH at $1,780: the user keeps 910
USDC and the store front recovers 356 USDC more than absorb paid out; WETH gapping to $1,500: the borrow is
cleared at a 1,450 USDC loss). Revert tests follow the contract's custom errors and its order of checks.
The properties: absorb takes exactly what is held, never leaves a negative balance, charges ``Σ value·(1 −
LF)``; the reserves computed from the market totals move by ``proceeds − basePaidOut`` (exactly at index
1e15, within the index rounding otherwise); and the float layer stays within 1e-9 of the integer one for
positions well above the raw-unit rounding steps (collateral priced ≥ $20, legs worth ≥ $100).
"""

from __future__ import annotations

import doctest
import math
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from backtest.protocols import ProtocolRevert
from backtest.protocols import comet as c

ETH = 10**18
USDC = 10**6
USD = 10**8
INDEX = 10**15
WAD = 10**18

BCF_WETH = 825 * 10**15
LCF_WETH = 895 * 10**15
LF_WETH = 95 * 10**16
SFPF = 6 * 10**17


def worked_account(weth_usd: int) -> dict:
    """PROTOCOLS §2.6: USDC market at $1, 10 WETH (LCF 0.895, LF 0.95), 16,000 USDC borrowed, indices 1.0."""
    return {
        "base_decimals": 6,
        "base_price": USD,
        "base_supply_index": INDEX,
        "base_borrow_index": INDEX,
        "principal": -16_000 * USDC,
        "collateral": {"WETH": 10 * ETH},
        "assets": {"WETH": c.CometAsset(18, weth_usd * USD, LCF_WETH, LF_WETH)},
    }


def store_front(weth_usd: int, **kw) -> dict:
    return {
        "asset_price": weth_usd * USD,
        "base_price": USD,
        "liquidation_factor": LF_WETH,
        "store_front_price_factor": SFPF,
        "asset_decimals": 18,
        "base_decimals": 6,
        **kw,
    }


def reserves_of(market: dict) -> int:
    return c.get_reserves(**market)


# --- §2.6 worked example ------------------------------------------------------------------------------


def test_worked_example_borrow_was_allowed_at_2000():
    acct = worked_account(2000)
    acct["assets"] = {"WETH": (18, 2000 * USD, BCF_WETH)}
    assert c.account_liquidity(**acct) == 500 * USD  # 16,500 capacity − 16,000 borrowed
    assert c.is_borrow_collateralized(**acct)
    assert not c.is_liquidatable(**worked_account(2000))


def test_worked_example_1780_absorb():
    acct = worked_account(1780)
    assert c.account_liquidity(**acct) == -69 * USD
    assert c.is_liquidatable(**acct)
    out = c.absorb_account(**acct)
    assert out.collateral_absorbed == {"WETH": 10 * ETH}
    assert out.collateral_usd == {"WETH": 17_800 * USD}
    assert out.delta_value == 16_910 * USD
    assert out.delta_balance == 16_910 * USDC
    assert out.new_balance == 910 * USDC  # the user keeps a 910 USDC supply
    assert out.principal_after == 910 * USDC and out.balance_after == 910 * USDC
    assert out.base_paid_out == 16_910 * USDC
    assert out.debt_usd == 16_910 * USD
    assert (out.repay_amount, out.supply_amount, out.shortfall) == (16_000 * USDC, 910 * USDC, 0)
    assert out.penalty_usd == 890 * USD  # 17,800 × 5 %


def test_worked_example_1780_store_front():
    # discount 0.6 × 5 % = 3 %, discounted price 1,726.60: 17,266 USDC buys all 10 WETH
    assert c.quote_collateral(**store_front(1780), base_amount=17_266 * USDC) == 10 * ETH
    bought = c.buy_collateral(
        **store_front(1780),
        reserves=0,
        target_reserves=5_000_000 * USDC,
        collateral_reserves=10 * ETH,
        base_amount=17_266 * USDC,
        min_amount=10 * ETH,
    )
    assert bought == 10 * ETH
    assert 17_266 * USDC - c.absorb_account(**worked_account(1780)).base_paid_out == 356 * USDC


def test_worked_example_1500_gap_is_bad_debt():
    out = c.absorb_account(**worked_account(1500))
    assert out.delta_balance == 14_250 * USDC
    assert out.shortfall == 1_750 * USDC  # −16,000 + 14,250, clamped to 0
    assert out.new_balance == 0 and out.principal_after == 0 and out.balance_after == 0
    assert out.base_paid_out == 16_000 * USDC
    assert out.debt_usd == 16_000 * USD
    # the store front sells at 1,455: 14,550 USDC for the 10 WETH
    assert c.quote_collateral(**store_front(1500), base_amount=14_550 * USDC) == 10 * ETH
    assert 14_550 * USDC - out.base_paid_out == -1_450 * USDC


@pytest.mark.parametrize(("weth_usd", "proceeds", "net"), [(1780, 17_266, 356), (1500, 14_550, -1_450)])
def test_worked_example_reserves_from_market_totals(weth_usd, proceeds, net):
    # another supplier lends the 16,000 USDC, so the market holds 84,000 USDC of a 100,000 supply
    market = {
        "base_balance": 84_000 * USDC,
        "base_supply_index": INDEX,
        "base_borrow_index": INDEX,
        "total_supply_base": 100_000 * USDC,
        "total_borrow_base": 16_000 * USDC,
    }
    before = reserves_of(market)
    assert before == 0
    out = c.absorb_account(**worked_account(weth_usd))
    market["total_supply_base"] += out.supply_amount
    market["total_borrow_base"] -= out.repay_amount
    assert reserves_of(market) == before - out.base_paid_out
    bought = c.buy_collateral(
        **store_front(weth_usd),
        reserves=reserves_of(market),
        target_reserves=1_000 * USDC,
        collateral_reserves=10 * ETH,
        base_amount=proceeds * USDC,
        min_amount=0,
    )
    assert bought == 10 * ETH
    market["base_balance"] += proceeds * USDC
    assert reserves_of(market) - before == net * USDC


def test_worked_example_float_layer():
    kw = {
        "base_price": 1.0,
        "base_supply_index": 1.0,
        "base_borrow_index": 1.0,
        "principal": -16_000.0,
        "collateral": {"WETH": 10.0},
    }
    hi = c.absorb_float(**kw, assets={"WETH": (18, 1780.0, 0.895, 0.95)})
    assert hi.new_balance == pytest.approx(910.0) and hi.base_paid_out == pytest.approx(16_910.0)
    lo = c.absorb_float(**kw, assets={"WETH": (18, 1500.0, 0.895, 0.95)})
    assert lo.new_balance == 0.0 and lo.base_paid_out == 16_000.0 and lo.shortfall == pytest.approx(1_750.0)
    sf = {"base_price": 1.0, "liquidation_factor": 0.95, "store_front_price_factor": 0.6}
    assert c.quote_collateral_float(asset_price=1780.0, base_amount=17_266.0, **sf) == pytest.approx(10.0)
    assert c.quote_collateral_float(asset_price=1500.0, base_amount=14_550.0, **sf) == pytest.approx(10.0)


def test_two_assets_with_interest_indices():
    # borrow index 1.1, supply index 1.05; 5 WETH at $1,780 (LF 0.95) and 0.2 WBTC at $60,000 (LCF 0.7, LF 0.9)
    acct = {
        "base_decimals": 6,
        "base_price": USD,
        "base_supply_index": 105 * 10**13,
        "base_borrow_index": 110 * 10**13,
        "principal": -15_454_545_455,
        "collateral": {"WETH": 5 * ETH, "WBTC": 20_000_000, "USDT": 0},
        # USDT is not in assetsIn (zero balance): its feed is never read, so a bad price does not revert
        "assets": {
            "WETH": (18, 1780 * USD, LCF_WETH, LF_WETH),
            "WBTC": (8, 60_000 * USD, 7 * 10**17, 9 * 10**17),
            "USDT": (6, 0, 8 * 10**17, 9 * 10**17),
        },
    }
    assert c.account_liquidity(**{**acct, "collateral": {"WETH": 5 * ETH, "WBTC": 20_000_000}}) == -63_450_000_000
    out = c.absorb_account(**acct)
    assert out.old_balance == -17_000 * USDC  # floor(15,454,545,455 × 1.1)
    assert out.collateral_absorbed == {"WETH": 5 * ETH, "WBTC": 20_000_000, "USDT": 0}
    assert out.collateral_usd == {"WETH": 8_900 * USD, "WBTC": 12_000 * USD, "USDT": 0}
    assert out.delta_value == 19_255 * USD and out.delta_balance == 19_255 * USDC
    assert out.new_balance == 2_255 * USDC
    assert out.principal_after == 2_147_619_047  # floor(2,255e6 / 1.05)
    assert out.balance_after == 2_254_999_999  # the stored principal is worth a wei less than was credited
    assert out.base_paid_out == 19_255 * USDC
    assert (out.repay_amount, out.supply_amount) == (15_454_545_455, 2_147_619_047)
    assert out.penalty_usd == 1_645 * USD  # 8,900 × 5 % + 12,000 × 10 %


def test_debt_without_collateral_is_written_off():
    out = c.absorb_account(**{**worked_account(1780), "collateral": {}})
    assert out.collateral_absorbed == {} and out.delta_value == 0
    assert out.base_paid_out == out.shortfall == 16_000 * USDC and out.new_balance == 0


def test_module_doctests():
    result = doctest.testmod(c)
    assert result.attempted >= 3 and result.failed == 0


def test_borrow_not_collateralized_after_the_drop():
    acct = worked_account(1780)
    acct["assets"] = {"WETH": (18, 1780 * USD, BCF_WETH)}
    assert c.account_liquidity(**acct) == -1_315 * USD  # 14,685 of borrow capacity
    assert not c.is_borrow_collateralized(**acct)
    assert c.is_borrow_collateralized(**{**acct, "principal": 1})


# --- reverts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"principal": 0},
        {"principal": 5_000 * USDC},  # supplier
        {"assets": {"WETH": (18, 2000 * USD, LCF_WETH, LF_WETH)}},  # healthy borrower
        {"assets": {"WETH": (18, 1788 * USD, LCF_WETH, LF_WETH)}},  # 16,002.6 of LCF value: still safe
    ],
)
def test_absorb_not_liquidatable(change):
    acct = {**worked_account(1780), **change}
    with pytest.raises(ProtocolRevert) as err:
        c.absorb_account(**acct)
    assert err.value.reason == "NotLiquidatable"
    with pytest.raises(ProtocolRevert, match="NotLiquidatable"):
        c.absorb_float(
            base_price=1.0,
            base_supply_index=1.0,
            base_borrow_index=1.0,
            principal=acct["principal"] / USDC,
            collateral={"WETH": 10.0},
            assets={"WETH": (18, acct["assets"]["WETH"][1] / USD, 0.895, 0.95)},
        )


def test_liquidatable_boundary_is_strict():
    # 16,000 USDC of debt against exactly 16,000 of LCF-weighted value (WETH 0.8 LCF at $2,000): not liquidatable
    acct = worked_account(2000)
    acct["assets"] = {"WETH": (18, 2000 * USD, 8 * 10**17, LF_WETH)}
    assert c.account_liquidity(**acct) == 0
    assert not c.is_liquidatable(**acct)
    acct["principal"] -= 1
    assert c.is_liquidatable(**acct)


def test_absorb_bad_price():
    with pytest.raises(ProtocolRevert) as err:
        c.absorb_account(**{**worked_account(1780), "base_price": 0})
    assert err.value.reason == "BadPrice"


def test_absorb_rejects_malformed_inputs():
    with pytest.raises(ValueError, match="int104"):
        c.absorb_account(**{**worked_account(1780), "principal": -(2**104)})
    with pytest.raises(ValueError, match="no entry"):
        c.absorb_account(**{**worked_account(1780), "collateral": {"WBTC": 1}})
    with pytest.raises(ValueError, match="non-negative"):
        c.absorb_account(**{**worked_account(1780), "collateral": {"WETH": -1}})


def buy(**kw):
    args = {
        **store_front(1780),
        "reserves": 0,
        "target_reserves": 1_000 * USDC,
        "collateral_reserves": 10 * ETH,
        "base_amount": 17_266 * USDC,
        "min_amount": 10 * ETH,
    }
    args.update(kw)
    return c.buy_collateral(**args), c.buy_collateral_float(
        **{
            **args,
            "asset_price": args["asset_price"] / USD,
            "base_price": args["base_price"] / USD,
            "liquidation_factor": args["liquidation_factor"] / WAD,
            "store_front_price_factor": args["store_front_price_factor"] / WAD,
            "reserves": args["reserves"] / USDC,
            "target_reserves": args["target_reserves"] / USDC,
            "collateral_reserves": args["collateral_reserves"] / ETH,
            "base_amount": args["base_amount"] / USDC,
            "min_amount": args["min_amount"] / ETH * (1 - 1e-12),
        }
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"reserves": 1_000 * USDC}, "NotForSale"),  # at target
        ({"reserves": 2_000 * USDC}, "NotForSale"),
        ({"reserves": 0, "target_reserves": 0}, "NotForSale"),
        ({"collateral_reserves": 10 * ETH - 1}, "InsufficientReserves"),
        ({"min_amount": 10 * ETH + 1}, "TooMuchSlippage"),
        # order: the reserves check first, then slippage, then the collateral reserves
        ({"reserves": 1_000 * USDC, "min_amount": 11 * ETH, "collateral_reserves": 0}, "NotForSale"),
        ({"min_amount": 11 * ETH, "collateral_reserves": 0}, "TooMuchSlippage"),
        ({"asset_price": 0}, "BadPrice"),
    ],
)
def test_buy_collateral_reverts(change, reason):
    with pytest.raises(ProtocolRevert) as err:
        c.buy_collateral(
            **{
                **store_front(1780),
                "reserves": 0,
                "target_reserves": 1_000 * USDC,
                "collateral_reserves": 10 * ETH,
                "base_amount": 17_266 * USDC,
                "min_amount": 10 * ETH,
                **change,
            }
        )
    assert err.value.reason == reason


def test_buy_collateral_float_reverts_alike():
    for change, reason in [
        ({"reserves": 1_000 * USDC}, "NotForSale"),
        ({"collateral_reserves": 9 * ETH}, "InsufficientReserves"),
        ({"min_amount": 11 * ETH, "collateral_reserves": 0}, "TooMuchSlippage"),
    ]:
        with pytest.raises(ProtocolRevert, match=reason):
            buy(**change)


def test_buy_collateral_negative_reserves_always_for_sale():
    exact, approx = buy(reserves=-1, target_reserves=0)
    assert exact == 10 * ETH and approx == pytest.approx(10.0)


def test_quote_collateral_panics():
    with pytest.raises(ProtocolRevert) as err:  # LF above 1: 1e18 − LF underflows
        c.quote_collateral(**{**store_front(1780), "liquidation_factor": 2 * WAD}, base_amount=1)
    assert err.value.reason == "panic 0x11"
    with pytest.raises(ProtocolRevert) as err:  # discounted price floors to zero
        c.quote_collateral(
            **{**store_front(1780), "asset_price": 1, "store_front_price_factor": WAD, "liquidation_factor": 0},
            base_amount=1,
        )
    assert err.value.reason == "panic 0x12"


# --- helpers ------------------------------------------------------------------------------------------


def test_present_and_principal_rounding():
    idx = 1_000_000_000_000_001  # 1.000000000000001
    assert c.present_value_supply(idx, 999) == 999  # 999.000000000000999 floors
    assert c.present_value_borrow(idx, 10**15) == 10**15 + 1
    assert c.principal_value_supply(idx, 1000) == 999  # floor of 999.999…
    assert c.principal_value_borrow(idx, 1000) == 1000  # ceil of 999.999…
    assert c.present_value(-1000, base_supply_index=idx, base_borrow_index=idx) == -1000
    assert c.principal_value(-1000, base_supply_index=idx, base_borrow_index=idx) == -1000
    assert c.principal_value(1000, base_supply_index=idx, base_borrow_index=idx) == 999


def test_principal_conversion_overflow():
    with pytest.raises(ProtocolRevert) as err:
        c.principal_value_supply(INDEX, 2**104)
    assert err.value.reason == "InvalidUInt104"
    with pytest.raises(ProtocolRevert) as err:
        c.principal_value(2**103, base_supply_index=INDEX, base_borrow_index=INDEX)
    assert err.value.reason == "InvalidInt104"
    with pytest.raises(ProtocolRevert) as err:
        c.present_value(-(2**103), base_supply_index=INDEX, base_borrow_index=INDEX)
    assert err.value.reason == "panic 0x11"


def test_fixed_point_helpers():
    assert c.mul_factor(17_800 * USD, LCF_WETH) == 15_931 * USD
    assert c.mul_price(10 * ETH, 1780 * USD, ETH) == 17_800 * USD
    assert c.div_price(16_910 * USD, USD, USDC) == 16_910 * USDC
    # int256 division truncates toward zero: a borrow is valued at slightly less than floor would give
    assert c.signed_mul_price(-1, 150_000_000, 10**8) == -1
    assert c.signed_mul_price(1, 150_000_000, 10**8) == 1
    assert c.truncate_factor(825_550_000_000_000_000) == 825_500_000_000_000_000
    assert c.truncate_factor(c.truncate_factor(LCF_WETH)) == LCF_WETH


def test_truncated_factor_is_what_absorb_uses():
    acct = worked_account(1780)
    acct["assets"] = {"WETH": (18, 1780 * USD, LCF_WETH, LF_WETH + 99_999_999_999_999)}
    assert c.absorb_account(**acct) == c.absorb_account(**worked_account(1780))


def test_accrue_one_day_at_five_percent():
    rate = 5 * 10**16 // c.SECONDS_PER_YEAR
    assert rate == 1_585_489_599
    assert c.accrue(
        base_supply_index=INDEX, base_borrow_index=INDEX, supply_rate=rate, borrow_rate=2 * rate, time_elapsed=86_400
    ) == (1_000_136_986_301_353, 1_000_273_972_602_707)
    assert c.accrue(
        base_supply_index=INDEX, base_borrow_index=INDEX, supply_rate=rate, borrow_rate=rate, time_elapsed=0
    ) == (INDEX, INDEX)


def test_rate_curve_and_utilization():
    curve = c.RateCurve.from_per_year(kink=8 * 10**17, base=0, slope_low=4 * 10**16, slope_high=10**18)
    assert curve.per_second_slope_low == 4 * 10**16 // c.SECONDS_PER_YEAR
    u = c.get_utilization(
        base_supply_index=INDEX, base_borrow_index=INDEX, total_supply_base=100 * USDC, total_borrow_base=90 * USDC
    )
    assert u == 9 * 10**17
    expected = c.mul_factor(curve.per_second_slope_low, 8 * 10**17) + c.mul_factor(
        curve.per_second_slope_high, 10**17
    )
    assert c.get_rate(curve, u) == expected
    assert c.get_rate(curve, 5 * 10**17) == c.mul_factor(curve.per_second_slope_low, 5 * 10**17)
    assert c.accrued_interest_indices(
        base_supply_index=INDEX,
        base_borrow_index=INDEX,
        total_supply_base=100 * USDC,
        total_borrow_base=90 * USDC,
        supply_curve=curve,
        borrow_curve=curve,
        time_elapsed=3600,
    ) == c.accrue(
        base_supply_index=INDEX,
        base_borrow_index=INDEX,
        supply_rate=expected,
        borrow_rate=expected,
        time_elapsed=3600,
    )
    assert (
        c.get_utilization(base_supply_index=INDEX, base_borrow_index=INDEX, total_supply_base=0, total_borrow_base=5)
        == 0
    )


def test_reserves_views():
    assert (
        c.get_reserves(
            base_balance=10,
            base_supply_index=INDEX,
            base_borrow_index=INDEX,
            total_supply_base=50,
            total_borrow_base=30,
        )
        == -10
    )
    assert c.get_collateral_reserves(token_balance=12, total_supply_asset=10) == 2
    with pytest.raises(ProtocolRevert, match="panic 0x11"):
        c.get_collateral_reserves(token_balance=9, total_supply_asset=10)


# --- properties ---------------------------------------------------------------------------------------

ASSET_DECIMALS = st.sampled_from([6, 8, 18])
FACTOR_4DP = st.integers(5_000, 9_999).map(lambda bp: bp * 10**14)


@st.composite
def underwater(draw, *, indices=True, min_usd=100):
    """A borrower liquidatable by a clear margin: 1–4 collateral assets priced $20–$100k, legs ≥ ``min_usd``."""
    bd = draw(st.sampled_from([6, 18]))
    base_price = USD if bd == 6 else draw(st.integers(500 * USD, 5_000 * USD))
    n = draw(st.integers(1, 4))
    assets, collateral = {}, {}
    lcf_value = 0
    for i in range(n):
        dec = draw(ASSET_DECIMALS)
        price = draw(st.integers(20 * USD, 100_000 * USD))
        lf = draw(FACTOR_4DP)
        lcf = min(draw(FACTOR_4DP), lf)
        usd = draw(st.integers(min_usd, 5_000_000))
        amount = max(1, usd * USD * 10**dec // price)
        assets[f"A{i}"] = (dec, price, lcf, lf)
        collateral[f"A{i}"] = amount
        lcf_value += c.mul_factor(c.mul_price(amount, price, 10**dec), lcf)
    si = draw(st.integers(INDEX, 2 * INDEX)) if indices else INDEX
    bi = draw(st.integers(si, 3 * INDEX)) if indices else INDEX
    # debt above the LCF value by 0.1 %–200 % (a clear margin, so rounding cannot flip the verdict)
    debt_usd = lcf_value * draw(st.integers(1_001, 3_000)) // 1_000 + 1
    debt = c.div_price(debt_usd, base_price, 10**bd) + 1
    principal = -c.principal_value_borrow(bi, debt)
    return {
        "base_decimals": bd,
        "base_price": base_price,
        "base_supply_index": si,
        "base_borrow_index": bi,
        "principal": principal,
        "collateral": collateral,
        "assets": assets,
    }


@given(underwater())
def test_absorb_invariants(acct):
    assert c.is_liquidatable(**acct)
    out = c.absorb_account(**acct)
    assert out.collateral_absorbed == acct["collateral"]  # absorbed = held, every asset, all of it
    assert out.new_balance >= 0 and out.principal_after >= 0 and out.balance_after >= 0
    assert out.balance_after <= out.new_balance  # supply principal rounds down
    assert out.old_balance < 0 and out.repay_amount == -acct["principal"]
    assert out.base_paid_out == out.new_balance - out.old_balance >= -out.old_balance
    assert out.new_balance - out.shortfall == out.old_balance + out.delta_balance
    # penalty = Σ value·(1 − LF): each leg's mulFactor floors, so the integer one is < 1 unit per leg above it
    exact = sum(
        Fraction(out.collateral_usd[s]) * (1 - Fraction(lf, WAD)) for s, (_, _, _, lf) in acct["assets"].items()
    )
    assert 0 <= out.penalty_usd - exact < len(acct["assets"])
    assert out.penalty_usd + out.delta_value == sum(out.collateral_usd.values())


@given(underwater(), st.integers(0, 5 * 10**12), st.integers(0, 10**12), st.data())
def test_reserves_move_by_proceeds_minus_base_paid_out(acct, other_supply, other_borrow, data):
    si, bi = acct["base_supply_index"], acct["base_borrow_index"]
    bd = acct["base_decimals"]
    market = {
        "base_balance": data.draw(st.integers(0, 10**30)),
        "base_supply_index": si,
        "base_borrow_index": bi,
        "total_supply_base": other_supply * 10 ** (bd - 6),
        "total_borrow_base": other_borrow * 10 ** (bd - 6) - acct["principal"],
    }
    before = reserves_of(market)
    out = c.absorb_account(**acct)
    market["total_supply_base"] += out.supply_amount
    market["total_borrow_base"] -= out.repay_amount
    proceeds = 0
    for symbol, (dec, price, _lcf, lf) in acct["assets"].items():
        spend = data.draw(st.integers(0, 10 ** (bd + 7)), label=f"spend {symbol}")
        quoted = c.quote_collateral(
            asset_price=price,
            base_price=acct["base_price"],
            liquidation_factor=lf,
            store_front_price_factor=SFPF,
            asset_decimals=dec,
            base_decimals=bd,
            base_amount=spend,
        )
        if quoted > out.collateral_absorbed[symbol]:
            continue  # InsufficientReserves: no sale
        proceeds += spend
    market["base_balance"] += proceeds
    drift = (reserves_of(market) - before) - (proceeds - out.base_paid_out)
    # present values of the totals round once each: −2 ≤ drift < supply index / 1e15 + 1 (wei)
    assert -2 <= drift < si / INDEX + 1
    if si == bi == INDEX:
        assert drift == 0


@given(underwater(indices=False))
def test_reserves_exact_at_unit_index(acct):
    market = {
        "base_balance": 0,
        "base_supply_index": INDEX,
        "base_borrow_index": INDEX,
        "total_supply_base": 0,
        "total_borrow_base": -acct["principal"],
    }
    out = c.absorb_account(**acct)
    market["total_supply_base"] += out.supply_amount
    market["total_borrow_base"] -= out.repay_amount
    assert reserves_of(market) == -acct["principal"] - out.base_paid_out


def _float_args(acct: dict) -> dict:
    bscale = 10 ** acct["base_decimals"]
    return {
        "base_decimals": acct["base_decimals"],
        "base_price": acct["base_price"] / USD,
        "base_supply_index": acct["base_supply_index"] / INDEX,
        "base_borrow_index": acct["base_borrow_index"] / INDEX,
        "principal": acct["principal"] / bscale,
        "collateral": {s: a / 10 ** acct["assets"][s][0] for s, a in acct["collateral"].items()},
        "assets": {s: (d, p / USD, lcf / WAD, lf / WAD) for s, (d, p, lcf, lf) in acct["assets"].items()},
    }


def near(approx: float, exact: float, *, rel: float, slack: float = 0.0) -> bool:
    """``approx`` within ``rel·|exact| + slack``: 1e-9 relative plus, where stated, a few raw units of rounding."""
    return abs(approx - exact) <= rel * abs(exact) + slack


def check_absorb_float(acct: dict, *, raw_steps: int) -> None:
    exact = c.absorb_account(**acct)
    approx = c.absorb_float(**_float_args(acct))
    bscale = 10 ** acct["base_decimals"]
    legs = len(acct["assets"])
    # each leg floors twice in USD (value, ×LF); divPrice, presentValue and principalValue floor in base units
    # (a principal unit is worth `index` raw units)
    usd_slack = raw_steps * 2 * legs / USD
    index_units = 2 + acct["base_supply_index"] / INDEX
    base_slack = raw_steps * (usd_slack / (acct["base_price"] / USD) + index_units / bscale)
    debt = -exact.old_balance / bscale
    for symbol, (dec, _p, _lcf, _lf) in acct["assets"].items():
        assert approx.collateral_absorbed[symbol] == exact.collateral_absorbed[symbol] / 10**dec
        assert near(approx.collateral_usd[symbol], exact.collateral_usd[symbol] / USD, rel=1e-9, slack=usd_slack)
    assert near(approx.delta_value, exact.delta_value / USD, rel=1e-9, slack=usd_slack)
    # the penalty can be a sliver of the collateral (LF 0.9994): measure it against the collateral value
    value = sum(exact.collateral_usd.values()) / USD
    assert abs(approx.penalty_usd - exact.penalty_usd / USD) <= 1e-9 * value + usd_slack
    debt_slack = usd_slack + base_slack * acct["base_price"] / USD  # basePaidOut's own floors, priced
    assert near(approx.debt_usd, exact.debt_usd / USD, rel=1e-9, slack=debt_slack)
    for field in ("old_balance", "delta_balance", "base_paid_out", "repay_amount"):
        assert near(getattr(approx, field), getattr(exact, field) / bscale, rel=1e-9, slack=base_slack), field
    # what is left may be near zero: measure it against the debt it settles
    for field in ("new_balance", "balance_after", "shortfall", "principal_after", "supply_amount"):
        got, want = getattr(approx, field), getattr(exact, field) / bscale
        assert abs(got - want) <= 1e-9 * debt + base_slack, field


@given(underwater(min_usd=10_000))
def test_absorb_float_within_1e9(acct):
    check_absorb_float(acct, raw_steps=0)


@given(underwater())
def test_absorb_float_small_positions_within_rounding(acct):
    # below ~$10k a raw unit (1e-6 USDC, 1e-8 USD) is more than 1e-9 of the amount: allow the floors themselves
    check_absorb_float(acct, raw_steps=1)


@given(
    st.integers(20 * USD, 100_000 * USD),
    st.sampled_from([6, 8, 18]),
    st.sampled_from([6, 18]),
    st.integers(USD // 10, 5_000 * USD),
    FACTOR_4DP,
    st.integers(0, WAD),
    st.integers(100, 10**8),
)
def test_quote_float_within_1e9(asset_price, asset_dec, base_dec, base_price, lf, sfpf, usd):
    base_amount = usd * USD * 10**base_dec // base_price
    assume(base_amount > 0)
    exact = c.quote_collateral(
        asset_price=asset_price,
        base_price=base_price,
        liquidation_factor=lf,
        store_front_price_factor=sfpf,
        asset_decimals=asset_dec,
        base_decimals=base_dec,
        base_amount=base_amount,
    )
    approx = c.quote_collateral_float(
        asset_price=asset_price / USD,
        base_price=base_price / USD,
        liquidation_factor=lf / WAD,
        store_front_price_factor=sfpf / WAD,
        base_amount=base_amount / 10**base_dec,
    )
    # 1e-9 relative, plus the final floor to one raw unit of the collateral
    assert near(approx, exact / 10**asset_dec, rel=1e-9, slack=1 / 10**asset_dec)
    # the discounted price floors (in the buyer's favour, < 1e-8 USD); the discount (< 1e-18) and the amount
    # floor in the protocol's
    discount = Fraction(sfpf, WAD) * (1 - Fraction(lf, WAD))
    ideal_price = asset_price * (1 - discount)
    ideal = Fraction(base_amount * base_price * 10**asset_dec, 10**base_dec) / ideal_price
    assert math.floor(ideal * (1 - Fraction(1, 10**17))) <= exact <= ideal * ideal_price / math.floor(ideal_price)


@given(
    st.integers(USD, 100_000 * USD),
    FACTOR_4DP,
    st.integers(0, WAD),
    st.integers(0, 10**12),
    st.integers(0, 10**12),
    st.integers(0, 10**22),
)
def test_buy_collateral_bounds(asset_price, lf, sfpf, base_amount, extra, reserves_cap):
    kw = {
        "asset_price": asset_price,
        "base_price": USD,
        "liquidation_factor": lf,
        "store_front_price_factor": sfpf,
        "asset_decimals": 18,
        "base_decimals": 6,
    }
    quote = c.quote_collateral(**kw, base_amount=base_amount)
    assert c.quote_collateral(**kw, base_amount=base_amount + extra) >= quote  # monotone in the payment
    try:
        out = c.buy_collateral(
            **kw,
            reserves=-1,
            target_reserves=0,
            collateral_reserves=reserves_cap,
            base_amount=base_amount,
            min_amount=quote // 2,
        )
    except ProtocolRevert as err:
        assert err.reason == "InsufficientReserves" and quote > reserves_cap
    else:
        assert out == quote and quote // 2 <= out <= reserves_cap


@given(st.integers(INDEX, 3 * INDEX), st.integers(0, 10**30))
def test_principal_round_trips_favour_the_protocol(index, amount):
    assert c.present_value_supply(index, c.principal_value_supply(index, amount)) <= amount
    assert c.present_value_borrow(index, c.principal_value_borrow(index, amount)) >= amount


@given(
    st.integers(INDEX, 3 * INDEX), st.integers(0, 10**10), st.integers(0, 10**7), st.integers(0, 10**7)
)
def test_accrual_compounds_across_steps(index, rate, dt1, dt2):
    def step(i, dt):
        kw = {"supply_rate": rate, "borrow_rate": rate, "time_elapsed": dt}
        return c.accrue(base_supply_index=i, base_borrow_index=i, **kw)[0]

    one = step(index, dt1 + dt2)
    two = step(step(index, dt1), dt2)
    assert one >= index and two >= index
    assert two >= one - 1  # compounding adds interest on interest; each floor costs at most 1
