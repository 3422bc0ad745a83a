"""``mbt scenarios``: what a run's scenarios look like — per asset, volatility and drawdown quantiles over
the generated paths — and the paths themselves as Parquet (long: scenario, ts, asset, price_usd)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

YEAR_S = 365 * 86_400


def worst_drawdown(prices: np.ndarray) -> np.ndarray:
    """Per column, the largest fall from a running peak, as a positive fraction (0 = never below a peak)."""
    peak = np.maximum.accumulate(prices, axis=0)
    return np.max(1.0 - prices / peak, axis=0)


def summarise(paths: list, assets: list[str], step_s: int) -> list[dict]:
    """One row per asset: annualised volatility of the per-step log returns over all paths, worst drawdown
    (median, 95th, 99th percentile over the paths; linear interpolation between paths), and the final price
    relative to the start (5th, 50th)."""
    rows = []
    for k, asset in enumerate(assets):
        rets = np.concatenate([np.diff(np.log(p.prices[:, k])) for p in paths]) if paths else np.zeros(0)
        dd = np.array([worst_drawdown(p.prices[:, [k]])[0] for p in paths])
        final = np.array([p.prices[-1, k] / p.prices[0, k] for p in paths])
        vol = float(rets.std(ddof=1) * np.sqrt(YEAR_S / step_s)) if len(rets) > 1 else 0.0
        rows.append({"asset": asset, "paths": len(paths), "vol_annual": vol,
                     "drawdown_p50": float(np.quantile(dd, 0.50)), "drawdown_p95": float(np.quantile(dd, 0.95)),
                     "drawdown_p99": float(np.quantile(dd, 0.99)), "final_p05": float(np.quantile(final, 0.05)),
                     "final_p50": float(np.quantile(final, 0.50))})
    return rows


def write_paths(paths: list, assets: list[str], out_dir: Path) -> Path:
    """Every path as rows (scenario, ts, asset, price_usd) in ``out_dir/paths.parquet``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out_dir.mkdir(parents=True, exist_ok=True)
    scen, ts, asset, price = [], [], [], []
    for p in paths:
        T, K = p.prices.shape
        scen.append(np.full(T * K, p.scenario, dtype=object))
        ts.append(np.repeat(p.grid_us, K))
        asset.append(np.tile(np.asarray(assets, dtype=object), T))
        price.append(p.prices.reshape(-1))
    table = pa.table({
        "scenario": pa.array(np.concatenate(scen) if scen else [], pa.string()),
        "ts": pa.array(np.concatenate(ts) if ts else np.zeros(0, np.int64), pa.timestamp("us", tz="UTC")),
        "asset": pa.array(np.concatenate(asset) if asset else [], pa.string()),
        "price_usd": pa.array(np.concatenate(price) if price else np.zeros(0), pa.float64()),
    })
    path = out_dir / "paths.parquet"
    tmp = out_dir / ".paths.parquet.tmp"
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path
