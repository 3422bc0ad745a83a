"""Fast replay: the DESIGN §4 semantics in one numba kernel that skips what provably cannot change.

Accounts are independent, so the kernel walks account by account through the grid (account-major). For
each block of steps it bounds the account's health factor from below with per-asset price minima and
maxima over the block: if ``Σ c·p_min·LT ≥ Σ d·p_max`` the account cannot fall below HF 1 anywhere in
the block (float rounding is monotone, so the bound is exact, not approximate), it has no unrealised
bad debt there (``Σ c·p ≥ Σ c·p·LT``), and nothing about it changes — the whole block is skipped. Blocks
that fail the test are retried at a finer level and finally stepped one grid point at a time with the
same arithmetic, in the same order, as ``reference.replay_reference``. Per-step totals are accumulated
in increasing account order in both engines, so results match bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .types import Book, Events, Liquidations, Params, ReplayResult

MAX_CALLS_PER_STEP = 100
COARSE_BLOCK = 256
FINE_BLOCK = 16


def block_bounds(prices: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-block, per-asset minimum and maximum of ``prices`` (steps × assets); last block may be short."""
    T, K = prices.shape
    n = (T + block - 1) // block
    pad = n * block - T
    if pad:
        lo = np.vstack([prices, np.repeat(prices[-1:], pad, axis=0)])
    else:
        lo = prices
    shaped = lo.reshape(n, block, K)
    return shaped.min(axis=1), shaped.max(axis=1)


@njit(cache=True)
def _can_skip(c, d, lt, pmin, pmax):
    has_debt = False
    upper_debt = 0.0
    for k in range(d.shape[0]):
        if d[k] > 0:
            has_debt = True
            upper_debt += d[k] * pmax[k]
    if not has_debt:
        return True
    lower_coll = 0.0
    for k in range(c.shape[0]):
        if c[k] != 0.0 and lt[k] > 0:
            lower_coll += c[k] * pmin[k] * lt[k]
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
    """Append this account-step's net balance changes; returns the new count, or -count if full."""
    need = 0
    for k in range(c.shape[0]):
        need += (c[k] != c0[k]) + (d[k] != d0[k])
    if n_log + need > log_i.shape[0]:
        return -n_log
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


@njit(cache=True)
def _replay_kernel(prices, pmin_c, pmax_c, pmin_f, pmax_f, coarse, fine, coll, debt, lt, lb, cf, gas,
                   ev_ptr, ev_step, ev_asset, ev_action, ev_amount):
    T, K = prices.shape
    A = coll.shape[0]
    realised = np.zeros(T)
    unrealised = np.zeros(T)
    calls = np.zeros(T, dtype=np.int64)
    written = np.zeros(A, dtype=np.bool_)
    capped = 0.0
    buf_i = np.empty((1024, 4), dtype=np.int64)  # liquidation calls: step, account, debt asset, coll asset
    buf_f = np.empty((1024, 4), dtype=np.float64)  # repaid, seized, repaid USD, penalty USD
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
        e = ev_ptr[a]
        e_end = ev_ptr[a + 1]
        t = 0
        while t < T:
            next_ev = ev_step[e] if e < e_end else T
            if t % coarse == 0:
                stop = min(t + coarse, T)
                if stop <= next_ev and _can_skip(c, d, lt, pmin_c[t // coarse], pmax_c[t // coarse]):
                    t = stop
                    continue
            if t % fine == 0:
                stop = min(t + fine, T)
                if stop <= next_ev and _can_skip(c, d, lt, pmin_f[t // fine], pmax_f[t // fine]):
                    t = stop
                    continue
            evaluated += 1
            p = prices[t]
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
                bal = c if act <= 1 else d  # supply/withdraw change collateral, borrow/repay debt
                if act == 0 or act == 2:
                    bal[k] += amt
                elif amt > bal[k]:
                    capped += (amt - bal[k]) * p[k]
                    bal[k] = 0.0
                else:
                    bal[k] -= amt
                e += 1
            has_debt = False
            for k in range(K):
                if d[k] > 0:
                    has_debt = True
            if has_debt:
                # step 2: liquidation calls while HF < 1 (at most 100)
                for _ in range(MAX_CALLS_PER_STEP):
                    num = 0.0
                    den = 0.0
                    for k in range(K):
                        if lt[k] > 0:
                            num += c[k] * p[k] * lt[k]
                        den += d[k] * p[k]
                    if not (den > 0 and num / den < 1.0):
                        break
                    j = -1
                    best = -1.0
                    for k in range(K):
                        if d[k] > 0 and d[k] * p[k] > best:
                            j = k
                            best = d[k] * p[k]
                    i = -1
                    best = -1.0
                    for k in range(K):
                        if lt[k] > 0 and c[k] > 0 and c[k] * p[k] > best:
                            i = k
                            best = c[k] * p[k]
                    if i < 0:
                        break
                    r_cf = cf * d[j]
                    r_col = (c[i] * p[i]) / (p[j] * (1.0 + lb[i]))
                    whole = r_col <= r_cf
                    if whole:
                        repaid = r_col
                        seized = c[i]
                    else:
                        repaid = r_cf
                        seized = min(repaid * p[j] * (1.0 + lb[i]) / p[i], c[i])
                    if repaid * p[j] * lb[i] - gas <= 0:
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
                    buf_f[n_liq, 2] = repaid * p[j]
                    buf_f[n_liq, 3] = repaid * p[j] * lb[i]
                    n_liq += 1
                    calls[t] += 1
                # step 3: write-off when no collateral with LT > 0 is left
                has_debt = False
                no_coll = True
                for k in range(K):
                    if d[k] > 0:
                        has_debt = True
                    if lt[k] > 0 and c[k] != 0.0:
                        no_coll = False
                if has_debt and no_coll:
                    owed = 0.0
                    for k in range(K):
                        owed += d[k] * p[k]
                        d[k] = 0.0
                    realised[t] += owed
                    written[a] = True
                    written_now = True
                    has_debt = False
                if has_debt:
                    dd = 0.0
                    cc = 0.0
                    for k in range(K):
                        dd += d[k] * p[k]
                        if lt[k] > 0:
                            cc += c[k] * p[k]
                    if dd > cc:
                        unrealised[t] += dd - cc
            # net balance changes of this account-step, for exact per-step totals
            if e != e_start or calls_here != calls[t] or written_now:
                done = _log_changes(t, c, d, c0, d0, log_i, log_f, n_log)
                while done < 0:  # buffer full: double it and retry
                    log_i, log_f = _grow(log_i, log_f, n_log)
                    done = _log_changes(t, c, d, c0, d0, log_i, log_f, n_log)
                n_log = done
            t += 1
    return (realised, unrealised, calls, log_i[:n_log].copy(), log_f[:n_log].copy(), written, capped,
            buf_i[:n_liq].copy(), buf_f[:n_liq].copy(), evaluated)


_SHIFT = 1126  # 2**-1126 divides every finite double (the smallest subnormal is 2**-1074; frexp adds 53)


def _exact_int(values: np.ndarray) -> int:
    """Exact sum of float64 ``values`` as an integer multiple of 2**-_SHIFT (vectorised)."""
    v = values[values != 0]
    if not len(v):
        return 0
    m, e = np.frexp(v)
    mant = (m * float(1 << 53)).astype(np.int64)  # exact: |m| < 1 has 53 significant bits
    expo = (e.astype(np.int64) + (_SHIFT - 53))
    hi, lo = mant >> 26, mant & ((1 << 26) - 1)  # int64 sums of 27-bit halves cannot overflow here
    H = np.zeros(int(expo.max()) + 1, dtype=np.int64)
    L = np.zeros_like(H)
    np.add.at(H, expo, hi)
    np.add.at(L, expo, lo)
    return sum((int(H[x]) << (26 + int(x))) + (int(L[x]) << int(x)) for x in np.flatnonzero(H | L))


def _as_ints(values: np.ndarray) -> list[int]:
    """Each float64 of ``values`` as an exact integer multiple of 2**-_SHIFT."""
    m, e = np.frexp(values)
    mant = (m * float(1 << 53)).astype(np.int64).tolist()
    shift = (e.astype(np.int64) + (_SHIFT - 53)).tolist()
    return [x << s for x, s in zip(mant, shift)]


def exact_totals(start: np.ndarray, log_i: np.ndarray, log_f: np.ndarray, T: int, side: int) -> np.ndarray:
    """Per-step, per-asset totals of a balance matrix after each step, summed exactly then rounded once.

    Summing the balances exactly (not a running float sum of changes) keeps totals non-negative, exactly 0
    when every balance is 0, and within one rounding of the true value whatever the spread of magnitudes.
    """
    K = start.shape[1]
    totals = [_exact_int(start[:, k]) for k in range(K)]
    out = np.empty((T, K))
    rows = np.flatnonzero(log_i[:, 2] == side)
    rows = rows[np.argsort(log_i[rows, 0], kind="stable")]
    steps = log_i[rows, 0].tolist()
    assets = log_i[rows, 1].tolist()
    new = _as_ints(log_f[rows, 1])
    old = _as_ints(log_f[rows, 0])
    scale = 1 << _SHIFT
    t0 = 0
    for n, t in enumerate(steps):
        if t != t0:
            out[t0:t] = [x / scale for x in totals]
            t0 = t
        totals[assets[n]] += new[n] - old[n]
    out[t0:T] = [x / scale for x in totals]
    return out


def events_by_account(events: Events, n_accounts: int):
    """CSR layout of ``events`` grouped by account, keeping each account's application order."""
    order = np.argsort(events.account, kind="stable")
    counts = np.bincount(events.account, minlength=n_accounts) if len(events) else np.zeros(n_accounts, np.int64)
    ptr = np.zeros(n_accounts + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return (ptr, np.ascontiguousarray(events.step[order], dtype=np.int64),
            np.ascontiguousarray(events.asset[order], dtype=np.int64),
            np.ascontiguousarray(events.action[order], dtype=np.int8),
            np.ascontiguousarray(events.amount[order], dtype=np.float64))


def replay_fast(prices: np.ndarray, book: Book, events: Events, params: Params,
                *, coarse: int = COARSE_BLOCK, fine: int = FINE_BLOCK) -> ReplayResult:
    """Same contract as ``reference.replay_reference``, compiled and event-skipping.

    Parameters
    ----------
    prices : float64 (T × K), USD per token unit
    book : snapshot at start; not modified
    events : mapped to steps, in application order
    params : one rule set
    coarse, fine : block sizes (steps) of the two skipping levels; ``fine`` must divide ``coarse``
    """
    if coarse % fine:
        raise ValueError("fine block size must divide the coarse one")
    prices = np.ascontiguousarray(prices, dtype=np.float64)
    T, K = prices.shape
    coll = np.array(book.collateral, dtype=np.float64, order="C", copy=True)
    debt = np.array(book.debt, dtype=np.float64, order="C", copy=True)
    A = coll.shape[0]
    pmin_c, pmax_c = block_bounds(prices, coarse)
    pmin_f, pmax_f = block_bounds(prices, fine)
    ptr, ev_step, ev_asset, ev_action, ev_amount = events_by_account(events, A)
    (realised, unrealised, calls, log_i, log_f, written, capped,
     li, lf, evaluated) = _replay_kernel(
        prices, pmin_c, pmax_c, pmin_f, pmax_f, coarse, fine, coll, debt,
        np.ascontiguousarray(params.liquidation_threshold, dtype=np.float64),
        np.ascontiguousarray(params.liquidation_bonus, dtype=np.float64),
        float(params.close_factor), float(params.gas_usd),
        ptr, ev_step, ev_asset, ev_action, ev_amount)
    coll_tot = exact_totals(book.collateral, log_i, log_f, T, side=0)
    debt_tot = exact_totals(book.debt, log_i, log_f, T, side=1)
    liq = Liquidations(li[:, 0], li[:, 1], li[:, 2], li[:, 3], lf[:, 0], lf[:, 1], lf[:, 2], lf[:, 3])
    return ReplayResult(
        liquidations=liq,
        realised_bad_debt=realised,
        unrealised_bad_debt=unrealised,
        liquidation_calls=calls,
        collateral_usd=np.einsum("tk,tk->t", coll_tot, prices),
        debt_usd=np.einsum("tk,tk->t", debt_tot, prices),
        written_off=written,
        final_collateral=coll,
        final_debt=debt,
        capped_events_usd=float(capped),
        stats={"evaluated_account_steps": int(evaluated), "account_steps": int(A) * int(T)},
    )
