"""Result tables of a run as Arrow tables, ready for the store (one transaction per run).

Arrow, not pandas: repeated strings (run id, rule, scenario, asset and account names) are dictionary
columns over their few distinct values, so building 10⁵–10⁶ rows costs no Python object per row, and
``mbt run`` never imports pandas.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .metrics import ACROSS_METRICS, ALL_SCENARIOS, METRICS

UTC_US = pa.timestamp("us", tz="UTC")
# Arrays are built from their buffers: ``pa.array`` would import pandas (≈ 0.3 s) to check its argument.


def _fixed(values: np.ndarray, typ: pa.DataType, valid: np.ndarray | None = None) -> pa.Array:
    values = np.ascontiguousarray(values)
    bitmap, nulls = None, 0
    if valid is not None and not valid.all():
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
        nulls = int(len(valid) - valid.sum())
    return pa.Array.from_buffers(typ, len(values), [bitmap, pa.py_buffer(values)], null_count=nulls)


def _strings(names) -> pa.Array:
    raw = [str(x).encode() for x in names]
    offsets = np.zeros(len(raw) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in raw], out=offsets[1:])
    return pa.Array.from_buffers(pa.large_string(), len(raw), [None, pa.py_buffer(offsets),
                                                               pa.py_buffer(b"".join(raw))])


def _coded(codes: np.ndarray, names: pa.Array) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(_fixed(np.asarray(codes, dtype=np.int32), pa.int32()), names)


def _same(value: str, n: int) -> pa.DictionaryArray:
    """``value`` repeated ``n`` times, as one dictionary entry."""
    return _coded(np.zeros(n, dtype=np.int32), _strings([value]))


def _floats(values) -> pa.Array:
    # NaN is no value (SQL NULL), as the metrics' JSON writes it
    values = np.asarray(values, dtype=np.float64)
    return _fixed(values, pa.float64(), ~np.isnan(values))


def _ints(values) -> pa.Array:
    return _fixed(np.asarray(values, dtype=np.int64), pa.int64())


def _times(us) -> pa.Array:
    return _fixed(np.asarray(us, dtype=np.int64), UTC_US)


def account_states(run_id: str, o, names: pa.Array, n_accounts: int) -> pa.Table | None:
    """``account_states`` rows of one outcome: run accounts that owe at the end or were written off."""
    last = getattr(o, "last_prices", None)
    if last is None:
        return None
    r = o.result
    coll = np.asarray(r.final_collateral, dtype=np.float64)
    debt = np.asarray(r.final_debt, dtype=np.float64)
    T = len(r.collateral_usd)
    params = o.compiled.params
    with np.errstate(all="ignore"):
        if hasattr(params, "last_thresholds"):
            lt = params.last_thresholds(debt, T)
        else:  # a plug-in kind without thresholds: what backs debt counts whole
            lt = params.collateral_mask(debt, T).astype(np.float64)
        value = coll * last
        owed = debt @ last
        if hasattr(params, "last_maintenance"):  # a kind whose maintenance is not Σ c·p·LT (portfolio margin)
            maint = params.last_maintenance(coll, debt, last, T)
        else:
            maint = np.sum(value * lt, axis=1)
        backed = np.sum(value * (lt > 0), axis=1)
        total = value.sum(axis=1)
        bad = np.maximum(owed - backed, 0.0)   # per engine account (an isolated position), as the metric sums it
    written = np.asarray(r.written_off, dtype=bool)
    owner = o.compiled.owner
    if owner is not None:  # isolated positions → run accounts
        agg = {}
        for name, v in (("total", total), ("owed", owed), ("maint", maint), ("bad", bad)):
            out = np.zeros(n_accounts)
            np.add.at(out, owner, v)
            agg[name] = out
        w = np.zeros(n_accounts, dtype=bool)
        np.logical_or.at(w, owner, written)
        total, owed, maint, bad, written = agg["total"], agg["owed"], agg["maint"], agg["bad"], w
    keep = np.flatnonzero((owed > 0) | written)
    n = len(keep)
    with np.errstate(all="ignore"):
        hf = np.where(owed[keep] > 0, maint[keep] / owed[keep], np.nan)
    return pa.table({
        "run_id": _same(run_id, n), "rule": _same(o.rule.name, n), "scenario": _same(o.scenario, n),
        "account": _coded(keep, names),
        "collateral_usd": _floats(total[keep]), "debt_usd": _floats(owed[keep]), "maintenance_usd": _floats(maint[keep]),
        "health_factor": _floats(hf), "unrealised_bad_debt_usd": _floats(bad[keep]),
        "written_off": pa.Array.from_buffers(pa.bool_(), n, [None, pa.py_buffer(np.packbits(written[keep],
                                                                                          bitorder="little"))]),
    })


def outcome_tables(run_id: str, o, asset_names: pa.Array, account_names: pa.Array, n_accounts: int,
                   grid_us: np.ndarray, with_accounts: bool = True) -> dict[str, pa.Table]:
    """One outcome's rows of ``run_metrics``, ``liquidations``, ``timeseries`` and ``account_states``."""
    out = {}
    if with_accounts:
        st = account_states(run_id, o, account_names, n_accounts)
        if st is not None:
            out["account_states"] = st
    name = o.rule.name
    m = len(METRICS)
    out["run_metrics"] = pa.table({
        "run_id": _same(run_id, m), "rule": _same(name, m), "kind": _same(o.rule.kind, m),
        "scenario": _same(o.scenario, m), "metric": _strings(METRICS),
        "value": _floats([np.nan if o.metrics[k] is None else float(o.metrics[k]) for k in METRICS]),
    })
    liq = o.result.liquidations.sorted()
    n = len(liq)
    owners = liq.account if o.compiled.owner is None else o.compiled.owner[liq.account]
    out["liquidations"] = pa.table({
        "run_id": _same(run_id, n), "rule": _same(name, n), "scenario": _same(o.scenario, n),
        "ts": _times(grid_us[liq.step]), "account": _coded(owners, account_names),
        "debt_asset": _coded(liq.debt_asset, asset_names),
        "collateral_asset": _coded(liq.collateral_asset, asset_names),
        "debt_repaid": _floats(liq.debt_repaid), "collateral_seized": _floats(liq.collateral_seized),
        "debt_repaid_usd": _floats(liq.debt_repaid_usd), "penalty_usd": _floats(liq.penalty_usd),
        "protocol_fee": _floats(liq.protocol_fee),
        "call": _ints(np.arange(n)),
    })
    r = o.result
    t = len(grid_us)
    out["timeseries"] = pa.table({
        "run_id": _same(run_id, t), "rule": _same(name, t), "scenario": _same(o.scenario, t),
        "ts": _times(grid_us),
        "collateral_usd": _floats(r.collateral_usd), "debt_usd": _floats(r.debt_usd),
        "bad_debt_usd": _floats(np.cumsum(r.realised_bad_debt) + r.unrealised_bad_debt),
        "liquidations": _ints(r.liquidation_calls),
    })
    return out


def result_tables(run_id: str, assets: list[str], accounts: np.ndarray, grid_us: np.ndarray,
                  outcomes: list, across: list | None = None, account_names: pa.Array | None = None,
                  with_accounts: bool = True) -> dict[str, pa.Table]:
    """The rows of ``run_metrics``, ``liquidations``, ``timeseries`` (DESIGN §5b) and ``account_states`` for
    one run's outcomes (``account_names``: ``accounts`` as an Arrow string array, when the caller has it:
    ``RunInputs.account_names``). Outcomes are turned into rows on two threads (most of the work is NumPy,
    which releases the GIL); the tables keep outcome order."""
    asset_names = _strings(assets)
    account_names = _strings(accounts) if account_names is None else account_names
    grid_us = np.asarray(grid_us, dtype=np.int64)

    def rows(o):
        return outcome_tables(run_id, o, asset_names, account_names, len(accounts), grid_us, with_accounts)

    if len(outcomes) > 1:
        import os
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(len(outcomes), os.cpu_count() or 1)) as pool:
            parts = list(pool.map(rows, outcomes))
    else:
        parts = [rows(o) for o in outcomes]
    if across:
        parts.append({"run_metrics": across_metrics_table(run_id, across)})
    out = {}
    for name in ("run_metrics", "liquidations", "timeseries", "account_states"):
        pieces = [p[name] for p in parts if name in p]
        if pieces:
            out[name] = pa.concat_tables(pieces)
    return out


def across_metrics_table(run_id: str, across: list) -> pa.Table:
    """``run_metrics`` rows with ``scenario = '*'``: one per (rule set, across-scenario metric)."""
    parts = []
    n = len(ACROSS_METRICS)
    for rule, m in across:
        parts.append(pa.table({
            "run_id": _same(run_id, n), "rule": _same(rule.name, n), "kind": _same(rule.kind, n),
            "scenario": _same(ALL_SCENARIOS, n), "metric": _strings(ACROSS_METRICS),
            "value": _floats([np.nan if m[k] is None else float(m[k]) for k in ACROSS_METRICS]),
        }))
    return pa.concat_tables(parts)
