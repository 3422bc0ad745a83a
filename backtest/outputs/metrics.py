"""Metrics of DESIGN §5, computed by one pure function from a replay's result.

Results are long tables: one value per (rule, scenario, metric). Counts are ints; USD values floats;
``capital_efficiency`` is null (None) when the baseline's borrowing power is 0.
"""

from __future__ import annotations

import math

import numpy as np

from ..engine.types import Book, Params, ReplayResult

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
    "blocked_borrow_usd",
    "blocked_withdraw_usd",
    "protocol_reserves_usd",
    "absorbed_collateral_unsold_usd",
)
COUNT_METRICS = frozenset({"liquidations", "insolvent_accounts"})
#: Metrics only some liquidation models produce (null for the others; the text table leaves out a row that is
#: null in every column): Comet's reserves after its collateral sales and its unsold absorbed collateral.
MODEL_METRICS = frozenset({"protocol_reserves_usd", "absorbed_collateral_unsold_usd"})


def parameter_rows(params: Params, debt: np.ndarray) -> np.ndarray:
    """Parameter row of every account given its debts (table kinds; see ``engine.tables``)."""
    from ..engine.tables import parameter_rows as rows

    return rows(params, debt)


def borrowing_power(book: Book, first_prices: np.ndarray, params: Params) -> float:
    """Σ over all accounts of the initial-margin capacity at the first grid step's prices (USD).

    For table kinds that is ``c·p·LTV_eff``: the LTV that applies to the account there (its group's or
    market's, the first update of a dynamic rule set, scaled by the liquidity haircut when depth is given).
    """
    return float(params.borrowing_power(book.collateral, book.debt, first_prices))


def compute_metrics(result: ReplayResult, book: Book, prices: np.ndarray, params: Params,
                    baseline_borrowing_power: float | None = None,
                    owner: np.ndarray | None = None) -> dict[str, float | int | None]:
    """All per-scenario metrics of DESIGN §5 (plus the initial-margin ones) for one replay.

    Parameters
    ----------
    result : the replay's output
    book : the snapshot the replay started from (engine accounts)
    prices : float64 (T × K), the grid prices of the replay
    params : the rule set's engine parameters
    baseline_borrowing_power : the baseline rule set's ``borrowing_power_usd`` (None: this is the baseline)
    owner : run account of each engine account when they differ (isolated positions); insolvency counts
        run accounts
    """
    with np.errstate(all="ignore"):  # values beyond float range are carried as inf (→ null), not warned about
        return _compute(result, book, prices, params, baseline_borrowing_power, owner)


def _compute(result, book, prices, params, baseline_borrowing_power, owner):
    liq = result.liquidations.sorted()
    last = prices[-1]
    is_coll = params.collateral_mask(result.final_debt, prices.shape[0])
    owed = result.final_debt @ last
    backed = np.sum(result.final_collateral * last * is_coll, axis=1)
    insolvent = result.written_off | ((owed > 0) & (owed > backed))
    n_insolvent = int(np.count_nonzero(insolvent)) if owner is None else int(len(np.unique(owner[insolvent])))
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
        "insolvent_accounts": n_insolvent,
        "borrowing_power_usd": bp,
        "capital_efficiency": capital_efficiency(bp, base),
        "capped_events_usd": float(result.capped_events_usd),
        "blocked_borrow_usd": float(result.blocked_borrow_usd),
        "blocked_withdraw_usd": float(result.blocked_withdraw_usd),
        **{m: (float(result.stats[m]) if m in result.stats else None) for m in sorted(MODEL_METRICS)},
    }


def capital_efficiency(borrowing_power_usd: float, baseline_borrowing_power_usd: float) -> float | None:
    """A rule set's borrowing power over the baseline rule set's (DESIGN §5); None when the baseline has none."""
    return (borrowing_power_usd / baseline_borrowing_power_usd) if baseline_borrowing_power_usd > 0 else None


def json_value(metric: str, value: float | int | None) -> float | int | None:
    """A metric value for JSON: counts as ints, non-finite as null."""
    if value is None:
        return None
    if metric in COUNT_METRICS:
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None


#: Across scenarios (rows with ``scenario = "*"`` per rule set, when a run has two or more scenarios).
ACROSS_METRICS = (
    "var_95_bad_debt_usd",
    "es_95_bad_debt_usd",
    "var_99_bad_debt_usd",
    "es_99_bad_debt_usd",
    "lar_95_liquidated_debt_usd",
    "lar_99_liquidated_debt_usd",
    "mean_bad_debt_usd",
    "p_bad_debt",
)
ALL_SCENARIOS = "*"


def quantile_rank(percent: int, n: int) -> int:
    """⌈α·N⌉ for α = ``percent`` / 100, in exact integer arithmetic (0.95·100 is not 95 in floats)."""
    return max(1, -(-percent * n // 100))


def value_at_risk(losses: np.ndarray, percent: int) -> float:
    """VaR_α: the ⌈αN⌉-th smallest of the N losses (DESIGN §5)."""
    ordered = np.sort(np.asarray(losses, dtype=np.float64))
    return float(ordered[quantile_rank(percent, len(ordered)) - 1])


def expected_shortfall(losses: np.ndarray, percent: int) -> float:
    """ES_α: the mean of the losses ≥ VaR_α (DESIGN §5; summed exactly, so order cannot change it)."""
    losses = np.asarray(losses, dtype=np.float64)
    var = value_at_risk(losses, percent)
    tail = losses[losses >= var]
    return math.fsum(tail.tolist()) / len(tail)


def across_scenarios(per_scenario: list[dict[str, float | int | None]]) -> dict[str, float]:
    """The ``scenario = "*"`` metrics of one rule set from its per-scenario metrics (N ≥ 1 scenarios)."""
    bad = np.array([float(m["bad_debt_usd"]) for m in per_scenario])
    liq = np.array([float(m["liquidated_debt_usd"]) for m in per_scenario])
    return {
        "var_95_bad_debt_usd": value_at_risk(bad, 95),
        "es_95_bad_debt_usd": expected_shortfall(bad, 95),
        "var_99_bad_debt_usd": value_at_risk(bad, 99),
        "es_99_bad_debt_usd": expected_shortfall(bad, 99),
        "lar_95_liquidated_debt_usd": value_at_risk(liq, 95),
        "lar_99_liquidated_debt_usd": value_at_risk(liq, 99),
        "mean_bad_debt_usd": math.fsum(bad.tolist()) / len(bad),
        "p_bad_debt": float(np.count_nonzero(bad > 0)) / len(bad),
    }
