"""Interest between steps (issue 3): rate curves from config and real Aave v3 indices from the database."""

from __future__ import annotations

import gzip
import json
import math

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

from backtest.cli import commands  # noqa: F401
from backtest.cli.main import cli
from backtest.rules import YEAR_SECONDS
from tests.realdata import require

ASSETS = """[rules.assets.WETH]
ltv = 0.80
liquidation_threshold = 0.825
liquidation_bonus = 0.05
[rules.assets.USDC]
ltv = 0.80
liquidation_threshold = 0.85
liquidation_bonus = 0.05
"""


def _mbt(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_near_threshold_borrower_is_liquidated_by_interest_alone(tmp_path):
    # flat prices for 8 days; HF 1.004 at the start; USDC borrow rate 0.75/(1−0.9)·… at 100 % utilisation:
    # base 0 + slope1 0.04 + slope2 0.75 = 79 % a year → debt × e^(0.79·7/365) ≈ 1.0153 within a week
    hours = pd.date_range("2024-01-01", periods=8 * 24 + 1, freq="h", tz="UTC")
    prices = pd.concat([pd.DataFrame({"timestamp": hours.strftime("%Y-%m-%dT%H:%M:%SZ"), "asset": a, "price_usd": p})
                        for a, p in (("WETH", 2000.0), ("USDC", 1.0))])
    prices.to_csv(tmp_path / "prices.csv", index=False)
    debt = 10 * 2000 * 0.825 / 1.004
    (tmp_path / "positions.csv").write_text(f"account,asset,collateral,debt\nalice,WETH,10,0\nalice,USDC,0,{debt}\n")
    cfg = ('[run]\nstart = "2024-01-01T00:00:00Z"\nend = "2024-01-08T00:00:00Z"\n'
           '[[rules]]\nname = "no-interest"\n' + ASSETS +
           '[[rules]]\nname = "v3"\nbase = "no-interest"\n[rules.market]\nliquidation = "aave-v3"\n'
           '[rules.market.interest.USDC]\nbase = 0.0\nslope1 = 0.04\nslope2 = 0.75\noptimal_utilisation = 0.9\n'
           'reserve_factor = 0.1\nutilisation = 1.0\n')
    (tmp_path / "run.toml").write_text(cfg)
    db = str(tmp_path / "t.duckdb")
    assert _mbt("ingest", "csv", "--prices", str(tmp_path / "prices.csv"), "--positions",
                str(tmp_path / "positions.csv"), "--db", db).exit_code == 0
    r = _mbt("run", str(tmp_path / "run.toml"), "--db", db, "--json")
    assert r.exit_code == 0, r.stderr
    res = {x["rule"]: x for x in json.loads(r.stdout)["results"]}
    assert res["no-interest"]["liquidations"] == 0
    assert res["v3"]["liquidations"] >= 1
    run_id = json.loads(r.stdout)["run_id"]
    with duckdb.connect(db, read_only=True) as con:
        first = con.execute("SELECT epoch(min(ts)) FROM liquidations WHERE run_id = ? AND rule = 'v3'",
                            [run_id]).fetchone()[0]
        debt_series = con.execute("SELECT epoch(ts), debt_usd FROM timeseries WHERE run_id = ? AND rule = 'v3' "
                                  "ORDER BY ts", [run_id]).fetchall()
    # HF crosses 1 when e^(r·t) = 1.004: t = ln(1.004)/0.79 years ≈ 1.85 days; liquidation at the next hour
    t_cross = math.log(1.004) / 0.79 * YEAR_SECONDS
    start = debt_series[0][0]
    assert t_cross <= first - start <= t_cross + 3600
    # before the liquidation the debt grew exactly by the compounded rate
    t1, d1 = debt_series[24]
    assert d1 == pytest.approx(debt * math.exp(0.79 * (t1 - start) / YEAR_SECONDS), rel=1e-12)


@pytest.mark.realdata
def test_real_aave_v3_indices_drive_debt_growth(tmp_path):
    folder = require("aug2023_flashcrash_demeter/aave_v3_polygon_reserve_minute")
    frames = []
    for token, sym in (("0x2791bca1f2de4661ed88a30c99a7a9449aa84174", "USDC.e"),
                       ("0x7ceb23fd6bc0add59e62ac25578270cff1b9f619", "WETH")):
        for day in ("14", "15", "16", "17"):
            with gzip.open(folder / f"polygon-aave_v3-{token}-2023-08-{day}.minute.csv.gz", "rt") as fh:
                df = pd.read_csv(fh, dtype=str)
            frames.append(pd.DataFrame({"timestamp": df.block_timestamp.str.replace(" ", "T") + "Z", "asset": sym,
                                        "liquidity_index": df.liquidity_index,
                                        "variable_borrow_index": df.variable_borrow_index}))
    idx = pd.concat(frames)
    idx.to_csv(tmp_path / "indices.csv", index=False)
    hours = pd.date_range("2023-08-14", "2023-08-17T23:00", freq="h", tz="UTC")
    prices = pd.concat([pd.DataFrame({"timestamp": hours.strftime("%Y-%m-%dT%H:%M:%SZ"), "asset": a,
                                      "price_usd": p}) for a, p in (("WETH", 1800.0), ("USDC.e", 1.0))])
    prices.to_csv(tmp_path / "prices.csv", index=False)
    (tmp_path / "positions.csv").write_text("account,asset,collateral,debt\nbob,WETH,10,0\nbob,USDC.e,0,10000\n")
    db = str(tmp_path / "t.duckdb")
    r = _mbt("ingest", "csv", "--prices", str(tmp_path / "prices.csv"), "--positions", str(tmp_path / "positions.csv"),
             "--indices", str(tmp_path / "indices.csv"), "--db", db)
    assert r.exit_code == 0, r.stderr
    cfg = ('[run]\nstart = "2023-08-14T00:00:00Z"\nend = "2023-08-17T23:00:00Z"\n[[rules]]\nname = "v3"\n'
           '[market]\nliquidation = "aave-v3"\n' + ASSETS.replace('"USDC"', '"USDC.e"').replace(".USDC]", '."USDC.e"]'))
    (tmp_path / "run.toml").write_text(cfg)
    r = _mbt("run", str(tmp_path / "run.toml"), "--db", db, "--json")
    assert r.exit_code == 0, r.stderr
    run_id = json.loads(r.stdout)["run_id"]
    with duckdb.connect(db, read_only=True) as con:
        rows = con.execute("SELECT collateral_usd, debt_usd FROM timeseries WHERE run_id = ? ORDER BY ts",
                           [run_id]).fetchall()
    usdc = idx[idx.asset == "USDC.e"]
    weth = idx[idx.asset == "WETH"]
    b0 = float(usdc.variable_borrow_index.iloc[0])
    b_last = float(usdc[usdc.timestamp <= "2023-08-17T23:00:00Z"].variable_borrow_index.iloc[-1])
    l0 = float(weth.liquidity_index.iloc[0])
    l_last = float(weth[weth.timestamp <= "2023-08-17T23:00:00Z"].liquidity_index.iloc[-1])
    assert rows[0][1] == pytest.approx(10_000.0)
    assert rows[-1][1] == pytest.approx(10_000.0 * b_last / b0, rel=1e-12)
    assert rows[-1][0] == pytest.approx(10 * 1800.0 * l_last / l0, rel=1e-12)
    assert rows[-1][1] > rows[0][1]  # the real index did move over four days
