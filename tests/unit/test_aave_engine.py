"""The engine's Aave float models follow ``backtest.protocols.aave_float`` (the spec held to the integer layer)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backtest.engine.fast import replay_fast
from backtest.engine.reference import replay_reference
from backtest.engine.types import Book, Events, Params
from backtest.protocols.aave_float import DUST_REDUCE, DUST_REVERT, liquidation_call_float

# model code in the engine → rule code of the float spec
RULE_OF_MODEL = {1: 0, 2: 1, 3: 2, 4: 3}


@given(
    model=st.sampled_from([1, 2, 3, 4]),
    coll=st.floats(0.01, 1e5),
    price_drop=st.floats(0.3, 0.99),
    hf0=st.floats(1.0, 1.3),
    lt=st.floats(0.5, 0.9),
    bonus=st.floats(0.01, 0.15),
    fee=st.floats(0.0, 0.3),
    dust=st.sampled_from([DUST_REVERT, DUST_REDUCE]),
)
def test_first_call_matches_the_float_spec(model, coll, price_drop, hf0, lt, bonus, fee, dust):
    # assets: USDC (0, debt), WETH (1, collateral); WETH falls by price_drop at step 1
    p0 = np.array([1.0, 2000.0])
    prices = np.vstack([p0, [1.0, 2000.0 * price_drop]])
    debt0 = coll * 2000.0 * lt / hf0
    book = Book(np.array([[0.0, coll]]), np.array([[debt0, 0.0]]))
    params = Params(np.array([0.0, lt * 0.9]), np.array([0.0, lt]), np.array([0.05, bonus]),
                    model=model, protocol_fee=np.array([0.0, fee]), dust=dust)
    fast = replay_fast(prices, book, Events.empty(), params)
    ref = replay_reference(prices, book, Events.empty(), params)
    assert len(fast.liquidations) == len(ref.liquidations)
    assert np.array_equal(fast.final_debt, ref.final_debt) and np.array_equal(fast.final_collateral,
                                                                             ref.final_collateral)
    p = prices[1]
    hf = coll * p[1] * lt / debt0
    if hf >= 1:
        assert len(fast.liquidations) == 0
        return
    repaid, seized, fee_amt = liquidation_call_float(RULE_OF_MODEL[model], debt0, p[0], coll, p[1], bonus, fee,
                                                     hf, debt0 * p[0], dust=dust)
    profitable = repaid * p[0] * bonus - fee_amt * p[1] > 0
    if repaid == 0 or not profitable:
        assert len(fast.liquidations) == 0
        return
    first = fast.liquidations.sorted()
    assert first.debt_repaid[0] == pytest.approx(repaid, rel=1e-15)
    assert first.collateral_seized[0] == pytest.approx(seized, rel=1e-15)
    assert first.protocol_fee[0] == pytest.approx(fee_amt, rel=1e-15, abs=1e-300)
    assert first.penalty_usd[0] == pytest.approx(repaid * p[0] * bonus, rel=1e-15)


def test_v2_closes_half_and_v3_closes_all_below_095():
    # 10 WETH at 1,400 backing 12,000 USDC, LT 0.825: HF 0.9625 → v2 and v3.0–3.2 repay 50 %.
    # At 1,300: HF 0.89375 ≤ 0.95 → v3.0–3.2 may repay the whole debt in one call (capped by collateral).
    book = Book(np.array([[0.0, 10.0]]), np.array([[12_000.0, 0.0]]))
    prices = np.array([[1.0, 2000.0], [1.0, 1300.0]])
    base = dict(ltv=np.array([0.0, 0.8]), liquidation_threshold=np.array([0.0, 0.825]),
                liquidation_bonus=np.array([0.05, 0.05]))
    v2 = replay_fast(prices, book, Events.empty(), Params(**base, model=1)).liquidations.sorted()
    v3 = replay_fast(prices, book, Events.empty(), Params(**base, model=2)).liquidations.sorted()
    assert v2.debt_repaid[0] == pytest.approx(6000.0)
    # whole debt would need 12,000·1.05/1,300 = 9.69 WETH ≤ 10 → one call repays everything
    assert v3.debt_repaid[0] == pytest.approx(12_000.0) and len(v3) == 1
    assert v3.collateral_seized[0] == pytest.approx(12_000 * 1.05 / 1300)


def test_protocol_fee_takes_part_of_the_bonus():
    book = Book(np.array([[0.0, 10.0]]), np.array([[12_000.0, 0.0]]))
    prices = np.array([[1.0, 2000.0], [1.0, 1400.0]])
    params = Params(np.array([0.0, 0.8]), np.array([0.0, 0.825]), np.array([0.05, 0.05]), model=4,
                    protocol_fee=np.array([0.0, 0.1]))
    liq = replay_fast(prices, book, Events.empty(), params).liquidations.sorted()
    # v3.4: both legs ≥ $2,000, HF 0.9625 > 0.95, the only debt is > half the total → cap = half the debt
    assert liq.debt_repaid[0] == pytest.approx(6000.0)
    seized = 6000 * 1.05 / 1400
    assert liq.collateral_seized[0] == pytest.approx(seized)
    assert liq.protocol_fee[0] == pytest.approx(seized * 0.05 / 1.05 * 0.1)
    assert liq.penalty_usd[0] == pytest.approx(300.0)  # the borrower pays the same bonus


@given(
    version=st.sampled_from(["v2", "v3.2", "v3.3", "v3.4", "v3.7"]),
    weth=st.integers(10**17, 10**24),
    hf_target=st.floats(0.3, 0.999),
    eth_price=st.integers(500 * 10**8, 5000 * 10**8),
    lt_bps=st.integers(5000, 9000),
    bonus_bps=st.integers(10_100, 11_500),
    fee_bps=st.sampled_from([0, 500, 1000, 2000]),
)
def test_engine_first_call_matches_the_integer_layer(version, weth, hf_target, eth_price, lt_bps, bonus_bps, fee_bps):
    from hypothesis import assume

    from backtest.protocols.aave import AaveRevert, Market, Reserve, UserPosition, liquidation_call

    fee_bps = 0 if version == "v2" else fee_bps
    coll_usd = weth / 1e18 * eth_price / 1e8
    debt_units = int(coll_usd * lt_bps / 1e4 / hf_target * 1e6)
    assume(debt_units >= 10**9)  # ≥ $1,000 of debt: integer rounding stays below 1e-9 relative
    market = Market({
        "WETH": Reserve(18, eth_price, lt_bps, bonus_bps, liquidation_protocol_fee_bps=fee_bps, reserve_id=0),
        "USDC": Reserve(6, 10**8, 8700, 10450, reserve_id=1),
    })
    user = UserPosition.from_balances(market, {"WETH": weth}, {"USDC": debt_units})
    hf = (weth / 1e18 * eth_price / 1e8 * lt_bps / 1e4) / (debt_units / 1e6)
    assume(abs(hf - 0.95) > 1e-6 and hf < 1 - 1e-6)
    usd_debt, usd_coll = debt_units / 1e6, coll_usd
    for edge in (2000.0, 1000.0):  # stay clear of the dollar thresholds, where rounding may pick either side
        assume(abs(usd_debt - edge) > 1e-3 * edge and abs(usd_coll - edge) > 1e-3 * edge)
        assume(abs(usd_debt / 2 - edge) > 1e-3 * edge)
    try:
        out = liquidation_call(market, user, collateral_asset="WETH", debt_asset="USDC", version=version)
    except AaveRevert as exc:
        out = None
        reason = str(exc)
    model = {"v2": 1, "v3.2": 2, "v3.3": 3}.get(version, 4)
    params = Params(np.array([0.0, 0.5]), np.array([0.0, lt_bps / 1e4]), np.array([0.0445, bonus_bps / 1e4 - 1]),
                    model=model, protocol_fee=np.array([0.0, fee_bps / 1e4]))
    prices = np.array([[1.0, eth_price / 1e8]])
    book = Book(np.array([[0.0, weth / 1e18]]), np.array([[debt_units / 1e6, 0.0]]))
    liq = replay_fast(prices, book, Events.empty(), params).liquidations.sorted()
    if out is None:
        assert "MUST_NOT_LEAVE_DUST" in reason
        assert len(liq) == 0
        return
    # agreement to 1e-9, or to one raw unit of the token (USDC has 6 decimals: integer rounding of a small
    # collateral-capped repayment is a few 1e-6 USDC (two half-up roundings), more than 1e-9 of a few hundred USDC)
    assert len(liq) >= 1
    assert liq.debt_repaid[0] == pytest.approx(out.debt_repaid / 1e6, rel=1e-9, abs=3e-6)
    assert liq.collateral_seized[0] == pytest.approx(out.collateral_seized / 1e18, rel=1e-9, abs=1e-18)
    assert liq.protocol_fee[0] == pytest.approx(out.protocol_fee / 1e18, rel=1e-9, abs=1e-12)
