"""TOML keys of the rule kinds (docs/rules.md): defaults, inheritance, and one-line errors naming the key."""

from __future__ import annotations

import tomllib

import pytest

from backtest.config import DynamicSettings, HaircutSettings, load_config, parse_config
from backtest.errors import ConfigError

RUN = '[run]\nstart = "2021-05-19T00:00:00Z"\nend = "2021-05-20T00:00:00Z"\n'
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
ISOLATED = """
[[rules]]
name = "iso"
kind = "isolated"
[rules.markets.m1]
collateral = "WETH"
debt = "USDC"
ltv = 0.80
liquidation_threshold = 0.86
liquidation_bonus = 0.05
[rules.markets.m2]
collateral = "WETH"
debt = "DAI"
ltv = 0.70
liquidation_threshold = 0.80
liquidation_bonus = 0.05
"""
CROSS = f"""
[[rules]]
name = "x"
kind = "cross"
{ASSETS}
[rules.groups.stables]
assets = ["USDC", "DAI"]
ltv = 0.93
liquidation_threshold = 0.95
liquidation_bonus = 0.01
"""
DYNAMIC = f"""
[[rules]]
name = "d"
kind = "dynamic"
{ASSETS}
[rules.dynamic]
lambda = 0.94
"""
HAIRCUT = f"""
[[rules]]
name = "h"
kind = "liquidity-haircut"
{ASSETS}
[rules.haircut]
k = 1.0
"""
PLAIN = f"""
[[rules]]
name = "a"
{ASSETS}
"""


def cfg(text: str):
    return parse_config(tomllib.loads(RUN + text), "run.toml")


def error(text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        cfg(text)
    message = str(exc.value)
    assert "\n" not in message  # one line
    return message


def test_all_kinds_side_by_side_with_defaults_filled():
    c = cfg(PLAIN + ISOLATED + CROSS + DYNAMIC + HAIRCUT)
    a, iso, x, d, h = c.rules
    assert [r.kind for r in c.rules] == ["asset", "isolated", "cross", "dynamic", "liquidity-haircut"]
    assert not any(r.enforce_ltv for r in c.rules)
    assert a.markets is a.groups is a.dynamic is a.haircut is None
    m1 = iso.markets["m1"]
    assert (m1.collateral, m1.debt, m1.params.ltv, m1.params.liquidation_threshold, m1.params.liquidation_bonus) \
        == ("WETH", "USDC", 0.80, 0.86, 0.05)
    assert list(iso.markets) == ["m1", "m2"] and iso.assets == {}
    g = x.groups["stables"]
    assert g.assets == ("USDC", "DAI") and (g.params.ltv, g.params.liquidation_threshold) == (0.93, 0.95)
    assert d.dynamic == DynamicSettings(lam=0.94, vol_interval_s=86400, min_history=30, confidence=0.99,
                                        horizon_days=1.0, floor=0.5, cap=0.95, update_every_s=86400, max_step=0.05)
    assert h.haircut == HaircutSettings(k=1.0, floor=0.5)
    canon = c.canonical()["rules"]
    # order-significant tables stay lists of [name, settings] in config order (run_id must see the order)
    assert canon[1]["markets"][0] == ["m1", {"collateral": "WETH", "debt": "USDC", "ltv": 0.80,
                                             "liquidation_threshold": 0.86, "liquidation_bonus": 0.05}]
    assert [m for m, _ in canon[1]["markets"]] == ["m1", "m2"]
    assert dict(canon[2]["groups"])["stables"]["assets"] == ["USDC", "DAI"]
    assert canon[3]["dynamic"]["min_history"] == 30 and canon[4]["haircut"] == {"k": 1.0, "floor": 0.5}
    assert [r["enforce_ltv"] for r in canon] == [False] * 5


def test_explicit_defaults_give_the_same_canonical_config():
    short = cfg(DYNAMIC + HAIRCUT).canonical_json()
    explicit = cfg(DYNAMIC.replace("lambda = 0.94", 'lambda = 0.94\nvol_interval = "1d"\nmin_history = 30\n'
                                   'confidence = 0.99\nhorizon_days = 1.0\nfloor = 0.5\ncap = 0.95\n'
                                   'update_every = "24h"\nmax_step = 0.05')
                   + HAIRCUT.replace("k = 1.0", "k = 1\nfloor = 0.5")).canonical_json()
    assert short == explicit
    assert cfg(DYNAMIC.replace('kind = "dynamic"', 'kind = "dynamic"\nenforce_ltv = false')).canonical_json() \
        == cfg(DYNAMIC).canonical_json()


def test_base_inherits_kind_tables_and_overrides_one_value():
    text = ISOLATED + """
[[rules]]
name = "iso-tight"
base = "iso"
enforce_ltv = true
[rules.markets.m1]
liquidation_threshold = 0.80
""" + DYNAMIC + """
[[rules]]
name = "d2"
base = "d"
[rules.dynamic]
max_step = 0.01
"""
    iso, tight, d, d2 = cfg(text).rules
    assert tight.kind == "isolated" and tight.enforce_ltv and not iso.enforce_ltv
    assert tight.markets["m1"].params.liquidation_threshold == 0.80
    assert tight.markets["m1"].params.ltv == 0.80 and tight.markets["m1"].collateral == "WETH"
    assert tight.markets["m2"] == iso.markets["m2"]
    assert d2.kind == "dynamic" and d2.dynamic.max_step == 0.01 and d2.dynamic.lam == 0.94
    # a child may not switch kind, nor bring a table of another kind
    assert "rules.x2.kind: 'cross' differs from base 'iso' ('isolated')" in error(
        ISOLATED + '[[rules]]\nname = "x2"\nbase = "iso"\nkind = "cross"\n')
    assert "rules.iso2.groups: only valid with kind = 'cross' (this rule set is 'isolated')" in error(
        ISOLATED + '[[rules]]\nname = "iso2"\nbase = "iso"\n[rules.groups.g]\nassets = ["WETH"]\n'
                   'ltv = 0.5\nliquidation_threshold = 0.6\nliquidation_bonus = 0.05\n')


@pytest.mark.parametrize("text, expected", [
    # kind-specific tables in a rule set of another kind
    (PLAIN + '[rules.groups.g]\nassets = ["USDC"]\n', "rules.a.groups: only valid with kind = 'cross' "
                                                      "(this rule set is 'asset')"),
    (PLAIN + "[rules.markets.m]\ncollateral = 'WETH'\n", "rules.a.markets: only valid with kind = 'isolated'"),
    (PLAIN + "[rules.dynamic]\nlambda = 0.9\n", "rules.a.dynamic: only valid with kind = 'dynamic'"),
    (PLAIN + "[rules.haircut]\nk = 2.0\n", "rules.a.haircut: only valid with kind = 'liquidity-haircut'"),
    (DYNAMIC + "[rules.haircut]\nk = 2.0\n", "rules.d.haircut: only valid with kind = 'liquidity-haircut' "
                                             "(this rule set is 'dynamic')"),
    (CROSS + "[rules.dynamic]\nlambda = 0.9\n", "rules.x.dynamic: only valid with kind = 'dynamic' "
                                                "(this rule set is 'cross')"),
    # kinds themselves
    (PLAIN.replace('name = "a"', 'name = "a"\nkind = "isolate"'), "rules.a.kind: invalid value 'isolate'; "
                                                                  "did you mean 'isolated'?"),
    (PLAIN.replace('name = "a"', 'name = "a"\nkind = "portfolio"'), "rules.a.kind: invalid value 'portfolio'; did you mean 'portfolio-"),
    # enforce_ltv
    (PLAIN.replace('name = "a"', 'name = "a"\nenforce_ltv = 1'), "rules.a.enforce_ltv: expected true or false, got 1"),
    (PLAIN.replace('name = "a"', 'name = "a"\nenforce_ltv = "yes"'), "rules.a.enforce_ltv: expected true or false"),
    (PLAIN.replace('name = "a"', 'name = "a"\nenforce_lvt = true'), "rules[0].enforce_lvt: unknown key; "
                                                                     "did you mean 'enforce_ltv'?"),
])
def test_kind_mismatch_and_common_keys(text, expected):
    assert expected in error(text)


@pytest.mark.parametrize("edit, expected", [
    (("[rules.markets.m1]\ncollateral = \"WETH\"\ndebt = \"USDC\"\n", "[rules.markets.m1]\ncollateral = \"WETH\"\n"),
     "rules.iso.markets.m1.debt: missing"),
    (("[rules.markets.m1]\ncollateral = \"WETH\"\n", "[rules.markets.m1]\n"),
     "rules.iso.markets.m1.collateral: missing"),
    (("collateral = \"WETH\"\ndebt = \"USDC\"", "colateral = \"WETH\"\ndebt = \"USDC\""),
     "rules.iso.markets.m1.colateral: unknown key; did you mean 'collateral'?"),
    (("debt = \"USDC\"", "debt = \"WETH\""),
     "rules.iso.markets.m1.debt: a market's debt asset must differ from its collateral ('WETH')"),
    (("debt = \"DAI\"", "debt = \"USDC\""), "rules.iso.markets.m2: pair (WETH, USDC) already defined by market 'm1'"),
    (("debt = \"USDC\"", "debt = \"\""), "rules.iso.markets.m1.debt: expected a non-empty string"),
    (("debt = \"USDC\"", "debt = 5"), "rules.iso.markets.m1.debt: expected a non-empty string, got 5"),
    (("liquidation_threshold = 0.86\n", ""), "rules.iso.markets.m1.liquidation_threshold: missing"),
    (("liquidation_threshold = 0.86", "liquidation_threshold = 0.70"),
     "rules.iso.markets.m1.ltv: must satisfy 0 ≤ ltv ≤ liquidation_threshold (0.7), got 0.8"),
    (("liquidation_threshold = 0.86", "liquidation_threshold = 1.0"),
     "rules.iso.markets.m1.liquidation_threshold: must satisfy 0 ≤ liquidation_threshold < 1"),
    (("liquidation_bonus = 0.05\n[rules.markets.m2]", "liquidation_bonus = -0.01\n[rules.markets.m2]"),
     "rules.iso.markets.m1.liquidation_bonus: must be ≥ 0"),
    (("liquidation_bonus = 0.05\n[rules.markets.m2]", "liquidation_bonus = 0.05\nlltv = 0.9\n[rules.markets.m2]"),
     "rules.iso.markets.m1.lltv: unknown key"),
    (("[rules.markets.m1]", "[rules.markets.\"weth.usdc\"]"), None),  # ids with dots are fine, and errors quote them:
    (("[rules.markets.m1]\ncollateral = \"WETH\"\ndebt = \"USDC\"\n",
      "[rules.markets.\"weth.usdc\"]\ncollateral = \"WETH\"\n"), "rules.iso.markets.\"weth.usdc\".debt: missing"),
])
def test_isolated_market_keys(edit, expected):
    old, new = edit
    assert old in ISOLATED
    text = ISOLATED.replace(old, new, 1)
    if expected is None:
        assert "weth.usdc" in cfg(text).rules[0].markets
    else:
        assert expected in error(text)


def test_isolated_needs_markets():
    bare = '[[rules]]\nname = "iso"\nkind = "isolated"\n'
    assert "rules.iso.markets: kind = \"isolated\" needs at least one [rules.iso.markets.<id>] table" in error(bare)
    assert "rules.iso.markets: kind = \"isolated\" needs at least one" in error(bare + "markets = {}\n")
    assert "rules.iso.markets.m1: expected a table" in error(bare + "[rules.markets]\nm1 = 3\n")


@pytest.mark.parametrize("edit, expected", [
    (('assets = ["USDC", "DAI"]', 'assets = ["USDC", "USDT"]'),
     "rules.x.groups.stables.assets: 'USDT' has no [rules.assets] parameters in this rule set"),
    (('assets = ["USDC", "DAI"]', 'assets = ["USDC", "DIA"]'),
     "rules.x.groups.stables.assets: 'DIA' has no [rules.assets] parameters in this rule set; did you mean 'DAI'?"),
    (('assets = ["USDC", "DAI"]', 'assets = []'), "rules.x.groups.stables.assets: expected a non-empty list"),
    (('assets = ["USDC", "DAI"]', 'assets = "USDC"'), "rules.x.groups.stables.assets: expected a non-empty list"),
    (('assets = ["USDC", "DAI"]', 'assets = ["USDC", 1]'), "rules.x.groups.stables.assets: expected a non-empty list"),
    (('assets = ["USDC", "DAI"]\n', ''), "rules.x.groups.stables.assets: expected a non-empty list"),
    (('assets = ["USDC", "DAI"]', 'asset = ["USDC", "DAI"]'),
     "rules.x.groups.stables.asset: unknown key; did you mean 'assets'?"),
    (("ltv = 0.93\n", ""), "rules.x.groups.stables.ltv: missing"),
    (("ltv = 0.93", "ltv = 0.96"), "rules.x.groups.stables.ltv: must satisfy 0 ≤ ltv ≤ liquidation_threshold"),
    (("liquidation_bonus = 0.01", "liquidation_bonus = -1"), "rules.x.groups.stables.liquidation_bonus: must be ≥ 0"),
    (("[rules.groups.stables]\n", "[rules.groups]\nstables = 1\n[rules.groups.other]\n"),
     "rules.x.groups.stables: expected a table"),
])
def test_cross_group_keys(edit, expected):
    old, new = edit
    assert old in CROSS
    assert expected in error(CROSS.replace(old, new, 1))


def test_cross_groups_not_a_table_and_without_groups():
    assert "rules.x.groups: expected tables [rules.x.groups.<name>]" in error(
        CROSS.split("[rules.groups.stables]")[0].replace('kind = "cross"', 'kind = "cross"\ngroups = 3'))
    # a cross rule set without groups is valid (it behaves like kind = "asset")
    assert cfg(CROSS.split("[rules.groups.stables]")[0]).rules[0].groups == {}


@pytest.mark.parametrize("line, expected", [
    ("lambda = 1.0", "rules.d.dynamic.lambda: must satisfy 0 < lambda < 1, got 1.0"),
    ("lambda = 0", "rules.d.dynamic.lambda: must satisfy 0 < lambda < 1"),
    ("lambda = \"0.9\"", "rules.d.dynamic.lambda: expected a number"),
    ("lambda = nan", "rules.d.dynamic.lambda: must be finite"),
    ("lamda = 0.9", "rules.d.dynamic.lamda: unknown key; did you mean 'lambda'?"),
    ("min_history = 1", "rules.d.dynamic.min_history: expected an integer ≥ 2, got 1"),
    ("min_history = 30.0", "rules.d.dynamic.min_history: expected an integer ≥ 2, got 30.0"),
    ("min_history = true", "rules.d.dynamic.min_history: expected an integer ≥ 2, got True"),
    ("confidence = 1.0", "rules.d.dynamic.confidence: must satisfy 0.5 ≤ confidence < 1, got 1.0"),
    ("confidence = 0.4", "rules.d.dynamic.confidence: must satisfy 0.5 ≤ confidence < 1"),
    ("horizon_days = 0", "rules.d.dynamic.horizon_days: must be > 0"),
    ("horizon_days = -1.5", "rules.d.dynamic.horizon_days: must be > 0"),
    ("floor = 0.6\ncap = 0.5", "rules.d.dynamic.cap: must satisfy 0 ≤ floor ≤ cap < 1, got floor 0.6, cap 0.5"),
    ("cap = 1.0", "rules.d.dynamic.cap: must satisfy 0 ≤ floor ≤ cap < 1"),
    ("floor = -0.1", "rules.d.dynamic.cap: must satisfy 0 ≤ floor ≤ cap < 1, got floor -0.1"),
    ("max_step = 0", "rules.d.dynamic.max_step: must be > 0"),
    ("max_step = -0.05", "rules.d.dynamic.max_step: must be > 0"),
    ("vol_interval = \"1 day\"", "rules.d.dynamic.vol_interval:"),
    ("vol_interval = 86400", "rules.d.dynamic.vol_interval: expected a string like \"1d\", got 86400"),
    ("update_every = \"0s\"", "rules.d.dynamic.update_every:"),
    ("update_every = \"1w\"", "rules.d.dynamic.update_every:"),
])
def test_dynamic_keys(line, expected):
    message = error(DYNAMIC.replace("lambda = 0.94", line))
    assert expected in message


def test_dynamic_bounds_that_are_valid():
    d = cfg(DYNAMIC.replace("lambda = 0.94", 'lambda = 0.999\nconfidence = 0.5\nfloor = 0.7\ncap = 0.7\n'
                            'min_history = 2\nvol_interval = "1h"\nupdate_every = "10min"\nhorizon_days = 0.5'))
    dyn = d.rules[0].dynamic
    assert (dyn.lam, dyn.confidence, dyn.floor, dyn.cap, dyn.min_history) == (0.999, 0.5, 0.7, 0.7, 2)
    assert (dyn.vol_interval_s, dyn.update_every_s, dyn.horizon_days) == (3600, 600, 0.5)
    assert "rules.d.dynamic: expected a table" in error(
        DYNAMIC.replace("[rules.dynamic]\nlambda = 0.94", "")
        .replace('kind = "dynamic"', 'kind = "dynamic"\ndynamic = 3'))


@pytest.mark.parametrize("line, expected", [
    ("k = -0.1", "rules.h.haircut.k: must be ≥ 0, got -0.1"),
    ("k = \"1\"", "rules.h.haircut.k: expected a number"),
    ("k = inf", "rules.h.haircut.k: must be finite"),
    ("floor = 1.5", "rules.h.haircut.floor: must satisfy 0 ≤ floor ≤ 1, got 1.5"),
    ("floor = -0.5", "rules.h.haircut.floor: must satisfy 0 ≤ floor ≤ 1"),
    ("kk = 1", "rules.h.haircut.kk: unknown key; did you mean 'k'?"),
    ("depth = 1", "rules.h.haircut.depth: unknown key"),
])
def test_haircut_keys(line, expected):
    assert expected in error(HAIRCUT.replace("k = 1.0", line))


def test_haircut_bounds_that_are_valid():
    h = cfg(HAIRCUT.replace("k = 1.0", "k = 0\nfloor = 1")).rules[0].haircut
    assert (h.k, h.floor) == (0.0, 1.0)
    h = cfg(HAIRCUT.replace("k = 1.0", "floor = 0")).rules[0].haircut
    assert (h.k, h.floor) == (1.0, 0.0)
    assert "rules.h.haircut: expected a table" in error(
        HAIRCUT.replace("[rules.haircut]\nk = 1.0", "")
        .replace('"liquidity-haircut"', '"liquidity-haircut"\nhaircut = 1'))


def test_file_errors_name_the_file_and_the_key(tmp_path):
    path = tmp_path / "kinds.toml"
    path.write_text(RUN + DYNAMIC.replace("lambda = 0.94", "lambda = 2"))
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(exc.value).startswith(f"{path}: rules.d.dynamic.lambda: must satisfy 0 < lambda < 1")
    assert "\n" not in str(exc.value)
