"""Corrections found by an independent audit (issue #8), each held by a test through the store and runner.

- ``run_id`` keeps the order of order-significant tables (cross groups, isolated markets);
- a global ``[market] close_factor`` does not block a rule set's switch to an Aave model;
- totals beyond float range are carried as inf → null, the same in both engines, never a traceback;
- a ``run.price_source`` key naming no asset of the run is an error with a did-you-mean hint;
- events after the last grid point (never applied) do not demand parameters or prices;
- ``capped_events_usd`` is the same number, to the last bit, in both engines.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from backtest.config import parse_config
from backtest.engine.fast import replay_fast
from backtest.engine.reference import replay_reference
from backtest.engine.types import Book, Events, Params, REPAY
from backtest.errors import ConfigError, MbtError
from tests.dbutil import build, replay


RUN = """[run]
name = "c"
start = "2021-05-19T00:00:00Z"
end = "2021-05-19T02:00:00Z"
"""

STABLES_PRICES = """timestamp,asset,price_usd
2021-05-19T00:00:00Z,USDC,1.0
2021-05-19T00:00:00Z,DAI,1.0
2021-05-19T01:00:00Z,USDC,1.0
2021-05-19T01:00:00Z,DAI,1.02
"""
STABLES_POSITIONS = """account,asset,collateral,debt
a,USDC,1000,0
a,DAI,0,880
"""
ASSETS = """[rules.assets.USDC]
ltv = 0.5
liquidation_threshold = 0.6
liquidation_bonus = 0.01
[rules.assets.DAI]
ltv = 0.5
liquidation_threshold = 0.6
liquidation_bonus = 0.01
"""
HI = """[rules.groups.hi]
assets = ["USDC", "DAI"]
ltv = 0.9
liquidation_threshold = 0.95
liquidation_bonus = 0.01
"""
LO = """[rules.groups.lo]
assets = ["USDC", "DAI"]
ltv = 0.8
liquidation_threshold = 0.9
liquidation_bonus = 0.01
"""


def test_issue_example_hi_lo_groups(tmp_path):
    """The audit's example: groups hi (.9/.95/.01) and lo (.8/.9/.01) over USDC+DAI — hi, lo → 0 liquidations;
    lo, hi → 1 liquidation; two run_ids."""
    # 1000 USDC against 920 DAI; DAI rises to 1.02: owed 938.4. Group hi: 1000·0.95 = 950 ≥ 938.4, safe;
    # group lo: 900 < 938.4 → one call (50 % close factor) restores HF above 1
    positions = "account,asset,collateral,debt\na,USDC,1000,0\na,DAI,0,920\n"
    db = build(tmp_path, prices=STABLES_PRICES, positions=positions)
    head = RUN + '[[rules]]\nname = "x"\nkind = "cross"\n' + ASSETS
    hi_first = replay(db, head + HI + LO)
    lo_first = replay(db, head + LO + HI)
    assert hi_first.outcomes[0].metrics["liquidations"] == 0
    assert lo_first.outcomes[0].metrics["liquidations"] == 1
    assert hi_first.run_id != lo_first.run_id
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:  # the second run did not replace the first
        assert con.execute("SELECT count(DISTINCT run_id) FROM runs").fetchone()[0] == 2


def test_market_order_is_part_of_run_id():
    """Isolated: the first market that fits routes an untagged position, so order is in the canonical form."""
    m1 = "[rules.markets.safe]\ncollateral = 'WETH'\ndebt = 'USDC'\nltv = 0.8\nliquidation_threshold = 0.9\nliquidation_bonus = 0.05\n"
    head = RUN + '[[rules]]\nname = "iso"\nkind = "isolated"\n'
    m2 = m1.replace("safe", "other").replace("'WETH'", "'WBTC'")
    a = parse_config(__import__("tomllib").loads(head + m1 + m2))
    b = parse_config(__import__("tomllib").loads(head + m2 + m1))
    assert a.canonical_json() != b.canonical_json()
    assert [m for m, _ in a.canonical()["rules"][0]["markets"]] == ["safe", "other"]
    assert [m for m, _ in b.canonical()["rules"][0]["markets"]] == ["other", "safe"]


DESIGN_MARKET = """[market]
liquidation = "aave"
close_factor = 0.5
gas_usd = 0.0
"""


def test_global_close_factor_does_not_block_an_aave_model_switch(tmp_path):
    import tomllib

    toml = RUN + DESIGN_MARKET + '[[rules]]\nname = "base"\n' + ASSETS + \
        '[[rules]]\nname = "v3"\nbase = "base"\n[rules.market]\nliquidation = "aave-v3"\n'
    cfg = parse_config(tomllib.loads(toml))
    base, v3 = cfg.rules
    assert base.market.liquidation == "aave" and base.market.close_factor == 0.5
    assert v3.market.liquidation == "aave-v3" and "close_factor" not in cfg.canonical()["rules"][1]["market"]
    assert cfg.canonical()["rules"][0]["market"]["close_factor"] == 0.5
    # written in the rule set itself it is still an error
    with pytest.raises(ConfigError, match=r"rules\.v3\.market\.close_factor: fixed by the protocol"):
        parse_config(tomllib.loads(toml + "close_factor = 0.5\n"))
    # and a base's aave-v3 keys are not inherited by a child that switches back to the DESIGN model
    back = RUN + '[[rules]]\nname = "v3"\n' + ASSETS + '[rules.market]\nliquidation = "aave-v3"\nversion = "v3.3"\n' \
        + '[[rules]]\nname = "plain"\nbase = "v3"\n[rules.market]\nliquidation = "aave"\n'
    plain = parse_config(tomllib.loads(back)).rules[1]
    assert plain.market.liquidation == "aave" and plain.market.model_settings() == {"close_factor": 0.5}


HUGE_PRICES = """timestamp,asset,price_usd
2021-05-19T00:00:00Z,WETH,2000
2021-05-19T00:00:00Z,USDC,1
2021-05-19T01:00:00Z,WETH,2000
2021-05-19T01:00:00Z,USDC,1
"""
WETH_USDC = """[rules.assets.WETH]
ltv = 0.8
liquidation_threshold = 0.85
liquidation_bonus = 0.05
[rules.assets.USDC]
ltv = 0.8
liquidation_threshold = 0.85
liquidation_bonus = 0.05
"""


@pytest.mark.parametrize("case", ["positions", "events"])
def test_totals_beyond_float_range_are_inf_in_both_engines(tmp_path, case):
    if case == "positions":
        db = build(tmp_path, prices=HUGE_PRICES,
                   positions="account,asset,collateral,debt\na,WETH,1e308,0\nb,WETH,1e308,0\nc,USDC,0,0\n")
    else:
        db = build(tmp_path, prices=HUGE_PRICES, positions="account,asset,collateral,debt\na,WETH,1,0\n",
                   events="timestamp,account,asset,action,amount\n2021-05-19T01:00:00Z,a,WETH,supply,1e308\n"
                          "2021-05-19T01:00:00Z,a,WETH,supply,1e308\n")
    toml = RUN + '[[rules]]\nname = "r"\n' + WETH_USDC
    docs = [replay(db, toml, engine).document() for engine in ("fast", "reference")]
    assert docs[0] == docs[1]
    json.dumps(docs[0], allow_nan=False)  # non-finite values are null, never NaN/Infinity
    r = docs[0]["results"][0]
    # borrowing power is from the snapshot: beyond float range with two 1e308 positions, 1 WETH · 0.8 · 2000 else
    assert r["borrowing_power_usd"] == (None if case == "positions" else 1600.0) and r["bad_debt_usd"] == 0.0
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT ts, collateral_usd FROM timeseries ORDER BY rule, ts").fetchall()
    # the reference run replaced the fast one (same run_id): one row per step, +inf once the sum overflows
    assert len(rows) == 2 and math.isinf(rows[-1][1]) and rows[-1][1] > 0
    assert rows[0][1] == (math.inf if case == "positions" else 2000.0)  # never a wrapped negative total


def test_price_source_key_naming_no_asset_is_an_error(tmp_path):
    db = build(tmp_path, prices=HUGE_PRICES, positions="account,asset,collateral,debt\na,WETH,1,0\n")
    toml = RUN.replace('end = "2021-05-19T02:00:00Z"', 'end = "2021-05-19T02:00:00Z"\n[run.price_source]\nWTEH = "chainlink"') \
        + '[[rules]]\nname = "r"\n' + WETH_USDC
    with pytest.raises(ConfigError, match=r"run\.price_source\.WTEH: no asset 'WTEH' in this run.*did you mean 'WETH'"):
        replay(db, toml)


def test_events_after_the_last_grid_point_demand_nothing(tmp_path):
    """The grid ends at the last price (01:00); a 01:30 event on LINK is never applied: no LINK parameters or
    prices are needed."""
    db = build(tmp_path, prices=HUGE_PRICES, positions="account,asset,collateral,debt\na,WETH,1,500\n".replace(
        "a,WETH,1,500", "a,WETH,1,0\na,USDC,0,500"),
        events="timestamp,account,asset,action,amount\n2021-05-19T01:30:00Z,a,LINK,supply,5\n")
    out = replay(db, RUN + '[[rules]]\nname = "r"\n' + WETH_USDC)
    assert out.inputs.assets == ["USDC", "WETH"] and len(out.inputs.grid_us) == 2
    # an applied event on LINK (at 01:00) does need LINK's parameters
    (tmp_path / "applied").mkdir()
    db2 = build(tmp_path / "applied", prices=HUGE_PRICES,
                positions="account,asset,collateral,debt\na,WETH,1,0\n",
                events="timestamp,account,asset,action,amount\n2021-05-19T01:00:00Z,a,LINK,supply,5\n")
    with pytest.raises(MbtError, match="LINK"):
        replay(db2, RUN + '[[rules]]\nname = "r"\n' + WETH_USDC)


def test_capped_events_are_summed_in_one_order_by_both_engines():
    """Capped repays met in different orders — account-major in the kernel, time-major in the reference:
    0.77 (a0, t0), 1.49 (a1, t1), 1.35 (a0, t2). A running float sum gives 3.61 in time order and
    3.6100000000000003 in account order; both engines give the exactly rounded sum (the latter)."""
    prices = np.ones((3, 1))
    book = Book(np.array([[10.0], [10.0]]), np.zeros((2, 1)))
    amounts = [0.77, 1.49, 1.35]
    ev = Events(np.array([0, 1, 0]), np.array([0, 1, 2]), np.array([0, 0, 0]),
                np.array([REPAY, REPAY, REPAY], dtype=np.int8), np.array(amounts))
    params = Params(np.array([0.5]), np.array([0.6]), np.array([0.05]))
    fast = replay_fast(prices, book, ev, params)
    ref = replay_reference(prices, book, ev, params)
    assert (0.77 + 1.49) + 1.35 != (0.77 + 1.35) + 1.49  # the orders really differ
    assert fast.capped_events_usd == ref.capped_events_usd == math.fsum(amounts) == 3.6100000000000003
