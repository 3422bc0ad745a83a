"""Exact running sums of a balance column, rounded once per step (compiled).

The state is Shewchuk's list of non-overlapping partials — the same representation ``math.fsum`` keeps —
so adding a float is exact, and reading the total rounds the exact sum to nearest-even once (CPython's
correction for the halfway case included). A step's value is the exact sum of every balance after it,
whatever the order of the changes: the same number the big-integer path of ``engine.fast.exact_totals``
gives, at a fraction of its cost. Only for finite values well inside float range (the caller checks):
partial sums near the overflow threshold would overflow here.
"""

from __future__ import annotations

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
