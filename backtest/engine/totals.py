"""Exact running sums of a balance column, rounded once per step (compiled).

The state is Shewchuk's list of non-overlapping partials — the same representation ``math.fsum`` keeps —
so adding a float is exact, and reading the total rounds the exact sum to nearest-even once (CPython's
correction for the halfway case included). A step's value is the exact sum of every balance after it,
whatever the order of the changes: the same number the big-integer path of ``engine.fast.exact_totals``
gives, at a fraction of its cost. Only for finite values well inside float range (the caller checks):
partial sums near the overflow threshold would overflow here.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _add(part, n, x):
    """Add ``x`` to the partials ``part[:n]`` exactly (``part`` has room for n + 1); returns the new count."""
    i = 0
    for j in range(n):
        y = part[j]
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo != 0.0:
            part[i] = lo
            i += 1
        x = hi
    part[i] = x
    return i + 1


@njit(cache=True, nogil=True, inline="always")
def _rounded(part, n):
    """The partials' exact sum, correctly rounded (nearest, ties to even)."""
    if n == 0:
        return 0.0
    n -= 1
    hi = part[n]
    lo = 0.0
    while n > 0:
        x = hi
        n -= 1
        y = part[n]
        hi = x + y
        yr = hi - x
        lo = y - yr
        if lo != 0.0:
            break
    if n > 0 and ((lo < 0.0 and part[n - 1] < 0.0) or (lo > 0.0 and part[n - 1] > 0.0)):
        y = lo * 2.0
        x = hi + y
        yr = x - hi
        if y == yr:
            hi = x
    return hi


@njit(cache=True, nogil=True, inline="always")
def _push(part, n, x):
    """``_add`` with room made first: (partials, count)."""
    if n + 1 >= part.shape[0]:
        part = np.concatenate((part, np.empty(part.shape[0])))
    return part, _add(part, n, x)


@njit(cache=True, nogil=True)
def running_totals(start, steps, old, new, n_steps):
    """Per step ``t < n_steps``: the exact sum of ``start`` plus every change ``new − old`` at steps ≤ t,
    rounded once. ``steps`` is sorted."""
    out = np.empty(n_steps)
    part = np.empty(64)
    n = 0
    for v in start:
        if v != 0.0:
            part, n = _push(part, n, v)
    cur = _rounded(part, n)
    i = 0
    m = steps.shape[0]
    for t in range(n_steps):
        if i < m and steps[i] == t:
            while i < m and steps[i] == t:
                for x in (new[i], -old[i]):
                    if x != 0.0:
                        part, n = _push(part, n, x)
                i += 1
            cur = _rounded(part, n)
        out[t] = cur
    return out


_SMALL, _LARGE = 2.0 ** -960, 2.0 ** 960  # where partial sums can neither overflow nor become subnormal
_EMIN, _EMAX = 1023 - 960, 1023 + 960  # biased exponents of 2⁻⁹⁶⁰ and 2⁹⁶⁰
_SIGN = -(1 << 63)  # the bits of −0.0 as int64
_ROOM = 64  # partials kept per column; a column that would need more goes to the caller's big-integer path


@njit(cache=True, nogil=True, inline="always")
def _in_range(v):
    return v == 0.0 or (abs(v) >= _SMALL and abs(v) <= _LARGE)


@njit(cache=True, nogil=True, inline="always")
def _add_to(part, n, ok, s, k, x):
    """``_add`` of ``x`` to column (s, k) while it has room; a full column is handed back (ok False)."""
    if n[s, k] + 1 >= _ROOM:
        ok[s, k] = False
    else:
        n[s, k] = _add(part[s, k], n[s, k], x)


_FLUSH = 1 << 10  # int64 bins take this many 53-bit significands before they could overflow


@njit(cache=True, nogil=True, inline="always")
def _flush_bin(part, n, ok, s, k, total, e):
    """Add the bin sum ``total · 2^(e − 1075)`` (``e`` a biased exponent) to column (s, k) exactly: as two
    floats, the high bits of ``total`` and the 32 low ones, each exact, scaled by a power of two."""
    high = (total >> 32) << 32
    low = total - high  # in [0, 2³²)
    scale = e - 1075
    if high != 0 and ok[s, k]:
        _add_to(part, n, ok, s, k, math.ldexp(float(high), scale))
    if low != 0 and ok[s, k]:
        _add_to(part, n, ok, s, k, math.ldexp(float(low), scale))


@njit(cache=True, nogil=True)
def _start_sums(mat, s, part, n, ok):
    """Partials of the exact column sums of ``mat`` (A × K, C order) into side ``s``.

    Each value in range is its 53-bit significand times a power of two fixed by its exponent: the significands
    are summed as integers in one bin per (column, exponent), a bin going into the column's partials (two
    exact floats) every ``_FLUSH`` values and at the end. The same exact sum as adding every value to the
    partials (≈ 20 ns a value), for a few integer operations a value; a value out of range (not finite, beyond
    2⁹⁶⁰, below 2⁻⁹⁶⁰) marks its column for the caller's big-integer path, as before.
    """
    A, K = mat.shape
    bits = mat.reshape(A * K).view(np.int64)
    acc = np.zeros((K, 2048), dtype=np.int64)
    cnt = np.zeros((K, 2048), dtype=np.int64)
    i = -1
    for _ in range(A):
        for k in range(K):
            i += 1
            b = bits[i]
            if b == 0 or b == _SIGN:  # ±0.0
                continue
            e = (b >> 52) & 0x7FF
            frac = b & 0xFFFFFFFFFFFFF
            if e < _EMIN or e > _EMAX or (e == _EMAX and frac != 0):  # outside [2⁻⁹⁶⁰, 2⁹⁶⁰]; inf, NaN
                ok[s, k] = False
                continue
            m = frac | 0x10000000000000
            if b < 0:
                m = -m
            acc[k, e] += m
            cnt[k, e] += 1
            if cnt[k, e] == _FLUSH:
                _flush_bin(part, n, ok, s, k, acc[k, e], e)
                acc[k, e] = 0
                cnt[k, e] = 0
    for k in range(K):
        for e in range(2048):
            if cnt[k, e]:
                _flush_bin(part, n, ok, s, k, acc[k, e], e)


@njit(cache=True, nogil=True)
def book_totals(coll, debt, log_i, log_f, n_steps):
    """Per step and asset, the exact totals of both balance matrices after each step, rounded once.

    ``coll``, ``debt``: (A, K) balances at the start; ``log_i``/``log_f``: the kernel's change log (step,
    asset, side 0 = collateral / 1 = debt; old, new) in any order. Returns ``(totals, ok)``: totals
    (2, n_steps, K) and ok (2, K), False for a column with a value that is not finite or lies outside
    [2⁻⁹⁶⁰, 2⁹⁶⁰] (or whose partials outgrow ``_ROOM``): its totals are left to the caller's big-integer
    path. One pass over the matrices, then the log counting-sorted by step into a copy read in order: the
    numbers ``running_totals`` gives column by column (exact sums do not depend on the order).
    """
    A, K = coll.shape
    m = log_i.shape[0]
    ok = np.ones((2, K), dtype=np.bool_)
    part = np.empty((2, K, _ROOM))
    n = np.zeros((2, K), dtype=np.int64)
    _start_sums(coll, 0, part, n, ok)
    _start_sums(debt, 1, part, n, ok)
    count = np.zeros(n_steps + 1, dtype=np.int64)
    for r in range(m):
        if not (_in_range(log_f[r, 0]) and _in_range(log_f[r, 1])):
            ok[log_i[r, 2], log_i[r, 1]] = False
        count[log_i[r, 0] + 1] += 1
    for t in range(n_steps):
        count[t + 1] += count[t]
    col = np.empty(m, dtype=np.int64)  # the log in step order: column s·K + k, new, −old
    add = np.empty((m, 2))
    fill = count[:n_steps].copy()
    for r in range(m):
        t = log_i[r, 0]
        j = fill[t]
        fill[t] += 1
        col[j] = log_i[r, 2] * K + log_i[r, 1]
        add[j, 0] = log_f[r, 1]
        add[j, 1] = -log_f[r, 0]
    cur = np.empty((2, K))
    for s in range(2):
        for k in range(K):
            cur[s, k] = _rounded(part[s, k], n[s, k])
    out = np.empty((2, n_steps, K))
    dirty = np.zeros((2, K), dtype=np.bool_)
    for t in range(n_steps):
        if count[t + 1] > count[t]:
            for i in range(count[t], count[t + 1]):
                s, k = divmod(col[i], K)
                if ok[s, k]:
                    for x in (add[i, 0], add[i, 1]):
                        if x != 0.0 and ok[s, k]:
                            _add_to(part, n, ok, s, k, x)
                    dirty[s, k] = True
            for s in range(2):
                for k in range(K):
                    if dirty[s, k]:
                        cur[s, k] = _rounded(part[s, k], n[s, k])
                        dirty[s, k] = False
        out[0, t] = cur[0]
        out[1, t] = cur[1]
    return out, ok
