"""The seams, proven: a liquidation model and a rule kind that live in the test folder plug in through
their registries alone and replay in both engines — through the config, the runner and the store.

Worked example (toy model ``toy-share`` with share 0.25, bonus 10 %): 10 WETH against 8,000 USDC, WETH
falls from 2,000 to 1,000, WETH LT 0.70. Maintenance 7,000 < 8,000: a call repays 2,000 USDC and seizes
2,000 · 1.1 / 1,000 = 2.2 WETH; then 5,460 < 6,000: 1,500 and 1.65 WETH; then 4,305 < 4,500: 1,125 and
1.2375 WETH; then 4.9125 WETH · 1,000 · 0.7 = 3,438.75 ≥ 3,375 and it stops: three calls in that step.
"""

from __future__ import annotations

import numpy as np
import pytest

from backtest.outputs.metrics import METRICS

from backtest import kinds, models
from backtest.config import parse_config
from backtest.engine.fast import replay_fast
from backtest.engine.reference import replay_reference
from backtest.engine.types import Book, Events
from backtest.rules import RunData, compile_rule
from tests.plugins import toy_kind, toy_model

ASSETS = ["USDC", "WETH"]
PRICES = np.array([[1.0, 2000.0], [1.0, 1500.0], [1.0, 1000.0], [1.0, 1000.0]])
GRID = np.arange(4, dtype=np.int64) * 3_600_000_000


@pytest.fixture
def toys():
    models.register(toy_model.MODEL)
    kinds.register(toy_kind.KIND)
    yield
    models.MODELS.pop("toy-share", None)
    kinds.KINDS.pop("flat", None)


def _config(market: str, rule: str) -> dict:
    import tomllib

    return tomllib.loads(f"""
[run]
name = "toys"
start = "1970-01-01T00:00:00Z"
end = "1970-01-01T03:00:00Z"
[market]
{market}
[[rules]]
name = "r"
{rule}
""")


ASSET_RULE = """[rules.assets.USDC]
ltv = 0.0
liquidation_threshold = 0.0
liquidation_bonus = 0.0
[rules.assets.WETH]
ltv = 0.6
liquidation_threshold = 0.7
liquidation_bonus = 0.10
"""


def _data(collateral, debt) -> RunData:
    book = Book(np.array(collateral, dtype=np.float64), np.array(debt, dtype=np.float64))
    series = {a: (GRID, PRICES[:, k].copy()) for k, a in enumerate(ASSETS)}
    return RunData(ASSETS, np.array(["acct"] * len(collateral), dtype=object), GRID, 0, PRICES, book,
                   Events.empty(), series)


def _both(compiled):
    out = []
    for engine in (replay_fast, replay_reference):
        out.append(engine(PRICES, compiled.book, compiled.events, compiled.params, growth=compiled.growth))
    return out


def _same(a, b):
    la, lb = a.liquidations.sorted(), b.liquidations.sorted()
    for f in ("step", "account", "debt_asset", "collateral_asset", "debt_repaid", "collateral_seized",
              "debt_repaid_usd", "penalty_usd", "protocol_fee"):
        assert np.array_equal(getattr(la, f), getattr(lb, f)), f
    for f in ("realised_bad_debt", "unrealised_bad_debt", "liquidation_calls", "collateral_usd", "debt_usd",
              "final_collateral", "final_debt"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f


def test_a_model_from_the_test_folder_replays_in_both_engines(toys):
    cfg = parse_config(_config('liquidation = "toy-share"\nshare = 0.25', ASSET_RULE))
    rule = cfg.rules[0]
    assert rule.market.plugin is toy_model.MODEL and rule.market.model_settings() == {"share": 0.25}
    compiled = compile_rule(rule, _data([[0.0, 10.0]], [[8000.0, 0.0]]))
    fast, ref = _both(compiled)
    _same(fast, ref)
    liq = fast.liquidations.sorted()
    assert liq.step.tolist() == [2, 2, 2]
    assert liq.debt_repaid.tolist() == pytest.approx([2000.0, 1500.0, 1125.0], rel=1e-15)
    assert liq.collateral_seized.tolist() == pytest.approx([2.2, 1.65, 1.2375], rel=1e-12)
    assert fast.final_debt[0].tolist() == pytest.approx([3375.0, 0.0], rel=1e-15)
    assert fast.final_collateral[0, 1] == pytest.approx(4.9125, rel=1e-12)
    # the model's key is its own: the DESIGN §4 model refuses it, and the toy refuses close_factor
    with pytest.raises(Exception, match=r"market\.share: only valid with liquidation = 'toy-share'"):
        parse_config(_config('share = 0.3', ASSET_RULE))
    with pytest.raises(Exception, match=r"market\.close_factor: fixed by the protocol for liquidation = 'toy-share'"):
        parse_config(_config('liquidation = "toy-share"\nclose_factor = 0.3', ASSET_RULE))


def test_the_share_decides_the_calls(toys):
    """Same book, share 1.0: the first call repays what the whole WETH balance covers (10 000 / 1.1)."""
    cfg = parse_config(_config('liquidation = "toy-share"\nshare = 1.0', ASSET_RULE))
    fast, ref = _both(compile_rule(cfg.rules[0], _data([[0.0, 10.0]], [[8000.0, 0.0]])))
    _same(fast, ref)
    liq = fast.liquidations.sorted()
    # at 1,500: maintenance 10,500 ≥ 8,000, no call; at 1,000: 7,000 < 8,000 and 8,000 ≤ 10,000/1.1
    assert liq.step.tolist() == [2] and liq.debt_repaid.tolist() == [8000.0]
    assert liq.collateral_seized[0] == pytest.approx(8.8, rel=1e-15)


def test_a_kind_from_the_test_folder_with_its_own_requirement_and_no_bound(toys):
    cfg = parse_config(_config("", 'kind = "flat"\n[rules.flat]\nhaircut = 0.3\nbonus = 0.10'))
    rule = cfg.rules[0]
    assert rule.plugin is toy_kind.KIND and rule.setting("flat") == toy_kind.FlatSettings(0.3, 0.10)
    canon = cfg.canonical()["rules"][0]
    assert canon["flat"] == {"haircut": 0.3, "bonus": 0.10} and canon["kind"] == "flat"
    # USDC counts as collateral too under "flat" (no [rules.assets] at all)
    compiled = compile_rule(rule, _data([[0.0, 10.0], [5000.0, 0.0]], [[8000.0, 0.0], [0.0, 1.0]]))
    fast, ref = _both(compiled)
    _same(fast, ref)
    # no skipping bound: every account-step is evaluated
    assert fast.stats["evaluated_account_steps"] == fast.stats["account_steps"] == 2 * 4
    liq = fast.liquidations.sorted()
    # account 0 at 1,000: 7,000 < 8,000 → DESIGN §4 close factor 0.5 repays 4,000 for 4.4 WETH; then
    # 5.6 · 1,000 · 0.7 = 3,920 < 4,000 → 2,000 for 2.2 WETH; then 3.4·700 = 2,380 ≥ 2,000
    assert liq.account.tolist() == [0, 0] and liq.step.tolist() == [2, 2]
    assert liq.debt_repaid.tolist() == [4000.0, 2000.0]
    assert liq.collateral_seized.tolist() == pytest.approx([4.4, 2.2], rel=1e-12)
    # account 1 (5,000 USDC against 1 WETH) stays healthy: 3,500 ≥ 2,000 at the top
    assert fast.final_debt[1].tolist() == [0.0, 1.0]
    # the result tables of a plug-in kind without per-asset thresholds: what backs debt counts whole
    from backtest.outputs.tables import result_tables
    from backtest.runner import RuleOutcome

    tables = result_tables("r", ASSETS, np.array(["a0", "a1"], dtype=object), GRID,
                           [RuleOutcome(rule, compiled, fast, {m: 0.0 for m in METRICS}, "historical", PRICES[-1])])
    states = tables["account_states"].to_pylist()
    assert [r["account"] for r in states] == ["a0", "a1"]
    for r in states:
        assert r["maintenance_usd"] == pytest.approx(r["collateral_usd"]) and not r["written_off"]


def test_toy_kind_and_toy_model_together(toys):
    cfg = parse_config(_config('liquidation = "toy-share"\nshare = 0.25',
                               'kind = "flat"\n[rules.flat]\nhaircut = 0.3\nbonus = 0.10'))
    fast, ref = _both(compile_rule(cfg.rules[0], _data([[0.0, 10.0]], [[8000.0, 0.0]])))
    _same(fast, ref)
    assert fast.liquidations.debt_repaid.tolist() == pytest.approx([2000.0, 1500.0, 1125.0], rel=1e-15)


def test_unregistered_names_are_config_errors_with_a_hint():
    with pytest.raises(Exception, match=r"market\.liquidation: invalid value 'toy-shar'"):
        parse_config(_config('liquidation = "toy-shar"', ASSET_RULE))
    with pytest.raises(Exception, match=r"rules\.r\.kind: invalid value 'flat'"):
        parse_config(_config("", 'kind = "flat"'))
