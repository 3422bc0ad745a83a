"""Result tables of a run as DataFrames, ready for the store (one transaction per run)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import METRICS


def result_tables(run_id: str, assets: list[str], accounts: np.ndarray, grid_us: np.ndarray,
                  outcomes: list) -> dict[str, pd.DataFrame]:
    """The rows of ``run_metrics``, ``liquidations`` and ``timeseries`` (DESIGN §5b) for one run's outcomes."""
    assets = np.asarray(assets, dtype=object)
    grid_ts = pd.to_datetime(grid_us, unit="us", utc=True)
    metrics, liqs, series = [], [], []
    for o in outcomes:
        name = o.rule.name
        metrics.append(pd.DataFrame({
            "run_id": run_id, "rule": name, "kind": o.rule.kind, "scenario": o.scenario,
            "metric": list(METRICS),
            "value": pd.array([o.metrics[m] for m in METRICS], dtype="Float64"),
        }))
        liq = o.result.liquidations.sorted()
        owners = liq.account if o.compiled.owner is None else o.compiled.owner[liq.account]
        liqs.append(pd.DataFrame({
            "run_id": run_id, "rule": name, "scenario": o.scenario,
            "ts": grid_ts[liq.step], "account": accounts[owners],
            "debt_asset": assets[liq.debt_asset], "collateral_asset": assets[liq.collateral_asset],
            "debt_repaid": liq.debt_repaid, "collateral_seized": liq.collateral_seized,
            "debt_repaid_usd": liq.debt_repaid_usd, "penalty_usd": liq.penalty_usd,
            "protocol_fee": liq.protocol_fee,
            "call": np.arange(len(liq), dtype=np.int64),
        }))
        r = o.result
        series.append(pd.DataFrame({
            "run_id": run_id, "rule": name, "scenario": o.scenario, "ts": grid_ts,
            "collateral_usd": r.collateral_usd, "debt_usd": r.debt_usd,
            "bad_debt_usd": np.cumsum(r.realised_bad_debt) + r.unrealised_bad_debt,
            "liquidations": r.liquidation_calls,
        }))
    return {"run_metrics": pd.concat(metrics, ignore_index=True),
            "liquidations": pd.concat(liqs, ignore_index=True),
            "timeseries": pd.concat(series, ignore_index=True)}
