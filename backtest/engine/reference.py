"""Reference replay: DESIGN §4 written out literally, step by step, account by account.

This is the specification in code. It is slow (plain Python, every account every step) and exists to
hold the fast engine to the contract: property tests run both on random books and require the same
liquidations, balances and per-step figures. Keep it boring; never optimise it.
"""

from __future__ import annotations

import numpy as np

from .types import BORROW, REPAY, SUPPLY, WITHDRAW, Book, Events, Liquidations, Params, ReplayResult

MAX_CALLS_PER_STEP = 100


def replay_reference(prices: np.ndarray, book: Book, events: Events, params: Params) -> ReplayResult:
    """Replay ``book`` over ``prices`` (steps × assets) under ``params`` with DESIGN §4 semantics.

    Parameters
    ----------
    prices : float64 (T × K), USD per token unit at each grid step
    book : the snapshot at ``start``; not modified
    events : mapped to grid steps, in application order
    params : one rule set

    Returns
    -------
    ReplayResult
    """
    T, K = prices.shape
    A = book.collateral.shape[0]
    c = [list(map(float, row)) for row in book.collateral]
    d = [list(map(float, row)) for row in book.debt]
    lt = [float(x) for x in params.liquidation_threshold]
    lb = [float(x) for x in params.liquidation_bonus]
    cf = float(params.close_factor)
    gas = float(params.gas_usd)

    rows: list[tuple] = []
    realised = np.zeros(T)
    unrealised = np.zeros(T)
    calls_per_step = np.zeros(T, dtype=np.int64)
    coll_usd = np.zeros(T)
    debt_usd = np.zeros(T)
    written_off = np.zeros(A, dtype=bool)
    capped = 0.0
    e = 0
    n_events = len(events)

    for t in range(T):
        p = [float(x) for x in prices[t]]
        # step 0: events of (previous step, this step]
        while e < n_events and events.step[e] == t:
            a, k = int(events.account[e]), int(events.asset[e])
            amount, action = float(events.amount[e]), int(events.action[e])
            if action == SUPPLY:
                c[a][k] += amount
            elif action == BORROW:
                d[a][k] += amount
            else:
                bal = c[a] if action == WITHDRAW else d[a]
                if amount > bal[k]:
                    capped += (amount - bal[k]) * p[k]
                    bal[k] = 0.0
                else:
                    bal[k] -= amount
            e += 1

        for a in range(A):
            ca, da = c[a], d[a]
            if not any(x > 0 for x in da):
                continue
            # step 2: liquidation calls while HF < 1
            for _ in range(MAX_CALLS_PER_STEP):
                num = 0.0
                den = 0.0
                for k in range(K):
                    if lt[k] > 0:
                        num += ca[k] * p[k] * lt[k]
                    den += da[k] * p[k]
                if not (den > 0 and num / den < 1.0):
                    break
                j, best = -1, -1.0
                for k in range(K):
                    if da[k] > 0 and da[k] * p[k] > best:
                        j, best = k, da[k] * p[k]
                i, best = -1, -1.0
                for k in range(K):
                    if lt[k] > 0 and ca[k] > 0 and ca[k] * p[k] > best:
                        i, best = k, ca[k] * p[k]
                if i < 0:
                    break
                r_cf = cf * da[j]
                r_col = (ca[i] * p[i]) / (p[j] * (1.0 + lb[i]))
                if r_col <= r_cf:
                    repaid, seized = r_col, ca[i]
                else:
                    repaid = r_cf
                    seized = min(repaid * p[j] * (1.0 + lb[i]) / p[i], ca[i])
                if repaid * p[j] * lb[i] - gas <= 0:
                    break
                da[j] -= repaid
                ca[i] = 0.0 if r_col <= r_cf else ca[i] - seized
                rows.append((t, a, j, i, repaid, seized, repaid * p[j], repaid * p[j] * lb[i]))
                calls_per_step[t] += 1
            # step 3: write-off when no collateral with LT > 0 is left
            if any(x > 0 for x in da) and all(ca[k] == 0.0 for k in range(K) if lt[k] > 0):
                owed = 0.0
                for k in range(K):
                    owed += da[k] * p[k]
                realised[t] += owed
                written_off[a] = True
                for k in range(K):
                    da[k] = 0.0
            if any(x > 0 for x in da):
                dd = 0.0
                cc = 0.0
                for k in range(K):
                    dd += da[k] * p[k]
                    if lt[k] > 0:
                        cc += ca[k] * p[k]
                if dd > cc:
                    unrealised[t] += dd - cc
        coll_usd[t] = sum(c[a][k] * p[k] for a in range(A) for k in range(K))
        debt_usd[t] = sum(d[a][k] * p[k] for a in range(A) for k in range(K))

    cols = list(zip(*rows)) if rows else [[]] * 8
    liq = Liquidations(
        np.asarray(cols[0], dtype=np.int64), np.asarray(cols[1], dtype=np.int64),
        np.asarray(cols[2], dtype=np.int64), np.asarray(cols[3], dtype=np.int64),
        *(np.asarray(cols[n], dtype=np.float64) for n in range(4, 8)),
    )
    return ReplayResult(
        liquidations=liq,
        realised_bad_debt=realised,
        unrealised_bad_debt=unrealised,
        liquidation_calls=calls_per_step,
        collateral_usd=coll_usd,
        debt_usd=debt_usd,
        written_off=written_off,
        final_collateral=np.asarray(c, dtype=np.float64).reshape(A, K),
        final_debt=np.asarray(d, dtype=np.float64).reshape(A, K),
        capped_events_usd=capped,
    )
