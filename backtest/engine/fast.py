"""Fast replay: the DESIGN §4 semantics in one numba kernel that skips what provably cannot change.

Accounts are independent, so the kernel walks account by account through the grid (account-major). For
each block of steps it bounds the account's health factor from below with per-asset price minima (of
collateral), maxima (of debt), threshold minima and depth minima over the block: if
``Σ c·p_min·LT_min·f_min ≥ Σ d·p_max`` the account cannot fall below HF 1 anywhere in the block (float
rounding is monotone, so the bound is exact, not approximate), it has no unrealised bad debt there
(``Σ c·p ≥ Σ c·p·LT``), and nothing about it changes — the whole block is skipped. Blocks that fail the
test are retried at a finer level and finally stepped one grid point at a time with the same arithmetic,
in the same order, as ``reference.replay_reference``. Per-step bad-debt totals are accumulated in
increasing account order in both engines, so results match bit for bit.

Every rule kind compiles to parameter tables ``[update, row, asset]`` (see ``types.Params``); balances
may be kept in scaled units with separate collateral/debt valuation prices (interest indices folded in).
"""

from __future__ import annotations

import math
from fractions import Fraction
from itertools import accumulate

import numpy as np
from numba import njit

from .types import Book, Events, Liquidations, Params, ReplayResult

MAX_CALLS_PER_STEP = 100
COARSE_BLOCK = 256
FINE_BLOCK = 16


def block_reduce(values: np.ndarray, block: int, how: str) -> np.ndarray:
    """Per-block minimum or maximum over axis 0 (steps); the last block may be short."""
    T = values.shape[0]
    n = (T + block - 1) // block
    pad = n * block - T
    if pad:
        values = np.concatenate([values, np.repeat(values[-1:], pad, axis=0)])
    shaped = values.reshape((n, block) + values.shape[1:])
    return shaped.min(axis=1) if how == "min" else shaped.max(axis=1)


def block_bounds(prices: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-block, per-asset minimum and maximum of ``prices`` (steps × assets)."""
    return block_reduce(prices, block, "min"), block_reduce(prices, block, "max")


@njit(cache=True, inline="always")
def _row(fixed, d, gmask):
    """Parameter row of an account: fixed, or the first group holding every debt asset (else row 0)."""
    if fixed >= 0:
        return fixed
    for g in range(gmask.shape[0]):
        ok = True
        owes = False
        for k in range(d.shape[0]):
            if d[k] > 0:
                owes = True
                if not gmask[g, k]:
                    ok = False
                    break
        if ok and owes:
            return g + 1
    return 0


@njit(cache=True, inline="always")
def _haircut(c, p, depth, hk, hfloor):
    """Liquidity haircut factor: ``max(floor, 1 − k·size/depth)``; no size → 1, no depth → floor."""
    size = c * p
    if size == 0.0:
        return 1.0
    if depth <= 0.0:
        return hfloor
    return max(hfloor, 1.0 - hk * size / depth)


@njit(cache=True, inline="always")
def _can_skip(c, d, b, r, ltmin, pcmin, pcmax, pdmax, depthmin, haircut, hk, hfloor):
    """True when block ``b`` provably leaves the account above HF 1 (indices, not views: no allocation)."""
    has_debt = False
    upper_debt = 0.0
    for k in range(d.shape[0]):
        if d[k] > 0:
            has_debt = True
            upper_debt += d[k] * pdmax[b, k]
    if not has_debt:
        return True
    lower_coll = 0.0
    for k in range(c.shape[0]):
        if c[k] != 0.0 and ltmin[b, r, k] > 0:
            if haircut:
                lower_coll += c[k] * pcmin[b, k] * ltmin[b, r, k] * _haircut(c[k], pcmax[b, k], depthmin[b, k],
                                                                            hk, hfloor)
            else:
                lower_coll += c[k] * pcmin[b, k] * ltmin[b, r, k]
    return lower_coll >= upper_debt


@njit(cache=True)
def _grow(buf_i, buf_f, n):
    new_i = np.empty((buf_i.shape[0] * 2, buf_i.shape[1]), dtype=buf_i.dtype)
    new_f = np.empty((buf_f.shape[0] * 2, buf_f.shape[1]), dtype=buf_f.dtype)
    new_i[:n] = buf_i[:n]
    new_f[:n] = buf_f[:n]
    return new_i, new_f


@njit(cache=True)
def _log_changes(t, c, d, c0, d0, log_i, log_f, n_log):
    """Append this account-step's net balance changes; returns the new count, or −1 if the log is full."""
    need = 0
    for k in range(c.shape[0]):
        need += (c[k] != c0[k]) + (d[k] != d0[k])
    if n_log + need > log_i.shape[0]:
        return -1
    for k in range(c.shape[0]):
        for side in range(2):
            old = c0[k] if side == 0 else d0[k]
            new = c[k] if side == 0 else d[k]
            if new != old:
                log_i[n_log, 0] = t
                log_i[n_log, 1] = k
                log_i[n_log, 2] = side
                log_f[n_log, 0] = old
                log_f[n_log, 1] = new
                n_log += 1
    return n_log


@njit(cache=True, inline="always")
def _ltv_short(c, d, pc, pd, t, ltv3, u, r, depth, haircut, hk, hfloor):
    """True when ``Σ c·p·LTV_eff < Σ d·p`` at step ``t`` (the account is over its initial-margin limit)."""
    cap = 0.0
    owed = 0.0
    for k in range(c.shape[0]):
        if haircut:
            cap += c[k] * pc[t, k] * ltv3[u, r, k] * _haircut(c[k], pc[t, k], depth[t, k], hk, hfloor)
        else:
            cap += c[k] * pc[t, k] * ltv3[u, r, k]
        owed += d[k] * pd[t, k]
    return cap < owed


AAVE_HF_FULL_CLOSE = 0.95  # v3: below (≤) this HF one call may repay the whole debt
AAVE_MIN_POSITION_USD = 2000.0  # v3.3+: the close-factor cap only applies when both legs are at least this
AAVE_MIN_LEFTOVER_USD = 1000.0  # v3.3+: a partial call may not leave less than this of debt or collateral


@njit(cache=True, inline="always")
def _aave_seize(repay, p_j, c_i, p_i, bonus):
    seized = repay * p_j * (1.0 + bonus) / p_i
    if seized > c_i:
        return c_i * p_i / (p_j * (1.0 + bonus)), c_i, True
    return repay, seized, False


@njit(cache=True)
def _aave_call(model, d_j, p_j, c_i, p_i, bonus, fee, hf, debt_usd, dust):
    """One Aave liquidation call in float (models 1–4; ``backtest.protocols.aave_float`` is the spec).

    Returns (repaid, seized incl. protocol fee, protocol fee, whole collateral taken, call made).
    """
    if model == 1:
        cap = 0.5 * d_j
    elif model == 2:
        cap = d_j if hf <= AAVE_HF_FULL_CLOSE else 0.5 * d_j
    else:
        cap = d_j
        reserve_usd = d_j * p_j
        if c_i * p_i >= AAVE_MIN_POSITION_USD and reserve_usd >= AAVE_MIN_POSITION_USD and hf > AAVE_HF_FULL_CLOSE:
            half = 0.5 * debt_usd
            if reserve_usd > half:
                cap = half / p_j
    repaid, seized, whole = _aave_seize(cap, p_j, c_i, p_i, bonus)
    share = bonus / (1.0 + bonus) * fee
    fee_amt = seized * share
    if model >= 3 and repaid < d_j and seized < c_i:
        left = c_i - seized if model == 4 else c_i - (seized - fee_amt)
        if (d_j - repaid) * p_j < AAVE_MIN_LEFTOVER_USD or left * p_i < AAVE_MIN_LEFTOVER_USD:
            if dust == 0:
                return 0.0, 0.0, 0.0, False, False
            by_debt = d_j - AAVE_MIN_LEFTOVER_USD / p_j
            keep = (1.0 if model == 4 else 1.0 - share) * p_j * (1.0 + bonus) / p_i
            by_coll = (c_i - AAVE_MIN_LEFTOVER_USD / p_i) / keep
            repay = min(repaid, by_debt, by_coll)
            if repay <= 0.0:
                return 0.0, 0.0, 0.0, False, False
            repaid, seized, whole = _aave_seize(repay, p_j, c_i, p_i, bonus)
            fee_amt = seized * share
    return repaid, seized, fee_amt, whole, True


@njit(cache=True)
def _replay_kernel(pc, pd, pcmin_c, pcmax_c, pdmax_c, pcmin_f, pcmax_f, pdmax_f, ltmin_c, ltmin_f,
                   depth, depthmin_c, depthmin_f, haircut, hk, hfloor,
                   coarse, fine, coll, debt, ltv3, lt3, lb3, upd, rows, gmask, cf, gas, enforce,
                   model, fees, dust, ev_ptr, ev_step, ev_asset, ev_action, ev_amount):
    T, K = pc.shape
    A = coll.shape[0]
    realised = np.zeros(T)
    unrealised = np.zeros(T)
    calls = np.zeros(T, dtype=np.int64)
    written = np.zeros(A, dtype=np.bool_)
    capped = 0.0
    blocked_borrow = 0.0
    blocked_withdraw = 0.0
    buf_i = np.empty((1024, 4), dtype=np.int64)  # liquidation calls: step, account, debt asset, coll asset
    buf_f = np.empty((1024, 5), dtype=np.float64)  # repaid, seized, repaid USD, penalty USD, protocol fee
    n_liq = 0
    log_i = np.empty((1024, 3), dtype=np.int64)  # net balance changes per account-step: step, asset, side
    log_f = np.empty((1024, 2), dtype=np.float64)  # balance before the step, after it
    n_log = 0
    c0 = np.empty(K)
    d0 = np.empty(K)
    evaluated = 0
    for a in range(A):
        c = coll[a]
        d = debt[a]
        fixed = rows[a]
        e = ev_ptr[a]
        e_end = ev_ptr[a + 1]
        t = 0
        while t < T:
            next_ev = ev_step[e] if e < e_end else T
            if t % coarse == 0:
                stop = min(t + coarse, T)
                b = t // coarse
                if stop <= next_ev and _can_skip(c, d, b, _row(fixed, d, gmask), ltmin_c, pcmin_c, pcmax_c,
                                                 pdmax_c, depthmin_c, haircut, hk, hfloor):
                    t = stop
                    continue
            if t % fine == 0:
                stop = min(t + fine, T)
                b = t // fine
                if stop <= next_ev and _can_skip(c, d, b, _row(fixed, d, gmask), ltmin_f, pcmin_f, pcmax_f,
                                                 pdmax_f, depthmin_f, haircut, hk, hfloor):
                    t = stop
                    continue
            evaluated += 1
            u = upd[t]
            for k in range(K):
                c0[k] = c[k]
                d0[k] = d[k]
            e_start = e
            calls_here = calls[t]
            written_now = False
            # step 0: this account's events at this step, in order
            while e < e_end and ev_step[e] == t:
                k = ev_asset[e]
                amt = ev_amount[e]
                act = ev_action[e]
                if act <= 1:  # supply / withdraw change collateral
                    if act == 0:
                        c[k] += amt
                    else:
                        if amt > c[k]:
                            capped += (amt - c[k]) * pc[t, k]
                            amt = c[k]
                        before = c[k]
                        c[k] -= amt
                        if enforce and amt > 0:
                            if _ltv_short(c, d, pc, pd, t, ltv3, u, _row(fixed, d, gmask), depth, haircut, hk, hfloor):
                                c[k] = before
                                blocked_withdraw += amt * pc[t, k]
                else:  # borrow / repay change debt
                    if act == 2:
                        before = d[k]
                        d[k] += amt
                        if enforce and amt > 0:
                            if _ltv_short(c, d, pc, pd, t, ltv3, u, _row(fixed, d, gmask), depth, haircut, hk, hfloor):
                                d[k] = before
                                blocked_borrow += amt * pd[t, k]
                    elif amt > d[k]:
                        capped += (amt - d[k]) * pd[t, k]
                        d[k] = 0.0
                    else:
                        d[k] -= amt
                e += 1
            has_debt = False
            for k in range(K):
                if d[k] > 0:
                    has_debt = True
            if has_debt:
                # step 2: liquidation calls while HF < 1 (at most 100)
                for _ in range(MAX_CALLS_PER_STEP):
                    r = _row(fixed, d, gmask)
                    num = 0.0
                    den = 0.0
                    for k in range(K):
                        if lt3[u, r, k] > 0:
                            if haircut:
                                num += c[k] * pc[t, k] * lt3[u, r, k] * _haircut(c[k], pc[t, k], depth[t, k], hk, hfloor)
                            else:
                                num += c[k] * pc[t, k] * lt3[u, r, k]
                        den += d[k] * pd[t, k]
                    if not (den > 0 and num / den < 1.0):
                        break
                    j = -1
                    best = -1.0
                    for k in range(K):
                        if d[k] > 0 and d[k] * pd[t, k] > best:
                            j = k
                            best = d[k] * pd[t, k]
                    i = -1
                    best = -1.0
                    for k in range(K):
                        if lt3[u, r, k] > 0 and c[k] > 0 and c[k] * pc[t, k] > best:
                            i = k
                            best = c[k] * pc[t, k]
                    if i < 0:
                        break
                    if model == 0:
                        r_cf = cf * d[j]
                        r_col = (c[i] * pc[t, i]) / (pd[t, j] * (1.0 + lb3[u, r, i]))
                        whole = r_col <= r_cf
                        if whole:
                            repaid = r_col
                            seized = c[i]
                        else:
                            repaid = r_cf
                            seized = min(repaid * pd[t, j] * (1.0 + lb3[u, r, i]) / pc[t, i], c[i])
                        fee_amt = 0.0
                    else:
                        repaid, seized, fee_amt, whole, ok = _aave_call(
                            model, d[j], pd[t, j], c[i], pc[t, i], lb3[u, r, i], fees[i], num / den, den, dust)
                        if not ok:
                            break
                    if repaid * pd[t, j] * lb3[u, r, i] - fee_amt * pc[t, i] - gas <= 0:
                        break
                    d[j] -= repaid
                    if whole:
                        c[i] = 0.0
                    else:
                        c[i] -= seized
                    if n_liq == buf_i.shape[0]:
                        buf_i, buf_f = _grow(buf_i, buf_f, n_liq)
                    buf_i[n_liq, 0] = t
                    buf_i[n_liq, 1] = a
                    buf_i[n_liq, 2] = j
                    buf_i[n_liq, 3] = i
                    buf_f[n_liq, 0] = repaid
                    buf_f[n_liq, 1] = seized
                    buf_f[n_liq, 2] = repaid * pd[t, j]
                    buf_f[n_liq, 3] = repaid * pd[t, j] * lb3[u, r, i]
                    buf_f[n_liq, 4] = fee_amt
                    n_liq += 1
                    calls[t] += 1
                # step 3: write-off when no collateral with LT > 0 is left
                r = _row(fixed, d, gmask)
                has_debt = False
                no_coll = True
                for k in range(K):
                    if d[k] > 0:
                        has_debt = True
                    if lt3[u, r, k] > 0 and c[k] != 0.0:
                        no_coll = False
                if has_debt and no_coll:
                    owed = 0.0
                    for k in range(K):
                        owed += d[k] * pd[t, k]
                        d[k] = 0.0
                    realised[t] += owed
                    written[a] = True
                    written_now = True
                    has_debt = False
                if has_debt:
                    dd = 0.0
                    cc = 0.0
                    for k in range(K):
                        dd += d[k] * pd[t, k]
                        if lt3[u, r, k] > 0:
                            cc += c[k] * pc[t, k]
                    if dd > cc:
                        unrealised[t] += dd - cc
            if e != e_start or calls_here != calls[t] or written_now:
                done = _log_changes(t, c, d, c0, d0, log_i, log_f, n_log)
                while done < 0:  # log full: double it and retry
                    log_i, log_f = _grow(log_i, log_f, n_log)
                    done = _log_changes(t, c, d, c0, d0, log_i, log_f, n_log)
                n_log = done
            t += 1
    return (realised, unrealised, calls, log_i[:n_log].copy(), log_f[:n_log].copy(), written, capped,
            blocked_borrow, blocked_withdraw, buf_i[:n_liq].copy(), buf_f[:n_liq].copy(), evaluated)


def _fixed_point(values: np.ndarray, emin: int) -> list[int]:
    """Each float64 of ``values`` as the exact integer ``value · 2**-emin`` (``emin`` ≤ every exponent)."""
    m, e = np.frexp(values)
    mant = (m * float(1 << 53)).astype(np.int64)  # exact: |m| < 1 has 53 significant bits
    shift = np.where(mant == 0, 0, e.astype(np.int64) - 53 - emin).tolist()
    mant = mant.tolist()
    return [x << s for x, s in zip(mant, shift)]


def _exact_sum(values: np.ndarray, emin: int) -> int:
    """Exact sum of ``values`` as an integer multiple of 2**emin, vectorised by exponent bucket."""
    v = values[values != 0]
    if not len(v):
        return 0
    m, e = np.frexp(v)
    mant = (m * float(1 << 53)).astype(np.int64)
    expo = e.astype(np.int64) - 53 - emin
    hi, lo = mant >> 26, mant & ((1 << 26) - 1)  # int64 sums of 27-bit halves cannot overflow here
    H = np.zeros(int(expo.max()) + 1, dtype=np.int64)
    L = np.zeros_like(H)
    np.add.at(H, expo, hi)
    np.add.at(L, expo, lo)
    return sum((int(H[x]) << (26 + int(x))) + (int(L[x]) << int(x)) for x in np.flatnonzero(H | L))


def _to_float(x: int, emin: int) -> float:
    return math.ldexp(float(x), emin) if x.bit_length() <= 1000 else float(Fraction(x) * Fraction(2) ** emin)


def exact_totals(start: np.ndarray, log_i: np.ndarray, log_f: np.ndarray, T: int, side: int) -> np.ndarray:
    """Per-step, per-asset totals of a balance matrix after each step, summed exactly then rounded once.

    Summing the balances exactly (not a running float sum of changes) keeps totals non-negative, exactly 0
    when every balance is 0, and within one rounding of the true value whatever the spread of magnitudes.
    Integers are scaled per asset by the smallest binary exponent present, so they stay a few words long.
    """
    K = start.shape[1]
    out = np.empty((T, K))
    mine = log_i[:, 2] == side
    for k in range(K):
        rows = np.flatnonzero(mine & (log_i[:, 1] == k))
        rows = rows[np.argsort(log_i[rows, 0], kind="stable")]
        col = start[:, k]
        old, new = log_f[rows, 0], log_f[rows, 1]
        nonzero = np.concatenate([col[col != 0], old[old != 0], new[new != 0]])
        if not len(nonzero):
            out[:, k] = 0.0
            continue
        emin = int(np.frexp(nonzero)[1].min()) - 53
        base = _exact_sum(col, emin)
        if not len(rows):
            out[:, k] = _to_float(base, emin)
            continue
        deltas = [n - o for n, o in zip(_fixed_point(new, emin), _fixed_point(old, emin))]
        running = list(accumulate(deltas, initial=base))[1:]
        steps = log_i[rows, 0]
        last = np.flatnonzero(np.r_[steps[1:] != steps[:-1], True])  # last change of each step
        values = np.array([_to_float(running[n], emin) for n in last.tolist()])
        idx = np.searchsorted(steps[last], np.arange(T), side="right") - 1
        out[:, k] = np.where(idx >= 0, values[np.maximum(idx, 0)], _to_float(base, emin))
    return out


def events_by_account(events: Events, n_accounts: int, amounts: np.ndarray | None = None):
    """CSR layout of ``events`` grouped by account, keeping each account's application order."""
    order = np.argsort(events.account, kind="stable")
    counts = np.bincount(events.account, minlength=n_accounts) if len(events) else np.zeros(n_accounts, np.int64)
    ptr = np.zeros(n_accounts + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    amount = events.amount if amounts is None else amounts
    return (ptr, np.ascontiguousarray(events.step[order], dtype=np.int64),
            np.ascontiguousarray(events.asset[order], dtype=np.int64),
            np.ascontiguousarray(events.action[order], dtype=np.int8),
            np.ascontiguousarray(amount[order], dtype=np.float64))


def valuation(prices: np.ndarray, growth: tuple[np.ndarray, np.ndarray] | None):
    """(collateral prices, debt prices, collateral growth, debt growth), all (T × K).

    ``growth`` holds per-step balance multipliers relative to the snapshot (interest indices ÷ their value
    at the first step). Balances are then kept in snapshot ("scaled") units and valued at ``p · growth``.
    """
    prices = np.ascontiguousarray(prices, dtype=np.float64)
    if growth is None:
        ones = np.ones_like(prices)
        return prices, prices, ones, ones
    gc = np.ascontiguousarray(growth[0], dtype=np.float64)
    gd = np.ascontiguousarray(growth[1], dtype=np.float64)
    return prices * gc, prices * gd, gc, gd


def replay_fast(prices: np.ndarray, book: Book, events: Events, params: Params, *,
                growth: tuple[np.ndarray, np.ndarray] | None = None,
                coarse: int = COARSE_BLOCK, fine: int = FINE_BLOCK) -> ReplayResult:
    """Same contract as ``reference.replay_reference``, compiled and event-skipping.

    Parameters
    ----------
    prices : float64 (T × K), USD per token unit
    book : snapshot at start; not modified
    events : mapped to steps, in application order (amounts in token units)
    params : one rule set (see ``types.Params``)
    growth : optional per-step balance multipliers (collateral, debt), each (T × K); see ``valuation``
    coarse, fine : block sizes (steps) of the two skipping levels; ``fine`` must divide ``coarse``
    """
    if coarse % fine:
        raise ValueError("fine block size must divide the coarse one")
    pc, pd, gc, gd = valuation(prices, growth)
    T, K = pc.shape
    coll = np.array(book.collateral, dtype=np.float64, order="C", copy=True)
    debt = np.array(book.debt, dtype=np.float64, order="C", copy=True)
    A = coll.shape[0]
    ltv3, lt3, lb3 = params.tables()
    upd = params.updates(T)
    lt_by_step = lt3[upd]  # (T, R, K): thresholds in force at each step
    haircut = params.depth_usd is not None
    depth = np.ascontiguousarray(params.depth_usd, dtype=np.float64) if haircut else np.ones((T, K))
    # event amounts are token units: convert to snapshot units with the index of the side they change
    ev_growth = np.where(events.action <= 1, gc[events.step, events.asset], gd[events.step, events.asset])
    ev_amount = events.amount / ev_growth if growth is not None else events.amount
    ptr, ev_step, ev_asset, ev_action, ev_amount = events_by_account(events, A, ev_amount)
    bounds = []
    for block in (coarse, fine):
        bounds.append((block_reduce(pc, block, "min"), block_reduce(pc, block, "max"),
                       block_reduce(pd, block, "max"), block_reduce(lt_by_step, block, "min"),
                       block_reduce(depth, block, "min")))
    (pcmin_c, pcmax_c, pdmax_c, ltmin_c, depmin_c), (pcmin_f, pcmax_f, pdmax_f, ltmin_f, depmin_f) = bounds
    K = pc.shape[1]
    (realised, unrealised, calls, log_i, log_f, written, capped, blocked_b, blocked_w,
     li, lf, evaluated) = _replay_kernel(
        pc, pd, pcmin_c, pcmax_c, pdmax_c, pcmin_f, pcmax_f, pdmax_f, ltmin_c, ltmin_f,
        depth, depmin_c, depmin_f, haircut, float(params.haircut_k), float(params.haircut_floor),
        coarse, fine, coll, debt, ltv3, lt3, lb3, upd, params.rows(A), params.groups(K),
        float(params.close_factor), float(params.gas_usd), bool(params.enforce_ltv),
        int(params.model), params.fees(K), int(params.dust), ptr, ev_step, ev_asset, ev_action, ev_amount)
    coll_tot = exact_totals(book.collateral, log_i, log_f, T, side=0)
    debt_tot = exact_totals(book.debt, log_i, log_f, T, side=1)
    steps, dj, ci = li[:, 0], li[:, 2], li[:, 3]
    liq = Liquidations(steps, li[:, 1], dj, ci, lf[:, 0] * gd[steps, dj], lf[:, 1] * gc[steps, ci],
                       lf[:, 2], lf[:, 3], lf[:, 4] * gc[steps, ci])
    return ReplayResult(
        liquidations=liq,
        realised_bad_debt=realised,
        unrealised_bad_debt=unrealised,
        liquidation_calls=calls,
        collateral_usd=np.einsum("tk,tk->t", coll_tot, pc),
        debt_usd=np.einsum("tk,tk->t", debt_tot, pd),
        written_off=written,
        final_collateral=coll * gc[-1],
        final_debt=debt * gd[-1],
        capped_events_usd=float(capped),
        blocked_borrow_usd=float(blocked_b),
        blocked_withdraw_usd=float(blocked_w),
        stats={"evaluated_account_steps": int(evaluated), "account_steps": int(A) * int(T)},
    )
