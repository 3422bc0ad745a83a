"""Rule kinds compiled to engine inputs: one pure function per kind, from a rule set and run data.

Every kind becomes the same thing for the engine (``engine.types.Params`` tables indexed by update, row
and asset, plus a book and events): ``asset`` is one row; ``cross`` adds a row per correlated group;
``isolated`` turns each (account, market) position into its own engine account with its market's row;
``dynamic`` adds one update row per recomputation of the thresholds; ``liquidity-haircut`` adds per-step
depth. Nothing here reads the database: the runner passes arrays in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from .config import RuleSet
from .engine.types import Book, Events, Params
from .errors import MbtError

DEPTH_FACTOR = 1 / math.sqrt(0.98) - 1  # constant-product: quote sold to move the price −2 %, per unit reserve
YEAR_SECONDS = 365 * 86400  # Aave's SECONDS_PER_YEAR


@dataclass
class RunData:
    """What the kinds need beyond the aggregated book (loaded by the runner only when a kind asks)."""

    assets: list[str]
    accounts: np.ndarray
    grid_us: np.ndarray
    start_us: int
    prices: np.ndarray  # (T, K)
    book: Book
    events: Events
    series: dict[str, tuple[np.ndarray, np.ndarray]]  # asset → (timestamps µs, prices), up to end
    position_rows: dict[str, np.ndarray] | None = None  # ai, ki, market, collateral, debt (isolated)
    event_markets: np.ndarray | None = None  # (E,) object, market id or "" (isolated)
    emode: np.ndarray | None = None  # (A,) object, emode value or None (cross)
    depth_usd: np.ndarray | None = None  # (T, K), NaN where no data yet (liquidity-haircut)
    indices: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None  # asset → (µs, liquidity, borrow)


@dataclass
class Compiled:
    """Engine inputs of one rule set; ``owner`` maps engine accounts to run accounts (isolated)."""

    book: Book
    events: Events
    params: Params
    owner: np.ndarray | None = None
    growth: tuple[np.ndarray, np.ndarray] | None = None  # interest: (collateral, debt) multipliers (T × K)


def _asset_vectors(rule: RuleSet, assets: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = rule.params(assets)
    return p.ltv, p.liquidation_threshold, p.liquidation_bonus


def compile_rule(rule: RuleSet, data: RunData) -> Compiled:
    """Engine inputs for ``rule`` on ``data`` (raises ``MbtError`` naming what is missing)."""
    m = rule.market
    base = dict(close_factor=m.close_factor, gas_usd=m.gas_usd, enforce_ltv=rule.enforce_ltv, model=m.model,
                protocol_fee=np.full(len(data.assets), m.protocol_fee), dust=1 if m.dust == "reduce" else 0)
    compiled = _compile_kind(rule, data, base)
    if m.model > 0:
        compiled.growth = interest_growth(rule, data)
    return compiled


def _compile_kind(rule: RuleSet, data: RunData, base: dict) -> Compiled:
    if rule.kind == "isolated":
        return _isolated(rule, data, base)
    ltv, lt, lb = _asset_vectors(rule, data.assets)
    if rule.kind == "asset":
        return Compiled(data.book, data.events, Params(ltv, lt, lb, **base))
    if rule.kind == "cross":
        return _cross(rule, data, ltv, lt, lb, base)
    if rule.kind == "dynamic":
        ltv3, lt3, upd = dynamic_thresholds(rule, data, ltv, lt, lb)
        lb3 = np.broadcast_to(lb, lt3.shape).copy()
        return Compiled(data.book, data.events, Params(ltv3, lt3, lb3, update_index=upd, **base))
    if rule.kind == "liquidity-haircut":
        depth = _depth_for(rule, data, lt)
        return Compiled(data.book, data.events, Params(ltv, lt, lb, depth_usd=depth, haircut_k=rule.haircut.k,
                                                       haircut_floor=rule.haircut.floor, **base))
    raise MbtError(f"rules.{rule.name}.kind: {rule.kind!r} is not implemented")


# -- interest ---------------------------------------------------------------------------------------
def borrow_rate(curve, utilisation: float) -> float:
    """Annual variable borrow rate of a two-slope curve at ``utilisation`` (fractions)."""
    u, opt = utilisation, curve.optimal_utilisation
    if u <= opt:
        return curve.base + curve.slope1 * u / opt
    return curve.base + curve.slope1 + curve.slope2 * (u - opt) / (1 - opt)


def interest_growth(rule: RuleSet, data: RunData) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-step balance multipliers (collateral, debt) relative to the first grid step, or None.

    An asset with stored indices uses them (carried forward; ratio to the value at the first grid point);
    otherwise its rate curve in ``[market.interest.<SYM>]`` (constant utilisation: the configured one or the
    snapshot's Σ debt ÷ Σ collateral); otherwise it earns and owes nothing.
    """
    grid = data.grid_us
    T, K = len(grid), len(data.assets)
    gc, gd = np.ones((T, K)), np.ones((T, K))
    dt = np.diff(grid) / 1e6 / YEAR_SECONDS
    curves = rule.market.interest or {}
    used = False
    for k, asset in enumerate(data.assets):
        if data.indices and asset in data.indices:
            ts, li, bi = data.indices[asset]
            idx = np.searchsorted(ts, grid, side="right") - 1
            if idx[0] < 0:
                raise MbtError(f"asset {asset!r}: no interest index at or before the first grid point")
            gc[:, k] = li[idx] / li[idx[0]]
            gd[:, k] = bi[idx] / bi[idx[0]]
            used = True
        elif asset in curves:
            curve = curves[asset]
            if curve.utilisation is not None:
                u = curve.utilisation
            else:
                supplied = float(data.book.collateral[:, k].sum())
                u = min(1.0, float(data.book.debt[:, k].sum()) / supplied) if supplied > 0 else 0.0
            rb = borrow_rate(curve, u)
            rs = rb * u * (1 - curve.reserve_factor)
            gd[1:, k] = np.exp(np.cumsum(rb * dt))  # variable debt compounds
            gc[1:, k] = np.cumprod(1 + rs * dt)  # the liquidity index accrues linearly between updates
            used = True
    return (gc, gd) if used else None


# -- cross: correlated groups -----------------------------------------------------------------------
def _cross(rule: RuleSet, data: RunData, ltv, lt, lb, base) -> Compiled:
    names = list(rule.groups or {})
    K = len(data.assets)
    index = {a: k for k, a in enumerate(data.assets)}
    tables = [np.stack([ltv, lt, lb])]
    masks = np.zeros((len(names), K), dtype=bool)
    for g, name in enumerate(names):
        group = rule.groups[name]
        t = tables[0].copy()
        for sym in group.assets:
            if sym in index:
                k = index[sym]
                masks[g, k] = True
                t[:, k] = (group.params.ltv, group.params.liquidation_threshold, group.params.liquidation_bonus)
        tables.append(t)
    stacked = np.stack(tables)  # (R, 3, K)
    rows = np.full(len(data.accounts), -1, dtype=np.int64)
    if data.emode is not None:
        for g, name in enumerate(names):
            rows[data.emode == name] = g + 1
    return Compiled(data.book, data.events,
                    Params(stacked[None, :, 0], stacked[None, :, 1], stacked[None, :, 2],
                           account_row=rows, group_assets=masks, **base))


# -- dynamic: volatility-driven thresholds ------------------------------------------------------------
def _ewma_sigma(ts: np.ndarray, px: np.ndarray, when: np.ndarray, interval_us: int, lam: float,
                min_history: int) -> np.ndarray:
    """σ per time in ``when`` from returns of last prices at multiples of ``interval_us`` strictly before it.

    The EWMA is seeded with the sample variance of the first ``min_history`` returns; NaN where fewer
    returns exist.
    """
    out = np.full(len(when), np.nan)
    if len(ts) == 0:
        return out
    first = ts[0] // interval_us + (1 if ts[0] % interval_us else 0)
    last = (int(when.max()) - 1) // interval_us
    if last < first + 1:
        return out
    samples = np.arange(first, last + 1, dtype=np.int64) * interval_us
    last_px = px[np.searchsorted(ts, samples, side="right") - 1]
    r = np.diff(np.log(last_px))  # r[n] is known from samples[n + 1] on
    if len(r) < min_history:
        return out
    var = np.empty(len(r))
    var[: min_history - 1] = np.nan
    var[min_history - 1] = np.var(r[:min_history], ddof=1)
    for n in range(min_history, len(r)):
        var[n] = lam * var[n - 1] + (1 - lam) * r[n] ** 2
    # returns available strictly before τ: those whose closing sample is < τ
    n_known = np.searchsorted(samples, when, side="left") - 1  # samples[0..n] < τ → returns r[0..n−1]
    ok = n_known >= min_history
    out[ok] = np.sqrt(var[n_known[ok] - 1])
    return out


def dynamic_thresholds(rule: RuleSet, data: RunData, ltv: np.ndarray, lt: np.ndarray, lb: np.ndarray):
    """(ltv table, lt table, update index) for ``kind = "dynamic"`` — no look-ahead by construction.

    Updates happen at ``start + n·update_every``; each uses only prices strictly before its own time.
    """
    dyn = rule.dynamic
    grid = data.grid_us
    every = dyn.update_every_s * 1_000_000
    n_updates = int((grid[-1] - data.start_us) // every) + 1
    times = data.start_us + every * np.arange(n_updates, dtype=np.int64)
    z = NormalDist().inv_cdf(dyn.confidence)
    scale = math.sqrt(dyn.horizon_days * 86400 / dyn.vol_interval_s)
    K = len(data.assets)
    lt_t = np.zeros((n_updates, K))
    for k, asset in enumerate(data.assets):
        if lt[k] == 0:
            continue  # not collateral in this rule set: stays so
        ts, px = data.series[asset]
        sigma = _ewma_sigma(ts, px, times, dyn.vol_interval_s * 1_000_000, dyn.lam, dyn.min_history)
        target = np.clip((1 - z * sigma * scale) / (1 + lb[k]), dyn.floor, dyn.cap)
        value = target[0] if np.isfinite(target[0]) else lt[k]
        lt_t[0, k] = value
        for u in range(1, n_updates):
            if np.isfinite(target[u]):
                value = value + float(np.clip(target[u] - value, -dyn.max_step, dyn.max_step))
            lt_t[u, k] = value
    ltv_t = np.maximum(0.0, lt_t - (lt - ltv))
    upd = np.searchsorted(times, grid, side="right") - 1
    return ltv_t[:, None, :], lt_t[:, None, :], upd.astype(np.int64)


# -- liquidity haircut --------------------------------------------------------------------------------
def _depth_for(rule: RuleSet, data: RunData, lt: np.ndarray) -> np.ndarray:
    depth = data.depth_usd
    K = len(data.assets)
    out = np.full((len(data.grid_us), K), np.inf)
    for k, asset in enumerate(data.assets):
        if lt[k] == 0:
            continue  # not collateral: no haircut needed
        col = None if depth is None else depth[:, k]
        if col is None or np.isnan(col).all():
            raise MbtError(f"rules.{rule.name}: kind = \"liquidity-haircut\" needs liquidity data for asset "
                           f"{asset!r} (load it with `mbt ingest csv --liquidity FILE`)")
        if np.isnan(col[0]):
            raise MbtError(f"rules.{rule.name}: asset {asset!r} has no liquidity data at or before the first "
                           f"grid point")
        out[:, k] = col
    return out


# -- isolated markets ---------------------------------------------------------------------------------
def _isolated(rule: RuleSet, data: RunData, base: dict) -> Compiled:
    """Split accounts into per-market positions (see docs/rules.md for the allocation rule)."""
    markets = list(rule.markets)
    index = {a: k for k, a in enumerate(data.assets)}
    pair_of = {(m.collateral, m.debt): n for n, m in enumerate(rule.markets.values())}
    id_of = {mid: n for n, mid in enumerate(markets)}
    K, M = len(data.assets), len(markets)
    idle = M  # an extra all-zero row: deposits that no market takes as collateral (kept, never collateral)
    tab = np.zeros((3, M + 1, K))
    for n, mid in enumerate(markets):
        m = rule.markets[mid]
        if m.collateral in index:
            k = index[m.collateral]
            tab[:, n, k] = (m.params.ltv, m.params.liquidation_threshold, m.params.liquidation_bonus)
    rows = data.position_rows
    p0 = data.prices[0]
    positions: dict[tuple[int, int], np.ndarray] = {}  # (account, market row) → [coll(K), debt(K)]

    def slot(a: int, m: int) -> np.ndarray:
        if (a, m) not in positions:
            positions[(a, m)] = np.zeros((2, K))
        return positions[(a, m)]

    where = f"rules.{rule.name}"
    free_c = np.zeros((len(data.accounts), K))
    free_d = np.zeros((len(data.accounts), K))
    for ai, ki, mk, c, d in zip(rows["ai"], rows["ki"], rows["market"], rows["collateral"], rows["debt"]):
        if mk:
            if mk not in id_of:
                raise MbtError(f"{where}.markets: positions use market {mk!r}, which is not defined"
                               f"{'' if not markets else ' (defined: ' + ', '.join(markets) + ')'}")
            s = slot(int(ai), id_of[mk])
            s[0, ki] += c
            s[1, ki] += d
        else:
            free_c[ai, ki] += c
            free_d[ai, ki] += d
    for a in np.flatnonzero(free_c.any(axis=1) | free_d.any(axis=1)):
        colls = np.flatnonzero(free_c[a] > 0)
        debts = np.flatnonzero(free_d[a] > 0)
        for j in debts:
            for i in colls:
                if (data.assets[i], data.assets[j]) not in pair_of:
                    raise MbtError(f"{where}.markets: account {data.accounts[a]} pairs collateral "
                                   f"{data.assets[i]!r} with debt {data.assets[j]!r}, and no market has that pair")
        if len(debts) == 0:
            for i in colls:  # a supplier: its deposit sits in the best market for that collateral, if any
                options = [n for (ca, _), n in pair_of.items() if ca == data.assets[i]]
                best = max(options, key=lambda n: (tab[0, n, i], -n)) if options else idle
                slot(int(a), best)[0, i] += free_c[a, i]
            continue
        if len(colls) == 0:
            for j in debts:
                options = [n for (_, da), n in pair_of.items() if da == data.assets[j]]
                if not options:
                    raise MbtError(f"{where}.markets: account {data.accounts[a]} owes {data.assets[j]!r}, "
                                   f"and no market lends it")
                slot(int(a), min(options))[1, j] += free_d[a, j]
            continue
        alloc = np.zeros((K, K))  # debt j allocated to collateral i (token units of j)
        for j in debts:
            w = np.array([free_c[a, i] * p0[i] * tab[1, pair_of[(data.assets[i], data.assets[j])], i]
                          for i in colls])
            if w.sum() <= 0:
                w = free_c[a, colls] * p0[colls]
            alloc[colls, j] = free_d[a, j] * w / w.sum()
        for i in colls:
            usd = alloc[i, debts] * p0[debts]
            # collateral that backs no debt (LLTV 0 everywhere) is spread evenly over its pairs
            share = usd / usd.sum() if usd.sum() > 0 else np.full(len(debts), 1.0 / len(debts))
            for j, s in zip(debts, share):
                pos = slot(int(a), pair_of[(data.assets[i], data.assets[j])])
                pos[0, i] += free_c[a, i] * s
                pos[1, j] += alloc[i, j]
    # events, in order: to the position named by their market id, else to the account's only position
    # (so far) whose collateral / debt is that asset, else to the only market that fits
    ev = data.events
    targets: list[tuple[int, int]] = []
    for e in range(len(ev)):
        a, k, act = int(ev.account[e]), int(ev.asset[e]), int(ev.action[e])
        mk = "" if data.event_markets is None else data.event_markets[e]
        if mk:
            if mk not in id_of:
                raise MbtError(f"{where}.markets: events use market {mk!r}, which is not defined")
            slot(a, id_of[mk])
            targets.append((a, id_of[mk]))
            continue
        side = 0 if act <= 1 else 1
        fits = [n for (ca, da), n in pair_of.items() if (ca if side == 0 else da) == data.assets[k]]
        mine = [m for (acc, m) in positions if acc == a and m in fits]
        if len(mine) == 1:
            targets.append((a, mine[0]))
        elif not mine and len(fits) == 1:
            slot(a, fits[0])
            targets.append((a, fits[0]))
        else:
            raise MbtError(f"{where}.markets: an event of account {data.accounts[a]} on {data.assets[k]!r} "
                           f"has no market id and fits {len(mine) or len(fits)} markets; add a market column")
    keys = sorted(positions)
    lookup = {key: n for n, key in enumerate(keys)}
    coll = np.array([positions[key][0] for key in keys]).reshape(len(keys), K)
    debt = np.array([positions[key][1] for key in keys]).reshape(len(keys), K)
    owner = np.array([a for a, _ in keys], dtype=np.int64)
    row = np.array([m for _, m in keys], dtype=np.int64)
    ev_pos = np.array([lookup[t] for t in targets], dtype=np.int64)
    events = Events(ev_pos, ev.step, ev.asset, ev.action, ev.amount)
    return Compiled(Book(coll, debt), events,
                    Params(tab[0][None], tab[1][None], tab[2][None], account_row=row, **base), owner=owner)
