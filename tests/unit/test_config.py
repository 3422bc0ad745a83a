"""TOML configuration: base deep-merge, defaults, validation messages naming the key (DESIGN §3)."""

from __future__ import annotations

import tomllib

import pytest

from backtest.config import load_config, parse_config
from backtest.errors import ConfigError

BASE = """
[run]
name  = "may-2021"
start = "2021-05-19T00:00:00Z"
end   = "2021-05-20T00:00:00+02:00"

[[rules]]
name = "current"
[rules.assets.WETH]
ltv = 0.80
liquidation_threshold = 0.825
liquidation_bonus = 0.05
[rules.assets."USDC.e"]
ltv = 0.80
liquidation_threshold = 0.85
liquidation_bonus = 0.05

[[rules]]
name = "tighter-weth"
base = "current"
[rules.assets.WETH]
liquidation_threshold = 0.80
"""


def cfg(text: str = BASE):
    return parse_config(tomllib.loads(text), "run.toml")


def error(text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        cfg(text)
    return str(exc.value)


def test_base_deep_merges_and_defaults_fill():
    c = cfg()
    assert c.name == "may-2021"
    assert c.end_us - c.start_us == 22 * 3600 * 1_000_000  # +02:00 converted to UTC
    cur, tight = c.rules
    assert tight.assets["WETH"].liquidation_threshold == 0.80
    assert tight.assets["WETH"].ltv == 0.80 and tight.assets["WETH"].liquidation_bonus == 0.05
    assert tight.assets["USDC.e"] == cur.assets["USDC.e"]
    assert tight.kind == "asset" and tight.market.close_factor == 0.5 and tight.market.gas_usd == 0.0
    assert tight.market.liquidation == "aave" and tight.market.slippage == "none"


def test_canonical_form_is_stable_and_expands_bases():
    a = cfg().canonical_json()
    b = cfg(BASE.replace('name = "tighter-weth"\nbase = "current"\n[rules.assets.WETH]\nliquidation_threshold = 0.80',
                         'name = "tighter-weth"\n[rules.assets.WETH]\nltv = 0.8\nliquidation_threshold = 0.80\n'
                         'liquidation_bonus = 0.05\n[rules.assets."USDC.e"]\nltv = 0.8\n'
                         'liquidation_threshold = 0.85\nliquidation_bonus = 0.05')).canonical_json()
    assert a == b


def test_rule_market_override():
    c = cfg(BASE + '[rules.market]\nclose_factor = 1.0\n')
    assert c.rules[0].market.close_factor == 0.5
    assert c.rules[1].market.close_factor == 1.0 and c.rules[1].market.gas_usd == 0.0


@pytest.mark.parametrize("edit, expected", [
    (("liquidation_threshold = 0.80", "liquidation_treshold = 0.80"),
     "rules.tighter-weth.assets.WETH.liquidation_treshold: unknown key; did you mean 'liquidation_threshold'?"),
    (("[run]", "[runn]"), "runn: unknown key; did you mean 'run'?"),
    (('base = "current"', 'base = "curent"'), "rules.tighter-weth.base: no earlier rule set named 'curent'; "
                                              "did you mean 'current'?"),
    (("liquidation_threshold = 0.80", "liquidation_threshold = 1.0"),
     "rules.tighter-weth.assets.WETH.liquidation_threshold: must satisfy 0 ≤ liquidation_threshold < 1, got 1.0"),
    (("liquidation_threshold = 0.80", "liquidation_threshold = 0.70"),
     "rules.tighter-weth.assets.WETH.ltv: must satisfy 0 ≤ ltv ≤ liquidation_threshold (0.7), got 0.8"),
    (("liquidation_bonus = 0.05\n[rules.assets.\"USDC.e\"]", "liquidation_bonus = -0.05\n[rules.assets.\"USDC.e\"]"),
     "rules.current.assets.WETH.liquidation_bonus: must be ≥ 0"),
    (('start = "2021-05-19T00:00:00Z"', 'start = "2021-05-19T00:00:00"'), "run.start: timestamp '2021-05-19T00:00:00' "
                                                                          "has no time zone"),
    (('start = "2021-05-19T00:00:00Z"', 'start = 2021-05-19T00:00:00Z'), "run.start: expected a quoted timestamp"),
    (('name = "tighter-weth"', 'name = "current"'), "rules.current.name: duplicate rule set name 'current'"),
    (('base = "current"', 'base = "current"\nkind = "isolated"'), "rules.tighter-weth.kind: 'isolated' differs"),
])
def test_invalid_configs_name_the_key(edit, expected):
    old, new = edit
    assert old in BASE
    assert expected in error(BASE.replace(old, new, 1))


@pytest.mark.parametrize("snippet, expected", [
    ('[market]\nliquidation = "liquity"\n', "market.liquidation: 'liquity' is not implemented yet"),
    ('[market]\nliquidation = "aavee"\n', "market.liquidation: invalid value 'aavee'; did you mean 'aave'?"),
    ('[market]\nslippage = "depth"\n', "market.slippage: 'depth' is not implemented yet"),
    ('[market]\nclose_factor = 0\n', "market.close_factor: must satisfy 0 < close_factor ≤ 1"),
    ('[market]\ngas_usd = -1\n', "market.gas_usd: must be ≥ 0"),
    ('[market]\ngas = 1\n', "market.gas: unknown key; did you mean 'gas_usd'?"),
])
def test_market_validation(snippet, expected):
    assert expected in error(BASE + snippet)


def test_step_and_price_source():
    c = cfg(BASE.replace('[run]\n', '[run]\nstep = "10min"\nprice_source = { WETH = "chainlink" }\n'))
    assert c.step_s == 600 and c.price_source == {"WETH": "chainlink"}
    assert "run.step: invalid duration '10 minutes'" in error(BASE.replace('[run]\n', '[run]\nstep = "10 minutes"\n'))
    assert "run.step" in error(BASE.replace('[run]\n', '[run]\nstep = "0s"\n'))


def test_end_before_start_and_missing_parts():
    assert "run.end" in error(BASE.replace('end   = "2021-05-20T00:00:00+02:00"', 'end = "2021-05-18T00:00:00Z"'))
    assert "rules: at least one" in error('[run]\nstart = "2021-05-19T00:00:00Z"\nend = "2021-05-20T00:00:00Z"\n')
    assert "rules.x.assets.WETH.liquidation_bonus: missing" in error(
        '[run]\nstart = "2021-05-19T00:00:00Z"\nend = "2021-05-20T00:00:00Z"\n'
        '[[rules]]\nname = "x"\n[rules.assets.WETH]\nltv = 0.5\nliquidation_threshold = 0.6\n')


def test_load_config_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\n")
    with pytest.raises(ConfigError, match=r"^.*bad.toml: invalid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")
    good = tmp_path / "good.toml"
    good.write_text(BASE)
    assert load_config(good).rules[1].name == "tighter-weth"


@pytest.mark.parametrize("snippet, expected", [
    ('[market]\nliquidation = "aave-v2"\nclose_factor = 1.0\n', "market.close_factor: fixed by the protocol"),
    ('[market]\nliquidation = "aave-v2"\nprotocol_fee = 0.1\n', "market.protocol_fee: only valid with liquidation = 'aave-v3'"),
    ('[market]\nliquidation = "aave-v3"\nversion = "v3.9"\n', "market.version: invalid value 'v3.9'"),
    ('[market]\nliquidation = "aave-v3"\nversion = "v3.2"\ndust = "reduce"\n', "market.dust: the dust rule starts with v3.3"),
    ('[market]\nliquidation = "aave-v3"\nprotocol_fee = 1.5\n', "market.protocol_fee: must satisfy"),
])
def test_aave_market_keys(snippet, expected):
    assert expected in error(BASE + snippet)


def test_models_come_from_the_registry_with_their_engine_arguments():
    def market(snippet):
        return cfg(BASE + snippet).rules[0].market

    m = market('[market]\nliquidation = "aave-v2"\n')
    assert m.plugin.name == "aave-v2" and m.engine_args().tolist() == [0, 0]
    assert market('[market]\nliquidation = "aave-v3"\nversion = "v3.1"\n').engine_args().tolist() == [1, 0]
    assert market('[market]\nliquidation = "aave-v3"\nversion = "v3.3"\ndust = "reduce"\n').engine_args().tolist() == [2, 1]
    assert market('[market]\nliquidation = "aave-v3"\n').engine_args().tolist() == [3, 0]
    plain = market("")
    assert plain.plugin.name == "aave" and plain.engine_args().tolist() == [0.5]
    assert "indices" in market('[market]\nliquidation = "aave-v3"\n').plugin.needs and not plain.plugin.needs
