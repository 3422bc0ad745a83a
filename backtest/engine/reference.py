"""Reference replay: DESIGN §4 written out literally, step by step, account by account.

This is the specification in code. It is slow (plain Python, every account every step) and exists to
hold the fast engine to the contract: property tests run both on random books and require the same
liquidations, balances and per-step figures. Keep it boring; never optimise it.

Rule kinds beyond ``asset`` only change *which* numbers are used (see ``types.Params``): the threshold,
bonus and LTV of an asset for an account at a step come from the account's parameter row (fixed, or the
first correlated group holding all its debt assets) and the step's update row, scaled by a liquidity
haircut when depth is given. ``enforce_ltv`` refuses borrow/withdraw events that break initial margin.
"""

from __future__ import annotations

import numpy as np

from ..protocols.aave_float import liquidation_call_float
from .types import BORROW, SUPPLY, WITHDRAW, Book, Events, Liquidations, Params, ReplayResult

MAX_CALLS_PER_STEP = 100


def replay_reference(prices: np.ndarray, book: Book, events: Events, params: Params, *,
                     growth: tuple[np.ndarray, np.ndarray] | None = None) -> ReplayResult:
    """Replay ``book`` over ``prices`` (steps × assets) under ``params`` with DESIGN §4 semantics.

    Parameters
    ----------
    prices : float64 (T × K), USD per token unit at each grid step
    book : the snapshot at ``start``; not modified
    events : mapped to grid steps, in application order (token units)
    params : one rule set
    growth : optional per-step balance multipliers (collateral, debt), each (T × K): balances then grow
        with interest; they are kept in snapshot units and valued at ``price · growth``

    Returns
    -------
    ReplayResult
    """
    T, K = prices.shape
    A = book.collateral.shape[0]
    gc = np.ones((T, K)) if growth is None else np.asarray(growth[0], dtype=np.float64)
    gd = np.ones((T, K)) if growth is None else np.asarray(growth[1], dtype=np.float64)
    pc_all = np.asarray(prices, dtype=np.float64) * gc if growth is not None else np.asarray(prices, np.float64)
    pd_all = np.asarray(prices, dtype=np.float64) * gd if growth is not None else np.asarray(prices, np.float64)
    c = [list(map(float, row)) for row in book.collateral]
    d = [list(map(float, row)) for row in book.debt]
    ltv3, lt3, lb3 = params.tables()
    fixed_rows = params.rows(A).tolist()
    groups = params.groups(K).tolist()
    updates = params.updates(T).tolist()
    depth = None if params.depth_usd is None else np.asarray(params.depth_usd, dtype=np.float64)
    hk, hfloor = float(params.haircut_k), float(params.haircut_floor)
    cf = float(params.close_factor)
    gas = float(params.gas_usd)
    fees = [float(x) for x in params.fees(K)]

    def row_of(a: int) -> int:
        if fixed_rows[a] >= 0:
            return fixed_rows[a]
        owed = [k for k in range(K) if d[a][k] > 0]
        for g, members in enumerate(groups):
            if owed and all(members[k] for k in owed):
                return g + 1
        return 0

    def factor(a: int, k: int, pc: list[float], t: int) -> float:
        """Liquidity haircut on an account's asset (1.0 without depth data)."""
        size = c[a][k] * pc[k]
        if size == 0.0:
            return 1.0
        if float(depth[t, k]) <= 0.0:
            return hfloor  # no depth at all: the floor applies
        return max(hfloor, 1.0 - hk * size / float(depth[t, k]))

    def ltv_short(a: int, pc: list[float], pd: list[float], u: int, t: int) -> bool:
        ltv = ltv3[u, row_of(a)]
        cap = 0.0
        owed = 0.0
        for k in range(K):
            if depth is not None:
                cap += c[a][k] * pc[k] * float(ltv[k]) * factor(a, k, pc, t)
            else:
                cap += c[a][k] * pc[k] * float(ltv[k])
            owed += d[a][k] * pd[k]
        return cap < owed

    rows: list[tuple] = []
    realised = np.zeros(T)
    unrealised = np.zeros(T)
    calls_per_step = np.zeros(T, dtype=np.int64)
    coll_usd = np.zeros(T)
    debt_usd = np.zeros(T)
    written_off = np.zeros(A, dtype=bool)
    capped = blocked_borrow = blocked_withdraw = 0.0
    e = 0
    n_events = len(events)

    for t in range(T):
        pc = [float(x) for x in pc_all[t]]
        pd = [float(x) for x in pd_all[t]]
        u = updates[t]
        # step 0: events of (previous step, this step], amounts converted to snapshot units
        while e < n_events and events.step[e] == t:
            a, k = int(events.account[e]), int(events.asset[e])
            action = int(events.action[e])
            g = gc[t, k] if action in (SUPPLY, WITHDRAW) else gd[t, k]  # the index of the side it changes
            amount = float(events.amount[e]) / float(g) if growth is not None else float(events.amount[e])
            if action == SUPPLY:
                c[a][k] += amount
            elif action == WITHDRAW:
                if amount > c[a][k]:
                    capped += (amount - c[a][k]) * pc[k]
                    amount = c[a][k]
                before = c[a][k]
                c[a][k] -= amount
                if params.enforce_ltv and amount > 0 and ltv_short(a, pc, pd, u, t):
                    c[a][k] = before
                    blocked_withdraw += amount * pc[k]
            elif action == BORROW:
                before = d[a][k]
                d[a][k] += amount
                if params.enforce_ltv and amount > 0 and ltv_short(a, pc, pd, u, t):
                    d[a][k] = before
                    blocked_borrow += amount * pd[k]
            else:  # repay
                if amount > d[a][k]:
                    capped += (amount - d[a][k]) * pd[k]
                    d[a][k] = 0.0
                else:
                    d[a][k] -= amount
            e += 1

        for a in range(A):
            ca, da = c[a], d[a]
            if not any(x > 0 for x in da):
                continue
            # step 2: liquidation calls while HF < 1
            for _ in range(MAX_CALLS_PER_STEP):
                r = row_of(a)
                lt = [float(x) for x in lt3[u, r]]
                lb = [float(x) for x in lb3[u, r]]
                num = 0.0
                den = 0.0
                for k in range(K):
                    if lt[k] > 0:
                        if depth is not None:
                            num += ca[k] * pc[k] * lt[k] * factor(a, k, pc, t)
                        else:
                            num += ca[k] * pc[k] * lt[k]
                    den += da[k] * pd[k]
                if not (den > 0 and num / den < 1.0):
                    break
                j, best = -1, -1.0
                for k in range(K):
                    if da[k] > 0 and da[k] * pd[k] > best:
                        j, best = k, da[k] * pd[k]
                i, best = -1, -1.0
                for k in range(K):
                    if lt[k] > 0 and ca[k] > 0 and ca[k] * pc[k] > best:
                        i, best = k, ca[k] * pc[k]
                if i < 0:
                    break
                if params.model == 0:
                    r_cf = cf * da[j]
                    r_col = (ca[i] * pc[i]) / (pd[j] * (1.0 + lb[i]))
                    whole = r_col <= r_cf
                    if whole:
                        repaid, seized = r_col, ca[i]
                    else:
                        repaid = r_cf
                        seized = min(repaid * pd[j] * (1.0 + lb[i]) / pc[i], ca[i])
                    fee = 0.0
                else:
                    # the Aave float model itself (held to the exact integer layer by its own tests)
                    repaid, seized, fee = liquidation_call_float(params.model - 1, da[j], pd[j], ca[i], pc[i], lb[i],
                                                                 fees[i], num / den, den, dust=params.dust)
                    if repaid == 0.0:
                        break  # the call reverts (dust rule): no call, the account waits
                    whole = seized == ca[i]
                if repaid * pd[j] * lb[i] - fee * pc[i] - gas <= 0:
                    break
                da[j] -= repaid
                ca[i] = 0.0 if whole else ca[i] - seized
                rows.append((t, a, j, i, repaid * float(gd[t, j]), seized * float(gc[t, i]),
                             repaid * pd[j], repaid * pd[j] * lb[i], fee * float(gc[t, i])))
                calls_per_step[t] += 1
            # step 3: write-off when no collateral with LT > 0 is left
            lt = [float(x) for x in lt3[u, row_of(a)]]
            if any(x > 0 for x in da) and all(ca[k] == 0.0 for k in range(K) if lt[k] > 0):
                owed = 0.0
                for k in range(K):
                    owed += da[k] * pd[k]
                realised[t] += owed
                written_off[a] = True
                for k in range(K):
                    da[k] = 0.0
            if any(x > 0 for x in da):
                dd = 0.0
                cc = 0.0
                for k in range(K):
                    dd += da[k] * pd[k]
                    if lt[k] > 0:
                        cc += ca[k] * pc[k]
                if dd > cc:
                    unrealised[t] += dd - cc
        coll_usd[t] = sum(c[a][k] * pc[k] for a in range(A) for k in range(K))
        debt_usd[t] = sum(d[a][k] * pd[k] for a in range(A) for k in range(K))

    cols = list(zip(*rows)) if rows else [[]] * 9
    liq = Liquidations(
        np.asarray(cols[0], dtype=np.int64), np.asarray(cols[1], dtype=np.int64),
        np.asarray(cols[2], dtype=np.int64), np.asarray(cols[3], dtype=np.int64),
        *(np.asarray(cols[n], dtype=np.float64) for n in range(4, 9)),
    )
    return ReplayResult(
        liquidations=liq,
        realised_bad_debt=realised,
        unrealised_bad_debt=unrealised,
        liquidation_calls=calls_per_step,
        collateral_usd=coll_usd,
        debt_usd=debt_usd,
        written_off=written_off,
        final_collateral=np.asarray(c, dtype=np.float64).reshape(A, K) * gc[-1],
        final_debt=np.asarray(d, dtype=np.float64).reshape(A, K) * gd[-1],
        capped_events_usd=capped,
        blocked_borrow_usd=blocked_borrow,
        blocked_withdraw_usd=blocked_withdraw,
    )
