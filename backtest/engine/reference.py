"""Reference replay: DESIGN §4 written out literally, step by step, account by account.

This is the specification in code. It is slow (plain Python, every account every step) and exists to
hold the fast engine to the contract: property tests run both on random books and require the same
liquidations, balances and per-step figures. Keep it boring; never optimise it.

What differs between rule sets enters through two seams, each run here as plain Python: the liquidation
model's float spec (``Model.spec``, the source the kernel compiles) and the rule kind's requirement hooks
(their Python source: the maintenance value, initial capacity, eligible collateral and bonus of an
account at a step; see ``backtest.engine.tables``). Skipping bounds are never used here.
"""

from __future__ import annotations

import importlib
import math

import numpy as np

from .types import BORROW, MAX_CALLS_PER_STEP, SUPPLY, WITHDRAW, Book, Events, Liquidations, ReplayResult


def _py(fn):
    return getattr(fn, "py_func", fn)


def replay_reference(prices: np.ndarray, book: Book, events: Events, params, *,
                     growth: tuple[np.ndarray, np.ndarray] | None = None) -> ReplayResult:
    """Replay ``book`` over ``prices`` (steps × assets) under ``params`` with DESIGN §4 semantics.

    Parameters
    ----------
    prices : float64 (T × K), USD per token unit at each grid step
    book : the snapshot at ``start``; not modified
    events : mapped to grid steps, in application order (token units)
    params : one rule set (``types.Params`` or a rule kind's own parameters with the same interface)
    growth : optional per-step balance multipliers (collateral, debt), each (T × K): balances then grow
        with interest; they are kept in snapshot units and valued at ``price · growth``

    Returns
    -------
    ReplayResult
    """
    with np.errstate(all="ignore"):  # float64 scalars behave like Python floats here: inf/nan, no warnings
        return _replay(prices, book, events, params, growth)


def _replay(prices, book, events, params, growth) -> ReplayResult:
    T, K = prices.shape
    A = book.collateral.shape[0]
    gc = np.ones((T, K)) if growth is None else np.asarray(growth[0], dtype=np.float64)
    gd = np.ones((T, K)) if growth is None else np.asarray(growth[1], dtype=np.float64)
    pc_all = np.asarray(prices, dtype=np.float64) * gc if growth is not None else np.asarray(prices, np.float64)
    pd_all = np.asarray(prices, dtype=np.float64) * gd if growth is not None else np.asarray(prices, np.float64)
    pc_all = np.ascontiguousarray(pc_all)
    pd_all = np.ascontiguousarray(pd_all)
    c = np.array(book.collateral, dtype=np.float64, copy=True).reshape(A, K)
    d = np.array(book.debt, dtype=np.float64, copy=True).reshape(A, K)
    model, margs = params.liquidation()
    call = model.spec
    hooks = importlib.import_module(params.hooks)
    regime, maint, initial = _py(hooks.regime), _py(hooks.maint), _py(hooks.initial)
    eligible, bonus = _py(hooks.eligible), _py(hooks.bonus)
    kp = params.pack(pc_all, pd_all, np.array([1], dtype=np.int64), A)
    gas = float(params.gas_usd)
    fees = [float(x) for x in params.fees(K)]
    enforce = bool(params.enforce_ltv)

    def owed(a: int, t: int) -> float:
        total = 0.0
        for k in range(K):
            total += float(d[a, k]) * float(pd_all[t, k])
        return total

    rows: list[tuple] = []
    realised = np.zeros(T)
    unrealised = np.zeros(T)
    calls_per_step = np.zeros(T, dtype=np.int64)
    coll_usd = np.zeros(T)
    debt_usd = np.zeros(T)
    written_off = np.zeros(A, dtype=bool)
    capped: list[float] = []
    blocked_borrow: list[float] = []
    blocked_withdraw: list[float] = []
    e = 0
    n_events = len(events)

    for t in range(T):
        pc = [float(x) for x in pc_all[t]]
        pd = [float(x) for x in pd_all[t]]
        # step 0: events of (previous step, this step], amounts converted to snapshot units
        while e < n_events and events.step[e] == t:
            a, k = int(events.account[e]), int(events.asset[e])
            action = int(events.action[e])
            g = gc[t, k] if action in (SUPPLY, WITHDRAW) else gd[t, k]  # the index of the side it changes
            amount = float(events.amount[e]) / float(g) if growth is not None else float(events.amount[e])
            if action == SUPPLY:
                c[a, k] += amount
            elif action == WITHDRAW:
                if amount > c[a, k]:
                    capped.append((amount - float(c[a, k])) * pc[k])
                    amount = float(c[a, k])
                before = float(c[a, k])
                c[a, k] -= amount
                if enforce and amount > 0 and \
                        initial(kp, a, regime(kp, a, d[a]), c[a], d[a], pc_all, pd_all, t) < owed(a, t):
                    c[a, k] = before
                    blocked_withdraw.append(amount * pc[k])
            elif action == BORROW:
                before = float(d[a, k])
                d[a, k] += amount
                if enforce and amount > 0 and \
                        initial(kp, a, regime(kp, a, d[a]), c[a], d[a], pc_all, pd_all, t) < owed(a, t):
                    d[a, k] = before
                    blocked_borrow.append(amount * pd[k])
            else:  # repay
                if amount > d[a, k]:
                    capped.append((amount - float(d[a, k])) * pd[k])
                    d[a, k] = 0.0
                else:
                    d[a, k] -= amount
            e += 1

        for a in range(A):
            ca, da = c[a], d[a]
            if not any(x > 0 for x in da):
                continue
            if model.absorb and _absorb(kp, a, ca, da, pc_all, pd_all, t, pc, pd, gc, gd, regime, maint, eligible,
                                        bonus, margs, rows, calls_per_step, owed):
                continue
            # step 2: liquidation calls while HF < 1
            for _ in range(MAX_CALLS_PER_STEP):
                r = regime(kp, a, da)
                num = maint(kp, a, r, ca, da, pc_all, pd_all, t)
                den = owed(a, t)
                if not (den > 0 and num / den < 1.0):
                    break
                j, best = -1, -1.0
                for k in range(K):
                    if da[k] > 0 and da[k] * pd[k] > best:
                        j, best = k, da[k] * pd[k]
                i, best = -1, -1.0
                for k in range(K):
                    if eligible(kp, r, t, k) and ca[k] > 0 and ca[k] * pc[k] > best:
                        i, best = k, ca[k] * pc[k]
                if i < 0:
                    break
                lb = float(bonus(kp, r, t, i))
                repaid, seized, fee, whole, ok = call(margs, float(da[j]), pd[j], float(ca[i]), pc[i], lb, fees[i],
                                                      num / den, den)
                if not ok:
                    break  # no call (e.g. the dust rule reverts it): the account waits
                if repaid * pd[j] * lb - fee * pc[i] - gas <= 0:
                    break
                da[j] -= repaid
                ca[i] = 0.0 if whole else ca[i] - seized
                rows.append((t, a, j, i, repaid * float(gd[t, j]), seized * float(gc[t, i]),
                             repaid * pd[j], repaid * pd[j] * lb, fee * float(gc[t, i])))
                calls_per_step[t] += 1
            # step 3: write-off when no eligible collateral is left
            r = regime(kp, a, da)
            if any(x > 0 for x in da) and all(ca[k] == 0.0 for k in range(K) if eligible(kp, r, t, k)):
                total = 0.0
                for k in range(K):
                    total += float(da[k]) * pd[k]
                realised[t] += total
                written_off[a] = True
                for k in range(K):
                    da[k] = 0.0
            if any(x > 0 for x in da):
                dd = 0.0
                cc = 0.0
                for k in range(K):
                    dd += float(da[k]) * pd[k]
                    if eligible(kp, r, t, k):
                        cc += float(ca[k]) * pc[k]
                if dd > cc:
                    unrealised[t] += dd - cc
        coll_usd[t] = sum(float(c[a, k]) * pc[k] for a in range(A) for k in range(K))
        debt_usd[t] = sum(float(d[a, k]) * pd[k] for a in range(A) for k in range(K))

    cols = list(zip(*rows)) if rows else [[]] * 9
    liq = Liquidations(
        np.asarray(cols[0], dtype=np.int64), np.asarray(cols[1], dtype=np.int64),
        np.asarray(cols[2], dtype=np.int64), np.asarray(cols[3], dtype=np.int64),
        *(np.asarray(cols[n], dtype=np.float64) for n in range(4, 9)),
    )
    result = ReplayResult(
        liquidations=liq,
        realised_bad_debt=realised,
        unrealised_bad_debt=unrealised,
        liquidation_calls=calls_per_step,
        collateral_usd=coll_usd,
        debt_usd=debt_usd,
        written_off=written_off,
        final_collateral=c * gc[-1],
        final_debt=d * gd[-1],
        capped_events_usd=_fsum(capped),
        blocked_borrow_usd=_fsum(blocked_borrow),
        blocked_withdraw_usd=_fsum(blocked_withdraw),
    )
    if model.settle is not None:  # the protocol's own pass after the accounts (Comet's collateral sales)
        model.settle(result, pc_all, margs, gas)
    return result


def _absorb(kp, a, ca, da, pc_all, pd_all, t, pc, pd, gc, gd, regime, maint, eligible, bonus, margs, rows, calls,
            owed):
    """An absorbing model's step 2 (Comet): True when the account was absorbed (nothing more to do)."""
    K = len(ca)
    r = regime(kp, a, da)
    num = maint(kp, a, r, ca, da, pc_all, pd_all, t)
    den = owed(a, t)
    if not (den > 0 and num / den < 1.0):
        return False
    j, best = -1, -1.0
    for k in range(K):
        if da[k] > 0 and da[k] * pd[k] > best:
            j, best = k, da[k] * pd[k]
    seized = []
    credit = 0.0
    for k in range(K):
        if eligible(kp, r, t, k) and ca[k] > 0:
            value = float(ca[k]) * pc[k]
            lf = 1.0 / (1.0 + float(bonus(kp, r, t, k)))
            credit += value * lf
            seized.append((k, float(ca[k]), value * lf, value - value * lf))
    if not seized:
        return False  # nothing to seize: the write-off of step 3
    for k, amount, credited, penalty in seized:
        share = credited / credit if credit > 0 else 1.0 / len(seized)
        rows.append((t, a, j, k, den * share / pd[j] * float(gd[t, j]), amount * float(gc[t, k]), den * share, penalty,
                     0.0))
        ca[k] = 0.0
    calls[t] += len(seized)
    for k in range(K):
        da[k] = 0.0
    if credit > den:
        base = int(margs[0])
        ca[base] += (credit - den) / pc[base]
    return True


def _fsum(values: list[float]) -> float:
    """Exact sum rounded once; with non-finite terms, the plain sum (inf, or nan for inf − inf)."""
    try:
        return math.fsum(values)
    except (OverflowError, ValueError):
        return float(sum(values))
