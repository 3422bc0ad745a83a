"""Property tests of the replay engines: the fast kernel equals the reference, and DESIGN §4 invariants hold.

Hypothesis draws small random books and price paths built to hit the edges of §4: crashes and flat steps,
exactly equal prices and amounts (so the lowest-index tie-break decides), dust and huge amounts, LT = 0
(not collateral) and LT close to 1, zero/small/large bonuses, close factors that hit the 100-calls cap,
gas, and event ledgers with capped withdraw/repay, events for accounts without snapshot rows and several
events at one step. ``replay_fast`` must reproduce ``replay_reference`` exactly (both do the same float
operations in the same order) for several block sizes; the invariants are checked by re-applying the
events and the engine's own liquidation records to the snapshot, so every call is checked against the
balances it actually saw.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from functools import partial

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from backtest.engine.fast import replay_fast
from backtest.engine.reference import replay_reference
from backtest.engine.types import (
    BORROW, LIQUIDATION_FIELDS, REPAY, SUPPLY, WITHDRAW, Book, Events, Params, ReplayResult,
)
from backtest.outputs.metrics import COUNT_METRICS, compute_metrics

MAX_CALLS = 100  # DESIGN §4 step 2
RTOL = 1e-9
# Absolute floor for tolerances: amounts far below dust can be subnormal (hypothesis does draw an LT of
# 5e-324), and there floats keep only absolute, not relative, precision.
TINY = 1e-300

# ---------------------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------------------

# Amounts: exact specials (zero, dust, huge) mixed with arbitrary floats; each example also draws a small
# pool from which most amounts are taken, so exact duplicates (and therefore USD ties) are common.
SPECIAL_AMOUNTS = (0.0, 1e-12, 0.5, 1.0, 3.0, 100.0, 1e6, 1e12)
_amount = st.one_of(st.sampled_from(SPECIAL_AMOUNTS), st.floats(1e-12, 1e12))
# Price factors per step: 1.0 (flat → ties across steps), small moves, crashes and spikes.
_factor = st.one_of(st.sampled_from((1.0, 0.99, 1.01, 0.9, 1.1, 0.5, 0.2, 0.05, 2.0)), st.floats(0.05, 3.0))
_start_price = st.one_of(st.sampled_from((1.0, 2.0, 0.5, 1e-3, 1000.0, 3000.0, 1e5)), st.floats(1e-3, 1e5))
# LT 0 means "not collateral"; values just below 1 stress the skip bound Σc·p·LT ≤ Σc·p.
_lt = st.one_of(st.sampled_from((0.0, 0.5, 0.8, 0.825, 0.9, 0.97, 0.999999, 1 - 1e-12)), st.floats(0.0, 0.999999))
_lb = st.one_of(st.sampled_from((0.0, 1e-6, 0.01, 0.05, 0.1, 0.5, 1.0)), st.floats(0.0, 1.0))
_target_hf = st.one_of(st.sampled_from((0.5, 0.9, 0.99, 1.0, 1.01, 1.05, 1.2, 2.0)), st.floats(0.2, 3.0))
PRICE_FLOOR, PRICE_CAP = 1e-6, 1e9


@dataclass(frozen=True)
class Scenario:
    prices: np.ndarray
    book: Book
    events: Events
    params: Params

    def __repr__(self) -> str:
        # Full-precision Python literals, so a falsifying example pastes straight into a reproduction.
        e, p = self.events, self.params
        return (
            "Scenario(\n"
            f"  prices={self.prices.tolist()!r},\n"
            f"  collateral={self.book.collateral.tolist()!r},\n"
            f"  debt={self.book.debt.tolist()!r},\n"
            f"  events(account, step, asset, action, amount)="
            f"{list(zip(e.account.tolist(), e.step.tolist(), e.asset.tolist(), e.action.tolist(), e.amount.tolist()))!r},\n"
            f"  ltv={p.ltv.tolist()!r}, lt={p.liquidation_threshold.tolist()!r}, "
            f"lb={p.liquidation_bonus.tolist()!r}, close_factor={p.close_factor!r}, gas_usd={p.gas_usd!r})"
        )

    def _repr_pretty_(self, printer, cycle) -> None:
        # hypothesis reports falsifying examples through its pretty-printer; keep the full-precision form
        printer.text(repr(self))


def make_scenario(prices, collateral, debt, events, lt, lb, *, ltv=None, close_factor=0.5, gas_usd=0.0):
    """Build a Scenario from plain lists; ``events`` are (account, step, asset, action, amount) in order."""
    ev = list(events)
    lt_arr = np.asarray(lt, dtype=np.float64)
    return Scenario(
        prices=np.asarray(prices, dtype=np.float64),
        book=Book(np.asarray(collateral, dtype=np.float64), np.asarray(debt, dtype=np.float64)),
        events=Events(
            np.asarray([x[0] for x in ev], dtype=np.int64), np.asarray([x[1] for x in ev], dtype=np.int64),
            np.asarray([x[2] for x in ev], dtype=np.int64), np.asarray([x[3] for x in ev], dtype=np.int8),
            np.asarray([x[4] for x in ev], dtype=np.float64),
        ),
        params=Params(lt_arr.copy() if ltv is None else np.asarray(ltv, dtype=np.float64), lt_arr,
                      np.asarray(lb, dtype=np.float64), close_factor, gas_usd),
    )


@st.composite
def _price_path(draw, n_steps: int, n_assets: int) -> np.ndarray:
    # A path is flat except at a few drawn moves (a move rescales one asset, or all assets at once, from its
    # step on): flat stretches give exact ties across steps and blocks the fast engine may skip, market-wide
    # moves keep equal prices equal, and few draws keep generation and shrinking cheap.
    prices = np.empty((n_steps, n_assets))
    prices[:] = [draw(_start_price) for _ in range(n_assets)]
    if n_steps > 1:
        for _ in range(draw(st.integers(0, 15))):
            t = draw(st.integers(1, n_steps - 1))
            k = draw(st.one_of(st.none(), st.integers(0, n_assets - 1)))
            prices[t:, slice(None) if k is None else k] *= draw(_factor)
    for k in range(1, n_assets):
        # an asset may share another's whole path: exact price ties across assets at every step
        src = draw(st.one_of(st.none(), st.integers(0, k - 1)))
        if src is not None:
            prices[:, k] = prices[:, src]
    return np.clip(prices, PRICE_FLOOR, PRICE_CAP)


@st.composite
def scenarios(draw, max_accounts: int = 12, max_assets: int = 5, max_steps: int = 40) -> Scenario:
    K = draw(st.integers(1, max_assets))
    T = draw(st.integers(1, max_steps))
    A = draw(st.integers(1, max_accounts))
    prices = draw(_price_path(T, K))
    lt = [draw(_lt) for _ in range(K)]
    lb = [draw(_lb) for _ in range(K)]
    ltv = [x * draw(st.sampled_from((1.0, 0.9, 0.5, 0.0))) for x in lt]
    close_factor = draw(st.sampled_from((0.5, 1.0, 0.01)))
    gas = draw(st.one_of(st.sampled_from((0.0, 1e-9, 1.0, 25.0)), st.floats(0.0, 100.0)))

    pool = draw(st.lists(_amount, min_size=1, max_size=4))
    amount = st.one_of(st.sampled_from(pool), _amount)
    collateral = np.zeros((A, K))
    debt = np.zeros((A, K))
    for a in range(A):
        kind = draw(st.sampled_from(("levered", "random", "empty")))
        if kind == "empty":  # no snapshot rows: may still appear in events
            continue
        collateral[a] = [draw(amount) for _ in range(K)]
        if kind == "random":
            debt[a] = [draw(st.one_of(st.just(0.0), amount)) for _ in range(K)]
        else:  # debt in one asset sized for a target HF at the first step, so liquidations are frequent
            j = draw(st.integers(0, K - 1))
            backing = sum(collateral[a, k] * prices[0, k] * lt[k] for k in range(K))
            h = draw(_target_hf)
            debt[a, j] = backing / (h * prices[0, j]) if backing > 0 else draw(amount)

    events = []
    for _ in range(draw(st.integers(0, 25))):
        a = draw(st.integers(0, A - 1))
        k = draw(st.integers(0, K - 1))
        action = draw(st.sampled_from((SUPPLY, WITHDRAW, BORROW, REPAY)))
        snapshot = collateral[a, k] if action in (SUPPLY, WITHDRAW) else debt[a, k]
        # exact snapshot balance (capped to exactly 0) and far above any balance (always capped)
        amt = draw(st.one_of(amount, st.just(float(snapshot)), st.sampled_from((1e13, 1e15))))
        events.append((a, draw(st.integers(0, T - 1)), k, action, amt))
    events.sort(key=lambda x: x[1])  # stable: the drawn order is the order within a step
    return make_scenario(prices, collateral, debt, events, lt, lb, ltv=ltv,
                         close_factor=close_factor, gas_usd=gas)


def _run(engine, s: Scenario) -> ReplayResult:
    return engine(s.prices, s.book, s.events, s.params)


# ---------------------------------------------------------------------------------------------------------
# fast == reference
# ---------------------------------------------------------------------------------------------------------

# Small blocks make skipping decisions happen at many boundaries inside a 40-step path; the defaults
# (256/16) mostly reduce to one partial fine block per account.
BLOCK_SIZES = [(4, 2), (8, 8), (2, 1), (6, 3), None]  # (6, 3): not powers of two (divisions, not shifts)


def _fast_variants():
    for blocks in BLOCK_SIZES:
        if blocks is None:
            yield "default", replay_fast
        else:
            yield f"coarse={blocks[0]},fine={blocks[1]}", partial(replay_fast, coarse=blocks[0], fine=blocks[1])


def _assert_metrics_equal(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        if value is None or key in COUNT_METRICS:
            assert got[key] == value, key
            assert type(got[key]) is type(value), key
        else:
            assert math.isclose(got[key], value, rel_tol=RTOL, abs_tol=0.0), (key, got[key], value)


@given(scenarios())
def test_fast_matches_reference(s: Scenario) -> None:
    snapshot = (s.book.collateral.copy(), s.book.debt.copy())
    ref = _run(replay_reference, s)
    ref_liq = ref.liquidations.sorted()
    ref_metrics = compute_metrics(ref, s.book, s.prices, s.params)
    for label, engine in _fast_variants():
        fast = _run(engine, s)
        fast_liq = fast.liquidations.sorted()
        # same float operations in the same order: records, balances and bad debt are bit-identical
        for f in LIQUIDATION_FIELDS:
            np.testing.assert_array_equal(getattr(fast_liq, f), getattr(ref_liq, f), err_msg=f"{label}: {f}")
        np.testing.assert_array_equal(fast.final_collateral, ref.final_collateral, err_msg=label)
        np.testing.assert_array_equal(fast.final_debt, ref.final_debt, err_msg=label)
        np.testing.assert_array_equal(fast.realised_bad_debt, ref.realised_bad_debt, err_msg=label)
        np.testing.assert_array_equal(fast.unrealised_bad_debt, ref.unrealised_bad_debt, err_msg=label)
        np.testing.assert_array_equal(fast.liquidation_calls, ref.liquidation_calls, err_msg=label)
        np.testing.assert_array_equal(fast.written_off, ref.written_off, err_msg=label)
        # capped amounts are summed in event order by one engine, account-major by the other
        assert math.isclose(fast.capped_events_usd, ref.capped_events_usd, rel_tol=RTOL), label
        _assert_metrics_equal(compute_metrics(fast, s.book, s.prices, s.params), ref_metrics)
        stats = fast.stats
        assert 0 <= stats["evaluated_account_steps"] <= stats["account_steps"] == s.book.shape[0] * len(s.prices)
    # the snapshot is an input, never mutated by either engine
    np.testing.assert_array_equal(s.book.collateral, snapshot[0])
    np.testing.assert_array_equal(s.book.debt, snapshot[1])


# Minimal cases where the fast engine's per-step totals differ from §4's. The fast engine rebuilds them from
# the snapshot's per-asset sums plus a running sum of per-step deltas, so a large balance leaving the system
# takes the dust beside it along (rounding), and dust seized in many small calls does not cancel to the
# exact 0.0 that the balances hold.
DUST_BESIDE_WHALE = make_scenario(  # the whale withdraws all; only the dust (2e-12 USD) is left
    prices=[[2.0], [2.0]], collateral=[[1e12], [1e-12]], debt=[[0.0], [0.0]],
    events=[(0, 1, 0, WITHDRAW, 1e12)], lt=[0.85], lb=[0.05],
)
DUST_LIQUIDATED = make_scenario(  # one account, HF 0.5, seized to exactly 0 and written off
    prices=[[1.0]], collateral=[[1e-12]], debt=[[1e-12]], events=[], lt=[0.5], lb=[1e-6],
)
DUST_LIQUIDATED_TWICE = make_scenario(  # the same for two accounts: the debt total comes out negative
    prices=[[1.0]], collateral=[[1e-12], [1e-12]], debt=[[1e-12], [1e-12]], events=[], lt=[0.5], lb=[1e-6],
)


@given(scenarios())
@example(DUST_BESIDE_WHALE)
@example(DUST_LIQUIDATED)
@example(DUST_LIQUIDATED_TWICE)
def test_fast_per_step_totals_match_reference(s: Scenario) -> None:
    # The timeseries columns (DESIGN §5b) collateral_usd/debt_usd: totals of the balances after each step,
    # which are never negative. Balances are non-negative, so these sums have no cancellation and rtol holds.
    ref = _run(replay_reference, s)
    for label, engine in _fast_variants():
        fast = _run(engine, s)
        assert (fast.collateral_usd >= 0).all() and (fast.debt_usd >= 0).all(), (
            label, fast.collateral_usd.tolist(), fast.debt_usd.tolist())
        np.testing.assert_allclose(fast.collateral_usd, ref.collateral_usd, rtol=RTOL, atol=0, err_msg=label)
        np.testing.assert_allclose(fast.debt_usd, ref.debt_usd, rtol=RTOL, atol=0, err_msg=label)


# ---------------------------------------------------------------------------------------------------------
# invariants, checked by re-applying events and the engine's own liquidation records
# ---------------------------------------------------------------------------------------------------------

def _first_argmax(values: list[float], eligible: list[bool]) -> int:
    # strict ">" while scanning upwards: equal USD values go to the lowest index (code-point order)
    best, arg = -1.0, -1
    for k, (v, ok) in enumerate(zip(values, eligible)):
        if ok and v > best:
            best, arg = v, k
    return arg


def _below_one(c, d, p, lt) -> bool:
    # HF < 1 evaluated exactly as §4 writes it (and as both engines do), so boundary cases agree
    num = den = 0.0
    for k in range(len(p)):
        if lt[k] > 0:
            num += c[k] * p[k] * lt[k]
        den += d[k] * p[k]
    return den > 0 and num / den < 1.0


def _choose(c, d, p, lt):
    K = len(p)
    j = _first_argmax([d[k] * p[k] for k in range(K)], [d[k] > 0 for k in range(K)])
    i = _first_argmax([c[k] * p[k] for k in range(K)], [lt[k] > 0 and c[k] > 0 for k in range(K)])
    return j, i


def _next_call_profit(c, d, p, lt, lb, cf, gas) -> float:
    j, i = _choose(c, d, p, lt)
    r_cf = cf * d[j]
    r_col = (c[i] * p[i]) / (p[j] * (1.0 + lb[i]))
    repaid = r_col if r_col <= r_cf else r_cf
    return repaid * p[j] * lb[i] - gas


def _close(a: float, b: float, scale: float) -> bool:
    # float sums of flows can only be held to a bound relative to their gross size
    return abs(a - b) <= RTOL * scale + TINY


def check_invariants(s: Scenario, res: ReplayResult) -> None:
    prices, params = s.prices, s.params
    T, K = prices.shape
    A = s.book.shape[0]
    lt = params.liquidation_threshold.tolist()
    lb = params.liquidation_bonus.tolist()
    cf, gas = float(params.close_factor), float(params.gas_usd)
    liq = res.liquidations.sorted()

    calls_at: dict[tuple[int, int], list[int]] = defaultdict(list)
    for n in range(len(liq)):
        calls_at[int(liq.step[n]), int(liq.account[n])].append(n)
    assert all(0 <= t < T and 0 <= a < A for t, a in calls_at)
    events_at: dict[int, list[int]] = defaultdict(list)
    for n in range(len(s.events)):
        events_at[int(s.events.step[n])].append(n)

    c = s.book.collateral.tolist()
    d = s.book.debt.tolist()
    # per-asset token flows for the conservation check: (signed terms of collateral, of debt)
    coll_flows: list[list[float]] = [list(s.book.collateral[:, k]) for k in range(K)]
    debt_flows: list[list[float]] = [list(s.book.debt[:, k]) for k in range(K)]
    written_off = [False] * A

    for t in range(T):
        p = prices[t].tolist()
        for n in events_at[t]:
            a, k = int(s.events.account[n]), int(s.events.asset[n])
            action, amt = int(s.events.action[n]), float(s.events.amount[n])
            bal, flows = (c[a], coll_flows[k]) if action in (SUPPLY, WITHDRAW) else (d[a], debt_flows[k])
            if action in (SUPPLY, BORROW):
                bal[k] += amt
                flows.append(amt)
            else:
                applied = min(amt, bal[k])  # capped at the balance
                bal[k] = 0.0 if amt > bal[k] else bal[k] - amt
                flows.append(-applied)
        realised_t = 0.0
        unrealised_t = 0.0
        for a in range(A):
            ca, da = c[a], d[a]
            calls = calls_at.get((t, a), [])
            assert len(calls) <= MAX_CALLS, (t, a, len(calls))
            for n in calls:
                i, j = int(liq.collateral_asset[n]), int(liq.debt_asset[n])
                R, S = float(liq.debt_repaid[n]), float(liq.collateral_seized[n])
                assert _below_one(ca, da, p, lt), ("call on a healthy account", t, a)
                assert (j, i) == _choose(ca, da, p, lt), ("pair choice / tie-break", t, a)
                assert lt[i] > 0 and lb[i] > 0, ("seized a non-collateral or zero-bonus asset", t, a)
                assert 0.0 < R <= cf * da[j], ("close factor", t, a, R, da[j])
                assert S <= ca[i], ("seized more than the balance", t, a, S, ca[i])
                assert R * p[j] * lb[i] - gas > 0, ("unprofitable call made", t, a)
                assert math.isclose(S * p[i], R * p[j] * (1.0 + lb[i]), rel_tol=RTOL, abs_tol=TINY), ("value", t, a)
                assert liq.debt_repaid_usd[n] == R * p[j]
                assert liq.penalty_usd[n] == liq.debt_repaid_usd[n] * lb[i]
                ca[i] -= S
                da[j] -= R
                assert ca[i] >= 0.0 and da[j] >= 0.0
                coll_flows[i].append(-S)
                debt_flows[j].append(-R)
            has_debt = any(x > 0 for x in da)
            if has_debt and all(ca[k] == 0.0 for k in range(K) if lt[k] > 0):
                realised_t += sum_in_order(da[k] * p[k] for k in range(K))
                for k in range(K):
                    debt_flows[k].append(-da[k])
                    da[k] = 0.0
                written_off[a] = True
                has_debt = False
            if has_debt:
                # not written off, so some collateral with LT > 0 is left; if still below HF 1, §4 must say
                # why the loop stopped: the 100-call cap or an unprofitable next call
                assert any(lt[k] > 0 and ca[k] > 0 for k in range(K))
                if _below_one(ca, da, p, lt):
                    assert len(calls) == MAX_CALLS or _next_call_profit(ca, da, p, lt, lb, cf, gas) <= 0, (
                        "left below HF 1 without a reason", t, a, len(calls))
                dd = sum_in_order(da[k] * p[k] for k in range(K))
                cc = sum_in_order(ca[k] * p[k] for k in range(K) if lt[k] > 0)
                if dd > cc:
                    unrealised_t += dd - cc
        assert res.liquidation_calls[t] == sum(len(calls_at.get((t, a), [])) for a in range(A))
        assert res.realised_bad_debt[t] == realised_t >= 0.0
        assert res.unrealised_bad_debt[t] == unrealised_t >= 0.0

    # the records and events explain the final state bit for bit
    np.testing.assert_array_equal(res.final_collateral, np.asarray(c).reshape(A, K))
    np.testing.assert_array_equal(res.final_debt, np.asarray(d).reshape(A, K))
    np.testing.assert_array_equal(res.written_off, written_off)
    assert (res.final_collateral >= 0).all() and (res.final_debt >= 0).all()
    # conservation per asset: snapshot + supplied − withdrawn (as applied) − seized == final, and likewise
    # snapshot + borrowed − repaid (as applied) − repaid by liquidators − written off == final debt
    for k in range(K):
        for flows, final in ((coll_flows[k], res.final_collateral[:, k]), (debt_flows[k], res.final_debt[:, k])):
            scale = math.fsum(abs(x) for x in flows)
            assert _close(math.fsum(flows), math.fsum(final.tolist()), scale), (k, flows, final)


def sum_in_order(terms) -> float:
    # left-to-right float sum, the order both engines use
    total = 0.0
    for x in terms:
        total += x
    return total


ENGINES = {
    "reference": replay_reference,
    "fast": replay_fast,
    "fast-small-blocks": partial(replay_fast, coarse=4, fine=2),
}


@pytest.mark.parametrize("engine", ENGINES.values(), ids=ENGINES.keys())
@given(s=scenarios())
def test_invariants(engine, s: Scenario) -> None:
    check_invariants(s, _run(engine, s))


@given(scenarios())
def test_zero_bonus_never_liquidates(s: Scenario) -> None:
    # §4: "with LB_i = 0 no call is ever made" — whatever the prices, gas or close factor
    params = Params(s.params.ltv, s.params.liquidation_threshold, np.zeros_like(s.params.liquidation_bonus),
                    s.params.close_factor, s.params.gas_usd)
    zero = Scenario(s.prices, s.book, s.events, params)
    small = _run(partial(replay_fast, coarse=4, fine=2), zero)
    default = _run(replay_fast, zero)
    for res in (small, default):
        assert len(res.liquidations) == 0
        assert res.liquidation_calls.sum() == 0
    np.testing.assert_array_equal(default.final_collateral, small.final_collateral)
    np.testing.assert_array_equal(default.final_debt, small.final_debt)
    check_invariants(zero, small)  # only events and write-offs moved balances


# ---------------------------------------------------------------------------------------------------------
# skipping is real
# ---------------------------------------------------------------------------------------------------------

def test_fast_engine_skips_accounts_that_cannot_become_liquidatable() -> None:
    # Calm path (±0.1 % per step), accounts at HF ≥ 2: no account can reach HF 1 in any block, so the kernel
    # should look at (almost) none of the account-steps. One risky account (HF 1.001, 20 % crash of its
    # collateral mid-path) must still be evaluated — and only it.
    rng = np.random.default_rng(20240519)
    T, K, A = 2048, 3, 40
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, (T, K)), axis=0))
    lt = np.array([0.8, 0.85, 0.0])
    collateral = rng.uniform(1.0, 10.0, (A, K))
    debt = np.zeros((A, K))
    backing = collateral @ (prices[0] * lt)
    debt[:, 2] = backing / (2.0 * prices[0, 2])
    params = Params(lt * 0.9, lt, np.array([0.05, 0.05, 0.05]))

    safe = replay_fast(prices, Book(collateral, debt), Events.empty(), params)
    assert len(safe.liquidations) == 0
    assert safe.stats["account_steps"] == A * T
    assert safe.stats["evaluated_account_steps"] * 100 <= safe.stats["account_steps"]

    crashed = prices.copy()
    crashed[T // 2:, 0] *= 0.8
    risky_c = np.vstack([collateral, [[10.0, 0.0, 0.0]]])
    risky_d = np.vstack([debt, [[0.0, 0.0, 10.0 * crashed[0, 0] * lt[0] / (1.001 * crashed[0, 2])]]])
    book = Book(risky_c, risky_d)
    res = replay_fast(crashed, book, Events.empty(), params)
    assert len(res.liquidations) > 0
    assert set(res.liquidations.account.tolist()) == {A}
    assert 0 < res.stats["evaluated_account_steps"] <= T
    ref = replay_reference(crashed, book, Events.empty(), params)
    for f in LIQUIDATION_FIELDS:
        np.testing.assert_array_equal(getattr(res.liquidations.sorted(), f), getattr(ref.liquidations.sorted(), f))


def test_dust_bound_looks_only_at_collateral_a_call_could_choose() -> None:
    # Under water for the whole path, yet no call can pay its gas: a call seizes the largest collateral by
    # value (USDC, 20 USD at LB 4 %: at most 20·0.04/1.04 ≈ 0.77 USD < gas 1). The small WBTC leg (10 USD at
    # LB 15 %, 1.30 USD) is never chosen while USDC is worth more, so its bonus must not block the bound. The
    # kernel should skip the account's blocks (adding its unrealised bad debt) and agree with the reference.
    rng = np.random.default_rng(7)
    T = 4096
    prices = np.empty((T, 3))  # DAI, USDC, WBTC
    prices[:, 0] = 1.0 + rng.uniform(-1e-3, 1e-3, T)
    prices[:, 1] = 1.0 + rng.uniform(-1e-3, 1e-3, T)
    prices[:, 2] = 40_000.0 * np.exp(np.cumsum(rng.normal(0.0, 2e-3, T)))
    prices[:, 2] *= 40_000.0 / prices[:, 2].max()  # WBTC never worth more than 10 USD: USDC stays the largest
    book = Book(collateral=np.array([[0.0, 20.0, 10.0 / 40_000.0]]), debt=np.array([[100.0, 0.0, 0.0]]))
    params = Params(np.array([0.7, 0.75, 0.7]), np.array([0.77, 0.8, 0.75]), np.array([0.05, 0.04, 0.15]),
                    close_factor=0.5, gas_usd=1.0)
    fast = replay_fast(prices, book, Events.empty(), params)
    ref = replay_reference(prices, book, Events.empty(), params)
    assert len(fast.liquidations) == len(ref.liquidations) == 0
    np.testing.assert_array_equal(fast.unrealised_bad_debt, ref.unrealised_bad_debt)
    assert fast.unrealised_bad_debt.min() > 69.0  # 100 USD owed against at most 30 USD of collateral
    assert fast.stats["evaluated_account_steps"] == 0


def test_plain_hooks_give_the_general_tables_results_bit_for_bit() -> None:
    # kind = "asset" runs the one-row hooks (engine.plain); the same numbers given as a time-row table
    # (update_index all 0) run the general ones (engine.tables). Every output must be identical.
    from dataclasses import replace

    rng = np.random.default_rng(11)
    T, K, A = 1500, 4, 300
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 4e-3, (T, K)), axis=0))
    prices[T // 2:, 1] *= 0.6  # a crash of asset 1 mid-path
    collateral = rng.uniform(0.0, 10.0, (A, K)) * (rng.uniform(size=(A, K)) < 0.5)
    debt = np.zeros((A, K))
    lt = np.array([0.8, 0.85, 0.0, 0.7])
    j = rng.integers(0, K, A)
    debt[np.arange(A), j] = (collateral @ (prices[0] * lt)) * rng.uniform(0.5, 1.05, A) / prices[0, j]
    collateral[np.arange(A), j] = 0.0
    ev = Events(account=rng.integers(0, A, 200), step=np.sort(rng.integers(0, T, 200)),
                asset=rng.integers(0, K, 200), action=rng.integers(0, 4, 200).astype(np.int8),
                amount=rng.uniform(0.0, 3.0, 200))
    plain = Params(lt * 0.9, lt, np.array([0.05, 0.1, 0.05, 0.15]), close_factor=0.5, gas_usd=5.0,
                   enforce_ltv=True)
    general = replace(plain, update_index=np.zeros(T, dtype=np.int64))
    assert plain.hooks == "backtest.engine.plain" and general.hooks == "backtest.engine.tables"
    book = Book(collateral, debt)
    a, b = replay_fast(prices, book, ev, plain), replay_fast(prices, book, ev, general)
    assert len(a.liquidations) > 0 and a.unrealised_bad_debt.max() > 0
    for f in LIQUIDATION_FIELDS:
        np.testing.assert_array_equal(getattr(a.liquidations, f), getattr(b.liquidations, f))
    for f in ("realised_bad_debt", "unrealised_bad_debt", "liquidation_calls", "collateral_usd", "debt_usd",
              "written_off", "final_collateral", "final_debt"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert (a.capped_events_usd, a.blocked_borrow_usd, a.blocked_withdraw_usd) == \
        (b.capped_events_usd, b.blocked_borrow_usd, b.blocked_withdraw_usd)
    assert a.stats == b.stats
    ref = replay_reference(prices, book, ev, plain)
    np.testing.assert_array_equal(ref.unrealised_bad_debt, a.unrealised_bad_debt)
    np.testing.assert_array_equal(ref.final_debt, a.final_debt)


@given(st.lists(st.floats(0.0, 1e30, allow_subnormal=False), min_size=0, max_size=12),
       st.lists(st.tuples(st.integers(0, 5), st.floats(0.0, 1e30), st.floats(0.0, 1e30)), max_size=30))
@example([1.0, 2.0 ** -53], [(0, 0.0, 2.0 ** -53)])  # 1 + 2⁻⁵³ + 2⁻⁵³: the halfway case needs the correction
@example([2.0 ** 53, 1.0], [(1, 1.0, 0.0), (2, 0.0, 1.0)])
@example([1e16, 1.0, -0.0], [(0, 1e16, 0.0), (3, 1.0, 0.0)])  # total falls to exactly 0
def test_compiled_running_totals_are_the_exact_sums_rounded_once(start, changes) -> None:
    from fractions import Fraction

    from backtest.engine.totals import running_totals

    T = 6
    changes = sorted(changes, key=lambda x: x[0])
    steps = np.array([s for s, _, _ in changes], dtype=np.int64)
    old = np.array([o for _, o, _ in changes], dtype=np.float64)
    new = np.array([n for _, _, n in changes], dtype=np.float64)
    got = running_totals(np.array(start, dtype=np.float64), steps, old, new, T)
    exact = sum((Fraction(v) for v in start), Fraction(0))
    want = []
    for t in range(T):
        exact += sum((Fraction(n) - Fraction(o) for s, o, n in changes if s == t), Fraction(0))
        want.append(float(exact))
    assert got.tolist() == want


_BALANCES = st.one_of(st.floats(0.0, 1e30, allow_subnormal=False), st.sampled_from(
    [0.0, 2.0 ** -1000, 2.0 ** 970, 1e308, math.inf, -math.inf, math.nan, 1.0, 2.0 ** -53, 3.5]))


@given(st.integers(1, 5), st.integers(1, 3), st.integers(1, 6), st.data())
@example(1, 1, 2, None)  # no log at all
def test_book_totals_in_one_pass_equal_exact_totals_column_by_column(A, K, T, data) -> None:
    """``fast.book_exact_totals`` (compiled, both sides and every asset in one pass; columns it cannot sum
    in float partials go to the big-integer path) gives exactly ``exact_totals`` of each side."""
    from backtest.engine.fast import book_exact_totals, exact_totals

    if data is None:
        coll, debt = np.ones((A, K)), np.full((A, K), 2.0)
        log_i, log_f = np.zeros((0, 3), dtype=np.int64), np.zeros((0, 2))
    else:
        matrix = st.lists(_BALANCES, min_size=A * K, max_size=A * K)
        coll = np.array(data.draw(matrix)).reshape(A, K)
        debt = np.array(data.draw(matrix)).reshape(A, K)
        rows = data.draw(st.lists(st.tuples(st.integers(0, T - 1), st.integers(0, K - 1), st.integers(0, 1),
                                            _BALANCES, _BALANCES), max_size=25))
        log_i = np.array([r[:3] for r in rows], dtype=np.int64).reshape(-1, 3)
        log_f = np.array([r[3:] for r in rows], dtype=np.float64).reshape(-1, 2)
    got_c, got_d = book_exact_totals(Book(coll, debt), log_i, log_f, T)
    want_c = exact_totals(coll, log_i, log_f, T, side=0)
    want_d = exact_totals(debt, log_i, log_f, T, side=1)
    np.testing.assert_array_equal(got_c, want_c)
    np.testing.assert_array_equal(got_d, want_d)


def test_book_totals_hands_back_a_column_whose_partials_outgrow_their_room() -> None:
    """Values one bit apart across the exponent range need more partials than the compiled pass keeps: that
    column is summed by the big-integer path, the others stay in the compiled one; same numbers."""
    from backtest.engine.fast import book_exact_totals, exact_totals
    from backtest.engine.totals import _ROOM, book_totals

    spread = np.array([2.0 ** e for e in range(-900, 900, 20)])  # non-overlapping: one partial each
    assert len(spread) > _ROOM
    coll = np.column_stack([spread, np.ones_like(spread)])
    debt = np.zeros_like(coll)
    log_i, log_f = np.array([[0, 0, 0]], dtype=np.int64), np.array([[spread[0], 0.0]])
    _, ok = book_totals(coll, debt, log_i, log_f, 2)
    assert ok.tolist() == [[False, True], [True, True]]
    got_c, got_d = book_exact_totals(Book(coll, debt), log_i, log_f, 2)
    np.testing.assert_array_equal(got_c, exact_totals(coll, log_i, log_f, 2, side=0))
    np.testing.assert_array_equal(got_d, np.zeros((2, 2)))


def test_book_totals_start_sums_by_exponent_bins_are_math_fsum() -> None:
    """The starting book is summed as integer significands binned by exponent (``totals._start_sums``): many
    values of one exponent (bins flushed every ``_FLUSH``), signs mixed with cancellation, a wide exponent
    spread, values at both ends of the range; every column's total is ``math.fsum`` of it."""
    from backtest.engine.totals import _FLUSH, book_totals

    rng = np.random.default_rng(7)
    A = 3 * _FLUSH + 17
    same_exp = rng.uniform(1.0, 2.0, A)  # one bin, flushed three times
    cancel = rng.choice([1e20, -1e20, 3.0, -2.5, 2.0 ** -900], A) * rng.uniform(1.0, 1.5, A)
    spread = np.ldexp(rng.uniform(0.5, 1.0, A), rng.integers(-60, 60, A))
    edges = np.resize(np.array([2.0 ** -960, 2.0 ** 960, -2.0 ** 960, 0.0, -0.0, 1.0]), A)
    coll = np.column_stack([same_exp, cancel, spread, edges])
    debt = np.ascontiguousarray(coll[::-1] * -1.0)
    log_i, log_f = np.zeros((0, 3), dtype=np.int64), np.zeros((0, 2))
    tot, ok = book_totals(np.ascontiguousarray(coll), debt, log_i, log_f, 2)
    assert ok.all()
    for k in range(coll.shape[1]):
        assert tot[0, 0, k] == tot[0, 1, k] == math.fsum(coll[:, k].tolist())
        assert tot[1, 0, k] == math.fsum(debt[:, k].tolist())
    # just outside the range the column goes to the big-integer path
    _, ok = book_totals(np.array([[2.0 ** 960 * 1.5, 1.0]]), np.array([[2.0 ** -961, 1.0]]), log_i, log_f, 1)
    assert ok.tolist() == [[False, True], [False, True]]
