"""A toy liquidation model registered from the test folder: one call repays a fixed share of the debt.

``[market] liquidation = "toy-share"`` with its own key ``share`` (0 < share ≤ 1). A call repays
``share · d_j`` (or what the whole collateral balance covers) and seizes ``repaid · p_j · (1 + LB) / p_i``;
no protocol fee. Nothing outside this module knows it exists: the tests import it and it registers itself.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from backtest.confkit import _number
from backtest.errors import ConfigError
from backtest.models import Model, register


@njit(cache=True, nogil=True)
def share_call(args, d_j, p_j, c_i, p_i, bonus, fee, hf, debt_usd):
    want = args[0] * d_j
    cover = c_i * p_i / (p_j * (1.0 + bonus))
    if cover <= want:
        return cover, c_i, 0.0, True, True
    return want, want * p_j * (1.0 + bonus) / p_i, 0.0, False, True


def _parse(table, where, written):
    share = _number(table["share"], f"{where}.share")
    if not 0 < share <= 1:
        raise ConfigError(f"{where}.share: must satisfy 0 < share ≤ 1, got {share}")
    return {"share": share}


MODEL = register(Model(
    name="toy-share", keys={"share": 0.25}, parse=_parse,
    engine_args=lambda s: np.array([s["share"]], dtype=np.float64), call=share_call, max_share=lambda a: a[0],
    summary="test-folder toy: a fixed share of the debt per call",
))
