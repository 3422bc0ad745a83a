"""No look-ahead, proven end to end: a future price (or depth) never changes a past decision.

Two databases are built through ``mbt ingest csv`` from the same inputs, except that in the second every
price strictly after grid step ``t`` (and, for the haircut, every depth observation after it) is different:
a crash of WETH, a USDC depeg, a DAI spike and a collapse of depth. One ``mbt run`` per database replays
every rule kind side by side; for each kind every liquidation row and every timeseries row up to ``t`` must
be identical, the refusals of ``enforce_ltv`` (all events are at or before ``t``) too, and for ``dynamic``
every threshold update at or before ``t``. ``t`` sits inside the fast engine's blocks, so its skipping
bounds (block minima/maxima that include the changed steps) are exercised as well. Each check also
asserts that something after ``t`` did change, so none of them passes vacuously.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import duckdb
import numpy as np
import pytest
from click.testing import CliRunner

from backtest.cli import commands  # noqa: F401  (registers the verbs)
from backtest.cli.main import cli
from backtest.config import load_config
from backtest.rules import compile_rule
from backtest.inputs import load_inputs
from backtest.store import Store

START = 1_621_382_400  # 2021-05-19T00:00:00Z
HOUR = 3600
STEPS = 40  # hourly grid: 00:00 … +39 h
T_CUT = 21  # decisions at grid steps ≤ T_CUT must not depend on anything after it (inside a fine block)
KINDS = ("current", "initial-margin", "iso", "emode", "dyn", "haircut")

CONFIG = """[run]
name = "lookahead"
start = "2021-05-19T00:00:00Z"
end = "2021-05-20T15:00:00Z"

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

[[rules]]
name = "initial-margin"
base = "current"
enforce_ltv = true

[[rules]]
name = "iso"
kind = "isolated"
[rules.markets.weth-usdc]
collateral = "WETH"
debt = "USDC"
ltv = 0.80
liquidation_threshold = 0.86
liquidation_bonus = 0.05
[rules.markets.dai-usdc]
collateral = "DAI"
debt = "USDC"
ltv = 0.75
liquidation_threshold = 0.80
liquidation_bonus = 0.04
[rules.markets.usdc-dai]
collateral = "USDC"
debt = "DAI"
ltv = 0.80
liquidation_threshold = 0.84
liquidation_bonus = 0.03

[[rules]]
name = "emode"
base = "current"
kind = "asset"

[[rules]]
name = "dyn"
kind = "dynamic"
enforce_ltv = true
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
[rules.dynamic]
vol_interval = "6h"
update_every = "6h"
min_history = 5
max_step = 0.03

[[rules]]
name = "haircut"
kind = "liquidity-haircut"
enforce_ltv = true
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
[rules.haircut]
k = 2.0
"""
# "emode" is a cross rule set: kind is inherited and may not change, so it is written out in full
CONFIG = CONFIG.replace('''[[rules]]
name = "emode"
base = "current"
kind = "asset"
''', '''[[rules]]
name = "emode"
kind = "cross"
enforce_ltv = true
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
[rules.groups.stables]
assets = ["USDC", "DAI"]
ltv = 0.93
liquidation_threshold = 0.95
liquidation_bonus = 0.01
''')

POSITIONS = """account,asset,collateral,debt,market,emode
a1,WETH,10,0,,
a1,USDC,0,14000,,
a2,WETH,5,0,,
a2,DAI,3000,0,,
a2,USDC,0,8400,,
a3,USDC,20000,0,,
a3,DAI,0,16500,,
a4,WETH,50,0,,
a5,USDC,3000,0,,stables
a5,DAI,0,2700,,stables
"""
EVENTS = """timestamp,account,asset,action,amount
2021-05-19T02:30:00Z,a1,USDC,borrow,3000
2021-05-19T04:30:00Z,a4,USDC,borrow,60000
2021-05-19T06:30:00Z,a2,WETH,withdraw,3
2021-05-19T09:30:00Z,a5,DAI,borrow,100
2021-05-19T12:30:00Z,a3,DAI,repay,500
2021-05-19T14:30:00Z,a4,USDC,borrow,20000
2021-05-19T16:30:00Z,a4,WETH,withdraw,10
2021-05-19T21:00:00Z,a5,DAI,borrow,50
"""


def _iso(ts: int) -> str:
    return np.datetime_as_string(np.datetime64(ts, "s"), unit="s") + "Z"


def _prices(changed: bool) -> str:
    rows = ["timestamp,asset,price_usd"]
    # history before start (6-hourly, 3 days) for the dynamic thresholds: returns of ±4 %
    for n in range(12, 0, -1):
        rows.append(f"{_iso(START - 6 * HOUR * n)},WETH,{2000.0 * (1.04 if n % 2 else 1.0)!r}")
    for s in range(STEPS):
        ts = _iso(START + HOUR * s)
        weth = 2000.0 * 0.985 ** min(s, 30)  # a slow slide, flat from step 30 on
        usdc = 0.97 if 9 <= s <= 12 else 1.0  # a short depeg before T_CUT
        dai = 1.0
        if changed and s > T_CUT:
            weth *= 0.55 if s < 30 else 1.3
            usdc = 0.90
            dai = 1.08
        rows += [f"{ts},WETH,{weth!r}", f"{ts},USDC,{usdc!r}", f"{ts},DAI,{dai!r}"]
    return "\n".join(rows) + "\n"


def _liquidity(changed: bool) -> tuple[str, str]:
    depth = ["timestamp,asset,depth_usd_2pct,venue"]
    reserves = ["timestamp,asset,reserve_asset,reserve_quote"]
    day_before = _iso(START - 24 * HOUR)
    depth += [f"{day_before},WETH,1500000,uni", f"{day_before},WETH,500000,curve", f"{day_before},DAI,400000,uni"]
    reserves += [f"{day_before},USDC,30000000,30000000"]
    depth.append(f"{_iso(START + 8 * HOUR)},WETH,900000,uni")  # a fall before T_CUT: carried forward
    if changed:
        depth += [f"{_iso(START + HOUR * (T_CUT + 1))},WETH,100000,uni",
                  f"{_iso(START + HOUR * (T_CUT + 1) + 60)},DAI,20000,uni"]
        reserves.append(f"{_iso(START + HOUR * (T_CUT + 2))},USDC,1000000,1000000")
    return "\n".join(depth) + "\n", "\n".join(reserves) + "\n"


def mbt(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _build(root: Path, changed: bool) -> dict:
    root.mkdir()
    depth, reserves = _liquidity(changed)
    files = {"prices.csv": _prices(changed), "positions.csv": POSITIONS, "events.csv": EVENTS,
             "depth.csv": depth, "reserves.csv": reserves, "run.toml": CONFIG}
    for name, text in files.items():
        (root / name).write_text(text)
    db = str(root / "t.duckdb")
    r = mbt("ingest", "csv", "--prices", str(root / "prices.csv"), "--positions", str(root / "positions.csv"),
            "--events", str(root / "events.csv"), "--liquidity", str(root / "depth.csv"), "--db", db)
    assert r.exit_code == 0, r.stderr
    r = mbt("ingest", "csv", "--liquidity", str(root / "reserves.csv"), "--db", db)
    assert r.exit_code == 0, r.stderr
    r = mbt("run", str(root / "run.toml"), "--db", db, "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    with duckdb.connect(db, read_only=True) as con:
        liq = con.execute(
            "SELECT rule, epoch(ts)::BIGINT AS ts, account, debt_asset, collateral_asset, debt_repaid, "
            "collateral_seized, debt_repaid_usd, penalty_usd, call FROM liquidations WHERE run_id = ? "
            "ORDER BY rule, call", [doc["run_id"]]).fetchall()
        series = con.execute(
            "SELECT rule, epoch(ts)::BIGINT AS ts, collateral_usd, debt_usd, bad_debt_usd, liquidations "
            "FROM timeseries WHERE run_id = ? ORDER BY rule, ts", [doc["run_id"]]).fetchall()
    cfg = load_config(root / "run.toml")
    with Store(db, read_only=True) as store:
        inputs = load_inputs(store, cfg)
    dyn = next(r for r in cfg.rules if r.kind == "dynamic")
    params = compile_rule(dyn, inputs.data).params
    return {"doc": doc, "liq": liq, "series": series, "grid": inputs.grid_us, "dynamic": params}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[dict, dict]:
    root = tmp_path_factory.mktemp("lookahead")
    return _build(root / "original", False), _build(root / "changed", True)


CUT_TS = START + HOUR * T_CUT


def _rows(run: dict, table: str, rule: str, upto: bool) -> list[tuple]:
    return [r[1:] for r in run[table] if r[0] == rule and (r[1] <= CUT_TS) == upto]


@pytest.mark.parametrize("rule", KINDS)
def test_decisions_up_to_t_ignore_the_future(runs, rule):
    original, changed = runs
    assert len(original["grid"]) == len(changed["grid"]) == STEPS
    before = _rows(original, "liq", rule, True)
    assert before, "no liquidation before t: the check would be vacuous"
    assert _rows(changed, "liq", rule, True) == before
    series = _rows(original, "series", rule, True)
    assert len(series) == T_CUT + 1
    assert _rows(changed, "series", rule, True) == series
    # the future did change: the rows after t differ
    assert _rows(changed, "series", rule, False) != _rows(original, "series", rule, False)
    assert _rows(changed, "liq", rule, False) != _rows(original, "liq", rule, False)


@pytest.mark.parametrize("rule", ["initial-margin", "emode", "dyn", "haircut"])
def test_refusals_up_to_t_ignore_the_future(runs, rule):
    # every event is at or before t, so each refusal was decided at a step ≤ t: the totals must agree
    original, changed = runs
    a = next(r for r in original["doc"]["results"] if r["rule"] == rule)
    b = next(r for r in changed["doc"]["results"] if r["rule"] == rule)
    assert a["blocked_borrow_usd"] + a["blocked_withdraw_usd"] > 0, "nothing refused: vacuous"
    assert (b["blocked_borrow_usd"], b["blocked_withdraw_usd"]) == (a["blocked_borrow_usd"], a["blocked_withdraw_usd"])
    assert b["capped_events_usd"] == a["capped_events_usd"]
    assert b["borrowing_power_usd"] == a["borrowing_power_usd"]  # first grid step only


def test_dynamic_thresholds_up_to_t_ignore_the_future(runs):
    original, changed = runs
    p, q = original["dynamic"], changed["dynamic"]
    np.testing.assert_array_equal(p.update_index, q.update_index)
    # updates every 6 h from start; those at or before t: 0, 6, 12, 18 h
    times = START + 6 * HOUR * np.arange(p.liquidation_threshold.shape[0])
    upto = times <= CUT_TS
    assert upto.sum() == 4 and (~upto).sum() >= 2
    for table in ("ltv", "liquidation_threshold", "liquidation_bonus"):
        np.testing.assert_array_equal(getattr(q, table)[upto], getattr(p, table)[upto], err_msg=table)
    # they moved (history before start counts) and later updates see the changed prices
    weth = 2  # DAI, USDC, WETH
    assert len(set(p.liquidation_threshold[upto, 0, weth].tolist())) > 1
    assert not np.array_equal(q.liquidation_threshold[~upto], p.liquidation_threshold[~upto])
    assert math.isclose(p.ltv[0, 0, weth], p.liquidation_threshold[0, 0, weth] - 0.025, rel_tol=1e-12)
