"""All rule kinds side by side through the real CLI: CSV → DuckDB → ``mbt run --json``, both engines.

One TOML holds the baseline, the baseline with ``enforce_ltv``, and one rule set of each other kind; the
fast and the reference engine must agree on every metric, and borrowing power per kind is checked against
hand-computed numbers (constant-product reserves and several venues included). Then the run-time errors of
the kinds: exit 2 and one line naming what is missing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from backtest.cli import commands  # noqa: F401  (registers the verbs)
from backtest.cli.main import cli
from backtest.outputs.metrics import COUNT_METRICS, METRICS

PRICES_HISTORY = "".join(f"2021-05-{d:02d}T00:00:00Z,WETH,2000\n" for d in range(9, 19))  # flat: σ = 0
PRICES = """timestamp,asset,price_usd
""" + PRICES_HISTORY + """2021-05-19T00:00:00Z,WETH,2000
2021-05-19T00:00:00Z,USDC,1
2021-05-19T00:00:00Z,DAI,1
2021-05-19T01:00:00Z,WETH,1400
2021-05-19T02:00:00Z,WETH,1000
"""
POSITIONS = """account,asset,collateral,debt,market,emode
alice,WETH,10,0,,
alice,USDC,0,12000,,
bob,USDC,20000,0,,
bob,DAI,0,15000,,
carol,WETH,5,0,,
carol,DAI,5000,0,,
carol,USDC,0,8000,,
dave,WETH,100,0,,
erin,USDC,1000,0,,stables
erin,WETH,0,0.1,,stables
"""
EVENTS = """timestamp,account,asset,action,amount,market
2021-05-19T00:30:00Z,alice,USDC,borrow,5000,
2021-05-19T01:30:00Z,carol,WETH,withdraw,5,
2021-05-19T01:30:00Z,dave,WETH,withdraw,50,
2021-05-19T01:40:00Z,erin,USDC,supply,500,usdc-weth
"""
DEPTH = """timestamp,asset,depth_usd_2pct,venue
2021-05-18T00:00:00Z,WETH,2000000,uni
2021-05-18T00:00:00Z,WETH,1000000,curve
"""
RESERVES = """timestamp,asset,reserve_asset,reserve_quote
2021-05-18T00:00:00Z,USDC,10000000,10000000
2021-05-18T00:00:00Z,DAI,10000000,10000000
"""
ASSETS = """
[rules.assets.WETH]
ltv = 0.80
liquidation_threshold = 0.825
liquidation_bonus = 0.05
[rules.assets.USDC]
ltv = 0.80
liquidation_threshold = 0.85
liquidation_bonus = 0.05
[rules.assets.DAI]
ltv = 0.75
liquidation_threshold = 0.80
liquidation_bonus = 0.05
"""
MARKETS = """
[rules.markets.weth-usdc]
collateral = "WETH"
debt = "USDC"
ltv = 0.80
liquidation_threshold = 0.86
liquidation_bonus = 0.05
[rules.markets.dai-usdc]
collateral = "DAI"
debt = "USDC"
ltv = 0.77
liquidation_threshold = 0.82
liquidation_bonus = 0.04
[rules.markets.usdc-dai]
collateral = "USDC"
debt = "DAI"
ltv = 0.90
liquidation_threshold = 0.92
liquidation_bonus = 0.02
[rules.markets.usdc-weth]
collateral = "USDC"
debt = "WETH"
ltv = 0.75
liquidation_threshold = 0.80
liquidation_bonus = 0.05
"""
CONFIG = f"""[run]
name = "kinds"
start = "2021-05-19T00:00:00Z"
end = "2021-05-19T02:00:00Z"

[[rules]]
name = "current"
{ASSETS}
[[rules]]
name = "current-im"
base = "current"
enforce_ltv = true

[[rules]]
name = "iso"
kind = "isolated"
{MARKETS}
[[rules]]
name = "stable-emode"
kind = "cross"
{ASSETS}
[rules.groups.stables]
assets = ["USDC", "DAI"]
ltv = 0.93
liquidation_threshold = 0.95
liquidation_bonus = 0.01

[[rules]]
name = "dyn"
kind = "dynamic"
{ASSETS}
[rules.dynamic]
min_history = 3

[[rules]]
name = "haircut"
kind = "liquidity-haircut"
{ASSETS}
"""
KINDS = {"current": "asset", "current-im": "asset", "iso": "isolated", "stable-emode": "cross",
         "dyn": "dynamic", "haircut": "liquidity-haircut"}
DEPTH_FACTOR = 1 / math.sqrt(0.98) - 1


def mbt(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    for name, text in [("prices.csv", PRICES), ("positions.csv", POSITIONS), ("events.csv", EVENTS),
                       ("depth.csv", DEPTH), ("reserves.csv", RESERVES), ("run.toml", CONFIG)]:
        (tmp_path / name).write_text(text)
    return tmp_path


def ingest(work: Path, *, liquidity: bool = True, positions: str = "positions.csv", events: str = "events.csv"):
    db = str(work / "t.duckdb")
    r = mbt("ingest", "csv", "--prices", str(work / "prices.csv"), "--positions", str(work / positions),
            "--events", str(work / events), "--db", db)
    assert r.exit_code == 0, r.stderr
    if liquidity:
        for name in ("depth.csv", "reserves.csv"):
            r = mbt("ingest", "csv", "--liquidity", str(work / name), "--db", db)
            assert r.exit_code == 0, r.stderr
    return db


def run_json(work: Path, db: str, config: str = "run.toml", *extra: str) -> dict:
    r = mbt("run", str(work / config), "--db", db, "--json", *extra)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def test_all_kinds_side_by_side_fast_equals_reference(work):
    db = ingest(work)
    fast = run_json(work, db)
    ref = run_json(work, db, "run.toml", "--engine", "reference")
    assert fast["run_id"] == ref["run_id"]
    assert [(r["rule"], r["kind"], r["scenario"]) for r in fast["results"]] == \
        [(name, kind, "historical") for name, kind in KINDS.items()]
    for f, r in zip(fast["results"], ref["results"]):
        assert set(f) == set(r) == {"rule", "kind", "scenario", *METRICS}
        for key in METRICS:
            if key in COUNT_METRICS or f[key] is None:
                assert f[key] == r[key], (f["rule"], key)
                assert f[key] is None or isinstance(f[key], int), (f["rule"], key)
            else:
                assert math.isclose(f[key], r[key], rel_tol=1e-12, abs_tol=0.0), (f["rule"], key, f[key], r[key])
    with duckdb.connect(db, read_only=True) as con:
        kinds = dict(con.execute("SELECT DISTINCT rule, kind FROM run_metrics WHERE run_id = ?",
                                 [fast["run_id"]]).fetchall())
        owners = {a for (a,) in con.execute("SELECT DISTINCT account FROM liquidations WHERE run_id = ? "
                                            "AND rule = 'iso'", [fast["run_id"]]).fetchall()}
    assert kinds == KINDS
    assert owners <= {"alice", "bob", "carol", "dave", "erin"}  # isolated positions report their run account


def test_borrowing_power_and_refusals_per_kind(work):
    res = {r["rule"]: r for r in run_json(work, ingest(work))["results"]}
    # first grid step: WETH 2000, USDC 1, DAI 1
    # asset: alice 20,000·0.8 + bob 20,000·0.8 + carol 10,000·0.8 + 5,000·0.75 + dave 200,000·0.8 + erin 1,000·0.8
    base = 16_000 + 16_000 + 8_000 + 3_750 + 160_000 + 800
    # cross: all-stable debt (alice USDC, bob DAI, carol USDC) or e-mode (erin owes WETH) → group LTV 0.93 on
    # USDC/DAI collateral: bob 18,600, carol's DAI 4,650, erin 930; WETH keeps its own 0.80
    cross = 16_000 + 18_600 + 8_000 + 4_650 + 160_000 + 930
    # isolated: each collateral in its market: WETH at 0.80 (weth-usdc; dave's too: the best WETH market),
    # carol's DAI in dai-usdc 0.77, bob's USDC in usdc-dai 0.90, erin's USDC in usdc-weth 0.75
    iso = 16_000 + 18_000 + 8_000 + 3_850 + 160_000 + 750
    # dynamic: ten flat daily WETH closes before start → σ = 0 → LT = min(cap 0.95, 1/1.05) = 0.95, LTV 0.925;
    # USDC/DAI have no history → configured values
    dyn = 115 * 2000 * 0.925 + 16_000 + 3_750 + 800
    # haircut (k 1, floor 0.5): WETH depth 2,000,000 + 1,000,000 (two venues), USDC/DAI 10,000,000·(1/√0.98 − 1)
    cp = 10_000_000 * DEPTH_FACTOR

    def hc(value, ltv, depth):
        return value * ltv * max(0.5, 1 - value / depth)

    haircut = (hc(20_000, 0.8, 3e6) + hc(20_000, 0.8, cp) + hc(10_000, 0.8, 3e6) + hc(5_000, 0.75, cp)
               + hc(200_000, 0.8, 3e6) + hc(1_000, 0.8, cp))
    want = {"current": base, "current-im": base, "iso": iso, "stable-emode": cross, "dyn": dyn, "haircut": haircut}
    for rule, bp in want.items():
        assert res[rule]["borrowing_power_usd"] == pytest.approx(bp, rel=1e-12), rule
        assert res[rule]["capital_efficiency"] == pytest.approx(bp / base, rel=1e-12), rule
    assert res["current"]["capital_efficiency"] == 1.0
    # enforce_ltv: alice's borrow of 5,000 (applied at 01:00, WETH 1400: limit 11,200 < 17,000) and carol's
    # withdrawal of 5 WETH (at 02:00, WETH 1000: 5,000·0.75 = 3,750 < 8,000) are refused; dave's fits
    assert res["current-im"]["blocked_borrow_usd"] == pytest.approx(5_000.0, rel=1e-12)
    assert res["current-im"]["blocked_withdraw_usd"] == pytest.approx(5 * 1000.0, rel=1e-12)
    for rule in ("current", "iso", "stable-emode", "dyn", "haircut"):
        assert res[rule]["blocked_borrow_usd"] == res[rule]["blocked_withdraw_usd"] == 0.0, rule


def _error(work: Path, db: str, config: str) -> str:
    (work / "bad.toml").write_text(config)
    r = mbt("run", str(work / "bad.toml"), "--db", db)
    assert r.exit_code == 2, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


HEADER = CONFIG.split("[[rules]]")[0]
ISO_ONLY = HEADER + '[[rules]]\nname = "iso"\nkind = "isolated"\n' + MARKETS
HAIRCUT_ONLY = HEADER + f'[[rules]]\nname = "haircut"\nkind = "liquidity-haircut"\n{ASSETS}'


def test_isolated_pair_without_a_market_is_exit_2_naming_it(work):
    db = ingest(work)
    config = ISO_ONLY.replace('[rules.markets.dai-usdc]\ncollateral = "DAI"', '[rules.markets.dai-weth]\n'
                              'collateral = "DAI"').replace('debt = "USDC"\nltv = 0.77', 'debt = "WETH"\nltv = 0.77')
    line = _error(work, db, config)
    assert "rules.iso.markets: account carol pairs collateral 'DAI' with debt 'USDC', and no market has that pair" \
        in line


def test_positions_with_an_undefined_market_id_are_exit_2(work):
    (work / "pos.csv").write_text(POSITIONS + "frank,WETH,1,0,weth-usdt,\nfrank,USDT,0,100,weth-usdt,\n")
    (work / "prices.csv").write_text(PRICES + "2021-05-19T00:00:00Z,USDT,1\n")
    db = ingest(work, positions="pos.csv")
    line = _error(work, db, ISO_ONLY)
    assert "rules.iso.markets: positions use market 'weth-usdt', which is not defined" in line
    assert "(defined: weth-usdc, dai-usdc, usdc-dai, usdc-weth)" in line


def test_ambiguous_isolated_event_without_market_id_is_exit_2(work):
    # gina has no position; WETH is collateral in two markets once weth-dai exists → needs a market id
    (work / "ev.csv").write_text(EVENTS + "2021-05-19T00:30:00Z,gina,WETH,supply,1,\n")
    db = ingest(work, events="ev.csv")
    config = ISO_ONLY + ('[rules.markets.weth-dai]\ncollateral = "WETH"\ndebt = "DAI"\nltv = 0.8\n'
                         'liquidation_threshold = 0.85\nliquidation_bonus = 0.05\n')
    line = _error(work, db, config)
    assert "an event of account gina on 'WETH' has no market id and fits 2 markets; add a market column" in line
    # with the market id it runs
    (work / "ev.csv").write_text(EVENTS + "2021-05-19T00:30:00Z,gina,WETH,supply,1,weth-dai\n")
    db2 = str(work / "t2.duckdb")
    for flag, name in (("--prices", "prices.csv"), ("--positions", "positions.csv"), ("--events", "ev.csv")):
        assert mbt("ingest", "csv", flag, str(work / name), "--db", db2).exit_code == 0
    (work / "ok.toml").write_text(config)
    assert mbt("run", str(work / "ok.toml"), "--db", db2).exit_code == 0


def test_haircut_without_liquidity_data_is_exit_2_naming_the_asset(work):
    db = ingest(work, liquidity=False)
    haircut_only = HAIRCUT_ONLY
    line = _error(work, db, haircut_only)
    assert "rules.haircut: kind = \"liquidity-haircut\" needs liquidity data for asset 'DAI'" in line
    # depth for WETH only: still exit 2 naming the first asset (DAI, USDC, WETH) without data
    assert mbt("ingest", "csv", "--liquidity", str(work / "depth.csv"), "--db", db).exit_code == 0
    line = _error(work, db, haircut_only)
    assert "needs liquidity data for asset 'DAI'" in line
    (work / "res.csv").write_text("timestamp,asset,reserve_asset,reserve_quote\n2021-05-18T00:00:00Z,DAI,1e7,1e7\n")
    assert mbt("ingest", "csv", "--liquidity", str(work / "res.csv"), "--db", db).exit_code == 0
    assert "needs liquidity data for asset 'USDC'" in _error(work, db, haircut_only)
    # data only after the first grid point: exit 2 as well
    (work / "late.csv").write_text("timestamp,asset,depth_usd_2pct\n2021-05-19T01:00:00Z,USDC,5e6\n")
    assert mbt("ingest", "csv", "--liquidity", str(work / "late.csv"), "--db", db).exit_code == 0
    assert "asset 'USDC' has no liquidity data at or before the first grid point" in _error(work, db, haircut_only)


@pytest.mark.parametrize("engine", ["fast", "reference"])
def test_haircut_with_zero_depth_applies_the_floor(work, engine):
    # depth_usd_2pct = 0 is valid input (nothing can be sold within 2 %): the floor applies, no crash
    db = ingest(work, liquidity=False)
    (work / "zero.csv").write_text("timestamp,asset,depth_usd_2pct\n2021-05-18T00:00:00Z,WETH,0\n"
                                   "2021-05-18T00:00:00Z,USDC,1e12\n2021-05-18T00:00:00Z,DAI,1e12\n")
    assert mbt("ingest", "csv", "--liquidity", str(work / "zero.csv"), "--db", db).exit_code == 0
    (work / "z.toml").write_text(HAIRCUT_ONLY)
    r = mbt("run", str(work / "z.toml"), "--db", db, "--json", "--engine", engine)
    assert r.exit_code == 0, r.stderr
    bp = json.loads(r.stdout)["results"][0]["borrowing_power_usd"]
    # no depth at all → the floor 0.5 on every WETH holding (115 WETH; erin's zero WETH collateral adds 0);
    # USDC/DAI at 1e12 of depth are barely haircut
    want = (115 * 2000 * 0.8 * 0.5 + 20_000 * 0.8 * (1 - 20_000 / 1e12) + 1_000 * 0.8 * (1 - 1_000 / 1e12)
            + 5_000 * 0.75 * (1 - 5_000 / 1e12))
    assert bp == pytest.approx(want, rel=1e-12)
