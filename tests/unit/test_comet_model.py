"""Replay model ``comet`` (issue 13): absorb + store-front sales through both engines — PROTOCOLS §2.6's
worked example, reserve accounting, buy delay / capacity / target, fast == reference on random books, config."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from backtest.config import parse_config
from backtest.engine.fast import replay_fast
from backtest.engine.reference import replay_reference
from backtest.engine.types import BORROW, REPAY, SUPPLY, WITHDRAW, Book, Events, Params
from backtest.errors import ConfigError
from backtest.models import get

ENGINES = (replay_reference, replay_fast)
COMET = get("comet")


def comet_params(lt, ltv, lf, *, assets, gas=0.0, enforce=False, **market):
    settings = {**COMET.keys, "target_reserves": 1e12, **market}
    lf = np.asarray(lf, dtype=np.float64)
    lb = np.where(lf > 0, 1.0 / np.where(lf > 0, lf, 1.0) - 1.0, 0.0)
    return Params(np.asarray(ltv, np.float64), np.asarray(lt, np.float64), lb, model="comet",
                  model_args=COMET.bind(settings, assets), gas_usd=gas, enforce_ltv=enforce)


# USDC market; WETH: BCF 0.825, LCF 0.895, LF 0.95; SFPF 0.6. 10 WETH, 16,000 USDC borrowed.
EXAMPLE = dict(lt=[0.0, 0.895], ltv=[0.0, 0.825], lf=[0.0, 0.95], assets=["USDC", "WETH"])


@pytest.mark.parametrize("price, user_keeps, bad, reserves_net", [
    # 1,780: liquidity −69 → absorb: credit 16,910 → the user keeps a 910 USDC supply; basePaidOut 16,910;
    # selling the 10 WETH at 1,780·(1 − 0.6·0.05) = 1,726.60 brings 17,266: reserves net +356
    (1_780.0, 910.0, 0.0, 356.0),
    # gap to 1,500: credit 14,250 < 16,000 → nothing for the user; basePaidOut 16,000; sale at 1,455 brings
    # 14,550: reserves net −1,450, the bad debt
    (1_500.0, 0.0, 1_450.0, -1_450.0),
])
def test_worked_example_of_protocols_section_2_6(price, user_keeps, bad, reserves_net):
    prices = np.array([[1.0, 2_000.0], [1.0, price], [1.0, price]])
    book = Book(np.array([[0.0, 10.0]]), np.array([[16_000.0, 0.0]]))
    p = comet_params(**EXAMPLE, reserves=0.0)
    for engine in ENGINES:
        r = engine(prices, book, Events.empty(), p)
        assert len(r.liquidations) == 1 and r.liquidations.step.tolist() == [1]
        assert r.liquidations.collateral_seized[0] == pytest.approx(10.0)  # all of it
        assert r.liquidations.penalty_usd[0] == pytest.approx(10 * price * 0.05)  # Σ value·(1 − LF)
        assert r.liquidations.debt_repaid_usd[0] == pytest.approx(16_000.0)
        assert r.final_debt[0].tolist() == [0.0, 0.0]
        assert r.final_collateral[0, 0] == pytest.approx(user_keeps, abs=1e-9)
        assert r.final_collateral[0, 1] == 0.0
        assert r.realised_bad_debt.sum() == pytest.approx(bad, abs=1e-6)
        assert r.realised_bad_debt[1] == pytest.approx(bad, abs=1e-6)  # sold at once (no delay, no cap)
        assert r.stats["protocol_reserves_usd"] == pytest.approx(reserves_net, abs=1e-6)
        assert r.stats["absorbed_collateral_unsold_usd"] == 0.0


def test_not_for_sale_while_reserves_are_at_target_then_unrealised():
    prices = np.array([[1.0, 2_000.0], [1.0, 1_500.0], [1.0, 1_500.0]])
    book = Book(np.array([[0.0, 10.0]]), np.array([[16_000.0, 0.0]]))
    # reserves 20,000 − 16,000 paid out = 4,000 ≥ target 3,000: no sale; the lot stays unsold
    p = comet_params(**EXAMPLE, reserves=20_000.0, target_reserves=3_000.0)
    for engine in ENGINES:
        r = engine(prices, book, Events.empty(), p)
        assert r.realised_bad_debt.sum() == 0.0
        assert r.stats["protocol_reserves_usd"] == pytest.approx(4_000.0)
        assert r.stats["absorbed_collateral_unsold_usd"] == pytest.approx(15_000.0)
        # unrealised: 16,000 paid − 10 × 1,455 at the store-front price = 1,450 at steps 1 and 2
        np.testing.assert_allclose(r.unrealised_bad_debt, [0.0, 1_450.0, 1_450.0], atol=1e-6)


def test_buy_delay_and_capacity_spread_the_sale():
    prices = np.array([[1.0, 2_000.0], [1.0, 1_500.0], [1.0, 1_500.0], [1.0, 1_500.0], [1.0, 1_500.0]])
    book = Book(np.array([[0.0, 10.0]]), np.array([[16_000.0, 0.0]]))
    p = comet_params(**EXAMPLE, reserves=0.0, buy_delay_steps=1, buy_capacity_usd=6_000.0)
    for engine in ENGINES:
        r = engine(prices, book, Events.empty(), p)
        # absorbed at step 1; sales from step 2: 6,000 + 6,000 + 2,550 of base (14,550 in all)
        assert r.realised_bad_debt.tolist() == pytest.approx([0, 0, 0, 0, 1_450.0], abs=1e-6)
        np.testing.assert_allclose(r.unrealised_bad_debt[:4], [0.0, 1_450.0, 1_450.0, 1_450.0], atol=1e-6)
        assert r.stats["protocol_reserves_usd"] == pytest.approx(-1_450.0)


def test_no_sale_when_the_buyers_discount_does_not_pay_for_gas():
    prices = np.array([[1.0, 2_000.0], [1.0, 1_500.0]])
    book = Book(np.array([[0.0, 10.0]]), np.array([[16_000.0, 0.0]]))
    p = comet_params(**EXAMPLE, reserves=0.0, gas=1_000.0)  # discount 10·1,500·0.03 = 450 < 1,000
    for engine in ENGINES:
        r = engine(prices, book, Events.empty(), p)
        assert len(r.liquidations) == 1  # the absorb itself pays no gas
        assert r.stats["absorbed_collateral_unsold_usd"] == pytest.approx(15_000.0)


def test_nothing_to_seize_is_written_off_at_once():
    prices = np.array([[1.0, 2_000.0], [1.0, 2_000.0]])
    book = Book(np.array([[100.0, 0.0]]), np.array([[0.0, 1.0]]))  # USDC (not collateral) against WETH debt
    p = comet_params(**EXAMPLE)
    for engine in ENGINES:
        r = engine(prices, book, Events.empty(), p)
        assert len(r.liquidations) == 0 and r.written_off[0]
        assert r.realised_bad_debt[0] == pytest.approx(2_000.0)


def _random(rng, T=90, A=60):
    K = 3  # USDC (base), WETH, WBTC
    start = np.array([1.0, 2_000.0, 30_000.0])
    prices = start * np.exp(np.cumsum(rng.normal(0, [0.0002, 0.012, 0.01], (T, K)), axis=0))
    prices[T // 2:, 1:] *= rng.uniform(0.6, 0.95)
    coll = np.where(rng.random((A, K)) < 0.6, rng.lognormal(8, 1.5, (A, K)) / start, 0.0)
    coll[:, 0] = 0.0
    debt = np.zeros((A, K))
    debt[:, 0] = (coll * start * 0.85).sum(axis=1) * rng.uniform(0.5, 1.15, A)
    E = 60
    ev = Events(rng.integers(0, A, E), np.sort(rng.integers(0, T, E)), rng.integers(0, K, E),
                rng.choice([SUPPLY, WITHDRAW, BORROW, REPAY], E).astype(np.int8), rng.lognormal(3, 2, E))
    return prices, Book(coll, debt), ev


@pytest.mark.parametrize("seed", range(6))
def test_fast_equals_reference_and_reserves_balance(seed):
    rng = np.random.default_rng(seed)
    prices, book, ev = _random(rng)
    lt = np.array([0.0, 0.895, 0.77])
    p = comet_params(lt, lt - 0.07 * (lt > 0), [0.0, 0.95, 0.93], assets=["USDC", "WETH", "WBTC"],
                     gas=float(rng.choice([0.0, 5.0])), enforce=bool(seed % 2), reserves=1e5,
                     target_reserves=float(rng.choice([1e12, 1e5])), buy_delay_steps=int(seed % 3),
                     buy_capacity_usd=float(rng.choice([0.0, 20_000.0])))
    ref = replay_reference(prices, book, ev, p)
    assert len(ref.liquidations) > 0
    for levels in (None, [16, 4]):
        fast = replay_fast(prices, book, ev, p, levels=levels)
        a, b = fast.liquidations.sorted(), ref.liquidations.sorted()
        for f in ("step", "account", "collateral_asset", "debt_repaid_usd", "collateral_seized", "penalty_usd"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
        np.testing.assert_array_equal(fast.final_collateral, ref.final_collateral)
        np.testing.assert_array_equal(fast.final_debt, ref.final_debt)
        np.testing.assert_array_equal(fast.realised_bad_debt, ref.realised_bad_debt)
        np.testing.assert_array_equal(fast.unrealised_bad_debt, ref.unrealised_bad_debt)
        assert fast.stats["protocol_reserves_usd"] == ref.stats["protocol_reserves_usd"]
    # absorbs take whole balances; nothing negative; bad debt ≥ 0
    assert (ref.final_collateral >= 0).all() and (ref.final_debt >= 0).all()
    assert (ref.realised_bad_debt >= 0).all() and (ref.unrealised_bad_debt >= -1e-9).all()
    # reserves accounting: end reserves = start − Σ basePaidOut + Σ proceeds; with every lot sold (unlimited
    # capacity, no target), the realised bad debt is Σ max(0, paid − proceeds) ≥ start − end reserves
    liq = ref.liquidations.sorted()
    if p.model_args[2] > 1e11 and p.model_args[5] == 0 and ref.stats["absorbed_collateral_unsold_usd"] == 0:
        net_loss = 1e5 - ref.stats["protocol_reserves_usd"]
        assert ref.realised_bad_debt.sum() >= net_loss - 1e-6 * max(1.0, abs(net_loss))
    assert (liq.collateral_seized > 0).all()


RUN = '[run]\nname = "c"\nstart = "2021-05-19T00:00:00Z"\nend = "2021-05-19T02:00:00Z"\n'


def test_comet_config_with_its_own_asset_keys():
    cfg = parse_config(tomllib.loads(RUN + """
[[rules]]
name = "comet"
[rules.market]
liquidation = "comet"
base = "USDC"
store_front_price_factor = 0.6
target_reserves = 5000000.0
reserves = 1000000.0
buy_delay_steps = 2
[rules.assets.WETH]
borrow_collateral_factor = 0.825
liquidate_collateral_factor = 0.895
liquidation_factor = 0.95
[rules.assets.USDC]
ltv = 0.0
liquidation_threshold = 0.0
liquidation_bonus = 0.0
"""))
    (rule,) = cfg.rules
    w = rule.assets["WETH"]
    assert (w.ltv, w.liquidation_threshold) == (0.825, 0.895)
    assert w.liquidation_bonus == pytest.approx(1 / 0.95 - 1)
    assert rule.market.model_settings() == {"base": "USDC", "store_front_price_factor": 0.6,
                                            "target_reserves": 5e6, "reserves": 1e6, "buy_delay_steps": 2,
                                            "buy_capacity_usd": 0.0}
    assert cfg.canonical()["rules"][0]["assets"]["WETH"] == {
        "borrow_collateral_factor": 0.825, "liquidate_collateral_factor": 0.895, "liquidation_factor": 0.95}


@pytest.mark.parametrize("text, message", [
    ("[rules.assets.WETH]\nborrow_collateral_factor = 0.9\nliquidate_collateral_factor = 0.85\nliquidation_factor = 0.95\n",
     r"rules\.c\.assets\.WETH\.borrow_collateral_factor: must satisfy"),
    ("[rules.assets.WETH]\nborrow_collateral_factor = 0.8\nliquidate_collateral_factor = 0.85\n",
     r"rules\.c\.assets\.WETH\.liquidation_factor: missing"),
    ("[rules.assets.WETH]\nborrow_collateral_factor = 0.8\nliquidate_collateral_factor = 0.85\nliquidation_factor = 1.2\n",
     r"rules\.c\.assets\.WETH\.liquidation_factor: must satisfy"),
    ("[rules.market]\nstore_front_price_factor = 2.0\n", r"store_front_price_factor: must satisfy"),
    ("[rules.market]\nbuy_delay_steps = -1\n", r"buy_delay_steps: expected an integer"),
])
def test_comet_config_errors(text, message):
    head = '[[rules]]\nname = "c"\n[rules.market]\nliquidation = "comet"\n'
    if text.startswith("[rules.market]"):
        head = '[[rules]]\nname = "c"\n'
        text = text.replace("[rules.market]\n", '[rules.market]\nliquidation = "comet"\n')
    with pytest.raises(ConfigError, match=message):
        parse_config(tomllib.loads(RUN + head + text))


@pytest.mark.parametrize("seed", range(100))
def test_replay_absorb_matches_the_integer_layer(seed):
    """The engine's absorb (both engines) against ``backtest.protocols.comet.absorb_account``: the user's
    credit left as base supply, the debt extinguished and the penalty, within 1e-9."""
    from backtest.protocols import comet as exact

    rng = np.random.default_rng(seed)
    # the same numbers in both layers: 8-decimal prices, balances in whole raw units
    p_weth, p_wbtc = round(rng.uniform(800, 4_000), 8), round(rng.uniform(10_000, 60_000), 8)
    weth, wbtc = round(rng.uniform(0.5, 200), 18), round(float(rng.choice([0.0, rng.uniform(0.01, 5)])), 8)
    value_lcf = weth * p_weth * 0.895 + wbtc * p_wbtc * 0.77
    debt = round(value_lcf * float(rng.uniform(1.001, 1.4)), 6)  # liquidatable
    prices = np.array([[1.0, p_wbtc, p_weth]])
    book = Book(np.array([[0.0, wbtc, weth]]), np.array([[debt, 0.0, 0.0]]))
    p = comet_params([0.0, 0.77, 0.895], [0.0, 0.70, 0.825], [0.0, 0.95, 0.95], assets=["USDC", "WBTC", "WETH"])
    ints = exact.absorb_account(
        base_decimals=6, base_price=10**8, base_supply_index=10**15, base_borrow_index=10**15,
        principal=-round(debt * 1e6), collateral={"WBTC": round(wbtc * 1e8), "WETH": round(weth * 1e18)},
        assets={"WBTC": (8, round(p_wbtc * 1e8), 77 * 10**16, 95 * 10**16),
                "WETH": (18, round(p_weth * 1e8), 895 * 10**15, 95 * 10**16)})
    tol = 1e-9 * (weth * p_weth + wbtc * p_wbtc) + 2e-6  # 1e-9 of the value, plus the raw-unit floors
    for engine in ENGINES:
        r = engine(prices, book, Events.empty(), p)
        assert r.final_collateral[0, 1:].tolist() == [0.0, 0.0]  # everything absorbed
        assert r.final_collateral[0, 0] == pytest.approx(ints.new_balance / 1e6, abs=tol)
        assert r.liquidations.debt_repaid_usd.sum() == pytest.approx(ints.repay_amount / 1e6, rel=1e-9)
        assert r.liquidations.penalty_usd.sum() == pytest.approx(ints.penalty_usd / 1e8, abs=tol)
        base_paid = max(r.liquidations.debt_repaid_usd.sum(), r.final_collateral[0, 0] + debt)
        assert base_paid == pytest.approx(ints.base_paid_out / 1e6, abs=tol)


@pytest.mark.parametrize("seed", range(50))
def test_store_front_price_matches_quote_collateral(seed):
    from backtest.protocols import comet as exact

    rng = np.random.default_rng(seed)
    price, base_amount = float(rng.uniform(500, 5_000)), float(rng.uniform(100, 1e6))
    lf = float(rng.choice([0.9, 0.93, 0.95]))
    got = exact.quote_collateral(asset_price=round(price * 1e8), base_price=10**8, liquidation_factor=round(lf * 1e18),
                                 store_front_price_factor=6 * 10**17, asset_decimals=18, base_decimals=6,
                                 base_amount=round(base_amount * 1e6))
    store = round(price * 1e8) / 1e8 * (1 - 0.6 * (1 - lf))  # the replay's store-front price (backtest.models.comet)
    assert got / 1e18 == pytest.approx(round(base_amount * 1e6) / 1e6 / store, rel=1e-9)
