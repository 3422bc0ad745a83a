"""Replay models ``compound-v2`` and ``morpho-blue`` (issue 13): PROTOCOLS §3 / §6 worked examples through
both engines, fast == reference on random books, and their config keys (Morpho's ``[[rules.markets]]``)."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from backtest.config import parse_config
from backtest.engine.fast import replay_fast
from backtest.engine.reference import replay_reference
from backtest.engine.types import BORROW, REPAY, SUPPLY, WITHDRAW, Book, Events, Params
from backtest.errors import ConfigError
from backtest.kinds.isolated import morpho_lif
from backtest.models import get

ENGINES = (replay_reference, replay_fast)


def params(model, lt, lb, ltv=None, **kw):
    lt = np.asarray(lt, dtype=np.float64)
    m = get(model)
    settings = {k: kw.pop(k, v) for k, v in m.keys.items()}
    return Params(lt if ltv is None else np.asarray(ltv, np.float64), lt, np.asarray(lb, np.float64), model=model,
                  model_args=m.engine_args(settings), **kw)


def test_compound_v2_worked_example_of_protocols_section_3():
    # 10 ETH (CF 0.825) at 1,800 against 15,000 DAI: sumCollateral 14,850 < 15,000 (shortfall 150). Close factor
    # 0.5 → repay 7,500 DAI; seize 7,500 × 1.08 / 1,800 = 4.5 ETH, of which 2.8 % (0.126 ETH) to reserves.
    prices = np.array([[1.0, 1_800.0]])  # DAI, WETH
    book = Book(np.array([[0.0, 10.0]]), np.array([[15_000.0, 0.0]]))
    p = params("compound-v2", [0.0, 0.825], [0.08, 0.08])
    for engine in ENGINES:
        r = engine(prices, book, Events.empty(), p)
        liq = r.liquidations
        assert len(liq) >= 1
        assert liq.debt_repaid[0] == pytest.approx(7_500.0, rel=1e-12)
        assert liq.collateral_seized[0] == pytest.approx(4.5, rel=1e-12)
        assert liq.protocol_fee[0] == pytest.approx(0.126, rel=1e-12)
        assert liq.penalty_usd[0] == pytest.approx(0.08 * 7_500, rel=1e-12)  # (incentive − 1)·repay
    # after the call: 5.5 ETH · 1,800 · 0.825 = 8,167.5 ≥ 7,500: no second call
    assert len(replay_reference(prices, book, Events.empty(), p).liquidations) == 1


@pytest.mark.parametrize("price, seized, left, bad", [
    # LLTV 0.86, LIF 1.0438413361: at 1,700 the whole 15,000 USDC is repaid for 15,000·LIF/1,700 WETH
    (1_700.0, 15_000 * morpho_lif(0.86) / 1_700, 10 - 15_000 * morpho_lif(0.86) / 1_700, 0.0),
    # at 1,400 all 10 WETH go for 14,000/LIF = 13,412.00 USDC; the other 1,588.00 is bad debt
    (1_400.0, 10.0, 0.0, 15_000 - 14_000 / morpho_lif(0.86)),
])
def test_morpho_blue_worked_example_of_protocols_section_6(price, seized, left, bad):
    assert morpho_lif(0.86) == pytest.approx(1.043841336116910229, rel=1e-15)
    prices = np.array([[1.0, price]])  # USDC, WETH
    book = Book(np.array([[0.0, 10.0]]), np.array([[15_000.0, 0.0]]))
    p = params("morpho-blue", [0.0, 0.86], [0.0, morpho_lif(0.86) - 1])
    for engine in ENGINES:
        r = engine(prices, book, Events.empty(), p)
        assert len(r.liquidations) == 1
        assert r.liquidations.collateral_seized[0] == pytest.approx(seized, rel=1e-12)
        assert r.final_collateral[0, 1] == pytest.approx(left, abs=1e-9)
        assert r.realised_bad_debt.sum() == pytest.approx(bad, rel=1e-9, abs=1e-9)
    assert round(15_000 - 14_000 / morpho_lif(0.86), 2) == 1_588.00


def _random(rng, T=100, K=3, A=50):
    start = np.array([1.0, 2_000.0, 30_000.0])[:K]
    prices = start * np.exp(np.cumsum(rng.normal(0, [0.0003, 0.012, 0.01], (T, K)), axis=0))
    prices[T // 2:, 1:] *= rng.uniform(0.6, 0.95)
    coll = np.where(rng.random((A, K)) < 0.6, rng.lognormal(8, 1.5, (A, K)) / start, 0.0)
    debt = np.zeros((A, K))
    j = rng.integers(0, K, A)
    debt[np.arange(A), j] = (coll * start * 0.8).sum(axis=1) * rng.uniform(0.5, 1.2, A) / start[j]
    E = 60
    ev = Events(rng.integers(0, A, E), np.sort(rng.integers(0, T, E)), rng.integers(0, K, E),
                rng.choice([SUPPLY, WITHDRAW, BORROW, REPAY], E).astype(np.int8), rng.lognormal(3, 2, E))
    lt = rng.uniform(0.5, 0.9, K)
    return prices, Book(coll, debt), ev, lt, rng.uniform(0.0, 0.15, K)


@pytest.mark.parametrize("model", ["compound-v2", "morpho-blue"])
@pytest.mark.parametrize("seed", range(5))
def test_fast_equals_reference_on_random_books(model, seed):
    rng = np.random.default_rng(seed + (0 if model == "morpho-blue" else 100))
    prices, book, ev, lt, lb = _random(rng)
    extra = {"close_factor": float(rng.uniform(0.05, 0.9))} if model == "compound-v2" else {}
    p = params(model, lt, lb, ltv=lt * 0.95, gas_usd=float(rng.choice([0.0, 5.0])), enforce_ltv=bool(seed % 2),
               **extra)
    ref = replay_reference(prices, book, ev, p)
    assert len(ref.liquidations) > 0
    for levels in (None, [16, 4]):
        fast = replay_fast(prices, book, ev, p, levels=levels)
        a, b = fast.liquidations.sorted(), ref.liquidations.sorted()
        for f in ("step", "account", "debt_repaid", "collateral_seized", "protocol_fee"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
        np.testing.assert_array_equal(fast.final_collateral, ref.final_collateral)
        np.testing.assert_array_equal(fast.final_debt, ref.final_debt)
        np.testing.assert_array_equal(fast.realised_bad_debt, ref.realised_bad_debt)
        np.testing.assert_array_equal(fast.unrealised_bad_debt, ref.unrealised_bad_debt)
    liq = ref.liquidations
    assert (liq.collateral_seized >= 0).all() and (ref.final_collateral >= 0).all() and (ref.final_debt >= 0).all()
    assert (liq.protocol_fee <= liq.collateral_seized).all()


RUN = '[run]\nname = "m"\nstart = "2021-05-19T00:00:00Z"\nend = "2021-05-19T02:00:00Z"\n'


def _cfg(text):
    return parse_config(tomllib.loads(RUN + text))


def test_morpho_markets_in_morphos_own_form():
    cfg = _cfg("""
[[rules]]
name = "morpho"
kind = "isolated"
[rules.market]
liquidation = "morpho-blue"
[[rules.markets]]
id = "WETH-USDC"
loan = "USDC"
collateral = "WETH"
lltv = 0.86
[[rules.markets]]
id = "WBTC-USDC"
loan = "USDC"
collateral = "WBTC"
lltv = 0.915
""")
    (rule,) = cfg.rules
    m = rule.markets["WETH-USDC"]
    assert (m.collateral, m.debt, m.params.ltv, m.params.liquidation_threshold) == ("WETH", "USDC", 0.86, 0.86)
    assert m.params.liquidation_bonus == pytest.approx(0.04384, abs=1e-5)
    assert rule.markets["WBTC-USDC"].params.liquidation_bonus == pytest.approx(0.02617, abs=1e-5)
    assert rule.market.liquidation == "morpho-blue"


def test_compound_v2_keys():
    cfg = _cfg('[market]\nliquidation = "compound-v2"\nclose_factor = 0.5\nprotocol_seize_share = 0.0\n'
               '[[rules]]\nname = "c"\n[rules.assets.WETH]\nltv = 0.825\nliquidation_threshold = 0.825\n'
               'liquidation_bonus = 0.08\n')
    assert cfg.rules[0].market.model_settings() == {"close_factor": 0.5, "protocol_seize_share": 0.0}


@pytest.mark.parametrize("text, message", [
    ('[market]\nliquidation = "morpho-blue"\nclose_factor = 0.5\n', "market.close_factor: fixed by the protocol"),
    ('[market]\nliquidation = "compound-v2"\nprotocol_seize_share = 1.5\n', "market.protocol_seize_share: must"),
    ('[market]\nliquidation = "aave"\nprotocol_seize_share = 0.1\n',
     "market.protocol_seize_share: only valid with liquidation = 'compound-v2'"),
])
def test_model_key_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(text + '[[rules]]\nname = "c"\n[rules.assets.WETH]\nltv = 0.8\nliquidation_threshold = 0.8\n'
                    'liquidation_bonus = 0.05\n')


@pytest.mark.parametrize("text, message", [
    ('[[rules.markets]]\nid = "a"\nloan = "USDC"\ncollateral = "WETH"\n', r"rules\.x\.markets\[0\]\.lltv: missing"),
    ('[[rules.markets]]\nid = "a"\nloan = "USDC"\ncollateral = "WETH"\nlltv = 1.2\n', r"markets\[0\]\.lltv: must"),
    ('[[rules.markets]]\nid = "a"\nloan = "USDC"\ncollateral = "WETH"\nlltv = 0.8\nltv = 0.7\n',
     r"markets\[0\]\.ltv: unknown key"),
])
def test_morpho_market_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        _cfg('[[rules]]\nname = "x"\nkind = "isolated"\n' + text)


# -- the replay calls held to the integer layers -----------------------------------------------------------
@pytest.mark.parametrize("seed", range(200))
def test_morpho_call_matches_the_integer_layer(seed):
    from backtest.models.lending import morpho_blue_call
    from backtest.protocols import morpho_blue as mb

    rng = np.random.default_rng(seed)
    lltv = float(rng.choice([0.77, 0.86, 0.915, 0.945]))
    lltv_wad = round(lltv * 1e18)
    price = float(rng.uniform(500, 5_000))  # USDC per WETH
    coll = float(rng.uniform(0.1, 1_000))  # WETH
    hf = float(rng.uniform(0.5, 0.999))
    debt = coll * price * lltv / hf  # USDC, liquidatable
    d_raw, c_raw = int(debt * 1e6), int(coll * 1e18)
    oracle = int(price * 1e36 * 10 ** (6 - 18))
    shares = d_raw * 10**6  # the sole borrower of a fresh market
    bonus = morpho_lif(lltv) - 1
    repaid, seized, _, whole, ok = morpho_blue_call(np.zeros(1), d_raw / 1e6, 1.0, c_raw / 1e18, oracle / 1e24, bonus,
                                                    0.0, 0.0, 0.0)
    assert ok
    market = dict(lltv=lltv_wad, oracle_price=oracle, borrow_shares=shares, collateral=c_raw,
                  total_borrow_assets=d_raw, total_borrow_shares=shares, total_supply_assets=2 * d_raw)
    if not whole:  # the collateral covers the whole debt at LIF: repay every share
        exact = mb.liquidate(**market, repaid_shares=shares)
        assert repaid == pytest.approx(exact.repaid_assets / 1e6, rel=1e-9)
        assert seized == pytest.approx(exact.seized_assets / 1e18, rel=1e-9)
        assert exact.bad_debt_assets == 0
    else:  # all the collateral goes: the rest of the debt is bad debt
        exact = mb.liquidate(**market, seized_assets=c_raw)
        assert seized == c_raw / 1e18
        assert repaid == pytest.approx(exact.repaid_assets / 1e6, rel=1e-9, abs=2e-6)
        assert (d_raw / 1e6 - repaid) == pytest.approx(exact.bad_debt_assets / 1e6, rel=1e-9, abs=2e-6)


@pytest.mark.parametrize("seed", range(200))
def test_compound_v2_call_matches_the_integer_layer_on_stablecoin_repays(seed):
    # a 6-decimal repay (USDC against cETH): the contract's seize-ratio grid is 1e-12 relative fine here, so
    # the exact formula the replay uses matches to 1e-9 (18-decimal repays differ by up to 1/ratio:
    # docs/protocols.md)
    from backtest.models.lending import compound_v2_call
    from backtest.protocols import compound_v2 as c2

    rng = np.random.default_rng(seed)
    price = float(rng.uniform(500, 5_000))
    er = int(rng.uniform(0.019, 0.021) * 1e28)  # underlying per cToken × 1e18 (ETH 18 dec, cToken 8 dec)
    debt = float(rng.uniform(100, 1e6))
    repay_raw = int(debt * 0.5 * 1e6)
    seize = c2.liquidate_calculate_seize_tokens(price_borrowed=10**30, price_collateral=int(price * 1e18),
                                                exchange_rate=er, liquidation_incentive=108 * 10**16,
                                                repay_amount=repay_raw)
    repaid, seized, fee, whole, ok = compound_v2_call(np.array([0.5, 0.028]), repay_raw / 1e6 * 2, 1.0, 1e12,
                                                      price, 0.08, 0.0, 0.0, 0.0)
    assert ok and not whole
    assert repaid == pytest.approx(repay_raw / 1e6, rel=1e-12)
    assert seized == pytest.approx(seize * er / 1e18 / 1e18, rel=1e-9)  # cTokens × rate = underlying
    liq, prot, _ = c2.seize_split(seize, er)
    assert fee == pytest.approx(prot * er / 1e36, rel=1e-6, abs=1e-12)
