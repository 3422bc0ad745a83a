"""The runner's price-row order: a stable one-key sort standing in for ``lexsort((round, ts, asset))``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backtest.inputs import _price_order

rows = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6), st.integers(-1, 3)), min_size=2, max_size=40)


@pytest.mark.parametrize("offset", [0, 1_704_067_200_000_000, -5_000_000, 1 << 52])
@given(data=rows, presort=st.booleans())
def test_price_order_is_lexsorts_permutation(offset, data, presort) -> None:
    # offsets: the epoch, 2024 (the int64 key), before 1970 and past 2112 (the three-key fallback)
    ki = np.array([r[0] for r in data], dtype=np.int64)
    ts = np.array([r[1] for r in data], dtype=np.int64) * 1_000_000 + offset
    rnd = np.array([r[2] for r in data], dtype=np.int64)
    if presort:
        o = np.lexsort((rnd, ts, ki))
        ki, ts, rnd = ki[o], ts[o], rnd[o]
    want = np.lexsort((rnd, ts, ki))
    got = _price_order(ki, ts, rnd)
    if got is None:
        np.testing.assert_array_equal(want, np.arange(len(ki)))
    else:
        np.testing.assert_array_equal(got, want)  # the same permutation: the same row wins every timestamp


def test_round_ids_out_of_scan_order_at_one_timestamp_fall_back_to_the_full_sort() -> None:
    ki = np.array([1, 0, 0, 0], dtype=np.int64)
    ts = np.array([5, 7, 7, 3], dtype=np.int64)
    rnd = np.array([0, 9, 2, 1], dtype=np.int64)  # at (0, 7) round 9 comes before round 2
    np.testing.assert_array_equal(_price_order(ki, ts, rnd), [3, 2, 1, 0])
    assert _price_order(np.array([0, 0]), np.array([1, 1]), np.array([2, 2])) is None
