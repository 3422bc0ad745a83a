"""A run's inputs: everything a config needs, read from the store in bulk and checked.

``load_inputs`` reads positions, events and prices on the grid (and only the extra data some kind or model
``needs``) into arrays and fingerprints them; errors name what is missing. It imports neither numba nor
the engine's kernels (a test holds it to that).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import RunConfig
from .confkit import _hint, _quote_key
from .engine.types import Book, Events
from .errors import ConfigError, MbtError
from .rules import DEPTH_FACTOR, RunData
from .store import Store
from .timeutil import format_instant


@dataclass
class RunInputs:
    """A run's data as arrays: assets in sorted order, accounts in the store's numbering."""

    assets: list[str]
    accounts: np.ndarray  # (A,) object, account ids
    grid_us: np.ndarray  # (T,) int64, microseconds since the epoch
    prices: np.ndarray  # (T, K)
    book: Book
    events: Events
    sources: dict[str, str]
    fingerprint: str
    data: RunData | None = None
    account_names: Any = None  # the same ids as an Arrow string array (result tables' account column)


def _ts(us: int) -> str:
    return format_instant(int(us))


def _choose_sources(cfg: RunConfig, available: dict[str, list[str]], assets: list[str]) -> dict[str, str]:
    chosen: dict[str, str] = {}
    ps = cfg.price_source
    for asset in assets:
        have = available.get(asset)
        if not have:
            raise MbtError(f"asset {asset!r}: no prices stored (load them with `mbt ingest csv --prices FILE`)")
        wanted = ps if isinstance(ps, str) else (ps or {}).get(asset)
        if wanted is not None:
            if wanted not in have:
                key = "run.price_source" if isinstance(ps, str) else f"run.price_source.{asset}"
                raise ConfigError(f"{key}: asset {asset!r} has no prices from source {wanted!r} "
                                  f"(sources: {', '.join(have)})")
            chosen[asset] = wanted
        elif len(have) == 1:
            chosen[asset] = have[0]
        else:
            raise ConfigError(f"run.price_source: asset {asset!r} has prices from several sources "
                              f"({', '.join(have)}); choose one with run.price_source")
    return chosen


def _check_price_source_keys(cfg: RunConfig, assets: list[str]) -> None:
    """A ``[run.price_source]`` key must name an asset of the run (DESIGN §3: nothing is ignored silently)."""
    if isinstance(cfg.price_source, Mapping):
        for key in cfg.price_source:
            if key not in assets:
                raise ConfigError(f"run.price_source.{_quote_key(key)}: no asset {key!r} in this run's positions "
                                  f"or events{_hint(key, assets)}")


def _price_order(ki: np.ndarray, ts: np.ndarray, rnd: np.ndarray) -> np.ndarray | None:
    """The permutation that puts price rows in (asset, timestamp, round) order, or None if they are in it.

    When asset and timestamp fit one int64 key (µs in [0, 2⁵²): years 1970–2112, under 2,048 assets), one
    stable sort of the key (timsort: the scan returns long sorted runs) replaces a three-key ``lexsort``;
    rows of one asset and timestamp keep their scan order, which is checked against ``round_id``.
    """
    if ts.min() < 0 or ts.max() >= 1 << 52 or ki.max() >= 1 << 11:
        dk, dt, dr = np.diff(ki), np.diff(ts), np.diff(rnd)
        if np.all((dk > 0) | ((dk == 0) & ((dt > 0) | ((dt == 0) & (dr >= 0))))):
            return None
        return np.lexsort((rnd, ts, ki))
    key = (ki << 52) | ts
    order = None if (np.diff(key) >= 0).all() else np.argsort(key, kind="stable")
    ordered = key if order is None else key[order]
    tie = np.flatnonzero(ordered[1:] == ordered[:-1])
    first, second = (tie, tie + 1) if order is None else (order[tie], order[tie + 1])
    if (rnd[second] < rnd[first]).any():
        return np.lexsort((rnd, ts, ki))
    return order


def _load_series(store: Store, cfg: RunConfig, assets: list[str], end: str, sources: dict[str, str],
                 series: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Choose the price source of ``assets`` and read their prices up to ``end`` into ``series``."""
    if not assets:
        return
    available = {a: list(s) for a, s in store.query("price_sources", assets=assets).fetchall()}
    chosen = _choose_sources(cfg, available, assets)
    sources.update(chosen)
    raw = store.query("run_prices", assets=assets, sources=[chosen[a] for a in assets], end=end).fetchnumpy()
    ki = np.asarray(raw["ki"], dtype=np.int64)
    ts = np.asarray(raw["ts_us"], dtype=np.int64)
    rnd = np.asarray(raw["round_id"], dtype=np.int64)
    px = np.asarray(raw["price_usd"], dtype=np.float64)
    if len(ki) > 1:
        order = _price_order(ki, ts, rnd)
        if order is not None:
            ki, ts, px = ki[order], ts[order], px[order]
        # one price per (asset, timestamp): the highest round_id, i.e. the last row of each run
        last = np.r_[(ki[1:] != ki[:-1]) | (ts[1:] != ts[:-1]), True]
        if not last.all():
            ki, ts, px = ki[last], ts[last], px[last]
    bounds = np.flatnonzero(np.r_[True, ki[1:] != ki[:-1], True]) if len(ki) else [0]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        series[assets[int(ki[lo])]] = (ts[lo:hi], px[lo:hi])
    for asset in assets:
        if asset not in series:
            raise MbtError(f"asset {asset!r}: no {chosen[asset]!r} prices at or before run.end {end}")


def _grid(cfg: RunConfig, series: dict[str, tuple[np.ndarray, np.ndarray]], grid_assets: list[str]) -> np.ndarray:
    if cfg.step_s is not None:
        return np.arange(cfg.start_us, cfg.end_us + 1, cfg.step_s * 1_000_000, dtype=np.int64)
    stamps = [ts[(ts >= cfg.start_us) & (ts <= cfg.end_us)] for ts, _ in (series[a] for a in grid_assets)]
    return np.unique(np.concatenate(stamps)) if stamps else np.zeros(0, np.int64)


def load_inputs(store: Store, cfg: RunConfig) -> RunInputs:
    """Read and check everything ``cfg`` needs from ``store``; raise ``MbtError`` naming what is missing."""
    start, end = _ts(cfg.start_us), _ts(cfg.end_us)
    rows = store.query("run_assets", start=start, end=end).fetchall()
    if not any(in_pos for _, in_pos in rows):
        raise MbtError(f"{store.path}: no positions stored (load a snapshot with `mbt ingest csv --positions FILE`)")
    grid_assets = sorted(a for a, in_pos in rows if in_pos)
    _check_price_source_keys(cfg, sorted(a for a, _ in rows))
    sources: dict[str, str] = {}
    series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    _load_series(store, cfg, grid_assets, end, sources, series)
    grid = _grid(cfg, series, grid_assets)
    if len(grid) == 0:
        raise MbtError(f"empty grid: no prices of the held assets between run.start {start} and run.end {end}")
    # only what the run applies must be configured: events after the last grid point are never applied
    if int(grid[-1]) < cfg.end_us:
        rows = store.query("run_assets", start=start, end=_ts(grid[-1])).fetchall()
    assets = sorted(a for a, _ in rows)
    for rule in cfg.rules:
        if rule.plugin.asset_params:
            rule.require_assets(assets)  # raises naming the first asset without parameters
    _load_series(store, cfg, [a for a in assets if a not in series], end, sources, series)
    prices = np.empty((len(grid), len(assets)))
    for k, asset in enumerate(assets):
        ts, px = series[asset]
        idx = np.searchsorted(ts, grid, side="right") - 1
        if idx[0] < 0:
            raise MbtError(f"asset {asset!r}: no price at or before the first grid point {_ts(grid[0])} "
                           f"(first {sources[asset]!r} price is at {_ts(ts[0])})")
        prices[:, k] = px[idx]

    grid_end = _ts(grid[-1])
    store.query("run_accounts", start=start, end=grid_end)
    # fetched as Arrow: the result tables use this string array as is; the engine side gets Python strings
    account_names = store.query_arrow("run_account_ids")["account"].combine_chunks()
    accounts = np.empty(len(account_names), dtype=object)
    accounts[:] = account_names.to_pylist()  # not .to_numpy(), which imports pandas
    pos = store.query("run_positions", assets=assets).fetchnumpy()
    A, K = len(accounts), len(assets)
    coll = np.zeros((A, K))
    debt = np.zeros((A, K))
    coll[pos["ai"], pos["ki"]] = pos["collateral"]
    debt[pos["ai"], pos["ki"]] = pos["debt"]
    ev = store.query("run_events", start=start, end=grid_end, assets=assets).fetchnumpy()
    ev_ts = np.asarray(ev["ts_us"], dtype=np.int64)
    events = Events(
        account=np.asarray(ev["ai"], dtype=np.int64),
        step=np.searchsorted(grid, ev_ts, side="left").astype(np.int64),
        asset=np.asarray(ev["ki"], dtype=np.int64),
        action=np.asarray(ev["action"], dtype=np.int8),
        amount=np.asarray(ev["amount"], dtype=np.float64),
    )
    h = hashlib.blake2b(digest_size=16)
    h.update("\x1f".join(assets).encode())
    h.update("\x1f".join(f"{a}={sources[a]}" for a in assets).encode())
    for asset in assets:
        h.update(series[asset][0].tobytes())
        h.update(series[asset][1].tobytes())
    h.update("\x1f".join(accounts.tolist()).encode())
    h.update(coll.tobytes())
    h.update(debt.tobytes())
    h.update(ev_ts.tobytes())
    for arr in (events.account, events.asset, events.action, events.amount):
        h.update(arr.tobytes())
    data = RunData(assets, accounts, grid, cfg.start_us, prices, Book(coll, debt), events, series)
    needs = set().union(*(rule.plugin.needs | rule.market.plugin.needs for rule in cfg.rules))
    if "position_rows" in needs or "event_markets" in needs:
        data.position_rows = store.query("run_position_rows", assets=assets).fetchnumpy()
        data.event_markets = np.asarray(ev["market"], dtype=object)
        h.update("\x1f".join(map(str, data.position_rows["market"].tolist())).encode())
        h.update("\x1f".join(map(str, data.event_markets.tolist())).encode())
    if "emode" in needs:
        em = store.query("run_emode").fetchnumpy()
        data.emode = np.full(len(accounts), None, dtype=object)
        data.emode[np.asarray(em["ai"], dtype=np.int64)] = np.asarray(em["emode"], dtype=object)
        h.update("\x1f".join(map(str, data.emode.tolist())).encode())
    if "indices" in needs:
        raw = store.query("run_indices", assets=assets, end=end).fetchnumpy()
        data.indices = {}
        names = np.asarray(raw["asset"], dtype=object)
        for asset in np.unique(names).tolist():
            sel = names == asset
            data.indices[asset] = (np.asarray(raw["ts_us"][sel], np.int64),
                                   np.asarray(raw["liquidity_index"][sel], np.float64),
                                   np.asarray(raw["variable_borrow_index"][sel], np.float64))
            for arr in data.indices[asset]:
                h.update(arr.tobytes())
    if "depth" in needs:
        data.depth_usd = _depth(store, assets, grid, end)
        h.update(np.nan_to_num(data.depth_usd, nan=-1.0).tobytes())
    return RunInputs(assets, accounts, grid, prices, Book(coll, debt), events, sources, h.hexdigest(), data,
                     account_names)


def _depth(store: Store, assets: list[str], grid: np.ndarray, end: str) -> np.ndarray:
    """Depth per grid step and asset: each venue's last observation carried forward, summed over venues."""
    raw = store.query("run_liquidity", assets=assets, end=end, factor=DEPTH_FACTOR).fetchnumpy()
    out = np.full((len(grid), len(assets)), np.nan)
    index = {a: k for k, a in enumerate(assets)}
    keys = list(zip(raw["asset"].tolist(), raw["venue"].tolist()))
    ts = np.asarray(raw["ts_us"], dtype=np.int64)
    depth = np.asarray(raw["depth_usd"], dtype=np.float64)
    start = 0
    for n in range(1, len(keys) + 1):
        if n == len(keys) or keys[n] != keys[start]:
            idx = np.searchsorted(ts[start:n], grid, side="right") - 1
            col = np.where(idx >= 0, depth[start:n][np.maximum(idx, 0)], np.nan)
            k = index[keys[start][0]]
            out[:, k] = np.where(np.isnan(out[:, k]), col, out[:, k] + np.nan_to_num(col))
            start = n
    return out
