"""The fast replay kernel, written once against two seams: a liquidation model and a rule kind.

This file is a template as well as a module. ``backtest.engine.kernels`` copies it with the two import
lines between the ``hooks`` markers replaced by the chosen model's call and kind's hooks, so every
(model, kind) pair gets a kernel of its own that numba compiles with the calls inlined and caches on disk
(``cache=True``) — no function pointers, no per-step dispatch. Every pair, the default one too, runs a
generated copy: numba's cache would not notice an edit of a hook module in this file's own cache.

The kernel walks account by account (accounts are independent). Before evaluating a step it asks the
kind whether the account provably stays healthy over the aligned block of steps starting there, at each
skipping level from the largest block down; when every level says "maybe", it evaluates the step with
the same arithmetic, in the same order, as ``reference.replay_reference``. See ``backtest.kinds.tables``
for the hook signatures.
"""

# hooks: ``backtest.engine.kernels`` replaces the two lines below in generated copies
from backtest.models.design import close_factor_call as model_call
from backtest.engine.tables import bonus, eligible, initial, maint, regime, skip, stuck
ABSORB = False
# end hooks

import numpy as np
from numba import njit, types
from numba.typed import List

from backtest.engine.borrow import borrowed
from backtest.engine.types import MAX_CALLS_PER_STEP

CAPPED, BLOCKED_BORROW, BLOCKED_WITHDRAW = 0, 1, 2
LIQ, LOG, NOTE = 0, 1, 2  # the growable buffers' slots in the kernel's owner lists
_INTS = types.int64[:, ::1]
_FLOATS = types.float64[:, ::1]


@njit(cache=True, nogil=True)
def _grow_kept(keep_i, keep_f, slot, n):
    """Double the buffers of ``slot`` (their first ``n`` rows copied); the owner lists hold the new ones,
    the kernel gets borrowed views of them."""
    old_i, old_f = keep_i[slot], keep_f[slot]
    new_i = np.empty((old_i.shape[0] * 2, old_i.shape[1]), dtype=old_i.dtype)
    new_f = np.empty((old_f.shape[0] * 2, old_f.shape[1]), dtype=old_f.dtype)
    new_i[:n] = old_i[:n]
    new_f[:n] = old_f[:n]
    keep_i[slot] = new_i
    keep_f[slot] = new_f
    return borrowed((new_i, new_f))


@njit(cache=True, nogil=True)
def _buffers(rows_liq, rows_log, rows_note):
    """The kernel's growable buffers, owned by two lists (int64 and float64 halves, by slot) that the
    kernel never rebinds: the buffer variables, rebound when one grows, are borrowed views, so carrying
    them through the step loop costs no reference counting."""
    keep_i = List.empty_list(_INTS)
    keep_f = List.empty_list(_FLOATS)
    keep_i.append(np.empty((rows_liq, 4), dtype=np.int64))  # liquidation calls: step, account, debt, coll asset
    keep_f.append(np.empty((rows_liq, 5), dtype=np.float64))  # repaid, seized, repaid USD, penalty USD, fee
    keep_i.append(np.empty((rows_log, 3), dtype=np.int64))  # net balance changes per account-step: step, asset, side
    keep_f.append(np.empty((rows_log, 2), dtype=np.float64))  # balance before the step, after it
    keep_i.append(np.empty((rows_note, 1), dtype=np.int64))  # notes: kind
    keep_f.append(np.empty((rows_note, 1), dtype=np.float64))  # notes: USD
    return keep_i, keep_f


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def _level_bits(levels):
    """Masks and shifts of the block sizes when every one is a power of two (the default levels are): the
    kernel then tests alignment with ``t & mask`` and finds a block with ``t >> shift`` instead of integer
    divisions (≈ 8 % of a kernel's time on the end-to-end book); ``ok`` is False otherwise."""
    n = levels.shape[0]
    masks = np.empty(n, dtype=np.int64)
    shifts = np.empty(n, dtype=np.int64)
    ok = True
    for lv in range(n):
        size = levels[lv]
        masks[lv] = size - 1
        sh = 0
        while sh < 62 and (np.int64(1) << sh) < size:
            sh += 1
        shifts[lv] = sh
        if size <= 0 or (np.int64(1) << sh) != size:
            ok = False
    return masks, shifts, ok


@njit(cache=True, nogil=True, inline="always")
def _owed(d, pd, t):
    owed = 0.0
    for k in range(d.shape[0]):
        owed += d[k] * pd[t, k]
    return owed


@njit(cache=True, nogil=True, inline="always")
def _largest_debt(d, pd, t):
    """DESIGN §4's debt asset: the largest debt by value, the lowest index on ties (−1 without debt)."""
    j = -1
    best = -1.0
    for k in range(d.shape[0]):
        if d[k] > 0 and d[k] * pd[t, k] > best:
            j = k
            best = d[k] * pd[t, k]
    return j


@njit(cache=True, nogil=True)
def replay_kernel(pc, pd, levels, kp, margs, share, fees, gas, enforce, coll, debt,
                  ev_ptr, ev_step, ev_asset, ev_action, ev_amount):
    """Replay every account of ``coll``/``debt`` (modified in place) over the grid.

    pc, pd : (T × K) valuation prices of collateral and debt balances
    levels : int64 block sizes of the skipping levels, largest first, each dividing the one before
    kp : the kind's compiled parameters (a namedtuple its hooks read)
    margs : the model's float64 argument vector; share : the most of a debt one call repays (``max_share``)
    fees : (K,) protocol fee share per asset
    ev_* : events in CSR form by account (``ev_ptr``), amounts in balance units
    """
    # the calling frame holds every argument until the call returns: read them without reference counts
    pc, pd, levels, kp, margs, fees, coll, debt = borrowed((pc, pd, levels, kp, margs, fees, coll, debt))
    ev_ptr, ev_step, ev_asset, ev_action, ev_amount = borrowed((ev_ptr, ev_step, ev_asset, ev_action, ev_amount))
    T, K = pc.shape
    A = coll.shape[0]
    realised = np.zeros(T)
    unrealised = np.zeros(T)
    calls = np.zeros(T, dtype=np.int64)
    written = np.zeros(A, dtype=np.bool_)
    keep_i, keep_f = _buffers(1024, 1024, 64)
    buf_i, buf_f = borrowed((keep_i[LIQ], keep_f[LIQ]))
    n_liq = 0
    log_i, log_f = borrowed((keep_i[LOG], keep_f[LOG]))
    n_log = 0
    note_i, note_f = borrowed((keep_i[NOTE], keep_f[NOTE]))
    n_note = 0
    c0 = np.empty(K)
    d0 = np.empty(K)
    held_c = np.empty(K, dtype=np.int64)
    held_d = np.empty(K, dtype=np.int64)
    n_levels = levels.shape[0]
    masks, shifts, pow2 = _level_bits(levels)
    small = n_levels - 1  # the smallest block's level
    evaluated = 0
    for a in range(A):
        c = coll[a]
        d = debt[a]
        e = ev_ptr[a]
        e_end = ev_ptr[a + 1]
        t = 0
        r = regime(kp, a, d)  # the account's regime depends on its debts only: recomputed when they change
        while t < T:
            next_ev = ev_step[e] if e < e_end else T
            skipped = False
            if ((t & masks[small]) == 0) if pow2 else (t % levels[small] == 0):
                # aligned to the smallest block: try the levels, largest first
                for lv in range(n_levels):
                    block = levels[lv]
                    if ((t & masks[lv]) == 0) if pow2 else (t % block == 0):
                        stop = min(t + block, T)
                        if stop <= next_ev:
                            nb = (t >> shifts[lv]) if pow2 else (t // block)  # the block's number at this level
                            if skip(kp, lv, nb, r, c, d):
                                t = stop
                                skipped = True
                                break
                            s = 0 if ABSORB else stuck(kp, lv, nb, r, c, d, gas, share)  # absorbs pay no gas
                            if s > 0:
                                # no call can pay for itself and nothing changes: only bad debt may accrue
                                if s == 2:
                                    # the same sums as an evaluated step, over the held legs only (a zero
                                    # balance adds an exact 0.0), in the same asset order
                                    nd = 0
                                    nc = 0
                                    for k in range(K):
                                        if d[k] != 0.0:
                                            held_d[nd] = k
                                            nd += 1
                                        if c[k] != 0.0:
                                            held_c[nc] = k
                                            nc += 1
                                    for tt in range(t, stop):
                                        dd = 0.0
                                        for q in range(nd):
                                            dd += d[held_d[q]] * pd[tt, held_d[q]]
                                        cc = 0.0
                                        for q in range(nc):
                                            k = held_c[q]
                                            if eligible(kp, r, tt, k):
                                                cc += c[k] * pc[tt, k]
                                        if dd > cc:
                                            unrealised[tt] += dd - cc
                                t = stop
                                skipped = True
                                break
            if skipped:
                continue
            evaluated += 1
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
                            if n_note == note_i.shape[0]:
                                note_i, note_f = _grow_kept(keep_i, keep_f, NOTE, n_note)
                            note_i[n_note, 0] = CAPPED
                            note_f[n_note, 0] = (amt - c[k]) * pc[t, k]
                            n_note += 1
                            amt = c[k]
                        before = c[k]
                        c[k] -= amt
                        if enforce and amt > 0:
                            rr = regime(kp, a, d)
                            if initial(kp, a, rr, c, d, pc, pd, t) < _owed(d, pd, t):
                                c[k] = before
                                if n_note == note_i.shape[0]:
                                    note_i, note_f = _grow_kept(keep_i, keep_f, NOTE, n_note)
                                note_i[n_note, 0] = BLOCKED_WITHDRAW
                                note_f[n_note, 0] = amt * pc[t, k]
                                n_note += 1
                else:  # borrow / repay change debt
                    if act == 2:
                        before = d[k]
                        d[k] += amt
                        if enforce and amt > 0:
                            rr = regime(kp, a, d)
                            if initial(kp, a, rr, c, d, pc, pd, t) < _owed(d, pd, t):
                                d[k] = before
                                if n_note == note_i.shape[0]:
                                    note_i, note_f = _grow_kept(keep_i, keep_f, NOTE, n_note)
                                note_i[n_note, 0] = BLOCKED_BORROW
                                note_f[n_note, 0] = amt * pd[t, k]
                                n_note += 1
                    elif amt > d[k]:
                        if n_note == note_i.shape[0]:
                            note_i, note_f = _grow_kept(keep_i, keep_f, NOTE, n_note)
                        note_i[n_note, 0] = CAPPED
                        note_f[n_note, 0] = (amt - d[k]) * pd[t, k]
                        n_note += 1
                        d[k] = 0.0
                    else:
                        d[k] -= amt
                e += 1
            if e != e_start:
                r = regime(kp, a, d)
            has_debt = False
            for k in range(K):
                if d[k] > 0:
                    has_debt = True
            if has_debt and ABSORB:
                # step 2 of an absorbing model (Comet): all eligible collateral at LF = 1/(1 + bonus), every
                # debt extinguished, the excess credit supplied to the user in the base column margs[0]
                num = maint(kp, a, r, c, d, pc, pd, t)
                den = _owed(d, pd, t)
                if den > 0 and num / den < 1.0:
                    j = _largest_debt(d, pd, t)
                    credit = 0.0
                    first = n_liq
                    for k in range(K):
                        if eligible(kp, r, t, k) and c[k] > 0:
                            value = c[k] * pc[t, k]
                            lf = 1.0 / (1.0 + bonus(kp, r, t, k))
                            credit += value * lf
                            if n_liq == buf_i.shape[0]:
                                buf_i, buf_f = _grow_kept(keep_i, keep_f, LIQ, n_liq)
                            buf_i[n_liq, 0] = t
                            buf_i[n_liq, 1] = a
                            buf_i[n_liq, 2] = j
                            buf_i[n_liq, 3] = k
                            buf_f[n_liq, 0] = value * lf  # credit, turned into the debt share below
                            buf_f[n_liq, 1] = c[k]
                            buf_f[n_liq, 2] = value * lf
                            buf_f[n_liq, 3] = value - value * lf
                            buf_f[n_liq, 4] = 0.0
                            n_liq += 1
                            c[k] = 0.0
                    if n_liq > first:
                        for q in range(first, n_liq):
                            share = buf_f[q, 2] / credit if credit > 0 else 1.0 / (n_liq - first)
                            buf_f[q, 2] = den * share
                            buf_f[q, 0] = den * share / pd[t, j]
                        calls[t] += n_liq - first
                        for k in range(K):
                            d[k] = 0.0
                        if credit > den:
                            base = int(margs[0])
                            c[base] += (credit - den) / pc[t, base]
                        r = regime(kp, a, d)
                        has_debt = False
            if has_debt:
                # step 2: liquidation calls while HF < 1 (at most MAX_CALLS_PER_STEP)
                for _ in range(MAX_CALLS_PER_STEP):
                    num = maint(kp, a, r, c, d, pc, pd, t)
                    den = _owed(d, pd, t)
                    if not (den > 0 and num / den < 1.0):
                        break
                    j = _largest_debt(d, pd, t)
                    i = -1
                    best = -1.0
                    for k in range(K):
                        if eligible(kp, r, t, k) and c[k] > 0 and c[k] * pc[t, k] > best:
                            i = k
                            best = c[k] * pc[t, k]
                    if i < 0:
                        break
                    lb = bonus(kp, r, t, i)
                    repaid, seized, fee_amt, whole, ok = model_call(margs, d[j], pd[t, j], c[i], pc[t, i], lb,
                                                                    fees[i], num / den, den)
                    if not ok:
                        break
                    if repaid * pd[t, j] * lb - fee_amt * pc[t, i] - gas <= 0:
                        break
                    d[j] -= repaid
                    if whole:
                        c[i] = 0.0
                    else:
                        c[i] -= seized
                    if n_liq == buf_i.shape[0]:
                        buf_i, buf_f = _grow_kept(keep_i, keep_f, LIQ, n_liq)
                    buf_i[n_liq, 0] = t
                    buf_i[n_liq, 1] = a
                    buf_i[n_liq, 2] = j
                    buf_i[n_liq, 3] = i
                    buf_f[n_liq, 0] = repaid
                    buf_f[n_liq, 1] = seized
                    buf_f[n_liq, 2] = repaid * pd[t, j]
                    buf_f[n_liq, 3] = repaid * pd[t, j] * lb
                    buf_f[n_liq, 4] = fee_amt
                    n_liq += 1
                    calls[t] += 1
                    r = regime(kp, a, d)
                # step 3: write-off when no eligible collateral is left
                has_debt = False
                no_coll = True
                for k in range(K):
                    if d[k] > 0:
                        has_debt = True
                    if eligible(kp, r, t, k) and c[k] != 0.0:
                        no_coll = False
                if has_debt and no_coll:
                    owed = 0.0
                    for k in range(K):
                        owed += d[k] * pd[t, k]
                        d[k] = 0.0
                    realised[t] += owed
                    r = regime(kp, a, d)
                    written[a] = True
                    written_now = True
                    has_debt = False
                if has_debt:
                    dd = 0.0
                    cc = 0.0
                    for k in range(K):
                        dd += d[k] * pd[t, k]
                        if eligible(kp, r, t, k):
                            cc += c[k] * pc[t, k]
                    if dd > cc:
                        unrealised[t] += dd - cc
            if e != e_start or calls_here != calls[t] or written_now:
                done = _log_changes(t, c, d, c0, d0, log_i, log_f, n_log)
                while done < 0:  # log full: double it and retry
                    log_i, log_f = _grow_kept(keep_i, keep_f, LOG, n_log)
                    done = _log_changes(t, c, d, c0, d0, log_i, log_f, n_log)
                n_log = done
            t += 1
    # copied from the owners (so the lists, and the buffers with them, live until here), not the views
    return (realised, unrealised, calls, keep_i[LOG][:n_log].copy(), keep_f[LOG][:n_log].copy(), written,
            keep_i[NOTE][:n_note, 0].copy(), keep_f[NOTE][:n_note, 0].copy(), keep_i[LIQ][:n_liq].copy(),
            keep_f[LIQ][:n_liq].copy(), evaluated)
