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
