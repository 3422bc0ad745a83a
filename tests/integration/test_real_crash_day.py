"""Replay the real 2021-05-19 crash through the CLI on a generated book and check DESIGN §4's invariants.

Prices: ETH/USD 10-minute bars (CoinAPI, ``crash_days_stablesims``; ETH 3,376 → 1,862 intraday) as WETH, and
CoinGecko hourly prices for WBTC, LINK, USDC, DAI and USDT (timestamps in unix milliseconds upstream, written
here as decimal unix seconds). The CSVs are written into the test's temporary folder; nothing is copied into
the project.
"""

from __future__ import annotations

import gzip
import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from backtest.cli import commands  # noqa: F401
from backtest.cli.main import cli
from tests.realdata import require

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

HOURLY = ("WBTC", "LINK", "USDC", "DAI", "USDT")
PARAMS = {  # Aave v2 mainnet values of the time (ltv, LT, bonus)
    "WETH": (0.80, 0.825, 0.05), "WBTC": (0.70, 0.75, 0.10), "LINK": (0.70, 0.75, 0.10),
    "USDC": (0.80, 0.85, 0.05), "DAI": (0.75, 0.80, 0.05), "USDT": (0.0, 0.0, 0.05),
}


def _prices() -> pd.DataFrame:
    bars = json.loads(require("crash_days_stablesims/eth_usd_10min/05-19-2021.json").read_text())
    frames = [pd.DataFrame({"timestamp": [b["time_period_start"] for b in bars], "asset": "WETH",
                            "price_usd": [b["price_close"] for b in bars], "source": "coinapi"})]
    lo, hi = 1621296000_000, 1621468800_000  # 2021-05-18 00:00 → 2021-05-20 00:00 UTC, ms
    for sym in HOURLY:
        with gzip.open(require(f"coingecko_hourly_2021_2023_bhemen/{sym}_usd.csv.gz"), "rt") as fh:
            df = pd.read_csv(fh)
        df = df[(df.timestamp >= lo) & (df.timestamp < hi)]
        frames.append(pd.DataFrame({"timestamp": [f"{t / 1000:.3f}" for t in df.timestamp], "asset": sym,
                                    "price_usd": df.USD_price.to_numpy(), "source": "coingecko"}))
    return pd.concat(frames, ignore_index=True)


def _book(prices: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    first = {a: float(g.price_usd.iloc[0]) for a, g in prices.groupby("asset")}
    rows = []
    collateral_assets = ["WETH", "WBTC", "LINK", "USDC", "DAI"]
    for i in range(n):
        acct = f"0x{rng.integers(0, 2**63):016x}{i:024x}"
        picks = rng.choice(collateral_assets, size=rng.integers(1, 3), replace=False,
                           p=[0.45, 0.2, 0.1, 0.15, 0.1])
        usd = rng.lognormal(9, 1.5)
        weights = rng.dirichlet(np.ones(len(picks)))
        weighted = 0.0
        for a, w in zip(picks, weights):
            rows.append((acct, a, usd * w / first[a], 0.0))
            weighted += usd * w * PARAMS[a][1]
        if rng.random() < 0.15:
            continue  # supplier only
        hf = rng.uniform(1.02, 2.5)
        debt_assets = [d for d in ("USDC", "DAI", "USDT", "WETH") if d not in picks]
        d = rng.choice(debt_assets)
        rows.append((acct, d, 0.0, weighted / hf / first[d]))
    return pd.DataFrame(rows, columns=["account", "asset", "collateral", "debt"])


def test_crash_day_replay_invariants(tmp_path):
    prices = _prices()
    prices.to_csv(tmp_path / "prices.csv", index=False)
    book = _book(prices, 1500, seed=19)
    book.to_csv(tmp_path / "positions.csv", index=False)
    db = str(tmp_path / "crash.duckdb")
    runner = CliRunner()
    r = runner.invoke(cli, ["ingest", "csv", "--prices", str(tmp_path / "prices.csv"),
                            "--positions", str(tmp_path / "positions.csv"), "--db", db])
    assert r.exit_code == 0, r.stderr
    rules = []
    for name, scale in (("aave-v2", 1.0), ("tighter", 0.9), ("looser", 1.08)):
        rules.append(f'[[rules]]\nname = "{name}"')
        for a, (ltv, lt, lb) in PARAMS.items():
            lt2 = min(lt * scale, 0.95)
            rules.append(f"[rules.assets.{a}]\nltv = {min(ltv * scale, lt2)}\nliquidation_threshold = {lt2}\n"
                         f"liquidation_bonus = {lb}")
    (tmp_path / "crash.toml").write_text(
        '[run]\nname = "2021-05-19"\nstart = "2021-05-19T00:00:00Z"\nend = "2021-05-19T23:50:00Z"\n'
        '[market]\ngas_usd = 20.0\n' + "\n".join(rules) + "\n")
    r = runner.invoke(cli, ["run", str(tmp_path / "crash.toml"), "--db", db, "--json"])
    assert r.exit_code == 0, r.stderr
    results = {x["rule"]: x for x in json.loads(r.stdout)["results"]}
    # the crash liquidates in every rule set; tighter thresholds liquidate more, looser ones leave more bad debt
    assert all(x["liquidations"] > 0 for x in results.values())
    assert results["tighter"]["liquidations"] > results["aave-v2"]["liquidations"]
    assert results["looser"]["bad_debt_usd"] >= results["aave-v2"]["bad_debt_usd"] >= 0
    assert results["tighter"]["capital_efficiency"] < 1.0 < results["looser"]["capital_efficiency"]
    for x in results.values():
        assert x["bad_debt_usd"] == pytest.approx(x["realised_bad_debt_usd"] + x["unrealised_bad_debt_usd"])
        assert x["realised_bad_debt_usd"] >= 0 and x["unrealised_bad_debt_usd"] >= 0
        assert x["liquidation_penalty_usd"] <= 0.1 * x["liquidated_debt_usd"] + 1e-6

    run_id = json.loads(r.stdout)["run_id"]
    with duckdb.connect(db, read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        # seized ≤ held: no events, so per account and asset the seized total cannot exceed the snapshot
        over = con.execute("""
            SELECT count(*) FROM (
              SELECT l.rule, l.account, l.collateral_asset, sum(l.collateral_seized) AS seized,
                     any_value(p.collateral) AS held
              FROM liquidations l JOIN positions p ON p.account = l.account AND p.asset = l.collateral_asset
              WHERE l.run_id = ? GROUP BY ALL) WHERE seized > held * (1 + 1e-12)""", [run_id]).fetchone()[0]
        assert over == 0
        # repaid ≤ owed, per account and debt asset
        over = con.execute("""
            SELECT count(*) FROM (
              SELECT l.rule, l.account, l.debt_asset, sum(l.debt_repaid) AS repaid, any_value(p.debt) AS owed
              FROM liquidations l JOIN positions p ON p.account = l.account AND p.asset = l.debt_asset
              WHERE l.run_id = ? GROUP BY ALL) WHERE repaid > owed * (1 + 1e-12)""", [run_id]).fetchone()[0]
        assert over == 0
        # value conservation per call at that step's prices: seized value = repaid value + penalty
        worst = con.execute("""
            WITH px AS (
              SELECT asset, timestamp, arg_max(price_usd, round_id) AS p FROM prices GROUP BY ALL),
            calls AS (
              SELECT l.*, (SELECT arg_max(p, timestamp) FROM px WHERE px.asset = l.collateral_asset
                           AND px.timestamp <= l.ts) AS pc
              FROM liquidations l WHERE l.run_id = ?)
            SELECT max(abs(collateral_seized * pc - (debt_repaid_usd + penalty_usd))
                       / (debt_repaid_usd + penalty_usd)) FROM calls""", [run_id]).fetchone()[0]
        assert worst < 1e-9
        # timeseries: debt never grows without events; bad debt never negative
        ts = con.execute("SELECT rule, debt_usd, bad_debt_usd, collateral_usd FROM timeseries WHERE run_id = ? "
                         "ORDER BY rule, ts", [run_id]).fetchdf()
        assert (ts.bad_debt_usd >= 0).all() and (ts.collateral_usd > 0).all()
        assert con.execute("SELECT count(DISTINCT ts) FROM timeseries WHERE run_id = ?", [run_id]).fetchone()[0] \
            > 144  # WETH's 10-minute bars plus the hourly assets' own timestamps

    # the reference engine agrees on real data
    r2 = runner.invoke(cli, ["run", str(tmp_path / "crash.toml"), "--db", db, "--json", "--engine", "reference"])
    for fast, ref in zip(json.loads(r.stdout)["results"], json.loads(r2.stdout)["results"]):
        assert set(fast) == set(ref)
        for key, value in fast.items():
            assert value == (ref[key] if value is None or isinstance(value, (str, int)) else pytest.approx(ref[key], rel=1e-9)), key
