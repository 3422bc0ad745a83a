"""Worked examples of DESIGN §4 with exact numbers, run through both engines."""

from __future__ import annotations

import numpy as np
import pytest

from backtest.engine.fast import replay_fast
from backtest.engine.reference import replay_reference
from backtest.engine.types import BORROW, REPAY, WITHDRAW, Book, Events, Params
from backtest.outputs.metrics import compute_metrics

ENGINES = [replay_reference, replay_fast]

# assets in sorted order: USDC (0), WETH (1)
USDC, WETH = 0, 1
PARAMS = Params(ltv=np.array([0.80, 0.80]), liquidation_threshold=np.array([0.85, 0.825]),
                liquidation_bonus=np.array([0.05, 0.05]), close_factor=0.5, gas_usd=0.0)


def _one_account(weth: float, usdc_debt: float) -> Book:
    return Book(collateral=np.array([[0.0, weth]]), debt=np.array([[usdc_debt, 0.0]]))


@pytest.mark.parametrize("engine", ENGINES)
def test_crash_liquidates_then_writes_off(engine):
    # WETH 2000 → 1400 → 1000; 10 WETH backing 12,000 USDC.
    prices = np.array([[1.0, 2000.0], [1.0, 1400.0], [1.0, 1000.0]])
    res = engine(prices, _one_account(10.0, 12_000.0), Events.empty(), PARAMS)
    liq = res.liquidations.sorted()
    # step 1: HF = 10·1400·0.825/12000 = 0.9625 → one call: R = 0.5·12000, S = 6000·1.05/1400 = 4.5 WETH
    # step 2: three calls: R = 3000 (S 3.15), R = 1500 (S 1.575), then R_col = 775/1.05 ≤ 750 → all 0.775 WETH
    assert liq.step.tolist() == [1, 2, 2, 2]
    assert liq.debt_repaid == pytest.approx([6000.0, 3000.0, 1500.0, 775 / 1.05], rel=1e-12)
    assert liq.collateral_seized == pytest.approx([4.5, 3.15, 1.575, 0.775], rel=1e-12)
    assert liq.penalty_usd == pytest.approx([300.0, 150.0, 75.0, 775 / 1.05 * 0.05], rel=1e-12)
    assert res.final_collateral[0, WETH] == 0.0
    # the rest of the debt is written off at step 2 (no collateral with LT > 0 left)
    assert res.realised_bad_debt.tolist() == pytest.approx([0.0, 0.0, 1500 - 775 / 1.05], rel=1e-12)
    assert res.final_debt[0, USDC] == 0.0
    assert res.written_off.tolist() == [True]
    m = compute_metrics(res, _one_account(10.0, 12_000.0), prices, PARAMS)
    assert m["liquidations"] == 4
    assert m["liquidated_debt_usd"] == pytest.approx(10_500 + 775 / 1.05, rel=1e-12)
    assert m["bad_debt_usd"] == pytest.approx(12_000 - 10_500 - 775 / 1.05, rel=1e-12)
    assert m["unrealised_bad_debt_usd"] == 0.0
    assert m["insolvent_accounts"] == 1
    assert m["borrowing_power_usd"] == pytest.approx(10 * 2000 * 0.80)
    assert m["capital_efficiency"] == 1.0


@pytest.mark.parametrize("engine", ENGINES)
def test_gas_makes_small_liquidation_unprofitable(engine):
    # HF 0.9625 at step 1; repaying 600 USDC earns 30 USD of bonus; gas 30 → profit 0 → no call, waits
    prices = np.array([[1.0, 2000.0], [1.0, 1400.0]])
    params = Params(PARAMS.ltv, PARAMS.liquidation_threshold, PARAMS.liquidation_bonus, 0.5, gas_usd=30.0)
    res = engine(prices, _one_account(1.0, 1200.0), Events.empty(), params)
    assert len(res.liquidations) == 0
    params = Params(PARAMS.ltv, PARAMS.liquidation_threshold, PARAMS.liquidation_bonus, 0.5, gas_usd=29.99)
    res = engine(prices, _one_account(1.0, 1200.0), Events.empty(), params)
    assert len(res.liquidations) == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_no_bonus_no_liquidation_and_unrealised_bad_debt(engine):
    prices = np.array([[1.0, 2000.0], [1.0, 500.0]])
    params = Params(PARAMS.ltv, PARAMS.liquidation_threshold, np.array([0.0, 0.0]), 0.5, 0.0)
    book = _one_account(10.0, 12_000.0)
    res = engine(prices, book, Events.empty(), params)
    assert len(res.liquidations) == 0
    m = compute_metrics(res, book, prices, params)
    assert m["unrealised_bad_debt_usd"] == pytest.approx(12_000 - 5_000)
    assert m["realised_bad_debt_usd"] == 0.0
    assert m["insolvent_accounts"] == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_tie_goes_to_first_symbol_and_zero_lt_is_never_seized(engine):
    # assets sorted: AAA, BBB, ZZZ, dUSD. Equal USD collateral in AAA and BBB → AAA is seized first.
    # ZZZ has LT = 0: kept, never seized, not counted in HF.
    book = Book(np.array([[100.0, 100.0, 1000.0, 0.0]]), np.array([[0.0, 0.0, 0.0, 150.0]]))
    prices = np.array([[1.0, 1.0, 1.0, 1.0], [0.8, 0.8, 0.8, 1.0]])
    params = Params(np.array([0.5, 0.5, 0.0, 0.5]), np.array([0.8, 0.8, 0.0, 0.8]),
                    np.array([0.1, 0.1, 0.1, 0.1]), 0.5, 0.0)
    res = engine(prices, book, Events.empty(), params)
    liq = res.liquidations.sorted()
    # step 1: HF = (80+80)·0.8/150 = 0.8533; R = 75, S = 75·1.1/0.8 = 103.125 > 100 → R_col branch:
    # R_col = 100·0.8/1.1 = 72.727 ≤ 75 → AAA (index 0, ties with BBB) wholly seized
    assert liq.collateral_asset[0] == 0
    assert liq.collateral_seized[0] == 100.0
    assert 2 not in liq.collateral_asset.tolist()
    assert res.final_collateral[0, 2] == 1000.0


@pytest.mark.parametrize("engine", ENGINES)
def test_events_are_applied_and_capped(engine):
    prices = np.array([[1.0, 2000.0], [1.0, 1000.0]])
    book = _one_account(10.0, 1000.0)
    # step 1: repay 1500 (capped at 1000 → 500 USD capped), withdraw 12 WETH (capped at 10 → 2·1000 USD),
    # borrow 100 USDC afterwards → debt 100 with no collateral → written off at step 1
    events = Events(account=np.array([0, 0, 0]), step=np.array([1, 1, 1]), asset=np.array([USDC, WETH, USDC]),
                    action=np.array([REPAY, WITHDRAW, BORROW], dtype=np.int8),
                    amount=np.array([1500.0, 12.0, 100.0]))
    res = engine(prices, book, events, PARAMS)
    assert res.capped_events_usd == pytest.approx(500.0 + 2000.0)
    assert res.realised_bad_debt[1] == pytest.approx(100.0)
    assert res.final_collateral[0].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("engine", ENGINES)
def test_hundred_calls_per_step_cap(engine):
    prices = np.array([[1.0, 2000.0], [1.0, 1000.0], [1.0, 1000.0]])
    params = Params(PARAMS.ltv, PARAMS.liquidation_threshold, PARAMS.liquidation_bonus, 0.001, 0.0)
    res = engine(prices, _one_account(10.0, 12_000.0), Events.empty(), params)
    assert res.liquidation_calls[1] == 100
    assert res.liquidation_calls[2] > 0
