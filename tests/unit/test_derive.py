"""``backtest.derive`` (``mbt derive``): worked examples with exact numbers (PROTOCOLS §9), a seeded GBM for the
EWMA σ, a group's ratio Δ, slippage from a liquidity row by hand, no look-ahead, and the TOML a config takes."""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.config import parse_config
from backtest.confkit import _asset_params
from backtest.derive import (
    DeriveSettings,
    Move,
    Slip,
    adverse_move,
    asset_slip,
    daily_closes,
    derive_rules,
    ewma_move,
    hs_move,
    lb_min,
    parameters,
    parse_group,
    parse_groups,
    parse_settings,
    pool_lb_min,
    ratio_closes,
    rules_toml,
)
from backtest.errors import ConfigError, MbtError
from backtest.riskmath import DAY_US, ewma_next, z_score
from backtest.rules import DEPTH_FACTOR
from backtest.timeutil import parse_instant

T0 = parse_instant("2021-01-01T00:00:00Z")
RUN = '[run]\nname = "t"\nstart = "2021-04-01T00:00:00Z"\nend = "2021-04-11T00:00:00Z"\n'


def daily(closes: list[float] | np.ndarray, start: int = T0) -> tuple[np.ndarray, np.ndarray]:
    """One price at each UTC midnight from ``start``."""
    px = np.asarray(closes, dtype=np.float64)
    return start + DAY_US * np.arange(len(px), dtype=np.int64), px


def from_losses(losses: list[float], p0: float = 100.0) -> np.ndarray:
    """Closes whose successive 1-day losses ``1 − p_t/p_{t−1}`` are ``losses``."""
    return p0 * np.cumprod(np.r_[1.0, 1.0 - np.asarray(losses)])


def from_log_returns(r: list[float] | np.ndarray, p0: float = 100.0) -> np.ndarray:
    return p0 * np.exp(np.r_[0.0, np.cumsum(r)])


def parametric_var(value_usd: float, sigma: float, alpha: float, days: float) -> float:
    """Parametric VaR of a position: ``z_α · σ · √days · value`` (PROTOCOLS §9 EWMA example)."""
    return z_score(alpha) * sigma * math.sqrt(days) * value_usd


# -- PROTOCOLS §9 "EWMA volatility" ------------------------------------------------------------------------
def test_protocols_ewma_example_to_the_cent() -> None:
    sigma = ewma_next(0.03, -0.08, 0.94)
    assert round(sigma * 100, 4) == 3.5071
    assert round(parametric_var(1e6, sigma, 0.99, 1), 2) == 81_588.17
    assert round(parametric_var(1e6, sigma, 0.99, 2), 2) == 115_383.10
    assert round(parametric_var(1e6, sigma, 0.99, 1)) == 81_588
    assert round(parametric_var(1e6, sigma, 0.99, 2)) == 115_383


def test_ewma_move_reproduces_the_protocols_example() -> None:
    # ±3 % returns keep the seeded variance at exactly 0.03² (seed 0.03², each update 0.94·v + 0.06·0.03²);
    # then a −8 % day: the forecast for the next day is the example's σ_t = 3.5071 %.
    r = [0.03 * (-1) ** n for n in range(30)] + [-0.08]
    when, closes = daily_closes(*daily(from_log_returns(r)), T0 + 31 * DAY_US)
    one = ewma_move("WETH", when, closes, 0.94, 1, 0.99)
    two = ewma_move("WETH", when, closes, 0.94, 2, 0.99)
    assert one.returns == 31 and one.last_close_us == T0 + 31 * DAY_US
    assert one.sigma == pytest.approx(ewma_next(0.03, -0.08), rel=1e-12)
    assert round(one.sigma * 100, 4) == 3.5071
    assert round(one.delta * 1e6, 2) == 81_588.17   # Δ of $1M is its parametric 99 % 1-day VaR
    assert round(two.delta * 1e6, 2) == 115_383.10
    settings_ = DeriveSettings(method="ewma", horizon_days=2)
    assert adverse_move("WETH", (when, closes), settings_, T0 + 31 * DAY_US).delta == two.delta


# -- historical simulation -----------------------------------------------------------------------------
LOSSES = [((37 * k) % 100 + 1) / 1000 for k in range(100)]  # 0.001 … 0.100, each once, shuffled


def test_hs_delta_is_the_ceil_alpha_n_th_smallest_loss() -> None:
    assert sorted(LOSSES) == [k / 1000 for k in range(1, 101)]
    ts, px = daily(from_losses(LOSSES))
    at = int(ts[-1])
    when, closes = daily_closes(ts, px, at)
    m = hs_move("WETH", when, closes, at, 100 * 86400, 1, 0.99)
    assert m.returns == 100 and m.last_close_us == at
    assert m.delta == pytest.approx(0.099, abs=1e-12)            # ⌈0.99·100⌉ = 99th smallest
    assert hs_move("WETH", when, closes, at, 100 * 86400, 1, 0.95).delta == pytest.approx(0.095, abs=1e-12)
    # the lookback keeps close dates τ with at − lookback < τ ≤ at: 50 days → the last 50 losses
    half = hs_move("WETH", when, closes, at, 50 * 86400, 1, 0.99)
    last50 = sorted(LOSSES[50:])
    assert half.returns == 50 and half.delta == pytest.approx(last50[math.ceil(0.99 * 50) - 1], abs=1e-12)


def test_hs_overlapping_two_day_returns() -> None:
    ts, px = daily(from_losses(LOSSES))
    at = int(ts[-1])
    when, closes = daily_closes(ts, px, at)
    m = hs_move("WETH", when, closes, at, 100 * 86400, 2, 0.99)
    two_day = sorted(1 - px[i] / px[i - 2] for i in range(2, 101))  # τ = day 2 … day 100: 99 returns
    assert m.returns == 99
    assert m.delta == pytest.approx(two_day[math.ceil(0.99 * 99) - 1], abs=1e-12)


def test_too_few_returns_names_the_asset_and_the_count() -> None:
    ts, px = daily(from_losses(LOSSES[:15]))
    when, closes = daily_closes(ts, px, int(ts[-1]))
    with pytest.raises(MbtError, match=r"^asset 'WBTC': 15 overlapping 1d returns .*at least 20"):
        hs_move("WBTC", when, closes, int(ts[-1]), 180 * 86400, 1, 0.99, "asset 'WBTC'")
    with pytest.raises(MbtError, match=r"asset 'WBTC': 15 daily returns"):
        ewma_move("WBTC", when, closes, 0.94, 1, 0.99, "asset 'WBTC'")


def test_daily_close_is_the_last_price_at_or_before_midnight_and_nothing_after_at() -> None:
    ts = np.array([T0 - 60_000_000, T0, T0 + 1, T0 + DAY_US - 1, T0 + DAY_US, T0 + 2 * DAY_US + 5], dtype=np.int64)
    px = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    when, closes = daily_closes(ts, px, T0 + 2 * DAY_US + 10)
    assert when.tolist() == [T0, T0 + DAY_US, T0 + 2 * DAY_US] and closes.tolist() == [2.0, 5.0, 5.0]
    when, closes = daily_closes(ts, px, T0 + DAY_US - 1)   # at before a midnight: that midnight is not a close
    assert when.tolist() == [T0] and closes.tolist() == [2.0]


def test_a_future_price_cannot_change_the_derived_rules() -> None:
    ts, px = daily(from_losses(LOSSES))
    at = int(ts[60])
    s = DeriveSettings(lookback_s=50 * 86400)
    base = derive_rules({"WETH": (ts[:61], px[:61])}, {}, s, at)
    crash = px.copy()
    crash[61:] *= 0.01  # a 99 % crash after --at
    later = derive_rules({"WETH": (ts, crash)}, {}, s, at)
    assert later == base


# -- EWMA on a seeded GBM ------------------------------------------------------------------------------
def test_ewma_sigma_recovers_a_gbm_volatility() -> None:
    rng = np.random.default_rng(20210519)
    sigma = 0.04
    r = rng.normal(-0.5 * sigma**2, sigma, 1500)
    when, closes = daily_closes(*daily(from_log_returns(r, 2000.0)), T0 + 1500 * DAY_US)
    # λ = 0.94: the variance forecast's relative standard error is √(2(1 − λ)/(1 + λ)) ≈ 25 % (σ ≈ 12 %)
    m = ewma_move("WETH", when, closes, 0.94, 1, 0.99)
    assert m.sigma == pytest.approx(sigma, rel=0.30)
    # λ = 0.999 averages ~1000 days: ≈ 2 % on σ
    slow = ewma_move("WETH", when, closes, 0.999, 1, 0.99)
    assert slow.sigma == pytest.approx(sigma, rel=0.08)
    assert slow.delta == pytest.approx(z_score(0.99) * slow.sigma)
    # and historical simulation over 1000 days sees the same distribution: Δ ≈ 1 − e^{−z·σ}
    hs = hs_move("WETH", when, closes, int(when[-1]), 1000 * 86400, 1, 0.99)
    assert hs.delta == pytest.approx(1 - math.exp(-z_score(0.99) * sigma), rel=0.12)


# -- groups: Δ of the price ratio ----------------------------------------------------------------------
def test_group_delta_is_the_largest_ordered_pair_ratio_move() -> None:
    rng = np.random.default_rng(7)
    n = 100
    a = from_log_returns(rng.normal(0, 0.05, n), 2000.0)           # WETH: volatile
    q_r = np.zeros(n)
    q_r[[10, 30, 50, 70]] = [-0.05, -0.04, 0.06, 0.08]               # the ratio WETH/WSTETH: four moves
    q = from_log_returns(q_r, 1.0)
    b = a / q                                                        # WSTETH = WETH / ratio
    series = {"WETH": daily(a), "WSTETH": daily(b)}
    at = int(series["WETH"][0][-1])
    s = DeriveSettings(lookback_s=100 * 86400)
    rules = derive_rules(series, {}, s, at, groups={"ETH": ("WETH", "WSTETH")})
    members, g = rules.groups["ETH"]
    # WETH/WSTETH losses 1 − e^r: 99th smallest of 100 = second largest = 1 − e^{−0.04};
    # WSTETH/WETH (returns −r): 1 − e^{−0.06} — the larger, so the group's Δ
    forward = adverse_move("WETH/WSTETH", ratio_closes(daily_closes(*series["WETH"], at),
                                                       daily_closes(*series["WSTETH"], at)), s, at)
    assert forward.delta == pytest.approx(1 - math.exp(-0.04), abs=1e-12)
    assert members == ("WETH", "WSTETH") and rules.kind == "cross"
    assert g.move.label == "WSTETH/WETH" and g.move.delta == pytest.approx(1 - math.exp(-0.06), abs=1e-12)
    assert g.liquidation_threshold == math.floor((math.exp(-0.06) / 1.0005) * 1e4) / 1e4
    assert rules.assets["WETH"].move.delta > 0.08 > g.move.delta   # the group is much safer than the asset


def test_ratio_closes_align_on_the_common_midnights() -> None:
    a = daily([1.0, 2.0, 4.0, 8.0])
    b = daily([2.0, 2.0, 2.0], start=T0 + DAY_US)
    at = T0 + 3 * DAY_US
    when, ratio = ratio_closes(daily_closes(*a, at), daily_closes(*b, at))
    assert when.tolist() == [T0 + DAY_US, T0 + 2 * DAY_US, T0 + 3 * DAY_US] and ratio.tolist() == [1.0, 2.0, 4.0]


# -- slippage and LB_min -------------------------------------------------------------------------------
def _fixed_point(x: float, gas: float, d: float, rounds: int = 200) -> float:
    lb = 1.0
    for _ in range(rounds):
        q = d * lb
        lb = (1 + gas / d) / (1 - q / (x + q))
    return lb


def test_slippage_from_a_liquidity_row_by_hand() -> None:
    # a pool of $1M reserve value shows depth $1M·(1/√0.98 − 1) = $10,152.54 at −2 %
    depth = 1_000_000 * (1 / math.sqrt(0.98) - 1)
    assert round(depth, 2) == 10_152.54
    s = DeriveSettings()
    sl = asset_slip("WETH", (depth, 1), s)
    a = 1 + 5 / 10_000
    by_hand = a * 1e6 / (1e6 - a * 10_000)                          # LB = a·X/(X − a·D)
    assert sl.lb_min == pytest.approx(by_hand, rel=1e-12) == pytest.approx(_fixed_point(1e6, 5, 10_000), rel=1e-12)
    assert round(sl.lb_min, 6) == 1.010611
    assert sl.reserve_usd == pytest.approx(1e6) and sl.seized_usd == pytest.approx(10_000 * by_hand)
    assert sl.slip == pytest.approx(sl.seized_usd / (1e6 + sl.seized_usd))
    assert lb_min(5, 10_000, sl.slip) == pytest.approx(sl.lb_min, rel=1e-12)   # it is the fixed point
    assert (sl.source, sl.venues) == ("liquidity", 1)
    # no rows: slip 0; --slippage: for every asset
    assert asset_slip("WETH", None, s) == Slip(0.0, 1.0005, "none")
    over = asset_slip("WETH", (depth, 1), DeriveSettings(slippage=0.02))
    assert over.source == "override" and over.lb_min == pytest.approx(1.0005 / 0.98)


def test_a_pool_too_shallow_for_any_bonus_is_an_error() -> None:
    with pytest.raises(ValueError):
        pool_lb_min(10_005.0, 5.0, 10_000.0)
    with pytest.raises(MbtError, match=r"^asset 'WETH': stored liquidity .* too shallow"):
        asset_slip("WETH", (10_000 * DEPTH_FACTOR, 2), DeriveSettings())


def test_a_group_takes_its_largest_member_slip() -> None:
    rng = np.random.default_rng(3)
    a = from_log_returns(rng.normal(0, 0.03, 60), 2000.0)
    series = {"WETH": daily(a), "WSTETH": daily(a * 1.05)}
    at = int(series["WETH"][0][-1])
    depth = {"WSTETH": (1e6 * DEPTH_FACTOR, 1), "WETH": (1e8 * DEPTH_FACTOR, 3)}
    rules = derive_rules(series, depth, DeriveSettings(lookback_s=60 * 86400), at, groups={"ETH": ("WETH", "WSTETH")})
    _, g = rules.groups["ETH"]
    assert g.slip_asset == "WSTETH" and g.slip == rules.assets["WSTETH"].slip
    assert g.liquidation_bonus == math.ceil((_fixed_point(1e6, 5, 10_000) - 1) * 1e4) / 1e4
    assert g.move.delta == pytest.approx(0.0, abs=1e-12)            # a constant ratio never moves
    assert g.liquidation_threshold == math.floor(1e4 / g.slip.lb_min) / 1e4


# -- parameters ----------------------------------------------------------------------------------------
def test_parameters_worked_example() -> None:
    # Δ 0.099 (the hs example above), no slippage: LB_min 1.0005, LT = 0.901/1.0005 = 0.900549…
    d = parameters(Move("WETH", 0.099, "hs", 100, T0), Slip(0.0, 1.0005, "none"), 0.05, "WETH")
    assert (d.ltv, d.liquidation_threshold, d.liquidation_bonus) == (0.8505, 0.9005, 0.0005)
    assert d.lt_raw == pytest.approx(0.901 / 1.0005)
    capped = parameters(Move("USDC", 0.0, "hs", 100, T0), Slip(0.0, 1.0005, "none"), 0.05, "USDC")
    assert (capped.ltv, capped.liquidation_threshold) == (0.94, 0.99)
    floored = parameters(Move("X", 0.98, "hs", 100, T0), Slip(0.0, 1.0005, "none"), 0.05, "X")
    assert (floored.ltv, floored.liquidation_threshold) == (0.0, 0.0199)


@settings(max_examples=300, deadline=None)
@given(delta=st.floats(-0.5, 1.5), slip=st.floats(0, 0.9), gas=st.floats(0, 100), debt=st.floats(1, 1e7),
       gap=st.floats(0, 0.99))
def test_written_values_always_form_a_valid_asset_table(delta, slip, gas, debt, gap) -> None:
    lb = lb_min(gas, debt, slip)
    d = parameters(Move("X", delta, "hs", 100, T0), Slip(slip, lb, "override"), gap, "X")
    _asset_params({"ltv": d.ltv, "liquidation_threshold": d.liquidation_threshold,
                   "liquidation_bonus": d.liquidation_bonus}, "x")
    assert 0 <= d.ltv <= d.liquidation_threshold <= 0.99
    assert d.liquidation_bonus >= lb - 1 - 1e-12                    # rounded up: never below LB_min − 1
    for v in (d.ltv, d.liquidation_threshold, d.liquidation_bonus):
        assert round(v, 4) == v


# -- TOML ----------------------------------------------------------------------------------------------
def _two_assets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"WETH": daily(from_losses(LOSSES)), "USDC": daily(np.ones(101))}


def test_toml_parses_as_a_config_with_every_value_commented() -> None:
    series = _two_assets()
    at = int(series["WETH"][0][-1])
    rules = derive_rules(series, {"WETH": (1e6 * DEPTH_FACTOR, 2)}, DeriveSettings(lookback_s=100 * 86400), at,
                         sources={"WETH": "csv", "USDC": "csv"})
    text = rules_toml(rules, "mbt derive --db t.duckdb")
    assert text.startswith("# mbt derive --db t.duckdb\n")
    doc = tomllib.loads(text)
    [rule] = doc["rules"]
    assert rule["name"] == "derived" and rule["kind"] == "asset"
    weth = rule["assets"]["WETH"]
    lb = _fixed_point(1e6, 5, 10_000)
    assert weth["liquidation_bonus"] == math.ceil((lb - 1) * 1e4) / 1e4
    assert weth["liquidation_threshold"] == math.floor(0.901 / lb * 1e4) / 1e4
    assert weth["ltv"] == round(weth["liquidation_threshold"] - 0.05, 4)
    for line in text.splitlines():
        if " = " in line and not line.startswith("#"):
            assert "  # " in line, line
    assert "Δ = WETH hs 99 % 1d over 100 returns to 2021-04-11T00:00:00Z" in text
    assert "slip 0: no liquidity rows for USDC" in text
    cfg = parse_config(tomllib.loads(RUN + text))
    assert [r.name for r in cfg.rules] == ["derived"]


def test_cross_toml_with_quoted_names_parses() -> None:
    series = {"USDC.e": daily(np.ones(60)), "DAI": daily(np.ones(60) * 1.001)}
    at = int(series["DAI"][0][-1])
    rules = derive_rules(series, {}, DeriveSettings(method="ewma", lam=0.97), at,
                         groups={"stable coins": ("USDC.e", "DAI")}, name="risk \"v1\"")
    text = rules_toml(rules)
    doc = tomllib.loads(text)
    rule = doc["rules"][0]
    assert rule["kind"] == "cross" and rule["name"] == 'risk "v1"'
    assert rule["groups"]["stable coins"]["assets"] == ["USDC.e", "DAI"]
    cfg = parse_config(tomllib.loads(RUN + text))
    assert list(cfg.rules[0].groups) == ["stable coins"]


# -- options -------------------------------------------------------------------------------------------
def test_parse_settings_defaults_and_values() -> None:
    assert parse_settings() == DeriveSettings()
    s = parse_settings(method="ewma", alpha="0.975", horizon="2d", lookback="365d", lam="0.97", gas_usd="0",
                       debt_repaid_usd="50000", slippage="0.01", ltv_gap="0")
    assert s == DeriveSettings("ewma", 0.975, 2, 365 * 86400, 0.97, 0.0, 50_000.0, 0.01, 0.0)


@pytest.mark.parametrize("kw, text", [
    ({"method": "garch"}, "--method 'garch': expected hs"),
    ({"alpha": "1"}, "--alpha 1: must satisfy 0.5 ≤ alpha < 1"),
    ({"alpha": "high"}, "--alpha 'high': expected a number"),
    ({"alpha": "nan"}, "--alpha 'nan': must be finite"),
    ({"horizon": "36h"}, "--horizon '36h': whole days only"),
    ({"horizon": "0d"}, "--horizon: invalid duration '0d'"),
    ({"lookback": "half a year"}, "--lookback: invalid duration"),
    ({"lam": "1"}, "--lambda 1: must satisfy 0 < lambda < 1"),
    ({"gas_usd": "-1"}, "--gas-usd -1: must be ≥ 0"),
    ({"debt_repaid_usd": "0"}, "--debt-repaid-usd 0: must be > 0"),
    ({"slippage": "1"}, "--slippage 1: must satisfy 0 ≤ slippage < 1"),
    ({"ltv_gap": "-0.1"}, "--ltv-gap -0.1: must satisfy 0 ≤ ltv-gap < 1"),
])
def test_parse_settings_refuses_bad_values(kw, text) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_settings(**kw)
    assert text in str(exc.value)


def test_parse_groups() -> None:
    assert parse_group("ETH=WETH, WSTETH,WETH") == ("ETH", ("WETH", "WSTETH"))
    for bad in ("ETH", "=WETH,WBTC", "ETH=WETH,", "ETH=WETH"):
        with pytest.raises(ConfigError, match="--group"):
            parse_group(bad)
    with pytest.raises(ConfigError, match="given twice"):
        parse_groups(["E=A,B", "E=B,C"])


def test_a_line_break_in_a_name_cannot_break_the_toml() -> None:
    series = {"WETH\nX": daily(from_losses(LOSSES))}
    at = int(series["WETH\nX"][0][-1])
    rules = derive_rules(series, {}, DeriveSettings(), at, name="a\nb")
    doc = tomllib.loads(rules_toml(rules, "mbt derive --name 'a\nb'"))
    assert doc["rules"][0]["name"] == "a\nb" and list(doc["rules"][0]["assets"]) == ["WETH\nX"]
