"""A run's inputs: everything a config needs, read from the store in bulk and checked.

``load_inputs`` reads positions, events and prices on the grid (and only the extra data some kind or model
``needs``) into arrays and fingerprints them; errors name what is missing. It imports neither numba nor
the engine's kernels (a test holds it to that).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
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


@dataclass(frozen=True)
class ReadSpec:
    """What a run's store reads depend on: the ``[run]`` period, step and price-source choice (the rule sets
    only add checks, and the extra data some kinds need, after them)."""

    start_us: int
    end_us: int
    step_s: int | None
    price_source: Any

    @classmethod
    def of(cls, cfg: RunConfig) -> "ReadSpec":
        ps = cfg.price_source
        return cls(cfg.start_us, cfg.end_us, cfg.step_s, dict(ps) if isinstance(ps, Mapping) else ps)


class _Reads:
    """A run's store reads in three stages, each run once, in order, and kept — its result or the error it
    raised — so that ``load_inputs`` raises a stage's error at the point where it would have met it, after
    the config checks that come before it, whichever thread ran the stage.

    ``assets``: the assets of positions and events (``run_assets``); ``grid``: the grid assets' prices and
    the grid, then the run's assets; ``book``: the other assets' prices, the price matrix, accounts,
    positions, events and the fingerprint of all that.
    """

    STAGES = ("assets", "grid", "book")

    def __init__(self, store: Store, spec: ReadSpec) -> None:
        self.store = store
        self.spec = spec
        self._done: dict[str, tuple[bool, Any]] = {}

    def stage(self, name: str) -> Any:
        if name not in self._done:
            for earlier in self.STAGES[:self.STAGES.index(name)]:
                self.stage(earlier)
            try:
                self._done[name] = (True, getattr(self, f"_{name}")())
            except Exception as exc:  # noqa: BLE001  (kept, raised where load_inputs reaches this stage)
                self._done[name] = (False, exc)
        ok, value = self._done[name]
        if not ok:
            raise value
        return value

    def run_all(self) -> None:
        """Every stage, stopping at the first that fails (the prefetch thread's work)."""
        try:
            for name in self.STAGES:
                self.stage(name)
        except Exception:  # noqa: BLE001  (kept in _done)
            pass

    def _assets(self):
        spec = self.spec
        start, end = _ts(spec.start_us), _ts(spec.end_us)
        rows = self.store.query("run_assets", start=start, end=end).fetchall()
        if not any(in_pos for _, in_pos in rows):
            raise MbtError(f"{self.store.path}: no positions stored (load a snapshot with `mbt ingest csv "
                           "--positions FILE`)")
        return rows

    def _grid(self):
        spec, store = self.spec, self.store
        start, end = _ts(spec.start_us), _ts(spec.end_us)
        rows = self.stage("assets")
        grid_assets = sorted(a for a, in_pos in rows if in_pos)
        sources: dict[str, str] = {}
        series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        _load_series(store, spec, grid_assets, end, sources, series)
        grid = _grid(spec, series, grid_assets)
        if len(grid) == 0:
            raise MbtError(f"empty grid: no prices of the held assets between run.start {start} and run.end {end}")
        # only what the run applies must be configured: events after the last grid point are never applied
        if int(grid[-1]) < spec.end_us:
            rows = store.query("run_assets", start=start, end=_ts(grid[-1])).fetchall()
        return sorted(a for a, _ in rows), grid, sources, series

    def _book(self):
        spec, store = self.spec, self.store
        start, end = _ts(spec.start_us), _ts(spec.end_us)
        assets, grid, sources, series = self.stage("grid")
        _load_series(store, spec, [a for a in assets if a not in series], end, sources, series)
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
        return prices, account_names, accounts, coll, debt, ev, events, h


class Prefetch:
    """The store reads of ``mbt run`` started on a thread of their own before the config is validated.

    Loading a config imports the model and kind plug-ins, numba with them (≈ 0.3 s of Python that holds the
    GIL); DuckDB's reads release it. ``start`` peeks at the config's ``[run]`` table (period, step, price
    source), opens the store and runs the reads on a cursor of its own; ``load_inputs`` takes them when the
    validated config asks for the same reads, and reads afresh otherwise. Errors wait for their turn: a
    read's error is raised by ``load_inputs`` where it would have met it, a config error first, a store that
    cannot be opened here is opened (and its error raised) as usual later. Only for a database file that
    exists: nothing is created before the config is known to be valid.
    """

    def __init__(self, store: Store, spec: ReadSpec) -> None:
        self.store = store
        self._view = store.cursor_view()
        self.reads = _Reads(self._view, spec)
        self._thread = threading.Thread(target=self.reads.run_all, name="mbt-prefetch", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, db_path: str, config_path: str) -> "Prefetch | None":
        """A running prefetch, or None when the store or the config's ``[run]`` table cannot be read here."""
        spec = peek_spec(config_path)
        if spec is None or not Path(db_path).is_file():
            return None
        try:
            store = Store(db_path)
        except Exception:  # noqa: BLE001  (opened again, and its error raised, in the ordinary order)
            return None
        try:
            return cls(store, spec)
        except Exception:  # noqa: BLE001
            store.close()
            return None

    def take(self, store: Store, cfg: RunConfig) -> "_Reads | None":
        """The reads, when they were made on ``store`` for what ``cfg`` asks (None: read afresh)."""
        self._thread.join()
        if store is not self.store or self.reads.spec != ReadSpec.of(cfg):
            return None
        return self.reads

    def close(self) -> None:
        """Stop and join the reads (a config error ends the run before they are taken); close the cursor.
        Harmless to repeat."""
        if self._thread.is_alive():
            try:
                self._view.interrupt()
            except Exception:  # noqa: BLE001
                pass
            self._thread.join()
        try:
            self._view.close()
        except Exception:  # noqa: BLE001
            pass


def peek_spec(config_path: str) -> ReadSpec | None:
    """The reads a config's ``[run]`` table asks for, read without validating the rest (None when it is not
    plainly readable: the config's own errors are for ``load_config`` to raise)."""
    from .config import read_document
    from .confkit import _instant
    from .timeutil import parse_duration

    try:
        run = read_document(config_path)["run"]
        start, end = _instant(run["start"], "run.start"), _instant(run["end"], "run.end")
        step = parse_duration(run["step"]) if "step" in run else None
        ps = run.get("price_source")
        if isinstance(ps, Mapping):
            ps = {str(k): v for k, v in ps.items()}
        return ReadSpec(start, end, step, ps)
    except Exception:  # noqa: BLE001
        return None


def load_inputs(store: Store, cfg: RunConfig, prefetched: Prefetch | None = None) -> RunInputs:
    """Read and check everything ``cfg`` needs from ``store``; raise ``MbtError`` naming what is missing.

    ``prefetched``: reads ``Prefetch`` started before the config was validated; used when they match."""
    reads = prefetched.take(store, cfg) if prefetched is not None else None
    if reads is None:
        reads = _Reads(store, ReadSpec.of(cfg))
    try:
        return _checked_inputs(reads, cfg)
    finally:
        if prefetched is not None:
            prefetched.close()


def _checked_inputs(reads: _Reads, cfg: RunConfig) -> RunInputs:
    store = reads.store
    end = _ts(cfg.end_us)
    rows = reads.stage("assets")
    _check_price_source_keys(cfg, sorted(a for a, _ in rows))
    assets, grid, sources, series = reads.stage("grid")
    for rule in cfg.rules:
        if rule.plugin.asset_params:
            rule.require_assets(assets)  # raises naming the first asset without parameters
    prices, account_names, accounts, coll, debt, ev, events, h = reads.stage("book")
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
