"""``Liquidations.sorted``: the canonical order (step, account, call order) whichever path it takes."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.engine.types import LIQUIDATION_FIELDS, Liquidations


def _liqs(step, account):
    n = len(step)
    return Liquidations(np.asarray(step, np.int64), np.asarray(account, np.int64), np.zeros(n, np.int64),
                        np.zeros(n, np.int64), np.arange(n, dtype=np.float64), np.zeros(n), np.zeros(n),
                        np.zeros(n), np.zeros(n))


def _lexsorted(liq):
    order = np.lexsort((np.arange(len(liq)), liq.account, liq.step))
    return [getattr(liq, f)[order] for f in LIQUIDATION_FIELDS]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 5)), max_size=40), st.booleans())
def test_sorted_is_the_three_key_order_on_account_major_and_other_input(rows, account_major):
    if account_major:  # the fast kernel's order: account by account, steps rising within one
        rows = sorted(rows, key=lambda r: (r[1], r[0]))
    liq = _liqs([r[0] for r in rows], [r[1] for r in rows])
    got = liq.sorted()
    for f, want in zip(LIQUIDATION_FIELDS, _lexsorted(liq)):
        assert np.array_equal(getattr(got, f), want), f


def test_sorted_keeps_call_order_within_an_account_step():
    liq = _liqs([3, 3, 1, 2, 2], [0, 0, 1, 1, 1])  # account-major; two calls at (3, 0) and (2, 1)
    got = liq.sorted()
    assert got.step.tolist() == [1, 2, 2, 3, 3]
    assert got.debt_repaid.tolist() == [2.0, 3.0, 4.0, 0.0, 1.0]
