"""DESIGN §4's liquidation: a fixed close factor, the bonus on the seized collateral, no interest.

``[market] liquidation = "aave"`` (the default). One call repays ``min(close_factor · d_j, what the whole
collateral balance i covers)`` and takes ``repaid · p_j · (1 + LB_i) / p_i`` of collateral (all of it when
the collateral bound binds).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from numba import njit

from ..errors import ConfigError
from . import Model, register


@njit(cache=True, nogil=True, inline="always")
def close_factor_call(args, d_j, p_j, c_i, p_i, bonus, fee, hf, debt_usd):
    """DESIGN §4 step 2: ``R = min(cf·d_j, c_i·p_i / (p_j·(1 + LB_i)))``, ``S = R·p_j·(1 + LB_i)/p_i``."""
    r_cf = args[0] * d_j
    r_col = (c_i * p_i) / (p_j * (1.0 + bonus))
    if r_col <= r_cf:
        return r_col, c_i, 0.0, True, True
    seized = min(r_cf * p_j * (1.0 + bonus) / p_i, c_i)
    return r_cf, seized, 0.0, False, True


def _parse(table: Mapping[str, Any], where: str, written: frozenset) -> dict:
    from ..confkit import _number

    cf = _number(table["close_factor"], f"{where}.close_factor")
    if not 0 < cf <= 1:
        raise ConfigError(f"{where}.close_factor: must satisfy 0 < close_factor ≤ 1, got {cf}")
    return {"close_factor": cf}


MODEL = register(Model(
    name="aave",
    keys={"close_factor": 0.5},
    parse=_parse,
    engine_args=lambda s: np.array([s["close_factor"]], dtype=np.float64),
    call=close_factor_call,
    max_share=lambda args: args[0],
    summary="DESIGN §4: fixed close factor, bonus on seized collateral, interest-free",
))
