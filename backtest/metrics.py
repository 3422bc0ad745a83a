"""Metrics of DESIGN §5, computed by one pure function from a replay's result.

Results are long tables: one value per (rule, scenario, metric). Counts are ints; USD values floats;
``capital_efficiency`` is null (None) when the baseline's borrowing power is 0.
"""

from __future__ import annotations

import math

import numpy as np

from .engine.types import Book, Params, ReplayResult

METRICS = (
    "bad_debt_usd",
    "realised_bad_debt_usd",
    "unrealised_bad_debt_usd",
    "liquidations",
    "liquidated_debt_usd",
    "liquidation_penalty_usd",
    "insolvent_accounts",
    "borrowing_power_usd",
    "capital_efficiency",
    "capped_events_usd",
)
COUNT_METRICS = frozenset({"liquidations", "insolvent_accounts"})


def borrowing_power(book: Book, first_prices: np.ndarray, params: Params) -> float:
    """Σ over all accounts of ``c·p·LTV`` at the first grid step's prices, from the snapshot (USD)."""
    return float(book.collateral.sum(axis=0) @ (first_prices * params.ltv))


def compute_metrics(result: ReplayResult, book: Book, prices: np.ndarray, params: Params,
                    baseline_borrowing_power: float | None = None) -> dict[str, float | int | None]:
    """All per-scenario metrics of DESIGN §5 for one replay.

    Parameters
    ----------
    result : the replay's output
    book : the snapshot the replay started from
    prices : float64 (T × K), the grid prices of the replay
    params : the rule set's engine parameters
    baseline_borrowing_power : the baseline rule set's ``borrowing_power_usd`` (None: this is the baseline)
    """
    liq = result.liquidations.sorted()
    last = prices[-1]
    collateral_mask = params.liquidation_threshold > 0
    owed = result.final_debt @ last
    backed = result.final_collateral @ np.where(collateral_mask, last, 0.0)
    insolvent = result.written_off | ((owed > 0) & (owed > backed))
    realised = float(np.sum(result.realised_bad_debt))
    unrealised = float(result.unrealised_bad_debt[-1])
    bp = borrowing_power(book, prices[0], params)
    base = bp if baseline_borrowing_power is None else baseline_borrowing_power
    return {
        "bad_debt_usd": realised + unrealised,
        "realised_bad_debt_usd": realised,
        "unrealised_bad_debt_usd": unrealised,
        "liquidations": int(len(liq)),
        "liquidated_debt_usd": float(np.sum(liq.debt_repaid_usd)),
        "liquidation_penalty_usd": float(np.sum(liq.penalty_usd)),
        "insolvent_accounts": int(np.count_nonzero(insolvent)),
        "borrowing_power_usd": bp,
        "capital_efficiency": (bp / base) if base > 0 else None,
        "capped_events_usd": float(result.capped_events_usd),
    }


def json_value(metric: str, value: float | int | None) -> float | int | None:
    """A metric value for JSON: counts as ints, non-finite as null."""
    if value is None:
        return None
    if metric in COUNT_METRICS:
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None
