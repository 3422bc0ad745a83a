"""Portfolio kinds from TOML through `mbt run` on a CSV-ingested database: exact requirements and borrowing
power by hand, fast == reference, and the one-line exit-2 errors (database untouched)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from backtest.cli import commands  # noqa: F401  (registers the verbs)
from backtest.cli.main import cli
from backtest.outputs.metrics import COUNT_METRICS, METRICS

# thirty daily simple WETH returns ending at the 2021-05-19 00:00 close of 2,000 USD; the four worst days
# are −10, −8, −6, −4 %
RETURNS = [0.01, -0.02, 0.03, -0.10, 0.0, 0.02, -0.01, -0.08, 0.015, -0.03, 0.025, 0.01, -0.06, 0.0, 0.005,
           -0.015, 0.02, -0.04, 0.01, 0.0, -0.025, 0.03, 0.012, -0.005, 0.008, 0.0, -0.012, 0.018, 0.004, -0.02]
START = datetime(2021, 5, 19, tzinfo=timezone.utc)


def _prices() -> str:
    closes = [2000.0]
    for g in reversed(RETURNS):
        closes.append(closes[-1] / (1 + g))
    closes.reverse()  # closes at 04-19 … 05-19 00:00
    rows = ["timestamp,asset,price_usd"]
    for n, p in enumerate(closes[:-1]):
        day = (START - timedelta(days=30 - n)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows += [f"{day},WETH,{p!r}", f"{day},USDC,1", f"{day},DAI,1"]
    rows += ["2021-05-19T00:00:00Z,WETH,2000", "2021-05-19T00:00:00Z,USDC,1", "2021-05-19T00:00:00Z,DAI,1",
             "2021-05-19T01:00:00Z,WETH,1400", "2021-05-19T02:00:00Z,WETH,1000"]
    return "\n".join(rows) + "\n"


POSITIONS = """account,asset,collateral,debt
alice,WETH,10,0
alice,USDC,0,12000
bob,USDC,20000,0
bob,DAI,0,15000
carol,WETH,5,0
carol,DAI,5000,0
carol,USDC,0,8000
dave,WETH,100,0
"""
EVENTS = """timestamp,account,asset,action,amount
2021-05-19T00:30:00Z,alice,USDC,borrow,5000
2021-05-19T01:30:00Z,dave,WETH,withdraw,50
"""
HEADER = """[run]
name = "portfolio"
start = "2021-05-19T00:00:00Z"
end = "2021-05-19T02:00:00Z"

[market]
liquidation = "aave"
close_factor = 0.5
"""
BASELINE = """
[[rules]]
name = "current"
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
SPAN = """
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
name = "span-none"
base = "span"
[rules.portfolio]
offsets = "none"
"""
VAR = """
[[rules]]
name = "var"
kind = "portfolio-var"
[rules.portfolio]
method = "hs"
measure = "var"
alpha = 0.9
lookback = "30d"
[rules.assets.WETH]
liquidation_bonus = 0.05
[rules.assets.USDC]
liquidation_bonus = 0.05
[rules.assets.DAI]
liquidation_bonus = 0.05

[[rules]]
name = "es"
base = "var"
[rules.portfolio]
measure = "es"

[[rules]]
name = "fhs"
base = "var"
[rules.portfolio]
method = "fhs"
lookback = "29d"
"""
CONFIG = HEADER + BASELINE + SPAN + VAR


def mbt(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def db(tmp_path: Path) -> str:
    for name, text in [("prices.csv", _prices()), ("positions.csv", POSITIONS), ("events.csv", EVENTS),
                       ("run.toml", CONFIG)]:
        (tmp_path / name).write_text(text)
    path = str(tmp_path / "t.duckdb")
    r = mbt("ingest", "csv", "--prices", str(tmp_path / "prices.csv"), "--positions", str(tmp_path / "positions.csv"),
            "--events", str(tmp_path / "events.csv"), "--db", path)
    assert r.exit_code == 0, r.stderr
    return path


def run_json(db: str, *extra: str) -> dict:
    r = mbt("run", str(Path(db).with_name("run.toml")), "--db", db, "--json", *extra)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def test_portfolio_kinds_run_from_toml_fast_equals_reference(db):
    fast, ref = run_json(db), run_json(db, "--engine", "reference")
    assert [(r["rule"], r["kind"]) for r in fast["results"]] == [
        ("current", "asset"), ("span", "portfolio-scenario"), ("span-none", "portfolio-scenario"),
        ("var", "portfolio-var"), ("es", "portfolio-var"), ("fhs", "portfolio-var")]
    for f, r in zip(fast["results"], ref["results"]):
        for key in METRICS:
            if key in COUNT_METRICS or f[key] is None:
                assert f[key] == r[key], (f["rule"], key)
            else:
                assert math.isclose(f[key], r[key], rel_tol=1e-12), (f["rule"], key)
    by = {r["rule"]: r for r in fast["results"]}
    for rule in ("span", "var", "es", "fhs"):
        assert by[rule]["liquidations"] > 0, rule  # alice and carol go under at 01:00 / 02:00


def test_borrowing_power_by_hand(db):
    by = {r["rule"]: r for r in run_json(db)["results"]}
    # first step: WETH 2,000, USDC = DAI = 1. Each account: the largest debt λ (its own mix) with
    # Σc·p − λ ≥ 1.25·R(λ).
    # var (HS, α 0.9 over the 30 returns: VaR = 4 % of the WETH value, stablecoins never move):
    #   alice 20,000 − λ − 1.25·800 → 19,000; bob 20,000 (no risk); carol 15,000 − λ − 1.25·400 → 14,500;
    #   dave (no debt → USDC) 200,000 − 1.25·8,000 → 190,000
    assert by["var"]["borrowing_power_usd"] == pytest.approx(19_000 + 20_000 + 14_500 + 190_000, rel=1e-9)
    # es: VaR is the ⌈27⌉-th smallest loss (−4 %); ES the mean of the losses ≥ it: 4, 6, 8, 10 % → 7 %
    assert by["es"]["borrowing_power_usd"] == pytest.approx(
        (20_000 - 1.25 * 1_400) + 20_000 + (15_000 - 1.25 * 700) + (200_000 - 1.25 * 14_000), rel=1e-9)
    # span, joint (M = max(1, 2·0.35) = 1): R = |Σ (c − d)·p·psr|
    #   alice: 20,000 − λ − 1.25·(3,000 − 0.01λ) ⇒ λ = 16,250 / 0.9875
    #   bob (DAI debt, USDC collateral): 20,000 − λ − 1.25·0.01·(20,000 − λ) ⇒ λ = 20,000
    #   carol (WETH 10,000 + DAI 5,000, USDC debt): 15,000 − λ − 1.25·(1,500 + 50 − 0.01λ) ⇒ (15,000 − 1,937.5)/0.9875
    #   dave: 200,000 − λ − 1.25·(30,000 − 0.01λ) ⇒ 162,500 / 0.9875
    span = 16_250 / 0.9875 + 20_000 + (15_000 - 1_937.5) / 0.9875 + 162_500 / 0.9875
    assert by["span"]["borrowing_power_usd"] == pytest.approx(span, rel=1e-9)
    base = by["current"]["borrowing_power_usd"]
    assert by["span"]["capital_efficiency"] == pytest.approx(span / base, rel=1e-12)


def test_account_states_maintenance_is_equity_less_requirement(db):
    doc = run_json(db)
    with duckdb.connect(db, read_only=True) as con:
        rows = dict(con.execute("SELECT account, maintenance_usd FROM account_states WHERE run_id = ? AND "
                                "rule = 'var' AND account = 'bob'", [doc["run_id"]]).fetchall())
    assert rows["bob"] == pytest.approx(20_000.0)  # stablecoins only: R = 0


def _error(db: str, config: str) -> str:
    path = Path(db).with_name("bad.toml")
    path.write_text(config)
    with duckdb.connect(db, read_only=True) as con:
        before = con.execute("SELECT count(*) FROM runs").fetchone()[0]
    r = mbt("run", str(path), "--db", db)
    assert r.exit_code == 2, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    with duckdb.connect(db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == before  # nothing written
    return lines[0]


def test_too_few_scenarios_is_exit_2_naming_the_rule_set(db):
    msg = _error(db, HEADER + VAR.replace('lookback = "30d"', 'lookback = "19d"').split("[[rules]]\nname = \"es\"")[0])
    assert 'rules "var": portfolio.lookback 19d gives 19 daily scenarios' in msg and "at least 20" in msg


def test_history_not_covering_the_window_is_exit_2_naming_the_asset(db):
    msg = _error(db, HEADER + VAR.replace('lookback = "30d"', 'lookback = "31d"').split("[[rules]]\nname = \"es\"")[0])
    assert 'rules "var": asset' in msg and "no price history covering the scenario window" in msg


def test_missing_psr_is_exit_2_naming_the_key(db):
    msg = _error(db, HEADER + SPAN.replace("psr = 0.15\n", "", 1))
    assert "rules.span.assets.WETH.psr: missing" in msg


def test_borrow_asset_outside_the_run_is_exit_2(db):
    text = HEADER + VAR.split("[[rules]]\nname = \"es\"")[0].replace('lookback = "30d"',
                                                                      'lookback = "30d"\nborrow_asset = "GHO"')
    assert "rules.var.portfolio.borrow_asset: 'GHO' has no [rules.assets] parameters" in _error(db, text)
