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

The liquidation call comes from the rule set's model and the requirement, eligibility, bonus and block
bound from its kind's hooks (``backtest.engine.tables`` for every built-in kind); ``kernels.kernel_for``
generates one kernel per pair. Balances may be kept in scaled units with separate collateral/debt
valuation prices (interest indices folded in). Capped and refused amounts are summed exactly (``fsum``) in
both engines, so their totals do not depend on the order the engines meet them in.
"""

from __future__ import annotations

import math
from fractions import Fraction
from itertools import accumulate

import numpy as np
from .blocks import block_bounds, block_reduce  # noqa: F401  (re-exported for benches and tests)
from .kernels import kernel_for
from .totals import _LARGE, _SMALL, book_totals, running_totals
from .types import Book, Events, Liquidations, ReplayResult

COARSE_BLOCK = 256
FINE_BLOCK = 16

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
    """``x · 2**emin`` rounded once; beyond float range it is ±inf (carried to the tables as null)."""
    try:
        if x.bit_length() <= 1000:
            return math.ldexp(float(x), emin)
        return float(Fraction(x) * Fraction(2) ** emin)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def _special_counts(start_col: np.ndarray, steps: np.ndarray, old: np.ndarray, new: np.ndarray, T: int):
    """Per step, how many balances are +inf, −inf and NaN after it (non-finite balances are not summed)."""
    out = []
    for test in (lambda v: np.isposinf(v), lambda v: np.isneginf(v), lambda v: np.isnan(v)):
        delta = test(new).astype(np.int64) - test(old).astype(np.int64)
        per_step = np.bincount(steps, weights=delta, minlength=T)[:T] if len(steps) else np.zeros(T)
        out.append(int(test(start_col).sum()) + np.cumsum(per_step))
    return out




def exact_totals(start: np.ndarray, log_i: np.ndarray, log_f: np.ndarray, T: int, side: int,
                 columns=None) -> np.ndarray:
    """Per-step, per-asset totals of a balance matrix after each step, summed exactly then rounded once.

    Summing the balances exactly (not a running float sum of changes) keeps totals non-negative, exactly 0
    when every balance is 0, and within one rounding of the true value whatever the spread of magnitudes.
    Values well inside float range are summed by the compiled ``totals.running_totals`` (exact partials);
    others as integers scaled per asset by the smallest binary exponent present (a few words long).
    ``columns``: only these assets (the others' columns are left unset).
    """
    K = start.shape[1]
    out = np.empty((T, K))
    mine = log_i[:, 2] == side
    for k in (range(K) if columns is None else columns):
        rows = np.flatnonzero(mine & (log_i[:, 1] == k))
        rows = rows[np.argsort(log_i[rows, 0], kind="stable")]
        col = start[:, k]
        old, new = log_f[rows, 0], log_f[rows, 1]
        special = None
        if not (np.isfinite(col).all() and np.isfinite(old).all() and np.isfinite(new).all()):
            special = _special_counts(col, log_i[rows, 0], old, new, T)
            col, old, new = (np.where(np.isfinite(x), x, 0.0) for x in (col, old, new))
        nonzero = np.concatenate([col[col != 0], old[old != 0], new[new != 0]])
        size = np.abs(nonzero)
        if special is None and len(nonzero) and _SMALL <= size.min() and size.max() <= _LARGE:
            # well inside float range: the compiled exact sums (the same correctly rounded values)
            out[:, k] = running_totals(np.ascontiguousarray(col), np.ascontiguousarray(log_i[rows, 0]),
                                       np.ascontiguousarray(old), np.ascontiguousarray(new), T)
            continue
        if not len(nonzero):
            out[:, k] = 0.0
            _apply_special(out, k, special)
            continue
        emin = int(np.frexp(nonzero)[1].min()) - 53
        base = _exact_sum(col, emin)
        if not len(rows):
            out[:, k] = _to_float(base, emin)
            _apply_special(out, k, special)
            continue
        deltas = [n - o for n, o in zip(_fixed_point(new, emin), _fixed_point(old, emin))]
        running = list(accumulate(deltas, initial=base))[1:]
        steps = log_i[rows, 0]
        last = np.flatnonzero(np.r_[steps[1:] != steps[:-1], True])  # last change of each step
        values = np.array([_to_float(running[n], emin) for n in last.tolist()])
        idx = np.searchsorted(steps[last], np.arange(T), side="right") - 1
        out[:, k] = np.where(idx >= 0, values[np.maximum(idx, 0)], _to_float(base, emin))
        _apply_special(out, k, special)
    return out


def book_exact_totals(book: Book, log_i: np.ndarray, log_f: np.ndarray, T: int) -> tuple[np.ndarray, np.ndarray]:
    """``exact_totals`` of both sides of ``book`` — (T × K) collateral and debt totals — in one compiled pass
    (``totals.book_totals``); an asset whose values it cannot sum in float partials (non-finite, beyond
    2⁹⁶⁰ or below 2⁻⁹⁶⁰) is summed by ``exact_totals``' big-integer path. The same numbers either way."""
    coll = np.ascontiguousarray(book.collateral, dtype=np.float64)
    debt = np.ascontiguousarray(book.debt, dtype=np.float64)
    tot, ok = book_totals(coll, debt, np.ascontiguousarray(log_i), np.ascontiguousarray(log_f), T)
    out = (tot[0], tot[1])
    for side, start in ((0, coll), (1, debt)):
        left = np.flatnonzero(~ok[side])
        if len(left):
            out[side][:, left] = exact_totals(start, log_i, log_f, T, side, columns=left.tolist())[:, left]
    return out


def _apply_special(out: np.ndarray, k: int, special) -> None:
    """Totals of an asset holding non-finite balances: NaN if any NaN, else ±inf (inf − inf is NaN)."""
    if special is None:
        return
    pos, neg, nan = special
    col = out[:, k]
    col[(pos > 0) & ~(neg > 0)] = math.inf
    col[(neg > 0) & ~(pos > 0)] = -math.inf
    col[(nan > 0) | ((pos > 0) & (neg > 0))] = math.nan


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


def _fsum_safe(values: list[float]) -> float:
    """Exact sum rounded once (so the order of terms does not matter); non-finite terms: the plain sum."""
    try:
        return math.fsum(values)
    except (OverflowError, ValueError):  # inf/nan terms: the plain sum says which
        return float(sum(values))


LEVEL_FACTOR = 4  # each default skipping level's blocks are this many times the next one's
SMALLEST_BLOCK = 4  # the finest default block
MAX_BLOCK = 65_536  # the largest default block (9 days of 12-second blocks)


def default_levels(n_steps: int) -> list[int]:
    """Skipping levels for a grid of ``n_steps``: 4, 16, 64, …, 65,536 steps, up to the grid's length.

    A 2,000-step crash day gets five levels (1,024 … 4); a year of 12-second blocks (2.6 M steps) gets
    eight, so a calm account is cleared 65,536 steps at a time and one near the edge of its bound is
    stepped singly only over the 4-step blocks whose bound fails. Measured (bench/RESULTS.md, issue #8):
    on the end-to-end book the kernel evaluates 0.8 M account-steps per rule set instead of 3.0 M with the
    old 256/16 ladder and takes about 0.55× the time; at a year's scale it is as fast or faster. A level of
    1,048,576 steps costs more than it saves there: over a million steps the price range of a block is so
    wide that most accounts fail its bound anyway.
    """
    sizes = [SMALLEST_BLOCK, SMALLEST_BLOCK * LEVEL_FACTOR]
    while sizes[-1] * LEVEL_FACTOR <= min(n_steps, MAX_BLOCK):
        sizes.append(sizes[-1] * LEVEL_FACTOR)
    return sizes[::-1]


def skip_levels(coarse: int | None = None, fine: int | None = None, levels=None, n_steps: int = 0) -> np.ndarray:
    """Block sizes of the skipping levels, largest first; each must divide the one before."""
    if levels is not None:
        sizes = [int(x) for x in levels]
    elif coarse is None and fine is None:
        sizes = default_levels(n_steps)
    else:
        sizes = [COARSE_BLOCK if coarse is None else int(coarse), FINE_BLOCK if fine is None else int(fine)]
    for big, small in zip(sizes, sizes[1:]):
        if big % small:
            raise ValueError("fine block size must divide the coarse one")
    return np.asarray(sizes, dtype=np.int64)


def replay_fast(prices: np.ndarray, book: Book, events: Events, params, *,
                growth: tuple[np.ndarray, np.ndarray] | None = None,
                coarse: int | None = None, fine: int | None = None, levels=None) -> ReplayResult:
    """Same contract as ``reference.replay_reference``, compiled and block-skipping.

    Parameters
    ----------
    prices : float64 (T × K), USD per token unit
    book : snapshot at start; not modified
    events : mapped to steps, in application order (amounts in token units)
    params : one rule set (``types.Params``, or a rule kind's own parameters with the same interface)
    growth : optional per-step balance multipliers (collateral, debt), each (T × K); see ``valuation``
    coarse, fine : two skipping levels of these block sizes (steps; ``fine`` must divide ``coarse``)
    levels : block sizes of any number of skipping levels, largest first; default ``default_levels(T)``
    """
    lv = skip_levels(coarse, fine, levels, n_steps=np.shape(prices)[0])
    pc, pd, gc, gd = valuation(prices, growth)
    T, K = pc.shape
    coll = np.array(book.collateral, dtype=np.float64, order="C", copy=True)
    debt = np.array(book.debt, dtype=np.float64, order="C", copy=True)
    A = coll.shape[0]
    model, margs = params.liquidation()
    kp = params.pack(pc, pd, lv, A)
    # event amounts are token units: convert to snapshot units with the index of the side they change
    ev_growth = np.where(events.action <= 1, gc[events.step, events.asset], gd[events.step, events.asset])
    ev_amount = events.amount / ev_growth if growth is not None else events.amount
    ptr, ev_step, ev_asset, ev_action, ev_amount = events_by_account(events, A, ev_amount)
    kernel = kernel_for(model.call, params.hooks)
    (realised, unrealised, calls, log_i, log_f, written, note_what, note_usd,
     li, lf, evaluated) = kernel(pc, pd, lv, kp, margs, float(model.share(margs)), params.fees(K), float(params.gas_usd),
                                 bool(params.enforce_ltv), coll, debt, ptr, ev_step, ev_asset, ev_action, ev_amount)
    capped, blocked_b, blocked_w = (_fsum_safe(note_usd[note_what == w].tolist()) for w in range(3))
    coll_tot, debt_tot = book_exact_totals(book, log_i, log_f, T)
    steps, dj, ci = li[:, 0], li[:, 2], li[:, 3]
    liq = Liquidations(steps, li[:, 1], dj, ci, lf[:, 0] * gd[steps, dj], lf[:, 1] * gc[steps, ci],
                       lf[:, 2], lf[:, 3], lf[:, 4] * gc[steps, ci])
    with np.errstate(invalid="ignore", over="ignore"):
        coll_usd = np.einsum("tk,tk->t", coll_tot, pc)
        debt_usd = np.einsum("tk,tk->t", debt_tot, pd)
    result = ReplayResult(
        liquidations=liq,
        realised_bad_debt=realised,
        unrealised_bad_debt=unrealised,
        liquidation_calls=calls,
        collateral_usd=coll_usd,
        debt_usd=debt_usd,
        written_off=written,
        final_collateral=coll * gc[-1],
        final_debt=debt * gd[-1],
        capped_events_usd=float(capped),
        blocked_borrow_usd=float(blocked_b),
        blocked_withdraw_usd=float(blocked_w),
        stats={"evaluated_account_steps": int(evaluated), "account_steps": int(A) * int(T)},
    )
    if model.settle is not None:  # the protocol's own pass after the accounts (Comet's collateral sales)
        model.settle(result, pc, margs, float(params.gas_usd))
    return result
