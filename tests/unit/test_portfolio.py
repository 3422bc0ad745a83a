"""Portfolio margin (issue 12): worked examples with exact numbers, VaR / ES / FHS by hand, fast ==
reference on random books, no look-ahead, borrowing power as the largest debt with E ≥ IM.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backtest import riskmath
from backtest.config import parse_config
from backtest.engine.fast import replay_fast
from backtest.engine.portfolio import MODE_ES, MODE_JOINT, MODE_NONE, MODE_VAR, select_kth
from backtest.engine.reference import replay_reference
from backtest.engine.types import BORROW, REPAY, SUPPLY, WITHDRAW, Book, Events
from backtest.errors import ConfigError, MbtError
from backtest.kinds.portfolio import PortfolioParams, VarSettings, scan_moves, var_scenarios

DAY = 86_400 * 1_000_000


def scan_params(psr, lb, *, mode=MODE_JOINT, T=2, im=1.25, em=2.0, ew=0.35, enforce=False, gas=0.0, borrow=0,
                cf=0.5):
    psr = np.asarray(psr, dtype=np.float64)
    return PortfolioParams(mode, scan_moves(psr, em, ew)[None], np.array([9]), np.array([0]), np.zeros(T, np.int64),
                           np.asarray(lb, dtype=np.float64), im, borrow, "aave", np.array([cf]), None, gas, enforce)


# -- portfolio-scenario: a two-asset account under both offsets settings -----------------------------------
# 10 WETH at 2,000 USD (psr 0.15) against 15,000 USDC of debt (psr 0.01); assets in column order USDC, WETH.
PSR = [0.01, 0.15]
LB = [0.05, 0.05]


def test_scan_moves_are_the_nine_span_price_points():
    g = scan_moves(np.array([0.15]), 2.0, 0.35)[:, 0]
    assert g.tolist() == pytest.approx([0, 0.05, -0.05, 0.1, -0.1, 0.15, -0.15, 0.105, -0.105], abs=1e-15)


@pytest.mark.parametrize("mode, expected", [(MODE_JOINT, 2_850.0), (MODE_NONE, 3_150.0)])
def test_two_asset_requirement_both_offsets(mode, expected):
    # joint: every asset moves by its own range in the same direction; the worst is all −1 × psr:
    #   L = 20,000 × 0.15 − 15,000 × 0.01 = 2,850 (the extreme ±2 × 0.35 = 0.7 < 1 never binds)
    # none: each asset scanned alone, no offsets: 20,000 × 0.15 + 15,000 × 0.01 = 3,150
    p = scan_params(PSR, LB, mode=mode)
    values = np.array([[-15_000.0, 20_000.0]])
    assert p.requirements(values, 0)[0] == pytest.approx(expected, rel=1e-15)


def test_extreme_scenario_binds_when_its_weighted_move_is_larger():
    p = scan_params(PSR, LB, em=3.0)  # ±3 × psr at 35 % = 1.05 × psr > 1 × psr
    assert p.requirements(np.array([[-15_000.0, 20_000.0]]), 0)[0] == pytest.approx(1.05 * 2_850.0, rel=1e-14)


@pytest.mark.parametrize("mode, calls", [(MODE_JOINT, 1), (MODE_NONE, 1)])
def test_two_asset_liquidation_when_equity_falls_below_the_requirement(mode, calls):
    # step 0: E = 20,000 − 15,000 = 5,000 ≥ R (2,850 joint, 3,150 none): healthy.
    # step 1: WETH 1,700 → E = 2,000 < R (joint 17,000·0.15 − 150 = 2,400; none 2,700): one call at close
    # factor 0.5 repays 7,500 USDC and seizes 7,500 × 1.05 / 1,700 WETH; then E = 1,625 ≥ R (joint
    # 9,125·0.15 − 75 = 1,293.75; none 1,368.75 + 75 = 1,443.75): the loop stops.
    prices = np.array([[1.0, 2_000.0], [1.0, 1_700.0]])
    book = Book(np.array([[0.0, 10.0]]), np.array([[15_000.0, 0.0]]))
    p = scan_params(PSR, LB, mode=mode)
    for engine in (replay_reference, replay_fast):
        r = engine(prices, book, Events.empty(), p)
        assert len(r.liquidations) == calls
        assert r.liquidations.step.tolist() == [1]
        assert r.liquidations.debt_repaid[0] == pytest.approx(7_500.0)
        assert r.liquidations.collateral_seized[0] == pytest.approx(7_500 * 1.05 / 1_700)
        assert r.final_debt[0, 0] == pytest.approx(7_500.0)
        assert r.final_collateral[0, 1] == pytest.approx(10 - 7_500 * 1.05 / 1_700)
        left = r.final_collateral[0] * prices[1] - r.final_debt[0] * prices[1]
        req = p.requirements(left[None, :], 1)[0]
        assert req == pytest.approx(1_293.75 if mode == MODE_JOINT else 1_443.75)
        assert left.sum() == pytest.approx(1_625.0)


def test_offsets_let_a_hedged_account_carry_more():
    # collateral 10 WETH, debt 8 WETH-worth... in WETH itself: a hedge. Joint: the WETH legs offset.
    p_joint, p_none = scan_params(PSR, LB), scan_params(PSR, LB, mode=MODE_NONE)
    values = np.array([[0.0, 20_000.0 - 16_000.0]])  # net WETH 4,000 USD
    assert p_joint.requirements(values, 0)[0] == pytest.approx(600.0)
    # none scans per asset on the net value too: the same asset nets in both settings
    assert p_none.requirements(values, 0)[0] == pytest.approx(600.0)
    two = np.array([[-16_000.0, 20_000.0]])  # USDC debt instead: joint 3,000 − 160, none 3,000 + 160
    assert p_joint.requirements(two, 0)[0] == pytest.approx(2_840.0)
    assert p_none.requirements(two, 0)[0] == pytest.approx(3_160.0)


@pytest.mark.parametrize("mode, expected", [
    # joint: f(λ) = 20,000 − λ − 1.25·(3,000 − 0.01·λ) ≥ 0  ⇔  λ ≤ 16,250 / 0.9875
    (MODE_JOINT, 16_250 / 0.9875),
    # none: f(λ) = 20,000 − λ − 1.25·(3,000 + 0.01·λ)  ⇔  λ ≤ 16,250 / 1.0125
    (MODE_NONE, 16_250 / 1.0125),
])
def test_borrowing_power_is_the_largest_debt_with_equity_at_the_initial_requirement(mode, expected):
    p = scan_params(PSR, LB, mode=mode)
    coll = np.array([[0.0, 10.0], [0.0, 10.0]])
    debt = np.array([[15_000.0, 0.0], [0.0, 0.0]])  # the second has no debt: it borrows in column 0 (USDC)
    bp = p.borrowing_power(coll, debt, np.array([1.0, 2_000.0]))
    assert bp == pytest.approx(2 * expected, rel=1e-12)


def test_enforce_ltv_refuses_a_borrow_that_leaves_equity_below_im():
    # capacity 16,455.70 USDC (joint): a borrow to 16,000 passes, one more 1,000 is refused
    p = scan_params(PSR, LB, enforce=True)
    book = Book(np.array([[0.0, 10.0]]), np.array([[15_000.0, 0.0]]))
    ev = Events(np.array([0, 0]), np.array([0, 1]), np.array([0, 0]), np.array([BORROW, BORROW], np.int8),
                np.array([1_000.0, 1_000.0]))
    prices = np.array([[1.0, 2_000.0], [1.0, 2_000.0]])
    for engine in (replay_reference, replay_fast):
        r = engine(prices, book, ev, p)
        assert r.final_debt[0, 0] == pytest.approx(16_000.0)
        assert r.blocked_borrow_usd == pytest.approx(1_000.0)


# -- VaR / ES on a 30-day history computed by hand --------------------------------------------------------
def _history(simple_returns, start=0, p0=100.0):
    """Daily closes at midnights start, start+1d, …: p_i = p_{i−1}·(1 + g_i)."""
    px = [p0]
    for g in simple_returns:
        px.append(px[-1] * (1 + g))
    ts = (start + np.arange(len(px), dtype=np.int64)) * DAY
    return ts, np.array(px)


def _settings(**kw):
    base = dict(method="hs", measure="var", alpha=0.9, horizon_s=86_400, lookback_s=30 * 86_400, lam=0.94,
                initial_multiplier=1.25, borrow_asset="USDC")
    base.update(kw)
    return VarSettings(**base)


# thirty daily simple returns of WETH: four bad days (−10, −8, −6, −4 %), the rest between −3 % and +3 %
RETURNS = [0.01, -0.02, 0.03, -0.10, 0.0, 0.02, -0.01, -0.08, 0.015, -0.03, 0.025, 0.01, -0.06, 0.0, 0.005,
           -0.015, 0.02, -0.04, 0.01, 0.0, -0.025, 0.03, 0.012, -0.005, 0.008, 0.0, -0.012, 0.018, 0.004, -0.02]


def test_var_and_es_on_a_30_day_history_by_hand():
    # history: 31 closes at midnights 0..30; the grid's one step is at midnight 30: the window holds the
    # midnights τ with now − 30d < τ ≤ now, i.e. 1..30, so 30 scenarios, one per return.
    ts, px = _history(RETURNS)
    usdc = (ts, np.ones_like(px))
    grid = np.array([30 * DAY])
    series = {"USDC": usdc, "WETH": (ts, px)}
    G, count, kidx, day = var_scenarios("r", _settings(), ["USDC", "WETH"], series, grid)
    assert count.tolist() == [30] and day.tolist() == [0]
    assert kidx.tolist() == [26]  # ⌈0.9 × 30⌉ = 27th smallest, 0-based 26
    np.testing.assert_allclose(G[0, :, 1], RETURNS, rtol=0, atol=1e-15)
    assert not G[0, :, 0].any()
    # one account: 1 WETH collateral (p_now) and 50 USDC debt: L_s = −p_now·g_s; losses sorted descending
    # are 0.10, 0.08, 0.06, 0.04 (× p_now), …: VaR_90 = the 27th smallest = the 4th largest = 0.04·p_now,
    # ES_90 = mean(0.04, 0.06, 0.08, 0.10)·p_now = 0.07·p_now
    p_now = px[-1]
    values = np.array([[-50.0, p_now]])
    for mode, expected in ((MODE_VAR, 0.04 * p_now), (MODE_ES, 0.07 * p_now)):
        p = PortfolioParams(mode, G, count, kidx, day, np.array([0.05, 0.05]), 1.25, 0, "aave", np.array([0.5]),
                            None, 0.0, False)
        assert p.requirements(values, 0)[0] == pytest.approx(expected, rel=1e-12)
    # α = 0.99 on 30: ⌈29.7⌉ = 30th smallest = the worst loss; VaR = ES = 0.10·p_now
    G2, count2, kidx2, day2 = var_scenarios("r", _settings(alpha=0.99), ["USDC", "WETH"], series, grid)
    assert kidx2.tolist() == [29]
    p = PortfolioParams(MODE_ES, G2, count2, kidx2, day2, np.zeros(2), 1.25, 0, "aave", np.array([0.5]), None, 0.0,
                        False)
    assert p.requirements(values, 0)[0] == pytest.approx(0.10 * p_now, rel=1e-12)
    # a short WETH position loses on the good days: +3 %, +3 %, +2.5 %, +2 %, +2 %: VaR_90 (the 4th largest)
    # is 0.02·p_now and ES_90 the mean of every loss ≥ it — both tied +2 % days: 0.025·p_now
    short = np.array([[p_now, -p_now]])
    for mode, expected in ((MODE_VAR, 0.02), (MODE_ES, 0.025)):
        p = PortfolioParams(mode, G, count, kidx, day, np.zeros(2), 1.25, 0, "aave", np.array([0.5]), None, 0.0,
                            False)
        assert p.requirements(short, 0)[0] == pytest.approx(expected * p_now, rel=1e-12)


def test_two_day_horizon_uses_overlapping_returns():
    ts, px = _history(RETURNS)
    grid = np.array([30 * DAY])
    s = _settings(horizon_s=2 * 86_400, lookback_s=25 * 86_400)
    G, count, _, _ = var_scenarios("r", s, ["WETH"], {"WETH": (ts, px)}, grid)
    assert count.tolist() == [25]  # τ = 6..30
    expected = [px[t] / px[t - 2] - 1 for t in range(6, 31)]
    np.testing.assert_allclose(G[0, :25, 0], expected, rtol=1e-13)


def test_fhs_rescales_each_day_by_the_ewma_volatility_ratio():
    ts, px = _history(RETURNS)
    grid = np.array([30 * DAY + 3_600 * 1_000_000])  # now = 01:00: T = midnight 30
    s = _settings(method="fhs", lookback_s=20 * 86_400)
    G, count, _, _ = var_scenarios("r", s, ["WETH"], {"WETH": (ts, px)}, grid)
    rho = np.log(px[1:] / px[:-1])  # ρ at midnights 1..30
    var = [rho[0] ** 2]  # forecast for midnight 1 (seed), then σ²_{t+1} = λσ²_t + (1−λ)ρ²_t
    for r in rho:
        var.append(0.94 * var[-1] + 0.06 * r * r)
    sigma_now = math.sqrt(var[30])  # forecast for midnight 31 = T + 1d
    window = range(11, 31)  # now − 20d < τ ≤ now → midnights 11..30
    assert count.tolist() == [20]
    expected = [math.expm1(rho[t - 1] * sigma_now / math.sqrt(var[t - 1])) for t in window]
    np.testing.assert_allclose(G[0, :20, 0], expected, rtol=1e-12)


def test_ewma_example_of_protocols_section_9_to_the_cent():
    sigma = riskmath.ewma_next(0.03, -0.08, 0.94)
    assert round(sigma * 100, 4) == 3.5071
    var_1d = riskmath.z_score(0.99) * sigma * 1e6
    assert round(var_1d) == 81_588
    assert round(var_1d * math.sqrt(2)) == 115_383
    v = riskmath.ewma_variances(np.array([-0.08]), 0.94)
    assert v[0] == pytest.approx(0.0064) and math.sqrt(0.94 * 0.03 ** 2 + 0.06 * 0.0064) == pytest.approx(sigma)


def test_fewer_than_20_scenarios_names_the_rule_set():
    ts, px = _history(RETURNS)
    with pytest.raises(MbtError, match=r'rules "short": portfolio.lookback 19d gives 19 daily scenarios'):
        var_scenarios("short", _settings(lookback_s=19 * 86_400), ["WETH"], {"WETH": (ts, px)}, np.array([30 * DAY]))


def test_missing_history_names_the_rule_set_and_the_asset():
    ts, px = _history(RETURNS)
    late = (ts[10:], px[10:])
    with pytest.raises(MbtError, match=r'rules "r": asset \'LINK\' has no price history covering the scenario'):
        var_scenarios("r", _settings(), ["LINK", "WETH"], {"LINK": late, "WETH": (ts, px)}, np.array([30 * DAY]))


def test_a_new_set_each_utc_day_from_data_at_or_before_its_first_step():
    ts, px = _history(RETURNS + [0.01, -0.5])  # midnight 32 crashes
    # grid: 30 12:00, 31 06:00, 31 18:00, 32 00:00 (the crash close is at 32 00:00 itself, the set sees it)
    grid = np.array([30 * DAY + DAY // 2, 31 * DAY + DAY // 4, 31 * DAY + 3 * DAY // 4, 32 * DAY])
    G, count, _, day = var_scenarios("r", _settings(lookback_s=20 * 86_400), ["WETH"], {"WETH": (ts, px)}, grid)
    assert day.tolist() == [0, 1, 1, 2] and count.tolist() == [20, 20, 20]
    assert G[2, 19, 0] == pytest.approx(-0.5) and G[1, :, 0].min() > -0.5


def test_select_kth_matches_sorting():
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 30, 181):
        a = rng.normal(size=n).round(1)  # with ties
        for k in {0, n // 2, n - 1}:
            assert select_kth(a.copy(), n, k) == np.sort(a)[k]


# -- fast == reference on random books ---------------------------------------------------------------------
def _random_case(rng, mode, T=120, K=4, A=40, enforce=False):
    start = np.array([1.0, 30.0, 2_000.0, 40_000.0])[:K]
    vol = np.array([0.0005, 0.02, 0.015, 0.01])[:K]
    prices = start * np.exp(np.cumsum(rng.normal(0, vol, (T, K)), axis=0))
    prices[T // 2:, 1:] *= rng.uniform(0.6, 0.9)  # a jump
    coll = np.where(rng.random((A, K)) < 0.5, rng.lognormal(8, 1, (A, K)) / start, 0.0)
    debt = np.zeros((A, K))
    owe = rng.integers(0, K, A)
    debt[np.arange(A), owe] = (coll * start).sum(axis=1) * rng.uniform(0.2, 1.1, A) / start[owe]
    hedge = rng.random(A) < 0.3
    debt[hedge, 2] += coll[hedge, 2] * rng.uniform(0.2, 0.9, hedge.sum())  # same-asset offsets
    E = 80
    ev = Events(rng.integers(0, A, E), np.sort(rng.integers(0, T, E)), rng.integers(0, K, E),
                rng.choice([SUPPLY, WITHDRAW, BORROW, REPAY], E).astype(np.int8), rng.lognormal(3, 2, E))
    lb = rng.uniform(0.0, 0.15, K)
    if mode in (MODE_JOINT, MODE_NONE):
        p = PortfolioParams(mode, scan_moves(rng.uniform(0.01, 0.4, K), 2.0, 0.35)[None], np.array([9]),
                            np.array([0]), np.zeros(T, np.int64), lb, 1.25, 0, "aave", np.array([0.5]), None,
                            float(rng.choice([0.0, 5.0])), enforce)
    else:
        D, N = 3, 25
        G = np.expm1(rng.standard_t(4, (D, N, K)) * vol * 8)
        counts = np.array([25, 20, 23])
        kidx = np.array([riskmath.var_index(0.95, n) for n in counts])
        day = np.minimum(np.arange(T) * D // T, D - 1)
        p = PortfolioParams(mode, G, counts, kidx, day, lb, 1.5, 0, "aave", np.array([0.5]), None,
                            float(rng.choice([0.0, 5.0])), enforce)
    return prices, Book(coll, debt), ev, p


@pytest.mark.parametrize("mode", [MODE_JOINT, MODE_NONE, MODE_VAR, MODE_ES])
@pytest.mark.parametrize("seed", range(6))
def test_fast_equals_reference_on_random_books(mode, seed):
    rng = np.random.default_rng(1000 * mode + seed)
    prices, book, ev, p = _random_case(rng, mode, enforce=seed % 2 == 1)
    growth = None
    if seed % 3 == 2:
        T, K = prices.shape
        growth = (np.cumprod(np.full((T, K), 1.0001), axis=0), np.cumprod(np.full((T, K), 1.0003), axis=0))
    ref = replay_reference(prices, book, ev, p, growth=growth)
    for levels in (None, [16, 4], [8]):
        fast = replay_fast(prices, book, ev, p, growth=growth, levels=levels)
        assert len(fast.liquidations) == len(ref.liquidations)
        for f in ("step", "account", "debt_asset", "collateral_asset", "debt_repaid", "collateral_seized"):
            np.testing.assert_array_equal(getattr(fast.liquidations.sorted(), f), getattr(ref.liquidations.sorted(), f))
        np.testing.assert_array_equal(fast.final_collateral, ref.final_collateral)
        np.testing.assert_array_equal(fast.final_debt, ref.final_debt)
        np.testing.assert_array_equal(fast.realised_bad_debt, ref.realised_bad_debt)
        np.testing.assert_array_equal(fast.unrealised_bad_debt, ref.unrealised_bad_debt)
        assert fast.blocked_borrow_usd == ref.blocked_borrow_usd
        assert fast.blocked_withdraw_usd == ref.blocked_withdraw_usd
    # invariants: no negative balances, seized ≤ held, bad debt ≥ 0
    assert (ref.final_collateral >= 0).all() and (ref.final_debt >= -1e-9).all()
    assert (ref.realised_bad_debt >= 0).all() and (ref.unrealised_bad_debt >= 0).all()
    assert len(ref.liquidations) > 0  # the jump liquidates someone: the comparison is not vacuous


@pytest.mark.parametrize("mode", [MODE_JOINT, MODE_ES])
def test_after_each_step_no_account_with_debt_stays_below_its_requirement_unless_stuck(mode):
    rng = np.random.default_rng(7 + mode)
    prices, book, _, p = _random_case(rng, mode)
    p = PortfolioParams(**{**p.__dict__, "gas_usd": 0.0})
    r = replay_reference(prices, book, Events.empty(), p)
    T = prices.shape[0]
    values = r.final_collateral * prices[-1] - r.final_debt * prices[-1]
    req = p.requirements(values, T - 1)
    owes = (r.final_debt > 0).any(axis=1)
    ok = values.sum(axis=1) >= req - 1e-6 * np.abs(values).sum(axis=1)
    # an account left below its requirement can only be one the loop cannot help: no collateral to seize
    # that raises E − R, or the 100-call cap; with close factor 0.5 the loop runs until healthy or stuck
    stuck = (r.final_collateral == 0).all(axis=1) | ~owes
    assert (ok | stuck | (values.sum(axis=1) < 0)).all()


def test_no_look_ahead_changing_a_price_after_step_t_changes_nothing_before():
    ts, px = _history(RETURNS + [0.01] * 5)
    grid = np.arange(30 * DAY, 35 * DAY + 1, DAY // 4)  # 6-hourly for 5 days
    T = len(grid)
    s = _settings(lookback_s=25 * 86_400, measure="es", method="fhs")
    rng = np.random.default_rng(11)
    A = 30
    series = {"USDC": (ts, np.ones(len(ts))), "WETH": (ts, px)}
    prices = np.column_stack([np.ones(T), np.interp(grid, ts, px)])
    coll = np.column_stack([np.zeros(A), rng.uniform(1, 10, A)])
    debt = np.column_stack([coll[:, 1] * prices[0, 1] * rng.uniform(0.5, 0.95, A), np.zeros(A)])
    t_cut = 9  # 32 06:00

    def run(series, prices):
        G, count, kidx, day = var_scenarios("r", s, ["USDC", "WETH"], series, grid)
        p = PortfolioParams(MODE_ES, G, count, kidx, day, np.array([0.05, 0.05]), 1.25, 0, "aave", np.array([0.5]),
                            None, 0.0, False)
        return G, day, replay_fast(prices, Book(coll, debt), Events.empty(), p)

    G1, day1, r1 = run(series, prices)
    later = ts > grid[t_cut]
    px2 = np.where(later, px * 0.3, px)
    prices2 = prices.copy()
    prices2[t_cut + 1:, 1] *= 0.3
    G2, day2, r2 = run({"USDC": series["USDC"], "WETH": (ts, px2)}, prices2)
    upto = day1[t_cut]
    np.testing.assert_array_equal(G1[:upto + 1], G2[:upto + 1])
    np.testing.assert_array_equal(r1.unrealised_bad_debt[:t_cut + 1], r2.unrealised_bad_debt[:t_cut + 1])
    m1 = r1.liquidations.step <= t_cut
    m2 = r2.liquidations.step <= t_cut
    np.testing.assert_array_equal(r1.liquidations.debt_repaid[m1], r2.liquidations.debt_repaid[m2])
    assert len(r2.liquidations) > len(r1.liquidations)  # the later crash matters after t


# -- config ------------------------------------------------------------------------------------------------
RUN = '[run]\nname = "p"\nstart = "2021-05-19T00:00:00Z"\nend = "2021-05-19T02:00:00Z"\n'


def _cfg(text):
    import tomllib

    return parse_config(tomllib.loads(RUN + text))


def test_config_resolves_both_kinds_with_defaults_and_base():
    cfg = _cfg("""
[[rules]]
name = "span"
kind = "portfolio-scenario"
[rules.assets.WETH]
psr = 0.15
liquidation_bonus = 0.05
[[rules]]
name = "span-none"
base = "span"
[rules.portfolio]
offsets = "none"
[rules.assets.WETH]
psr = 0.2
[[rules]]
name = "es"
kind = "portfolio-var"
[rules.portfolio]
measure = "es"
[rules.assets.WETH]
liquidation_bonus = 0.05
""")
    span, none, es = cfg.rules
    assert vars(span.setting("portfolio")) == {"extreme_multiple": 2.0, "extreme_weight": 0.35,
                                               "initial_multiplier": 1.25, "offsets": "joint", "borrow_asset": None}
    assert none.setting("portfolio").offsets == "none" and none.assets["WETH"].psr == 0.2
    assert none.assets["WETH"].liquidation_bonus == 0.05  # inherited from the base
    st = es.setting("portfolio")
    assert (st.method, st.measure, st.alpha, st.horizon_s, st.lookback_s, st.lam, st.borrow_asset) == \
        ("hs", "es", 0.99, 86_400, 180 * 86_400, 0.94, "USDC")
    canon = cfg.canonical()["rules"]
    assert canon[0]["assets"] == {"WETH": {"psr": 0.15, "liquidation_bonus": 0.05}}
    assert canon[2]["portfolio"]["measure"] == "es"


@pytest.mark.parametrize("text, message", [
    ('kind = "portfolio-scenario"\n[rules.assets.WETH]\nliquidation_bonus = 0.05\n',
     r"rules\.x\.assets\.WETH\.psr: missing"),
    ('kind = "portfolio-scenario"\n[rules.assets.WETH]\npsr = 0\nliquidation_bonus = 0.05\n',
     r"rules\.x\.assets\.WETH\.psr: must be > 0"),
    ('kind = "portfolio-scenario"\n[rules.assets.WETH]\npsr = 0.1\nliquidation_threshold = 0.8\nliquidation_bonus = 0.05\n',
     r"rules\.x\.assets\.WETH\.liquidation_threshold: unknown key"),
    ('kind = "portfolio-scenario"\n[rules.portfolio]\noffsets = "partial"\n',
     r"rules\.x\.portfolio\.offsets: expected \"joint\""),
    ('kind = "portfolio-scenario"\n[rules.portfolio]\ninitial_multiplier = 0.9\n',
     r"rules\.x\.portfolio\.initial_multiplier: must be ≥ 1"),
    ('kind = "portfolio-scenario"\n[rules.portfolio]\nalpha = 0.9\n', r"rules\.x\.portfolio\.alpha: unknown key"),
    ('kind = "portfolio-var"\n[rules.portfolio]\nmethod = "garch"\n', r"rules\.x\.portfolio\.method"),
    ('kind = "portfolio-var"\n[rules.portfolio]\nhorizon = "12h"\n', r"rules\.x\.portfolio\.horizon: must be a whole"),
    ('kind = "portfolio-var"\n[rules.portfolio]\nalpha = 1.0\n', r"rules\.x\.portfolio\.alpha: must satisfy"),
    ('kind = "portfolio-var"\n[rules.assets.WETH]\npsr = 0.1\nliquidation_bonus = 0.05\n',
     r"rules\.x\.assets\.WETH\.psr: unknown key"),
    ('[rules.portfolio]\noffsets = "none"\n',
     r"rules\.x\.portfolio: only valid with kind = 'portfolio-scenario' or 'portfolio-var'"),
])
def test_config_errors_name_the_key(text, message):
    with pytest.raises(ConfigError, match=message):
        _cfg('[[rules]]\nname = "x"\n' + text)


def test_default_borrow_asset_is_the_smallest_psr_first_in_code_point_order():
    from backtest.kinds import RunData
    from backtest.rules import compile_rule

    cfg = _cfg("""
[[rules]]
name = "span"
kind = "portfolio-scenario"
[rules.assets.WETH]
psr = 0.15
liquidation_bonus = 0.05
[rules.assets.USDC]
psr = 0.01
liquidation_bonus = 0.05
[rules.assets.DAI]
psr = 0.01
liquidation_bonus = 0.05
[[rules]]
name = "span-usdc"
base = "span"
[rules.portfolio]
borrow_asset = "USDC"
""")
    assets = ["DAI", "USDC", "WETH"]
    grid = np.array([0, 1], dtype=np.int64)
    prices = np.array([[1.0, 1.0, 2_000.0]] * 2)
    book = Book(np.zeros((1, 3)), np.zeros((1, 3)))
    data = RunData(assets, np.array(["a"], dtype=object), grid, 0, prices, book, Events.empty(), {})
    tie, usdc = (compile_rule(r, data).params for r in cfg.rules)
    assert assets[tie.borrow] == "DAI" and assets[usdc.borrow] == "USDC"
