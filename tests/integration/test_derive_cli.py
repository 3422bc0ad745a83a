"""``mbt derive`` end to end: CSV → DuckDB → derive (TOML) → ``mbt run`` on the derived rules; exact numbers
from a hand-built history and liquidity rows, reproducibility from the header's command, read-only on the
database, and bad input → exit 2 with one line."""

from __future__ import annotations

import hashlib
import json
import math
import shlex
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from backtest.cli.main import cli
from backtest.config import parse_config
from backtest.rules import DEPTH_FACTOR

DAY = 86400
LOSSES = [((37 * k) % 100 + 1) / 1000 for k in range(100)]  # daily WETH losses 0.001 … 0.100, shuffled
RATIO_MOVES = {10: -0.05, 30: -0.04, 50: 0.06, 70: 0.08}     # log moves of WETH/WSTETH on those days


def _iso(day: int, hour: int = 0) -> str:
    from backtest.timeutil import format_instant, parse_instant

    return format_instant(parse_instant("2021-01-01T00:00:00Z") + (day * DAY + hour * 3600) * 1_000_000)


def _prices() -> str:
    rows = ["timestamp,asset,price_usd"]
    weth, ratio = 100_000.0, 1.0
    for day in range(101):
        if day:
            weth *= 1 - LOSSES[day - 1]
            ratio *= math.exp(RATIO_MOVES.get(day - 1, 0.0))
        rows += [f"{_iso(day)},WETH,{weth!r}", f"{_iso(day)},WSTETH,{weth / ratio!r}", f"{_iso(day)},USDC,1"]
    # after the last midnight: the default --at, and a price no daily close takes
    rows += [f"{_iso(100, 12)},WETH,{weth * 0.5!r}", f"{_iso(100, 12)},USDC,1"]
    return "\n".join(rows) + "\n"


LIQUIDITY = f"""timestamp,asset,venue,depth_usd_2pct
{_iso(59)},WETH,uni,5000
{_iso(90)},WETH,uni,{600_000 * DEPTH_FACTOR!r}
{_iso(95)},WETH,curve,{400_000 * DEPTH_FACTOR!r}
{_iso(100, 13)},WETH,uni,1
"""
POSITIONS = """account,asset,collateral,debt
alice,WETH,2,0
alice,USDC,0,500
bob,WSTETH,3,0
bob,WETH,0,1
carol,USDC,5000,0
"""
EVENTS = f"""timestamp,account,asset,action,amount
{_iso(97, 6)},carol,USDC,borrow,100
"""
RUN = f"""[run]
name = "derived-check"
start = "{_iso(95)}"
end = "{_iso(100, 12)}"
"""


def mbt(*args: str):
    return CliRunner().invoke(cli, list(args))


def _lb(reserve: float, gas: float = 5.0, debt: float = 10_000.0) -> float:
    lb = 1.0
    for _ in range(200):  # the fixed point LB = (1 + g/D) / (1 − Q/(X + Q)), Q = D·LB, by iteration
        q = debt * lb
        lb = (1 + gas / debt) / (1 - q / (reserve + q))
    return lb


def _floor4(x: float) -> float:
    return math.floor(round(x * 1e4, 8)) / 1e4


def _ceil4(x: float) -> float:
    return math.ceil(round(x * 1e4, 8)) / 1e4


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("derive")
    for name, text in [("prices.csv", _prices()), ("liquidity.csv", LIQUIDITY), ("positions.csv", POSITIONS),
                       ("events.csv", EVENTS)]:
        (work / name).write_text(text)
    r = mbt("ingest", "csv", "--prices", str(work / "prices.csv"), "--liquidity", str(work / "liquidity.csv"),
            "--positions", str(work / "positions.csv"), "--events", str(work / "events.csv"),
            "--db", str(work / "t.duckdb"))
    assert r.exit_code == 0, r.output
    return work / "t.duckdb"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run_with(tmp_path: Path, db: Path, rules_text: str) -> dict:
    cfg = tmp_path / "run.toml"
    cfg.write_text(RUN + "\n" + rules_text)
    r = mbt("run", str(cfg), "--db", str(db), "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_derive_writes_exact_values_and_the_rules_run(db: Path, tmp_path: Path) -> None:
    before = _digest(db)
    out = tmp_path / "rules.toml"
    r = mbt("derive", "--db", str(db), "--out", str(out))
    assert r.exit_code == 0, r.output
    assert r.stdout == "" and "wrote" in r.stderr
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0] == f"# mbt derive --db {db} --at {_iso(100, 12)}"
    rule = tomllib.loads(text)["rules"][0]
    assert (rule["name"], rule["kind"]) == ("derived", "asset")
    assert list(rule["assets"]) == ["USDC", "WETH", "WSTETH"]
    # WETH: Δ = the 99th smallest of 100 daily losses = 0.099; slip from uni's and curve's last rows at or
    # before --at (the 5000 of day 59 and the row after --at are not used): X = $1M
    lb = _lb(1_000_000.0)
    weth = rule["assets"]["WETH"]
    assert weth == {"ltv": round(_floor4(0.901 / lb) - 0.05, 4), "liquidation_threshold": _floor4(0.901 / lb),
                    "liquidation_bonus": _ceil4(lb - 1)}
    assert weth == {"ltv": 0.8415, "liquidation_threshold": 0.8915, "liquidation_bonus": 0.0107}
    # USDC never moves: LT = 1/1.0005 capped at 0.99; no liquidity rows → slip 0
    assert rule["assets"]["USDC"] == {"ltv": 0.94, "liquidation_threshold": 0.99, "liquidation_bonus": 0.0005}
    assert "slip 0: no liquidity rows for USDC at or before --at" in text
    assert "Δ = WETH hs 99 % 1d over 100 returns to 2021-04-11T00:00:00Z" in text
    assert f"X $1,000,000 pool = depth ${1e6 * DEPTH_FACTOR:,.0f} (2 venues)" in text
    # the same TOML on stdout; the database is untouched (read-only)
    again = mbt("derive", "--db", str(db))
    assert again.exit_code == 0 and again.stdout == text
    assert _digest(db) == before
    doc = _run_with(tmp_path, db, text)
    assert [(x["rule"], x["kind"]) for x in doc["results"]] == [("derived", "asset")]


def test_the_header_command_reproduces_the_file(db: Path) -> None:
    first = mbt("derive", "--db", str(db), "--method", "ewma", "--lambda", "0.97", "--horizon", "2d",
                "--alpha", "0.975", "--at", _iso(80, 6), "--gas-usd", "20", "--ltv-gap", "0.1")
    assert first.exit_code == 0, first.output
    words = shlex.split(first.stdout.splitlines()[0].removeprefix("# "))
    assert words[:2] == ["mbt", "derive"] and "--lambda" in words
    assert mbt(*words[1:]).stdout == first.stdout


def test_at_uses_no_later_price(db: Path) -> None:
    r = mbt("derive", "--db", str(db), "--assets", "WETH", "--at", _iso(60, 1), "--slippage", "0")
    assert r.exit_code == 0, r.output
    weth = tomllib.loads(r.stdout)["rules"][0]["assets"]["WETH"]
    first60 = sorted(LOSSES[:60])
    delta = first60[math.ceil(0.99 * 60) - 1]
    assert weth["liquidation_threshold"] == _floor4((1 - delta) / 1.0005)
    assert "slip from --slippage" in r.stdout


def test_a_group_gives_a_cross_rule_set_that_runs(db: Path, tmp_path: Path) -> None:
    r = mbt("derive", "--db", str(db), "--assets", "WETH,USDC", "--group", "ETH=WETH,WSTETH", "--name", "risk-eth")
    assert r.exit_code == 0, r.output
    rule = tomllib.loads(r.stdout)["rules"][0]
    assert (rule["name"], rule["kind"]) == ("risk-eth", "cross")
    assert list(rule["assets"]) == ["WETH", "USDC", "WSTETH"]   # the group's members get their own tables
    group = rule["groups"]["ETH"]
    # WSTETH/WETH falls 1 − e^{−0.06} on the second-worst day: the group's Δ; LB_min of WETH (the only pool)
    lb = _lb(1_000_000.0)
    assert group["assets"] == ["WETH", "WSTETH"]
    assert group["liquidation_threshold"] == _floor4(math.exp(-0.06) / lb)
    assert group["liquidation_bonus"] == _ceil4(lb - 1)
    assert "Δ = WSTETH/WETH hs 99 % 1d over 100 returns" in r.stdout
    doc = _run_with(tmp_path, db, r.stdout)
    assert [(x["rule"], x["kind"]) for x in doc["results"]] == [("risk-eth", "cross")]
    cfg = parse_config(tomllib.loads(RUN + r.stdout))
    assert cfg.rules[0].groups["ETH"].params.liquidation_threshold == group["liquidation_threshold"]


def test_ewma_runs_end_to_end(db: Path, tmp_path: Path) -> None:
    r = mbt("derive", "--db", str(db), "--method", "ewma", "--group", "ETH=WETH,WSTETH")
    assert r.exit_code == 0, r.output
    assert "ewma z 2.3263 × σ" in r.stdout and "lambda 0.94" in r.stdout
    _run_with(tmp_path, db, r.stdout)


def test_several_sources_need_price_source(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text(_prices())
    (tmp_path / "cl.csv").write_text("timestamp,asset,price_usd,source\n"
                                     + "".join(f"{_iso(d)},WETH,{2000 + d},chainlink\n" for d in range(40)))
    dbp = tmp_path / "s.duckdb"
    for f in ("p.csv", "cl.csv"):
        assert mbt("ingest", "csv", "--prices", str(tmp_path / f), "--db", str(dbp)).exit_code == 0
    _one_line(mbt("derive", "--db", str(dbp)), "asset 'WETH' has prices from several sources (chainlink, csv); "
              "choose one with --price-source")
    ok = mbt("derive", "--db", str(dbp), "--price-source", "csv")
    assert ok.exit_code == 0, ok.output
    assert "WETH from 'csv'" in ok.stdout
    only = mbt("derive", "--db", str(dbp), "--price-source", "chainlink")
    assert only.exit_code == 0, only.output
    assert list(tomllib.loads(only.stdout)["rules"][0]["assets"]) == ["WETH"]
    _one_line(mbt("derive", "--db", str(dbp), "--price-source", "chainlink", "--assets", "USDC"),
              "--price-source 'chainlink': asset 'USDC' has no prices from it (sources: csv)")


def _one_line(result, text: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mbt: error: ") and "Traceback" not in result.output, result.stderr
    assert text in lines[0], lines[0]


@pytest.mark.parametrize("args, text", [
    (["--alpha", "1.5"], "--alpha 1.5: must satisfy 0.5 ≤ alpha < 1"),
    (["--alpha", "x"], "--alpha 'x': expected a number"),
    (["--method", "garch"], "--method 'garch': expected hs"),
    (["--horizon", "12h"], "--horizon '12h': whole days only"),
    (["--lookback", "forever"], "--lookback: invalid duration 'forever'"),
    (["--lambda", "0"], "--lambda 0: must satisfy 0 < lambda < 1"),
    (["--slippage", "-0.1"], "--slippage -0.1: must satisfy 0 ≤ slippage < 1"),
    (["--assets", "WETX"], "asset 'WETX': no prices stored; did you mean 'WETH'?"),
    (["--assets", "WETH,,USDC"], "--assets 'WETH,,USDC': expected asset symbols"),
    (["--at", "2021-02-01"], "--at '2021-02-01': date-only timestamp"),
    (["--at", "2020-06-01T00:00:00Z"], "asset 'USDC': no 'csv' prices at or before --at 2020-06-01T00:00:00Z"),
    (["--lookback", "10d"], "asset 'USDC': 10 overlapping 1d returns with close dates in the 10-day lookback"),
    (["--at", "2021-01-16T00:00:00Z", "--method", "ewma"], "asset 'USDC': 15 daily returns"),
    (["--group", "ETH=WETH"], "--group 'ETH=WETH': a group needs at least two different assets"),
    (["--group", "ETH=WETH,WBTC"], "--group ETH: asset 'WBTC' has no stored prices"),
    (["--assets", "WETH", "--group", "ETH=WETH,WBTC"], "asset 'WBTC': no prices stored"),
    (["--group", "A=WETH,USDC", "--group", "A=WETH,WSTETH"], "group 'A' is given twice"),
    (["--assets", "WETH", "--debt-repaid-usd", "2000000"],
     "asset 'WETH': stored liquidity (depth $10,153 at −2 % over 2 venue(s), a pool of $1,000,000) is too shallow"),
    (["--name", " "], "--name: expected a non-empty rule set name"),
    (["--out", "NODIR/rules.toml"], "cannot write"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(db: Path, tmp_path: Path, args: list[str], text: str) -> None:
    before = _digest(db)
    args = [a.replace("NODIR", str(tmp_path / "missing")) for a in args]
    out = [] if "--out" in args else ["--out", str(tmp_path / "rules.toml")]
    _one_line(mbt("derive", "--db", str(db), *args, *out), text)
    assert not (tmp_path / "rules.toml").exists()
    assert _digest(db) == before


def test_no_database_or_no_prices(tmp_path: Path) -> None:
    _one_line(mbt("derive", "--db", str(tmp_path / "none.duckdb")), "database not found")
    (tmp_path / "pos.csv").write_text(POSITIONS)
    dbp = tmp_path / "empty.duckdb"
    assert mbt("ingest", "csv", "--positions", str(tmp_path / "pos.csv"), "--db", str(dbp)).exit_code == 0
    _one_line(mbt("derive", "--db", str(dbp)), "no prices stored (load them with `mbt ingest csv --prices FILE`)")


def test_debug_shows_the_traceback(db: Path) -> None:
    r = CliRunner().invoke(cli, ["derive", "--db", str(db), "--alpha", "2", "--debug"])
    assert r.exit_code != 0 and r.exception is not None and "alpha" in str(r.exception)
