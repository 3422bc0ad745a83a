"""Vectorised health-factor arithmetic shared by the engines, validation code and reports.

DESIGN §4 defines ``HF = Σ_i c_i·p_i·LT_i / Σ_j d_j·p_j`` over collateral assets with ``LT_i > 0``; an
account without debt has no HF (``+inf`` here). These helpers work on dense ``(accounts × assets)``
arrays and never loop in Python.
"""

from __future__ import annotations

import numpy as np


def health_factors(
    collateral: np.ndarray,
    debt: np.ndarray,
    prices: np.ndarray,
    liquidation_threshold: np.ndarray,
) -> np.ndarray:
    """Health factor of every account.

    Parameters
    ----------
    collateral, debt : float array (accounts × assets), token units
    prices : float array (assets,), USD per token unit
    liquidation_threshold : float array (assets,), fraction 0–1

    Returns
    -------
    float array (accounts,): ``+inf`` where the account has no debt.
    """
    collateral = np.asarray(collateral, dtype=np.float64)
    debt = np.asarray(debt, dtype=np.float64)
    prices = np.asarray(prices, dtype=np.float64)
    lt = np.asarray(liquidation_threshold, dtype=np.float64)
    weighted = collateral @ (prices * lt)
    owed = debt @ prices
    with np.errstate(divide="ignore", invalid="ignore"):
        hf = np.where(owed > 0, weighted / np.where(owed > 0, owed, 1.0), np.inf)
    return hf
