"""``engine.borrow.borrowed`` and the kernel's growable buffers, which it reaches through borrowed views.

The kernel reads its arguments and carries its result buffers without numba's reference counts
(``backtest/engine/borrow.py``). These tests hold the views to the originals (same data, shape, strides,
writes going through, scalars in tuples untouched) and make every buffer of the kernel grow several times
(liquidation calls past 1,024, balance-change rows past 1,024, capped-event notes past 64), where the
views are rebound, with the fast engine still equal to the reference record for record.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from backtest.engine.borrow import borrowed
from backtest.engine.fast import replay_fast
from backtest.engine.reference import replay_reference
from backtest.engine.types import LIQUIDATION_FIELDS, WITHDRAW, Book, Events, Params

Kp = namedtuple("Kp", ["lt", "table", "n", "inner"])


@njit(cache=False)
def _probe(kp, x):
    kp2, x2 = borrowed((kp, x))
    same = (kp2.lt.shape == kp.lt.shape and kp2.table.shape == kp.table.shape
            and kp2.table.strides == kp.table.strides and x2.strides == x.strides)
    total = 0.0
    for i in range(kp2.table.shape[0]):
        for j in range(kp2.table.shape[1]):
            same = same and kp2.table[i, j] == kp.table[i, j]
            total += kp2.table[i, j]
    x2[1] = 42.0  # a write through the view lands in the original
    row = kp2.table[1]  # a view of a borrowed array is borrowed too
    return same, total, kp2.n, kp2.inner[0].sum() + kp2.inner[1], row.sum(), x[1]


def test_borrowed_views_are_the_originals() -> None:
    table = np.arange(12.0).reshape(3, 4)
    kp = Kp(np.array([0.5, 0.8]), table[:, ::2], 7, (np.array([1.0, 2.0]), 3.5))  # a strided view too
    x = np.zeros(3)
    same, total, n, inner, row, x1 = _probe(kp, x)
    assert same
    assert total == table[:, ::2].sum() == 30.0
    assert n == 7 and inner == 6.5
    assert row == 4.0 + 6.0
    assert x1 == 42.0 and x[1] == 42.0


def _growing_book(accounts: int):
    """Every account: one WETH-like collateral at HF 0.99 on a falling path (liquidated at every step for
    a while: many calls and balance changes), and a withdraw far above its balance (a capped note each)."""
    steps = 12
    prices = np.empty((steps, 2))
    prices[:, 0] = 1000.0 * 0.97 ** np.arange(steps)
    prices[:, 1] = 1.0
    lt = np.array([0.8, 0.9])
    coll = np.zeros((accounts, 2))
    debt = np.zeros((accounts, 2))
    coll[:, 0] = 1.0 + np.arange(accounts) * 1e-3
    coll[:, 1] = 5.0
    debt[:, 1] = (coll[:, 0] * 1000.0 * 0.8 + 5.0 * 0.9) / 0.99
    acc = np.arange(accounts, dtype=np.int64)
    events = Events(acc, np.full(accounts, 3, dtype=np.int64), np.ones(accounts, dtype=np.int64),
                    np.full(accounts, WITHDRAW, dtype=np.int8), np.full(accounts, 1e6))
    params = Params(lt * 0.9, lt, np.array([0.05, 0.02]), 0.5, 0.0)
    return prices, Book(coll, debt), events, params


def test_kernel_buffers_grow_and_still_match_the_reference() -> None:
    prices, book, events, params = _growing_book(2000)
    fast = replay_fast(prices, book, events, params)
    ref = replay_reference(prices, book, events, params)
    assert len(fast.liquidations) > 4 * 1024  # the call buffer doubled at least three times
    assert len(events.amount) > 4 * 64  # one capped note per account: the note buffer doubled too
    want = ref.liquidations.sorted()
    got = fast.liquidations.sorted()
    for f in LIQUIDATION_FIELDS:
        np.testing.assert_array_equal(getattr(got, f), getattr(want, f), err_msg=f)
    for f in ("final_collateral", "final_debt", "realised_bad_debt", "unrealised_bad_debt", "liquidation_calls",
              "written_off"):
        np.testing.assert_array_equal(getattr(fast, f), getattr(ref, f), err_msg=f)
    # per-step totals: the fast engine's are exact sums rounded once, the reference's summed in order
    # (tests/unit/test_engine_properties.py holds the two to the same tolerance)
    for f in ("collateral_usd", "debt_usd"):
        np.testing.assert_allclose(getattr(fast, f), getattr(ref, f), rtol=1e-12, atol=0, err_msg=f)
    assert fast.capped_events_usd == ref.capped_events_usd > 0


def test_level_bits_give_masks_and_shifts_of_power_of_two_blocks_only():
    from backtest.engine.kernel import _level_bits

    masks, shifts, ok = _level_bits(np.array([1024, 256, 64, 16, 4], dtype=np.int64))
    assert ok and masks.tolist() == [1023, 255, 63, 15, 3] and shifts.tolist() == [10, 8, 6, 4, 2]
    for t in (0, 4, 1000, 1024, 2047):
        assert [(t & m) == 0 for m in masks] == [t % b == 0 for b in (1024, 256, 64, 16, 4)]
        assert [t >> s for s in shifts] == [t // b for b in (1024, 256, 64, 16, 4)]
    assert _level_bits(np.array([6, 3], dtype=np.int64))[2] is False
    assert _level_bits(np.array([1], dtype=np.int64))[2] is True  # one-step blocks: mask 0, shift 0
