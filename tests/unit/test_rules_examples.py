"""Worked examples of the rule kinds (docs/rules.md) with exact, hand-computed numbers, through both engines.

Each kind is built from TOML (``parse_config``), compiled by ``rules.compile_rule`` on hand-made run data,
replayed by the reference and the fast engine, and measured by ``compute_metrics``. Expected values are
written as the arithmetic they come from, so each comment is the hand computation.
"""

from __future__ import annotations

import math
import tomllib
from functools import partial
from statistics import NormalDist

import numpy as np
import pytest

from backtest.config import parse_config
from backtest.engine.fast import replay_fast
from backtest.engine.reference import replay_reference
from backtest.engine.types import BORROW, REPAY, SUPPLY, WITHDRAW, Book, Events, Params
from backtest.errors import MbtError
from backtest.outputs.metrics import compute_metrics
from backtest.rules import DEPTH_FACTOR, RunData, compile_rule, dynamic_thresholds

ENGINES = [replay_reference, replay_fast, partial(replay_fast, coarse=4, fine=2)]
ENGINE_IDS = ["reference", "fast", "fast-small-blocks"]
REL = 1e-12
HOUR = 3600 * 1_000_000
DAY = 24 * HOUR
T0 = 18_518 * DAY  # 2020-09-13T00:00:00Z, a midnight (a multiple of 1 day since the epoch)

RUN = '[run]\nstart = "2020-09-13T00:00:00Z"\nend = "2020-09-30T00:00:00Z"\n'


def rules(text: str):
    return parse_config(tomllib.loads(RUN + text), "rules.toml").rules


def events(*rows) -> Events:
    """Events from (account, step, asset, action, amount) rows, already in application order."""
    if not rows:
        return Events.empty()
    return Events(np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.int64),
                  np.array([r[2] for r in rows], dtype=np.int64), np.array([r[3] for r in rows], dtype=np.int8),
                  np.array([r[4] for r in rows], dtype=np.float64))


def run_data(assets, prices, collateral, debt, *, grid_us=None, series=None, ev=None, start_us=None,
             **extra) -> RunData:
    prices = np.asarray(prices, dtype=np.float64)
    grid = T0 + HOUR * np.arange(len(prices), dtype=np.int64) if grid_us is None else np.asarray(grid_us, np.int64)
    if series is None:
        series = {a: (grid.copy(), prices[:, k].copy()) for k, a in enumerate(assets)}
    book = Book(np.asarray(collateral, dtype=np.float64), np.asarray(debt, dtype=np.float64))
    accounts = np.array([f"acct{n}" for n in range(book.shape[0])], dtype=object)
    return RunData(list(assets), accounts, grid, int(grid[0]) if start_us is None else start_us, prices, book,
                   Events.empty() if ev is None else ev, series, **extra)


def replay(engine, data: RunData, rule):
    c = compile_rule(rule, data)
    res = engine(data.prices, c.book, c.events, c.params)
    return c, res


# ---------------------------------------------------------------------------------------------------------
# enforce_ltv: initial margin
# ---------------------------------------------------------------------------------------------------------

USDC, WETH = 0, 1


def _enforce_params(enforce: bool, depth=None, **kw) -> Params:
    return Params(np.array([0.80, 0.80]), np.array([0.85, 0.90]), np.array([0.05, 0.05]),
                  enforce_ltv=enforce, depth_usd=depth, **kw)


ENFORCE_PRICES = np.array([[1.0, 2000.0], [1.0, 1900.0]])
ENFORCE_BOOK = Book(np.array([[0.0, 10.0]]), np.array([[12_000.0, 0.0]]))
ENFORCE_EVENTS = events(
    # step 0, WETH 2000: the limit is 10·2000·0.80 = 16,000 USD of debt
    (0, 0, USDC, BORROW, 5_000.0),   # 17,000 > 16,000 → refused, blocked_borrow 5,000
    (0, 0, WETH, WITHDRAW, 3.0),     # 7·2000·0.8 = 11,200 < 12,000 → refused, blocked_withdraw 3·2000
    (0, 0, USDC, BORROW, 4_000.0),   # exactly 16,000: not below the limit → applied (debt 16,000)
    (0, 0, WETH, WITHDRAW, 15.0),    # capped at 10 (capped 5·2000), then leaves 0 < 16,000 → refused: 10·2000
    # step 1, WETH 1900: limit 10·1900·0.8 = 15,200 < 16,000 — under LTV, above LT (HF 17,100/16,000)
    (0, 1, USDC, REPAY, 100.0),      # never refused → debt 15,900
    (0, 1, USDC, BORROW, 1.0),       # 15,901 > 15,200 → refused at this step's price (at 2000 it would fit)
    (0, 1, WETH, SUPPLY, 1.0),       # never refused → 11 WETH, limit 11·1900·0.8 = 16,720
    (0, 1, USDC, BORROW, 800.0),     # 16,700 ≤ 16,720 → applied
)


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_enforce_ltv_refuses_whole_borrows_and_withdrawals(engine):
    params = _enforce_params(True)
    res = engine(ENFORCE_PRICES, ENFORCE_BOOK, ENFORCE_EVENTS, params)
    assert res.blocked_borrow_usd == pytest.approx(5_000.0 + 1.0, rel=REL)
    assert res.blocked_withdraw_usd == pytest.approx(3 * 2000.0 + 10 * 2000.0, rel=REL)
    assert res.capped_events_usd == pytest.approx(5 * 2000.0, rel=REL)
    assert res.final_collateral.tolist() == [[0.0, 11.0]]
    assert res.final_debt.tolist() == [[12_000.0 + 4_000.0 - 100.0 + 800.0, 0.0]]
    assert len(res.liquidations) == 0 and not res.written_off.any()
    assert res.debt_usd.tolist() == [16_000.0, 16_700.0]
    m = compute_metrics(res, ENFORCE_BOOK, ENFORCE_PRICES, params)
    assert m["blocked_borrow_usd"] == pytest.approx(5_001.0, rel=REL)
    assert m["blocked_withdraw_usd"] == pytest.approx(26_000.0, rel=REL)
    assert m["borrowing_power_usd"] == pytest.approx(10 * 2000 * 0.80, rel=REL)


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_enforce_ltv_false_keeps_design_semantics(engine):
    res = engine(ENFORCE_PRICES, ENFORCE_BOOK, ENFORCE_EVENTS, _enforce_params(False))
    assert res.blocked_borrow_usd == 0.0 and res.blocked_withdraw_usd == 0.0
    # step 0: debt 12,000 + 5,000 + 4,000 = 21,000; withdrawals 3 then 15 capped at 7 (capped 8·2000) → no
    # collateral left → 21,000 written off. Step 1: repay 100 of 0 (capped 100), supply 1, borrow 801.
    assert res.capped_events_usd == pytest.approx(8 * 2000.0 + 100.0, rel=REL)
    assert res.realised_bad_debt.tolist() == [21_000.0, 0.0]
    assert res.final_collateral.tolist() == [[0.0, 1.0]]
    assert res.final_debt.tolist() == [[801.0, 0.0]]


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_enforce_ltv_with_haircut_uses_the_effective_ltv(engine):
    # 100 WETH at 2000 against 1,000,000 USD of depth, k = 1: f = 1 − 200,000/1,000,000 = 0.8, limit
    # 200,000·0.8·0.8 = 128,000. Debt 120,000.
    prices = np.array([[1.0, 2000.0]])
    depth = np.array([[math.inf, 1e6]])
    book = Book(np.array([[0.0, 100.0]]), np.array([[120_000.0, 0.0]]))
    ev = events(
        (0, 0, WETH, WITHDRAW, 10.0),     # 90 WETH: f = 1 − 0.18 → 180,000·0.8·0.82 = 118,080 < 120,000: refused
        (0, 0, USDC, BORROW, 10_000.0),   # 130,000 > 128,000: refused
        (0, 0, USDC, BORROW, 5_000.0),    # 125,000 ≤ 128,000: applied
    )
    res = engine(prices, book, ev, _enforce_params(True, depth))
    assert res.blocked_withdraw_usd == pytest.approx(10 * 2000.0, rel=REL)
    assert res.blocked_borrow_usd == pytest.approx(10_000.0, rel=REL)
    assert res.final_debt.tolist() == [[125_000.0, 0.0]] and res.final_collateral.tolist() == [[0.0, 100.0]]
    # without the haircut the withdrawal fits: 90·2000·0.8 = 144,000 ≥ 120,000
    plain = engine(prices, book, ev, _enforce_params(True))
    assert plain.blocked_withdraw_usd == 0.0 and plain.final_collateral.tolist() == [[0.0, 90.0]]


# ---------------------------------------------------------------------------------------------------------
# kind = "cross": correlated groups
# ---------------------------------------------------------------------------------------------------------

CROSS_ASSETS = """
[rules.assets.DAI]
ltv = 0.75
liquidation_threshold = 0.80
liquidation_bonus = 0.05
[rules.assets.USDC]
ltv = 0.80
liquidation_threshold = 0.85
liquidation_bonus = 0.05
[rules.assets.WETH]
ltv = 0.80
liquidation_threshold = 0.825
liquidation_bonus = 0.05
"""
CROSS = f"""
[[rules]]
name = "per-asset"
{CROSS_ASSETS}
[[rules]]
name = "stable-emode"
kind = "cross"
{CROSS_ASSETS}
[rules.groups.stables]
assets = ["USDC", "DAI"]
ltv = 0.93
liquidation_threshold = 0.95
liquidation_bonus = 0.01
"""
DAI, CUSDC, CWETH = 0, 1, 2  # sorted symbols
# a0: 10,000 USDC / 8,000 DAI (all debt in the group); a1: 10,000 USDC / 5,000 DAI + 1.5 WETH (mixed → own
# values); a2: emode "stables", 10,000 USDC / 4 WETH (e-mode wins over the rule); a3: emode "other" (not a
# group: ignored), 10,000 USDC / 8,000 DAI (the rule → group).
CROSS_COLL = [[0.0, 10_000.0, 0.0]] * 4
CROSS_DEBT = [[8_000.0, 0.0, 0.0], [5_000.0, 0.0, 1.5], [0.0, 0.0, 4.0], [8_000.0, 0.0, 0.0]]
CROSS_EMODE = np.array([None, None, "stables", "other"], dtype=object)
CROSS_PRICES = [[1.0, 1.0, 2000.0], [1.0, 0.93, 2000.0]]  # USDC depegs to 0.93 at step 1


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_cross_group_values_keep_an_all_stable_account_alive(engine):
    per_asset, cross = rules(CROSS)
    data = run_data(["DAI", "USDC", "WETH"], CROSS_PRICES, CROSS_COLL, CROSS_DEBT, emode=CROSS_EMODE)

    c, res = replay(engine, data, cross)
    assert c.params.account_row.tolist() == [-1, -1, 1, -1]
    assert c.params.group_assets.tolist() == [[True, True, False]]
    liq = res.liquidations.sorted()
    # group row for a0, a2 (e-mode), a3: HF = 10,000·0.93·0.95/8,000 = 8,835/8,000 = 1.104 → no call.
    # a1 owes WETH too → own values: HF = 9,300·0.85/8,000 = 0.988 → one call on DAI (5,000 > 3,000 USD):
    # R = 0.5·5,000 = 2,500, S = 2,500·1.05/0.93 USDC; then 6,675·0.85 = 5,673.75 ≥ 5,500 → healthy.
    # (At step 0 every account is healthy: 8,500/8,000 under own values.)
    assert liq.account.tolist() == [1] and liq.step.tolist() == [1]
    assert (liq.debt_asset.tolist(), liq.collateral_asset.tolist()) == ([DAI], [CUSDC])
    assert liq.debt_repaid[0] == pytest.approx(2_500.0, rel=REL)
    assert liq.collateral_seized[0] == pytest.approx(2_625.0 / 0.93, rel=REL)
    m = compute_metrics(res, c.book, data.prices, c.params, baseline_borrowing_power=32_000.0)
    # borrowing power: a0, a2, a3 at the group LTV 0.93 (9,300 each), a1 at USDC's 0.80 (8,000)
    assert m["borrowing_power_usd"] == pytest.approx(3 * 9_300.0 + 8_000.0, rel=REL)
    assert m["capital_efficiency"] == pytest.approx(35_900.0 / 32_000.0, rel=REL)

    c, res = replay(engine, data, per_asset)
    liq = res.liquidations.sorted()
    # per-asset values: every account is below HF 1 at step 1 (9,300·0.85 = 7,905 < 8,000 USD of debt)
    assert liq.account.tolist() == [0, 1, 2, 3]
    # a0: R = 4,000 DAI, S = 4,000·1.05/0.93 USDC, penalty 200; then 5,100·0.85 = 4,335 ≥ 4,000
    assert liq.debt_repaid[0] == pytest.approx(4_000.0, rel=REL)
    assert liq.collateral_seized[0] == pytest.approx(4_200.0 / 0.93, rel=REL)
    assert liq.penalty_usd[0] == pytest.approx(200.0, rel=REL)
    # a2: R = 2 WETH (8,000 USD debt), S = 2·2000·1.05/0.93 USDC
    assert liq.debt_repaid[2] == pytest.approx(2.0, rel=REL)
    assert liq.collateral_seized[2] == pytest.approx(4_200.0 / 0.93, rel=REL)
    m = compute_metrics(res, c.book, data.prices, c.params)
    assert m["borrowing_power_usd"] == pytest.approx(4 * 8_000.0, rel=REL)


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_cross_group_is_redetermined_before_every_call(engine):
    # close factor 1; 11,800 USDC / 3 WETH (6,000) + 4,000 DAI; step 0 own values: 10,030/10,000 → healthy.
    # Step 1 (USDC 0.93): own values (WETH owed): HF = 10,974·0.85/10,000 = 0.933 → call 1 on WETH (the
    # largest debt): R = 3 WETH (R_cf = 3 < R_col = 10,974/2,100), S = 6,300/0.93 USDC. Now only DAI is owed →
    # the group row: 4,674·0.95 = 4,440.3 ≥ 4,000 → stops. Own values would go on (4,674·0.85 = 3,972.9).
    cross = rules(CROSS.replace('kind = "cross"', 'kind = "cross"\n[rules.market]\nclose_factor = 1.0'))[1]
    assert cross.market.close_factor == 1.0
    data = run_data(["DAI", "USDC", "WETH"], CROSS_PRICES, [[0.0, 11_800.0, 0.0]], [[4_000.0, 0.0, 3.0]])
    c, res = replay(engine, data, cross)
    liq = res.liquidations.sorted()
    assert liq.debt_asset.tolist() == [CWETH] and liq.debt_repaid.tolist() == [3.0]
    assert liq.collateral_seized[0] == pytest.approx(6_300.0 / 0.93, rel=REL)
    assert liq.step.tolist() == [1]
    assert res.final_debt.tolist() == [[4_000.0, 0.0, 0.0]]
    assert res.final_collateral[0, CUSDC] == pytest.approx(11_800.0 - 6_300.0 / 0.93, rel=REL)
    # the same account under per-asset values needs a second call at step 1
    per_asset = rules(CROSS.replace('name = "per-asset"', 'name = "per-asset"\n[rules.market]\nclose_factor = 1.0'))[0]
    _, res = replay(engine, data, per_asset)
    assert res.liquidation_calls.tolist() == [0, 2]


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_cross_enforce_ltv_uses_the_row_after_the_event(engine):
    cross = rules(CROSS.replace('kind = "cross"', 'kind = "cross"\nenforce_ltv = true'))[1]
    data = run_data(["DAI", "USDC", "WETH"], [[1.0, 1.0, 2000.0]], [[0.0, 10_000.0, 0.0]], [[9_000.0, 0.0, 0.0]],
                    ev=events((0, 0, DAI, BORROW, 200.0),     # all DAI: group LTV → 9,200 ≤ 9,300 → applied
                              (0, 0, CWETH, BORROW, 0.05)))   # owes WETH → own LTV 0.80: 9,300 > 8,000 → refused
    c, res = replay(engine, data, cross)
    assert res.final_debt.tolist() == [[9_200.0, 0.0, 0.0]]
    assert res.blocked_borrow_usd == pytest.approx(0.05 * 2000.0, rel=REL)


# ---------------------------------------------------------------------------------------------------------
# kind = "isolated": Morpho-Blue-like markets
# ---------------------------------------------------------------------------------------------------------

ISOLATED = """
[[rules]]
name = "iso"
kind = "isolated"
[rules.markets.weth-usdc]
collateral = "WETH"
debt = "USDC"
ltv = 0.80
liquidation_threshold = 0.86
liquidation_bonus = 0.05
[rules.markets.wbtc-usdc]
collateral = "WBTC"
debt = "USDC"
ltv = 0.70
liquidation_threshold = 0.80
liquidation_bonus = 0.08
[rules.markets.weth-dai]
collateral = "WETH"
debt = "DAI"
ltv = 0.85
liquidation_threshold = 0.90
liquidation_bonus = 0.04
[rules.markets.wbtc-dai]
collateral = "WBTC"
debt = "DAI"
ltv = 0.65
liquidation_threshold = 0.75
liquidation_bonus = 0.06
"""
ISO_ASSETS = ["DAI", "USDC", "WBTC", "WETH"]
I_DAI, I_USDC, I_WBTC, I_WETH = range(4)
M_WETH_USDC, M_WBTC_USDC, M_WETH_DAI, M_WBTC_DAI = range(4)  # market rows in config order


def _position_rows(rows):
    return {"ai": np.array([r[0] for r in rows], dtype=np.int64), "ki": np.array([r[1] for r in rows], dtype=np.int64),
            "market": np.array([r[2] for r in rows], dtype=object),
            "collateral": np.array([r[3] for r in rows], dtype=np.float64),
            "debt": np.array([r[4] for r in rows], dtype=np.float64)}


def iso_data(rows, prices, n_accounts, ev=None, event_markets=()):
    coll = np.zeros((n_accounts, 4))
    debt = np.zeros((n_accounts, 4))
    for a, k, _, c, d in rows:
        coll[a, k] += c
        debt[a, k] += d
    return run_data(ISO_ASSETS, prices, coll, debt, ev=ev, position_rows=_position_rows(rows),
                    event_markets=np.array(list(event_markets), dtype=object))


ISO_PRICES = [[1.0, 1.0, 30_000.0, 2000.0], [1.0, 1.0, 30_000.0, 1400.0]]  # WETH crashes at step 1


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_isolated_split_of_two_collaterals_and_one_debt(engine):
    # 10 WETH (20,000 USD) + 1 WBTC (30,000 USD) backing 30,000 USDC, no market ids.
    # Weights c·p·LLTV: WETH 20,000·0.86 = 17,200; WBTC 30,000·0.80 = 24,000 (sum 41,200).
    # USDC to the WETH position 30,000·17,200/41,200, to the WBTC position 30,000·24,000/41,200; each
    # collateral backs one debt, so each keeps all of it. Both positions start at HF 41,200/30,000.
    rule = rules(ISOLATED)[0]
    rows = [(0, I_WETH, "", 10.0, 0.0), (0, I_WBTC, "", 1.0, 0.0), (0, I_USDC, "", 0.0, 30_000.0)]
    data = iso_data(rows, ISO_PRICES, 1)
    c, res = replay(engine, data, rule)
    assert c.owner.tolist() == [0, 0]
    assert c.params.account_row.tolist() == [M_WETH_USDC, M_WBTC_USDC]
    d_weth, d_wbtc = 30_000.0 * 17_200.0 / 41_200.0, 30_000.0 * 24_000.0 / 41_200.0
    np.testing.assert_allclose(c.book.collateral, [[0, 0, 0, 10.0], [0, 0, 1.0, 0]], rtol=REL)
    np.testing.assert_allclose(c.book.debt, [[0, d_weth, 0, 0], [0, d_wbtc, 0, 0]], rtol=REL)
    for n, (value, lt) in enumerate([(20_000.0, 0.86), (30_000.0, 0.80)]):
        assert value * lt / (c.book.debt[n, I_USDC]) == pytest.approx(41_200.0 / 30_000.0, rel=REL)
    # the market's row holds its values on its collateral only
    lt3 = c.params.tables()[1]
    assert lt3[0, M_WETH_USDC].tolist() == [0.0, 0.0, 0.0, 0.86]
    assert lt3[0, M_WBTC_USDC].tolist() == [0.0, 0.0, 0.80, 0.0]

    # WETH 1400: the WETH position has HF 14,000·0.86/d_weth = 0.9613 → one call, R = 0.5·d_weth,
    # S = R·1.05/1400; then (14,000 − 1.05·6,262.14)·0.86 = 6,385.3 ≥ 6,262.14 → healthy. The WBTC position is
    # untouched: no cross-collateral (pooled, the account would be at (12,040 + 24,000)/30,000 = 1.20).
    liq = res.liquidations.sorted()
    assert liq.account.tolist() == [0] and liq.step.tolist() == [1]
    assert liq.debt_repaid[0] == pytest.approx(0.5 * d_weth, rel=REL)
    assert liq.collateral_seized[0] == pytest.approx(0.5 * d_weth * 1.05 / 1400.0, rel=REL)
    assert liq.penalty_usd[0] == pytest.approx(0.5 * d_weth * 0.05, rel=REL)
    assert res.final_collateral[1].tolist() == [0.0, 0.0, 1.0, 0.0]
    m = compute_metrics(res, c.book, data.prices, c.params, owner=c.owner)
    # borrowing power per position with its market's LTV: 20,000·0.80 + 30,000·0.70
    assert m["borrowing_power_usd"] == pytest.approx(16_000.0 + 21_000.0, rel=REL)
    assert m["insolvent_accounts"] == 0


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_isolated_hundred_call_cap_is_per_position(engine):
    # close factor 0.001: each call repays 0.1 % of a position's debt, so a deep crash keeps both positions
    # below HF 1 (both at 41,200·0.6/30,000 = 0.82 after a −40 % move) for more than 100 calls: each position
    # gets its own 100 (200 for the run account)
    rule = rules(ISOLATED.replace('kind = "isolated"', 'kind = "isolated"\n[rules.market]\nclose_factor = 0.001'))[0]
    rows = [(0, I_WETH, "", 10.0, 0.0), (0, I_WBTC, "", 1.0, 0.0), (0, I_USDC, "", 0.0, 30_000.0)]
    data = iso_data(rows, [[1.0, 1.0, 30_000.0, 2000.0], [1.0, 1.0, 18_000.0, 1200.0]], 1)
    c, res = replay(engine, data, rule)
    assert res.liquidation_calls.tolist() == [0, 200]
    assert np.bincount(res.liquidations.account, minlength=2).tolist() == [100, 100]
    assert set(c.owner[res.liquidations.account].tolist()) == {0}


def test_isolated_split_of_two_collaterals_and_two_debts():
    # 10 WETH (20,000) + 1 WBTC (30,000) backing 10,000 USDC + 5,000 DAI.
    # USDC by c·p·LLTV: WETH 20,000·0.86 = 17,200, WBTC 30,000·0.80 = 24,000 → 10,000·17,200/41,200 and
    #   10,000·24,000/41,200.  DAI: WETH 20,000·0.90 = 18,000, WBTC 30,000·0.75 = 22,500 → 5,000·18,000/40,500
    #   and 5,000·22,500/40,500.
    # Each collateral is split over the debts by the debt USD allocated to it: WETH to weth-usdc
    #   u_e/(u_e + d_e) of 10, to weth-dai d_e/(u_e + d_e); likewise WBTC.
    rule = rules(ISOLATED)[0]
    rows = [(0, I_WETH, "", 10.0, 0.0), (0, I_WBTC, "", 1.0, 0.0), (0, I_USDC, "", 0.0, 10_000.0),
            (0, I_DAI, "", 0.0, 5_000.0)]
    c = compile_rule(rule, iso_data(rows, ISO_PRICES, 1))
    u_e, u_b = 10_000.0 * 17_200.0 / 41_200.0, 10_000.0 * 24_000.0 / 41_200.0
    d_e, d_b = 5_000.0 * 18_000.0 / 40_500.0, 5_000.0 * 22_500.0 / 40_500.0
    # positions in (account, market row) order: weth-usdc, wbtc-usdc, weth-dai, wbtc-dai
    assert c.params.account_row.tolist() == [0, 1, 2, 3] and c.owner.tolist() == [0, 0, 0, 0]
    want_coll = np.zeros((4, 4))
    want_debt = np.zeros((4, 4))
    want_coll[0, I_WETH], want_debt[0, I_USDC] = 10.0 * u_e / (u_e + d_e), u_e
    want_coll[1, I_WBTC], want_debt[1, I_USDC] = 1.0 * u_b / (u_b + d_b), u_b
    want_coll[2, I_WETH], want_debt[2, I_DAI] = 10.0 * d_e / (u_e + d_e), d_e
    want_coll[3, I_WBTC], want_debt[3, I_DAI] = 1.0 * d_b / (u_b + d_b), d_b
    np.testing.assert_allclose(c.book.collateral, want_coll, rtol=REL, atol=0)
    np.testing.assert_allclose(c.book.debt, want_debt, rtol=REL, atol=0)


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_isolated_suppliers_debt_only_market_ids_and_insolvency_per_account(engine):
    rule = rules(ISOLATED.replace("liquidation_bonus = 0.05", "liquidation_bonus = 0.0")
                 .replace("liquidation_bonus = 0.08", "liquidation_bonus = 0.0"))[0]
    rows = [
        # a0: a supplier: its WETH sits in the WETH market with the highest LTV (weth-dai, 0.85)
        (0, I_WETH, "", 5.0, 0.0),
        # a1: debt without collateral → the first market lending USDC (weth-usdc), written off at step 0
        (1, I_USDC, "", 0.0, 100.0),
        # a2: named markets, no bonus: both positions end with D > C → one insolvent account
        (2, I_WETH, "weth-usdc", 1.0, 0.0), (2, I_USDC, "weth-usdc", 0.0, 1_500.0),
        (2, I_WBTC, "wbtc-usdc", 0.1, 0.0), (2, I_USDC, "wbtc-usdc", 0.0, 2_500.0),
    ]
    prices = [[1.0, 1.0, 30_000.0, 2000.0], [1.0, 1.0, 20_000.0, 1400.0]]
    data = iso_data(rows, prices, 3)
    c, res = replay(engine, data, rule)
    # positions sorted by (account, market row)
    assert list(zip(c.owner.tolist(), c.params.account_row.tolist())) == [
        (0, M_WETH_DAI), (1, M_WETH_USDC), (2, M_WETH_USDC), (2, M_WBTC_USDC)]
    assert res.realised_bad_debt.tolist() == [100.0, 0.0]
    # step 1: weth-usdc 1·1400 < 1,500 (unrealised 100), wbtc-usdc 0.1·20,000 = 2,000 < 2,500 (500)
    assert res.unrealised_bad_debt.tolist() == [0.0, 600.0]
    m = compute_metrics(res, c.book, data.prices, c.params, owner=c.owner)
    assert m["insolvent_accounts"] == 2  # a1 (written off) and a2 (two positions, one account)
    # borrowing power: 5·2000·0.85 + 1·2000·0.80 + 0.1·30,000·0.70
    assert m["borrowing_power_usd"] == pytest.approx(8_500.0 + 1_600.0 + 2_100.0, rel=REL)


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_isolated_events_go_to_their_position(engine):
    # without wbtc-dai, WBTC is collateral in one market only (wbtc-usdc)
    rule = rules(ISOLATED.split("[rules.markets.wbtc-dai]")[0])[0]
    rows = [(0, I_WETH, "", 10.0, 0.0), (0, I_USDC, "", 0.0, 5_000.0)]  # a0: one position, weth-usdc
    ev = events(
        (0, 1, I_WETH, SUPPLY, 1.0),      # no id: a0's only position with WETH collateral (weth-usdc)
        (0, 1, I_WETH, SUPPLY, 2.0),      # id weth-dai: a new position for a0
        (1, 1, I_WBTC, SUPPLY, 1.0),      # a1 has no position; the only market taking WBTC: wbtc-usdc
        (1, 1, I_USDC, BORROW, 1_000.0),  # a1's only position lending USDC
    )
    data = iso_data(rows, ISO_PRICES, 2, ev=ev, event_markets=["", "weth-dai", "", ""])
    c, res = replay(engine, data, rule)
    assert list(zip(c.owner.tolist(), c.params.account_row.tolist())) == [
        (0, M_WETH_USDC), (0, M_WETH_DAI), (1, M_WBTC_USDC)]
    assert c.events.account.tolist() == [0, 1, 2, 2]
    assert res.final_collateral[:, I_WETH].tolist() == [11.0, 2.0, 0.0]
    assert res.final_collateral[2, I_WBTC] == 1.0 and res.final_debt[2, I_USDC] == 1_000.0


def test_isolated_event_without_id_fitting_several_markets_is_exit_2():
    rule = rules(ISOLATED)[0]
    rows = [(0, I_WETH, "", 10.0, 0.0), (0, I_USDC, "", 0.0, 5_000.0)]
    # a1 has no position and WBTC is collateral in wbtc-usdc and wbtc-dai
    data = iso_data(rows, ISO_PRICES, 2, ev=events((1, 1, I_WBTC, SUPPLY, 1.0)), event_markets=[""])
    with pytest.raises(MbtError, match="an event of account acct1 on 'WBTC' has no market id and fits 2 markets; "
                                       "add a market column"):
        compile_rule(rule, data)
    data = iso_data(rows, ISO_PRICES, 2, ev=events((1, 1, I_WBTC, SUPPLY, 1.0)), event_markets=["nope"])
    with pytest.raises(MbtError, match="events use market 'nope', which is not defined"):
        compile_rule(rule, data)


def test_isolated_event_without_id_finds_a_position_an_earlier_event_opened():
    rule = rules(ISOLATED)[0]
    rows = [(0, I_WETH, "", 10.0, 0.0), (0, I_USDC, "", 0.0, 5_000.0)]
    # a1 opens wbtc-dai by id, then borrows DAI without one: its only position lending DAI is wbtc-dai
    ev = events((1, 1, I_WBTC, SUPPLY, 1.0), (1, 1, I_DAI, BORROW, 1_000.0))
    data = iso_data(rows, ISO_PRICES, 2, ev=ev, event_markets=["wbtc-dai", ""])
    c = compile_rule(rule, data)
    assert c.events.account.tolist() == [1, 1]
    assert c.params.account_row.tolist()[1] == M_WBTC_DAI


ISOLATED_DAI_FIRST = """
[[rules]]
name = "iso"
kind = "isolated"
[rules.markets.weth-dai]
collateral = "WETH"
debt = "DAI"
ltv = 0.85
liquidation_threshold = 0.90
liquidation_bonus = 0.04
[rules.markets.weth-usdc]
collateral = "WETH"
debt = "USDC"
ltv = 0.80
liquidation_threshold = 0.86
liquidation_bonus = 0.05
"""


def test_isolated_event_without_id_is_not_routed_to_a_different_position():
    rule = rules(ISOLATED_DAI_FIRST)[0]  # weth-dai is market row 0, weth-usdc row 1
    rows = [(0, I_WETH, "", 10.0, 0.0), (0, I_USDC, "", 0.0, 5_000.0)]  # a0: weth-usdc from the snapshot
    # a0 supplies 1 WETH to weth-dai by id, then 100 WETH without an id. Two positions now hold WETH
    # collateral, so the second event is either ambiguous (exit 2) or goes where validation sent it
    # (weth-usdc); it must not land silently in weth-dai.
    ev = events((0, 1, I_WETH, SUPPLY, 1.0), (0, 1, I_WETH, SUPPLY, 100.0))
    data = iso_data(rows, ISO_PRICES, 1, ev=ev, event_markets=["weth-dai", ""])
    try:
        c = compile_rule(rule, data)
    except MbtError as exc:
        assert "market" in str(exc)
        return
    res = replay_reference(data.prices, c.book, c.events, c.params)
    markets = list(rule.markets)
    where = {markets[m]: res.final_collateral[n, I_WETH] for n, m in enumerate(c.params.account_row.tolist())}
    assert where == {"weth-usdc": 110.0, "weth-dai": 1.0}


def test_isolated_supplier_collateral_without_a_market_is_not_dropped_silently():
    rule = rules(ISOLATED)[0]
    rows = [(0, I_USDC, "", 1_000.0, 0.0)]  # USDC is a loan asset only: no market has it as collateral
    data = iso_data(rows, ISO_PRICES, 1)
    try:
        c = compile_rule(rule, data)
    except MbtError as exc:
        assert "USDC" in str(exc)
        return
    assert c.book.collateral[:, I_USDC].sum() == 1_000.0


def test_isolated_split_with_a_zero_lltv_market_keeps_the_collateral():
    # dai-usdc with LLTV 0: the USDC debt goes wholly to WETH (weights 20,000·0.86 vs 1,000·0); the 1,000 DAI
    # still belongs to the account and must end up somewhere finite (a position without debt)
    text = ISOLATED.split("[rules.markets.wbtc-usdc]")[0] + (
        '[rules.markets.dai-usdc]\ncollateral = "DAI"\ndebt = "USDC"\nltv = 0.0\nliquidation_threshold = 0.0\n'
        'liquidation_bonus = 0.05\n')
    rule = rules(text)[0]
    rows = [(0, I_WETH, "", 10.0, 0.0), (0, I_DAI, "", 1_000.0, 0.0), (0, I_USDC, "", 0.0, 5_000.0)]
    c = compile_rule(rule, iso_data(rows, ISO_PRICES, 1))
    assert np.isfinite(c.book.collateral).all()
    assert c.book.collateral.sum(axis=0).tolist() == [1_000.0, 0.0, 0.0, 10.0]
    assert c.book.debt.sum(axis=0).tolist() == [0.0, 5_000.0, 0.0, 0.0]


# ---------------------------------------------------------------------------------------------------------
# kind = "dynamic": volatility-scaled thresholds
# ---------------------------------------------------------------------------------------------------------

Z99 = 2.3263478740408408  # Φ⁻¹(0.99)
A = 0.03 / math.sqrt(2)  # returns ±A have sample variance (2A²)/1 = 0.0009, σ = 3 %
# WETH closes (last price at or before each midnight s_n = T0 + n days): P0 = 100, P1 = 100·e^A, an
# intraday spike (superseded before s_2), P2 = 100 at 23:00 of day 1, P3 = 100·e^−0.08, P4 = P3·e^−0.3,
# P5 = P4·e^−0.5, and a price exactly at s_6 (an update time: must not be used by that update).
P3 = 100 * math.exp(-0.08)
WETH_SERIES = [
    (T0, 100.0), (T0 + DAY, 100 * math.exp(A)), (T0 + DAY + 12 * HOUR, 500.0), (T0 + 2 * DAY - HOUR, 100.0),
    (T0 + 3 * DAY, P3), (T0 + 4 * DAY, P3 * math.exp(-0.3)), (T0 + 5 * DAY, P3 * math.exp(-0.8)),
    (T0 + 6 * DAY, 1.0),
]
DYNAMIC = """
[[rules]]
name = "dyn"
kind = "dynamic"
[rules.assets.USDC]
ltv = 0.0
liquidation_threshold = 0.0
liquidation_bonus = 0.0
[rules.assets.WETH]
ltv = 0.80
liquidation_threshold = 0.825
liquidation_bonus = 0.05
[rules.dynamic]
min_history = 2
"""


def dyn_data(series=WETH_SERIES, n_grid: int = 7):
    # start = s_3; grid every 12 h from s_3 to s_6 → updates (every 1 d) at s_3, s_4, s_5, s_6
    grid = T0 + 3 * DAY + 12 * HOUR * np.arange(n_grid, dtype=np.int64)
    ts = np.array([t for t, _ in series], dtype=np.int64)
    px = np.array([p for _, p in series])
    prices = np.column_stack([np.ones(len(grid)), px[np.searchsorted(ts, grid, side="right") - 1]])
    return run_data(["USDC", "WETH"], prices, [[0.0, 10.0]], [[500.0, 0.0]], grid_us=grid,
                    series={"USDC": (grid.copy(), np.ones(len(grid))), "WETH": (ts, px)}, start_us=int(grid[0]))


def _thresholds(rule, data):
    ltv, lt, lb = (np.array([getattr(rule.assets[a], f) for a in data.assets])
                   for f in ("ltv", "liquidation_threshold", "liquidation_bonus"))
    ltv3, lt3, upd = dynamic_thresholds(rule, data, ltv, lt, lb)
    return ltv3[:, 0, :], lt3[:, 0, :], upd


def test_dynamic_ewma_thresholds_by_hand():
    assert NormalDist().inv_cdf(0.99) == Z99
    rule = rules(DYNAMIC)[0]
    ltv, lt, upd = _thresholds(rule, dyn_data())
    assert upd.tolist() == [0, 0, 1, 1, 2, 2, 3]
    # s_3 (start): returns before it: r0 = A, r1 = −A (the 12:00 spike is not a close) → 2 = min_history,
    # σ = √0.0009 = 0.03 → LT = (1 − 2.3263·0.03)/1.05 = 0.8859 (the formula: enough history before start)
    lt0 = (1 - Z99 * 0.03) / 1.05
    # s_4: + r2 = −0.08 → σ² = 0.94·0.0009 + 0.06·0.0064 = 0.00123 (PROTOCOLS §9: σ = 3.5071 %)
    var1 = 0.94 * 0.0009 + 0.06 * 0.08 ** 2
    assert math.sqrt(var1) == pytest.approx(0.035071, abs=5e-7)
    lt1 = (1 - Z99 * math.sqrt(var1)) / 1.05  # 0.8747: a move of −0.011, inside max_step
    # s_5: + r3 = −0.3 → σ² = 0.94·0.00123 + 0.06·0.09 → target 0.773: the move is clamped to −0.05
    var2 = 0.94 * var1 + 0.06 * 0.3 ** 2
    assert (1 - Z99 * math.sqrt(var2)) / 1.05 < lt1 - 0.05
    # s_6: + r4 = −0.5 (the price at s_6 itself is not before s_6) → target 0.630: clamped again
    var3 = 0.94 * var2 + 0.06 * 0.5 ** 2
    assert (1 - Z99 * math.sqrt(var3)) / 1.05 < lt1 - 0.10
    want = [lt0, lt1, lt1 - 0.05, lt1 - 0.05 - 0.05]
    np.testing.assert_allclose(lt[:, 1], want, rtol=REL, atol=0)
    # LTV keeps its configured distance (0.825 − 0.80) below LT; USDC (LT 0) is never collateral
    np.testing.assert_allclose(ltv[:, 1], [x - 0.025 for x in want], rtol=REL, atol=0)
    assert lt[:, 0].tolist() == [0.0] * 4 and ltv[:, 0].tolist() == [0.0] * 4


def test_dynamic_start_value_without_enough_history_is_the_configured_lt():
    # min_history 3: at s_3 only 2 returns exist → LT_0 = 0.825 (configured). At s_4 three: the seed is their
    # sample variance (ddof 1); at s_5 the EWMA step with r3 = −0.3.
    rule = rules(DYNAMIC.replace("min_history = 2", "min_history = 3"))[0]
    ltv, lt, _ = _thresholds(rule, dyn_data())
    r = [A, -A, -0.08]
    mean = sum(r) / 3
    seed = sum((x - mean) ** 2 for x in r) / 2
    t1 = (1 - Z99 * math.sqrt(seed)) / 1.05  # 0.8397: +0.0147 from 0.825, inside max_step
    t2 = (1 - Z99 * math.sqrt(0.94 * seed + 0.06 * 0.09)) / 1.05  # 0.756: −0.083 → clamped
    assert abs(t1 - 0.825) < 0.05 and t2 < t1 - 0.05
    np.testing.assert_allclose(lt[:3, 1], [0.825, t1, t1 - 0.05], rtol=REL, atol=0)
    np.testing.assert_allclose(ltv[:3, 1], [0.80, t1 - 0.025, t1 - 0.075], rtol=REL, atol=0)


def test_dynamic_floor_cap_horizon_and_update_every():
    flat = [(T0 + n * DAY, 100.0) for n in range(7)]
    wild = [(T0 + n * DAY, 100.0 * math.exp(0.5 * (n % 2))) for n in range(7)]  # returns ±0.5
    text = DYNAMIC.replace("min_history = 2", "min_history = 2\nfloor = 0.6\ncap = 0.9\nmax_step = 0.5")
    rule = rules(text)[0]
    # flat prices: σ = 0 → (1 − 0)/1.05 = 0.952 → cap 0.9; LTV 0.875
    ltv, lt, _ = _thresholds(rule, dyn_data(flat))
    assert lt[:, 1].tolist() == [0.9] * 4
    np.testing.assert_allclose(ltv[:, 1], [0.9 - 0.025] * 4, rtol=REL)
    # ±0.5 returns: σ ≈ 0.7 → negative formula → floor 0.6
    ltv, lt, _ = _thresholds(rule, dyn_data(wild))
    assert lt[:, 1].tolist() == [0.6] * 4
    # LTV never goes below 0: configured LTV 0.2 is 0.625 below LT; at the floor 0.6 → 0
    rule = rules(text.replace("ltv = 0.80", "ltv = 0.20"))[0]
    ltv, _, _ = _thresholds(rule, dyn_data(wild))
    assert ltv[:, 1].tolist() == [0.0] * 4
    # horizon 2 days on 1-day returns: σ_h = σ·√2
    rule = rules(DYNAMIC.replace("min_history = 2", "min_history = 2\nhorizon_days = 2.0"))[0]
    _, lt, _ = _thresholds(rule, dyn_data())
    assert lt[0, 1] == pytest.approx((1 - Z99 * 0.03 * math.sqrt(2)) / 1.05, rel=REL)
    # updates every 2 days: at s_3 and s_5 only; the grid uses the last update at or before it
    rule = rules(DYNAMIC.replace("min_history = 2", "min_history = 2\nupdate_every = \"2d\""))[0]
    _, lt, upd = _thresholds(rule, dyn_data())
    assert upd.tolist() == [0, 0, 0, 0, 1, 1, 1]
    var2 = 0.94 * (0.94 * 0.0009 + 0.06 * 0.0064) + 0.06 * 0.09
    target = (1 - Z99 * math.sqrt(var2)) / 1.05
    np.testing.assert_allclose(lt[:, 1], [(1 - Z99 * 0.03) / 1.05, (1 - Z99 * 0.03) / 1.05 - 0.05], rtol=REL)
    assert target < (1 - Z99 * 0.03) / 1.05 - 0.05


def test_dynamic_thresholds_only_use_prices_strictly_before_each_update():
    rule = rules(DYNAMIC)[0]
    _, base, _ = _thresholds(rule, dyn_data())
    # a different price exactly at s_5 (P5 = P4: r4 = 0) changes the update at s_6, never those up to s_5:
    # σ² = 0.94·σ²(s_5) → target 0.7785, a move of −0.046 (not clamped as with r4 = −0.5)
    changed = [(t, p * (math.exp(0.5) if t == T0 + 5 * DAY else 1.0)) for t, p in WETH_SERIES]
    _, lt, _ = _thresholds(rule, dyn_data(changed))
    assert lt[:3].tolist() == base[:3].tolist()
    var2 = 0.94 * (0.94 * 0.0009 + 0.06 * 0.0064) + 0.06 * 0.09
    assert lt[3, 1] == pytest.approx((1 - Z99 * math.sqrt(0.94 * var2)) / 1.05, rel=REL)
    assert lt[3, 1] > base[3, 1]


def test_dynamic_samples_at_multiples_of_the_interval_since_the_epoch():
    # start at s_3 + 6 h: returns still come from closes at midnights (not start − n days), so the update at
    # start sees r0, r1, r2 → σ² = 0.94·0.0009 + 0.06·0.0064, and a tick at s_2 + 3 h (between closes) is
    # never a sample
    rule = rules(DYNAMIC)[0]
    series = sorted(WETH_SERIES + [(T0 + 2 * DAY + 3 * HOUR, 120.0)])
    start = T0 + 3 * DAY + 6 * HOUR
    grid = start + 12 * HOUR * np.arange(4, dtype=np.int64)
    data = dyn_data(series)
    data = RunData(data.assets, data.accounts, grid, start, data.prices[:4], data.book, data.events, data.series)
    ltv, lt, upd = _thresholds(rule, data)
    assert upd.tolist() == [0, 0, 1, 1]  # updates at start and start + 1 d
    lt0 = (1 - Z99 * math.sqrt(0.94 * 0.0009 + 0.06 * 0.0064)) / 1.05
    assert lt[0, 1] == pytest.approx(lt0, rel=REL)
    var2 = 0.94 * (0.94 * 0.0009 + 0.06 * 0.0064) + 0.06 * 0.09
    assert (1 - Z99 * math.sqrt(var2)) / 1.05 < lt0 - 0.05  # the next update is clamped
    assert lt[1, 1] == pytest.approx(lt0 - 0.05, rel=REL)


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_dynamic_compiles_to_update_rows_and_borrowing_power_uses_the_first(engine):
    rule = rules(DYNAMIC)[0]
    data = dyn_data()
    c, res = replay(engine, data, rule)
    assert c.params.update_index.tolist() == [0, 0, 1, 1, 2, 2, 3]
    lt0 = (1 - Z99 * 0.03) / 1.05
    m = compute_metrics(res, c.book, data.prices, c.params)
    assert m["borrowing_power_usd"] == pytest.approx(10 * P3 * (lt0 - 0.025), rel=REL)
    assert c.params.liquidation_bonus.shape == c.params.liquidation_threshold.shape
    assert (c.params.liquidation_bonus[:, 0, 1] == 0.05).all()


# ---------------------------------------------------------------------------------------------------------
# kind = "liquidity-haircut"
# ---------------------------------------------------------------------------------------------------------

HAIRCUT = """
[[rules]]
name = "hc"
kind = "liquidity-haircut"
[rules.assets.USDC]
ltv = 0.0
liquidation_threshold = 0.0
liquidation_bonus = 0.0
[rules.assets.WETH]
ltv = 0.80
liquidation_threshold = 0.825
liquidation_bonus = 0.05
"""


@pytest.mark.parametrize("engine", ENGINES, ids=ENGINE_IDS)
def test_haircut_factor_liquidates_a_large_position_when_depth_shrinks(engine):
    # 100 WETH at 2000 (200,000 USD), 130,000 USDC debt. Depth 1,000,000 then 500,000 (NaN for USDC: LT 0).
    rule = rules(HAIRCUT)[0]
    depth = np.array([[np.nan, 1e6], [np.nan, 5e5]])
    data = run_data(["USDC", "WETH"], [[1.0, 2000.0], [1.0, 2000.0]], [[0.0, 100.0]], [[130_000.0, 0.0]],
                    depth_usd=depth)
    c, res = replay(engine, data, rule)
    assert c.params.depth_usd[:, 0].tolist() == [math.inf, math.inf]  # not collateral: never haircut
    assert (c.params.haircut_k, c.params.haircut_floor) == (1.0, 0.5)
    # step 0: f = 1 − 200,000/1,000,000 = 0.8 → LT_eff = 0.66 → HF = 132,000/130,000 → no call.
    # step 1: f = 1 − 0.4 = 0.6 → HF = 99,000/130,000 = 0.76 → R = 65,000, S = 65,000·1.05/2000 = 34.125;
    #   then 65.875 WETH: f = 1 − 131,750/500,000 = 0.7365 → 131,750·0.825·0.7365 = 80,052 ≥ 65,000.
    liq = res.liquidations.sorted()
    assert liq.step.tolist() == [1]
    assert liq.debt_repaid[0] == pytest.approx(65_000.0, rel=REL)
    assert liq.collateral_seized[0] == pytest.approx(34.125, rel=REL)
    assert res.final_collateral[0, 1] == pytest.approx(65.875, rel=REL)
    m = compute_metrics(res, c.book, data.prices, c.params, baseline_borrowing_power=160_000.0)
    # borrowing power: 200,000·0.80·0.8 = 128,000 (vs 160,000 without the haircut)
    assert m["borrowing_power_usd"] == pytest.approx(128_000.0, rel=REL)
    assert m["capital_efficiency"] == pytest.approx(0.8, rel=REL)
    # the same book without a haircut is never liquidated (HF 165,000/130,000)
    plain = engine(data.prices, c.book, c.events, Params(c.params.ltv, c.params.liquidation_threshold,
                                                           c.params.liquidation_bonus))
    assert len(plain.liquidations) == 0


def test_haircut_floor_and_k_keys():
    # k = 0.5, floor 0.3: depth 100,000 → 1 − 0.5·200,000/100,000 = 0 → floor 0.3: LTV_eff 0.24
    rule = rules(HAIRCUT + "[rules.haircut]\nk = 0.5\nfloor = 0.3\n")[0]
    data = run_data(["USDC", "WETH"], [[1.0, 2000.0]], [[0.0, 100.0]], [[0.0, 0.0]],
                    depth_usd=np.array([[np.nan, 1e5]]))
    c = compile_rule(rule, data)
    assert (c.params.haircut_k, c.params.haircut_floor) == (0.5, 0.3)
    res = replay_reference(data.prices, c.book, c.events, c.params)
    m = compute_metrics(res, c.book, data.prices, c.params)
    assert m["borrowing_power_usd"] == pytest.approx(200_000.0 * 0.80 * 0.3, rel=REL)


def test_haircut_needs_liquidity_data_for_every_collateral_asset():
    rule = rules(HAIRCUT)[0]
    args = (["USDC", "WETH"], [[1.0, 2000.0], [1.0, 2000.0]], [[0.0, 100.0]], [[0.0, 0.0]])
    with pytest.raises(MbtError, match="needs liquidity data for asset 'WETH'"):
        compile_rule(rule, run_data(*args, depth_usd=None))
    with pytest.raises(MbtError, match="needs liquidity data for asset 'WETH'"):
        compile_rule(rule, run_data(*args, depth_usd=np.array([[1e6, np.nan], [1e6, np.nan]])))
    with pytest.raises(MbtError, match="asset 'WETH' has no liquidity data at or before the first grid point"):
        compile_rule(rule, run_data(*args, depth_usd=np.array([[np.nan, np.nan], [np.nan, 1e6]])))


def test_constant_product_depth_factor():
    # selling x into reserves (X, Y) moves the price by (X/(X + x))²; −2 % ⇒ x = X(1/√0.98 − 1), worth
    # Y(1/√0.98 − 1) at the pool price
    assert DEPTH_FACTOR == 1 / math.sqrt(0.98) - 1
    assert DEPTH_FACTOR == pytest.approx(0.010152544552210818, rel=REL)


# ---------------------------------------------------------------------------------------------------------
# interest growth: event amounts are token units on each side
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES[:2], ids=ENGINE_IDS[:2])
def test_borrow_under_debt_growth_adds_its_token_amount(engine):
    # debt index doubles at step 1, collateral index flat; borrowing 10 tokens at step 1 adds 10 tokens of debt
    prices = np.array([[1.0], [1.0]])
    growth = (np.ones((2, 1)), np.array([[1.0], [2.0]]))
    params = Params(np.array([0.5]), np.array([0.6]), np.array([0.05]))
    res = engine(prices, Book(np.array([[100.0]]), np.array([[0.0]])), events((0, 1, 0, BORROW, 10.0)), params,
                 growth=growth)
    assert res.final_debt.tolist() == [[10.0]]
    assert res.debt_usd.tolist() == [0.0, 10.0]
