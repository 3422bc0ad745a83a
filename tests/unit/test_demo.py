"""Tests of the seeded demo generator (``backtest.demo``) and its bundled run configuration."""

from __future__ import annotations

import pathlib
import re
import tomllib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest import demo
from backtest.config import load_config
from backtest.engine.health import health_factors

ALLOWED_RULE_KEYS = {"name", "base", "assets"}  # of the asset-kind rule sets
ALLOWED_ASSET_KEYS = {"ltv", "liquidation_threshold", "liquidation_bonus"}
CSVS = ("prices", "positions", "events", "liquidity")
FILES = (*CSVS, "config")
KINDS = ("asset", "isolated", "cross", "dynamic", "liquidity-haircut", "portfolio-scenario", "portfolio-var")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    return demo.write_demo_inputs(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def frames(inputs: dict[str, pathlib.Path]) -> dict[str, pd.DataFrame]:
    out = {
        name: pd.read_csv(inputs[name], dtype={"account": str, "market": str, "emode": str}, keep_default_na=False)
        for name in CSVS
    }
    out["window"] = demo.window_prices(out["prices"])  # the run's 10-minute grid, without the daily history
    return out


@pytest.fixture(scope="module")
def config(inputs: dict[str, pathlib.Path]) -> dict:
    return tomllib.loads(inputs["config"].read_text("utf-8"))


def _resolve(rules: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """DESIGN §3 ``base`` deep merge (asset tables merge by key)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for rule in rules:
        merged = {a: dict(v) for a, v in out[rule["base"]].items()} if "base" in rule else {}
        for asset, params in rule.get("assets", {}).items():
            merged.setdefault(asset, {}).update(params)
        out[rule["name"]] = merged
    return out


def _snapshot(frames: dict[str, pd.DataFrame]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(collateral, debt, first prices) in ``demo.ASSETS`` order, as read back from the CSV files."""
    _, c, d = demo.dense_book(frames["positions"])
    return c, d, demo.wide_prices(frames["window"])[0]


def _asset_rules(config: dict) -> list[dict]:
    """The per-asset rule sets under DESIGN §4's model (the Comet one has its own keys; checked apart)."""
    return [r for r in config["rules"] if r.get("kind", "asset") == "asset" and "market" not in r]


# --- determinism -----------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes(inputs: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    again = demo.write_demo_inputs(tmp_path, seed=demo.DEFAULT_SEED)
    assert set(again) == set(FILES)
    for name in FILES:
        assert again[name].read_bytes() == inputs[name].read_bytes(), name


def test_different_seed_changes_every_csv(inputs: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    other = demo.write_demo_inputs(tmp_path, seed=demo.DEFAULT_SEED + 1)
    for name in CSVS:
        assert other[name].read_bytes() != inputs[name].read_bytes(), name
    assert other["config"].read_bytes() == inputs["config"].read_bytes()


def test_market_does_not_depend_on_book_size(inputs: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    small = demo.write_demo_inputs(tmp_path, accounts=500)
    assert small["prices"].read_bytes() == inputs["prices"].read_bytes()
    assert small["liquidity"].read_bytes() == inputs["liquidity"].read_bytes()
    assert pd.read_csv(small["positions"])["account"].nunique() == 500


# --- formats and sizes (DESIGN §2) -------------------------------------------------------------------


def test_headers_are_the_design_columns(inputs: dict[str, pathlib.Path]) -> None:
    heads = {name: inputs[name].read_text("utf-8").split("\n", 1)[0] for name in CSVS}
    assert heads == {
        "prices": "timestamp,asset,price_usd,source",
        "positions": "account,asset,collateral,debt,market,emode",
        "events": "timestamp,account,asset,action,amount,market",
        "liquidity": "timestamp,asset,depth_usd_2pct,venue",
    }
    for name in CSVS:
        raw = inputs[name].read_bytes()
        assert b"\r" not in raw and raw.endswith(b"\n")


def test_prices_cover_every_asset_on_one_grid(frames: dict[str, pd.DataFrame]) -> None:
    assert (frames["prices"]["source"] == "demo").all()
    assert frames["prices"]["timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
    assert pd.to_datetime(frames["prices"]["timestamp"], utc=True).is_monotonic_increasing
    prices = frames["window"]
    assert set(prices["asset"]) == set(demo.ASSETS) and len(demo.ASSETS) >= 5
    ts = pd.to_datetime(prices["timestamp"], utc=True)
    per_asset = prices.assign(ts=ts).groupby("asset")["ts"]
    assert (per_asset.count() == demo.N_POINTS).all()
    assert (per_asset.min() == ts.min()).all()  # every asset is priced at the first grid point
    steps = np.diff(np.sort(ts.unique()))
    assert (steps == np.timedelta64(10, "m")).all()
    assert ts.max() - ts.min() == pd.Timedelta(days=3)
    assert np.isfinite(prices["price_usd"]).all() and (prices["price_usd"] > 0).all()
    assert not prices.duplicated(["asset", "timestamp"]).any()


def test_positions_are_a_large_multi_asset_book(frames: dict[str, pd.DataFrame]) -> None:
    pos = frames["positions"]
    assert pos["account"].nunique() >= 10_000
    assert pos["account"].str.fullmatch(r"0x[0-9a-f]{40}").all()
    assert set(pos["asset"]) <= set(demo.ASSETS)
    amounts = pos[["collateral", "debt"]].to_numpy()
    assert np.isfinite(amounts).all() and (amounts >= 0).all()
    assert ((pos["collateral"] > 0) | (pos["debt"] > 0)).all()  # only non-zero rows
    assert not ((pos["collateral"] > 0) & (pos["debt"] > 0)).any()
    assert not pos.duplicated(["account", "asset"]).any()
    n_coll = pos[pos["collateral"] > 0].groupby("account").size()
    n_debt = pos[pos["debt"] > 0].groupby("account").size()
    assert n_coll.between(1, 3).mean() >= 0.95
    assert n_debt.between(1, 2).all()
    assert 0.2 <= (n_coll[n_debt.index] >= 2).mean() <= 0.6  # a real share of multi-collateral borrowers
    suppliers = pos["account"].nunique() - n_debt.size
    assert 0.12 <= suppliers / pos["account"].nunique() <= 0.30
    # every lending pattern is present
    debt_assets = pos[pos["debt"] > 0].groupby("account")["asset"].agg(set)
    main_coll = (
        pos.assign(usd=pos["collateral"] * pos["asset"].map(demo.reference_prices()))
        .sort_values("usd")
        .groupby("account")["asset"]
        .last()
    )
    borrowers = main_coll[debt_assets.index]
    stable_debt = debt_assets.map(lambda s: s <= set(demo.STABLES))
    for lead in ("WETH", "WBTC", "LINK"):
        assert ((borrowers == lead) & stable_debt).sum() >= 200, lead
    short_eth = borrowers.isin(["USDC", "DAI"]) & debt_assets.map(lambda s: "WETH" in s)
    assert short_eth.sum() >= 200


def test_sizes_are_heavy_tailed(frames: dict[str, pd.DataFrame]) -> None:
    c, _, p0 = _snapshot(frames)
    usd = c @ p0
    assert 2_000 <= np.median(usd) <= 8_000
    assert usd.max() >= 5e6  # a few whales
    top = np.sort(usd)[::-1]
    assert 0.15 <= top[: len(top) // 100].sum() / top.sum() <= 0.9  # top 1 % hold a large share


def test_events_follow_the_snapshot(frames: dict[str, pd.DataFrame], config: dict) -> None:
    ev, pos = frames["events"], frames["positions"]
    assert 200 <= len(ev) <= 1_000
    assert set(ev["action"]) == {"supply", "withdraw", "borrow", "repay"}
    assert set(ev["asset"]) <= set(demo.ASSETS)
    assert (ev["amount"] > 0).all() and np.isfinite(ev["amount"]).all()
    assert ev["timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
    ts = pd.to_datetime(ev["timestamp"], utc=True)
    assert ts.is_monotonic_increasing
    assert (ts > pd.Timestamp(config["run"]["start"])).all() and (ts <= pd.Timestamp(config["run"]["end"])).all()
    # oversized withdraw/repay amounts that the replay caps
    snap = pos.groupby(["account", "asset"])[["collateral", "debt"]].sum()
    ev_keyed = ev.join(snap, on=["account", "asset"])
    over_withdraw = (ev_keyed["action"] == "withdraw") & (ev_keyed["amount"] > ev_keyed["collateral"].fillna(0))
    over_repay = (ev_keyed["action"] == "repay") & (ev_keyed["amount"] > ev_keyed["debt"].fillna(0))
    assert over_withdraw.sum() >= 5 and over_repay.sum() >= 5
    # accounts that appear only in the ledger supply before they borrow
    new = ev[~ev["account"].isin(set(pos["account"]))]
    assert new["account"].nunique() >= 20
    first = new.groupby("account")["action"].first()
    assert (first == "supply").all()
    assert (new["action"] == "borrow").sum() >= 10


def test_history_before_the_window_is_daily_and_leaves_the_grid_alone(frames: dict[str, pd.DataFrame]) -> None:
    prices = frames["prices"]
    ts = pd.to_datetime(prices["timestamp"], utc=True)
    hist = prices[(ts < demo.GRID_START).to_numpy()]
    hts = pd.to_datetime(hist["timestamp"], utc=True)
    assert len(prices) == len(hist) + len(frames["window"])  # nothing else
    per_asset = hist.assign(ts=hts).groupby("asset")["ts"]
    assert set(per_asset.groups) == set(demo.ASSETS)
    assert (per_asset.count() == demo.HISTORY_DAYS).all() and demo.HISTORY_DAYS >= 60
    days = np.sort(hts.unique())
    assert (np.diff(days) == np.timedelta64(1, "D")).all()
    assert days[-1] == demo.GRID_START - pd.Timedelta(days=1) and (hts.dt.hour == 0).all()
    # the grid is every price timestamp in [start, end]: still the window's 433 ten-minute points
    grid = np.sort(ts[(ts >= demo.GRID_START)].unique())
    assert len(grid) == demo.N_POINTS and (np.diff(grid) == np.timedelta64(10, "m")).all()
    # calibrated pre-crash volatility, ending at the window's first prices
    wide = demo.wide_prices(hist)
    first = demo.wide_prices(frames["window"])[0]
    full = np.vstack([wide, first])
    for k, asset in enumerate(demo.ASSETS):
        r = np.diff(np.log(full[:, k]))
        if asset in demo.VOLATILE:
            assert 0.6 * demo.HISTORY_VOL[asset] <= r.std(ddof=1) <= 1.4 * demo.HISTORY_VOL[asset], asset
        else:
            assert np.abs(full[:, k] - 1).max() < 0.02, asset


def test_history_is_enough_for_the_dynamic_rule_set(config: dict) -> None:
    (dyn,) = [r for r in config["rules"] if r.get("kind") == "dynamic"]
    assert dyn["dynamic"]["vol_interval"] == "1d"
    assert demo.HISTORY_DAYS - 1 >= dyn["dynamic"]["min_history"]  # daily returns strictly before start


def test_liquidity_is_hourly_depth_that_thins_in_the_crash(frames: dict[str, pd.DataFrame]) -> None:
    liq = frames["liquidity"]
    assert (liq["venue"] == demo.LIQUIDITY_VENUE).all()
    ts = pd.to_datetime(liq["timestamp"], utc=True)
    assert ts.min() == demo.GRID_START and ts.max() == demo.grid_timestamps()[-1]
    assert (liq.assign(ts=ts).groupby("asset")["ts"].count() == 73).all() and set(liq["asset"]) == set(demo.ASSETS)
    assert np.isfinite(liq["depth_usd_2pct"]).all() and (liq["depth_usd_2pct"] > 0).all()
    depth = liq.pivot(index="timestamp", columns="asset", values="depth_usd_2pct").loc[:, list(demo.ASSETS)]
    d = depth.to_numpy()
    eth, link = d[:, demo.ASSETS.index("WETH")], d[:, demo.ASSETS.index("LINK")]
    # the measured Uniswap v2 ETH/DAI depth, scaled; √price × LP withdrawal: 25-35 % thinner at the trough
    assert eth[0] == pytest.approx(demo.ETH_DAI_POOL_DEPTH_USD * demo.VENUE_MULTIPLIER
                                   * np.sqrt(demo.wide_prices(frames["window"])[0, 0] / demo.CRASH_DAY_OPEN["WETH"]),
                                   rel=1e-9)
    assert 5e6 <= eth[0] <= 5e7
    assert 0.65 <= eth.min() / eth[24] <= 0.8 and int(np.argmin(eth)) > 24  # after the crash day opens
    assert link.max() < eth.min()
    for s in demo.STABLES:
        col = d[:, demo.ASSETS.index(s)]
        assert col[0] == pytest.approx(demo.STABLE_DEPTH_USD[s]) and col[-1] == pytest.approx(
            demo.STABLE_DEPTH_USD[s] * demo.ETH_DAI_POOL_LP_END)


def test_whales_get_a_meaningful_haircut_and_small_accounts_none(frames: dict[str, pd.DataFrame]) -> None:
    """1 − size/depth at the first step (k = 1): the demo's whales lose a lot, the median account nothing."""
    c, d, p0 = _snapshot(frames)
    liq = frames["liquidity"]
    first = liq[liq["timestamp"] == liq["timestamp"].iloc[0]].set_index("asset")["depth_usd_2pct"]
    depth = np.asarray([first[a] for a in demo.ASSETS])
    haircut = (c * p0 / depth).max(axis=1)  # worst asset of each account
    borrowers = d.sum(axis=1) > 0
    assert np.median(haircut[borrowers]) < 0.001
    assert np.sum(haircut[borrowers] >= 0.25) >= 5  # the largest accounts lose a quarter or more
    assert np.mean(haircut[borrowers] >= 0.01) < 0.06


def test_labels_are_few_and_consistent(frames: dict[str, pd.DataFrame]) -> None:
    pos = frames["positions"]
    n = pos["account"].nunique()
    labelled = pos[pos["market"] != ""]
    assert 0 < labelled["account"].nunique() <= 0.06 * n
    for account, rows in labelled.groupby("account"):
        assert len(rows) == 2 and rows["market"].nunique() == 1 and len(pos[pos["account"] == account]) == 2
        coll = rows.loc[rows["collateral"] > 0, "asset"].item()
        debt = rows.loc[rows["debt"] > 0, "asset"].item()
        assert rows["market"].iloc[0] == demo.market_id(coll, debt)
    flagged = pos[pos["emode"] != ""]
    assert set(flagged["emode"]) == {demo.EMODE_GROUP}
    assert 0 < flagged["account"].nunique() <= 0.06 * n
    owes = pos[pos["account"].isin(set(flagged["account"])) & (pos["debt"] > 0)]
    assert set(owes["asset"]) <= set(demo.STABLES)
    assert (pos.groupby("account")["emode"].nunique() == 1).all()  # all rows of an account agree


def test_event_markets_name_a_pair_that_fits_the_event(frames: dict[str, pd.DataFrame]) -> None:
    ev, pos = frames["events"], frames["positions"]
    named = ev[ev["market"] != ""]
    assert len(named) >= 0.7 * len(ev)
    coll = named["market"].str.split("-").str[0]
    debt = named["market"].str.split("-").str[1]
    side = np.where(named["action"].isin(["supply", "withdraw"]), coll, debt)
    assert (side == named["asset"]).all() and (coll != debt).all()
    # unnamed events are withdrawals by suppliers (one position per collateral asset)
    borrowers = set(pos.loc[pos["debt"] > 0, "account"])
    bare = ev[ev["market"] == ""]
    assert (bare["action"] == "withdraw").all() and not bare["account"].isin(borrowers).any()


def test_max_borrows_stay_within_the_baseline_ltv(frames: dict[str, pd.DataFrame]) -> None:
    rng_prices, rng_book, rng_events = np.random.default_rng(demo.DEFAULT_SEED).spawn(3)
    prices = demo.generate_prices(rng_prices)
    first = dict(zip(prices["asset"].iloc[:6], prices["price_usd"].iloc[:6], strict=True))
    book = demo.generate_book(rng_book, 2_000, prices=first)
    state = rng_events.bit_generator.state
    plain = demo.generate_events(rng_events, book, prices, max_borrows=0)
    rng_events.bit_generator.state = state
    full = demo.generate_events(rng_events, book, prices)
    key = ["timestamp", "account", "asset", "action", "amount"]
    extra = full.merge(plain, on=key, how="left", indicator=True).query("_merge == 'left_only'")
    assert len(full) == len(plain) + len(extra) and 20 <= len(extra) <= 30  # others unchanged
    assert (extra["action"] == "borrow").all() and extra["account"].is_unique
    ids, c, d = demo.dense_book(book)
    row = {a: i for i, a in enumerate(ids)}
    w = demo.wide_prices(prices)
    ltv = np.asarray([demo.baseline_ltvs()[a] for a in demo.ASSETS])
    for e in extra.itertuples():
        step = int(np.ceil((pd.Timestamp(e.timestamp) - demo.GRID_START) / demo.STEP))
        p, a = w[step], row[e.account]
        owed, limit = d[a] @ p, (c[a] * ltv) @ p
        after = owed + e.amount * p[demo.ASSETS.index(e.asset)]
        assert owed + 0.9 * (limit - owed) * (1 - 1e-9) <= after <= owed + 0.98 * (limit - owed) * (1 + 1e-9)


# --- the market's shape --------------------------------------------------------------------------------


def _drawdown(x: np.ndarray) -> float:
    trough = int(np.argmin(x))
    return float(1 - x[trough] / x[: trough + 1].max())


def test_crash_depth_of_the_leader_is_in_the_documented_range(frames: dict[str, pd.DataFrame]) -> None:
    w = demo.wide_prices(frames["window"])
    eth = w[:, demo.ASSETS.index("WETH")]
    assert 0.42 <= _drawdown(eth) <= 0.50
    trough = int(np.argmin(eth))
    assert demo.STEPS_PER_DAY <= trough < 2 * demo.STEPS_PER_DAY  # on the crash day
    assert eth[trough] / eth[trough - 1] - 1 == pytest.approx(-0.1614, abs=0.002)  # the cascade candle
    assert 0.3 <= (eth[-1] - eth[trough]) / (eth[: trough + 1].max() - eth[trough]) <= 0.8  # partial rebound
    calm = np.diff(np.log(eth[: demo.STEPS_PER_DAY]))
    crash = np.diff(np.log(eth[demo.STEPS_PER_DAY : 2 * demo.STEPS_PER_DAY + 1]))
    assert 0.004 <= calm.std() <= 0.011 and crash.std() >= 2 * calm.std()


@pytest.mark.parametrize("seed", range(12))
def test_crash_depth_holds_across_seeds(seed: int) -> None:
    w = demo.wide_prices(demo.generate_prices(np.random.default_rng(seed)))
    depth = {a: _drawdown(w[:, demo.ASSETS.index(a)]) for a in demo.VOLATILE}
    assert 0.42 <= depth["WETH"] <= 0.50
    assert 0.28 <= depth["WBTC"] <= 0.38  # BTC fell less than ETH ...
    assert 0.46 <= depth["LINK"] <= 0.56  # ... LINK more
    r = np.diff(np.log(w[:, :3]), axis=0)
    corr = np.corrcoef(r.T)
    assert corr[0, 1] > 0.6 and corr[0, 2] > 0.6


def test_stablecoins_stay_near_peg_except_a_short_dai_depeg(frames: dict[str, pd.DataFrame]) -> None:
    w = demo.wide_prices(frames["window"])
    for s in ("USDC", "USDT"):
        assert np.abs(w[:, demo.ASSETS.index(s)] - 1).max() < 0.02
    dai = w[:, demo.ASSETS.index("DAI")]
    assert 0.915 <= dai.min() <= 0.94
    assert int(np.argmin(dai)) == int(np.argmin(w[:, demo.ASSETS.index("WETH")]))  # at the ETH trough
    assert (dai < 0.98).sum() <= 6  # under an hour
    assert 1.01 <= dai.max() <= 1.04  # then a premium


# --- the book's health ---------------------------------------------------------------------------------


def test_health_factor_distribution_at_the_snapshot(frames: dict[str, pd.DataFrame]) -> None:
    c, d, p0 = _snapshot(frames)
    lt = np.asarray([demo.baseline_thresholds()[a] for a in demo.ASSETS])
    hf = health_factors(c, d, p0, lt)
    hf = hf[np.isfinite(hf)]
    assert hf.size >= 8_000
    assert np.mean(hf < 1.0) <= 0.001
    assert hf.min() >= 1.05 - 1e-6
    assert 0.12 <= np.mean(hf < 1.3) <= 0.18  # documented: 15 % near liquidation
    assert 0.55 <= np.mean((hf >= 1.3) & (hf <= 3.0)) <= 0.75  # most borrowers
    assert 0.15 <= np.mean(hf > 3.0) <= 0.25  # very safe
    assert 1.6 <= np.median(hf) <= 2.4


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300))
def test_book_invariants(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    first = {a: p * rng.uniform(0.5, 2.0) for a, p in demo.reference_prices().items()}
    book = demo.generate_book(rng, n, prices=first)
    ids, c, d = demo.dense_book(book)
    assert ids.size == n and all(re.fullmatch(r"0x[0-9a-f]{40}", i) for i in ids)
    assert np.isfinite(c).all() and np.isfinite(d).all() and (c >= 0).all() and (d >= 0).all()
    assert not ((c > 0) & (d > 0)).any()
    lt = np.asarray([demo.baseline_thresholds()[a] for a in demo.ASSETS])
    hf = health_factors(c, d, np.asarray([first[a] for a in demo.ASSETS]), lt)
    assert (hf >= 1.05 * (1 - 1e-9)).all()


# --- the run configuration (DESIGN §3) -----------------------------------------------------------------


def test_config_matches_the_generated_market(config: dict, frames: dict[str, pd.DataFrame]) -> None:
    ts = pd.to_datetime(frames["window"]["timestamp"], utc=True)
    assert pd.Timestamp(config["run"]["start"]) == ts.min() == demo.GRID_START
    assert pd.Timestamp(config["run"]["end"]) == ts.max() == pd.to_datetime(frames["prices"]["timestamp"]).max()
    assert set(config["run"]) == {"name", "start", "end", "price_source"}
    assert config["run"]["price_source"] == "demo"  # the demo's prices, even beside other sources
    assert config["market"] == {"liquidation": "aave", "close_factor": 0.5, "gas_usd": 5.0, "slippage": "none"}


def test_rule_sets_are_valid_and_cover_every_asset(config: dict, frames: dict[str, pd.DataFrame]) -> None:
    rules = _asset_rules(config)
    assert len(rules) >= 3 and "base" not in rules[0] and rules[0] is config["rules"][0]
    names = [r["name"] for r in rules]
    assert len(set(names)) == len(names)
    for i, rule in enumerate(rules):
        assert set(rule) <= ALLOWED_RULE_KEYS
        if "base" in rule:
            assert rule["base"] in names[:i]
        for params in rule["assets"].values():
            assert set(params) <= ALLOWED_ASSET_KEYS
    held = set(frames["positions"]["asset"]) | set(frames["events"]["asset"])
    for name, assets in _resolve(rules).items():
        assert held <= set(assets), name
        for asset, p in assets.items():
            assert set(p) == ALLOWED_ASSET_KEYS, (name, asset)
            assert 0 <= p["ltv"] <= p["liquidation_threshold"] < 1, (name, asset)
            assert p["liquidation_bonus"] >= 0, (name, asset)


def test_one_rule_set_of_each_kind(config: dict, inputs: dict[str, pathlib.Path]) -> None:
    names = [r["name"] for r in config["rules"]]
    assert names[:4] == ["current", "tighter", "aave-v3-2023", "capital-efficient"]  # the README's order
    assert len(names) <= 12
    kinds = [r.get("kind", "asset") for r in config["rules"]]
    # one of each kind; isolated twice (DESIGN §4's liquidation and Morpho Blue's), asset also under Comet
    assert set(kinds) == set(KINDS) and all(kinds.count(k) == 1 for k in KINDS if k not in ("asset", "isolated"))
    models = {r["name"]: r.get("market", {}).get("liquidation", "aave") for r in config["rules"]}
    assert models["morpho-blue"] == "morpho-blue" and models["comet"] == "comet"
    assert sorted(set(models.values())) == ["aave", "comet", "morpho-blue"]
    assert sum(bool(r.get("enforce_ltv")) for r in config["rules"]) == 1
    cfg = load_config(inputs["config"])
    assert [r.kind for r in cfg.rules] == kinds  # the real parser accepts every kind's keys


def test_non_asset_rule_sets_cover_every_asset_and_pair(config: dict, frames: dict[str, pd.DataFrame]) -> None:
    pos, ev = frames["positions"], frames["events"]
    held = set(pos["asset"]) | set(ev["asset"])
    for rule in config["rules"]:
        kind = rule.get("kind", "asset")
        if kind in ("cross", "dynamic", "liquidity-haircut", "portfolio-scenario", "portfolio-var"):
            assert set(rule["assets"]) == held, rule["name"]
    iso, morpho = [r for r in config["rules"] if r.get("kind") == "isolated"]
    assert [(m["id"], m["collateral"], m["loan"], m["lltv"]) for m in morpho["markets"]] == [
        (mid, m["collateral"], m["debt"], m["liquidation_threshold"]) for mid, m in iso["markets"].items()]
    (comet,) = [r for r in config["rules"] if r.get("market", {}).get("liquidation") == "comet"]
    assert set(comet["assets"]) == held
    for p in comet["assets"].values():
        assert set(p) == {"borrow_collateral_factor", "liquidate_collateral_factor", "liquidation_factor"}
        assert 0 <= p["borrow_collateral_factor"] <= p["liquidate_collateral_factor"] < 1 and 0 < p["liquidation_factor"] <= 1
    markets = iso["markets"]
    for mid, m in markets.items():
        assert mid == demo.market_id(m["collateral"], m["debt"])
        assert 0 < m["liquidation_threshold"] and m["ltv"] <= m["liquidation_threshold"] < 1
    pairs = set()
    for _, rows in pos.groupby("account"):
        for ci in rows.loc[rows["collateral"] > 0, "asset"]:
            for dj in rows.loc[rows["debt"] > 0, "asset"]:
                pairs.add(demo.market_id(ci, dj))
    pairs |= set(ev["market"]) - {""}
    pairs |= set(pos["market"]) - {""}
    assert pairs <= set(markets)


def test_baseline_matches_the_aave_v2_reserve_config(config: dict) -> None:
    # shared/data/aave_v2_liquidations_idea_rpi/aave_v2_reserve_config_subgraph.csv, main pool, bps / 1e4
    expected = {
        "WETH": (0.85, 0.05),
        "WBTC": (0.75, 0.075),
        "LINK": (0.75, 0.10),
        "USDC": (0.85, 0.05),
        "DAI": (0.80, 0.05),
        "USDT": (0.0, 0.0),
    }
    base = config["rules"][0]["assets"]
    assert {a: (p["liquidation_threshold"], p["liquidation_bonus"]) for a, p in base.items()} == expected


def test_rule_sets_differ_in_the_crash(config: dict, frames: dict[str, pd.DataFrame]) -> None:
    """Without liquidations, accounts whose HF goes below 1 at some step, per rule set."""
    c, d, _ = _snapshot(frames)
    w = demo.wide_prices(frames["window"])
    below = {}
    for name, assets in _resolve(_asset_rules(config)).items():
        lt = np.asarray([assets[a]["liquidation_threshold"] for a in demo.ASSETS])
        worst = np.full(c.shape[0], np.inf)
        for p in w:
            worst = np.minimum(worst, health_factors(c, d, p, lt))
        below[name] = int(np.sum(worst < 1))
    assert min(below.values()) >= 500  # liquidations under every rule set
    assert below["tighter"] > below["current"] > below["capital-efficient"]
    assert len(set(below.values())) == len(below)


# --- calibration -----------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_constants_match_the_real_data() -> None:
    measured = demo.measure_calibration()
    if measured is None:
        pytest.skip("../shared/data is absent")
    used = demo.used_calibration()
    assert set(used) <= set(measured)
    for key, value in used.items():
        assert value == pytest.approx(measured[key], rel=1e-3, abs=6e-4), key
    assert measured["eth_drawdown_close"] == pytest.approx(0.432, abs=0.001)
    assert measured["eth_drawdown_low"] == pytest.approx(0.459, abs=0.001)
    # depth: the ETH/DAI pair's DAI reserve × (1/√0.98 − 1); LPs withdrew ~5 % over the crash day
    assert measured["eth_dai_pool_dai_reserve_usd"] * (1 / np.sqrt(0.98) - 1) == pytest.approx(
        demo.ETH_DAI_POOL_DEPTH_USD, rel=1e-3)
    assert 0.9 < measured["eth_dai_pool_lp_end"] < 1.0


def test_calibration_report_without_data(tmp_path: pathlib.Path) -> None:
    assert demo.measure_calibration(tmp_path) is None
    assert "not found" in demo.calibration_report(tmp_path)
