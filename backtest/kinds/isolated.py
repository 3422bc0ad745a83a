"""``kind = "isolated"``: Morpho-style isolated markets — each (collateral, debt) pair is a market with its
own parameters; every (account, market) position is its own engine account (``owner`` maps it back).
See docs/rules.md for how untagged positions and events are allocated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..confkit import ASSET_KEYS, AssetParams, _asset_params, _check_keys, _quote_key, _string
from ..engine.types import Book, Events, Params
from ..errors import ConfigError, MbtError
from . import Compiled, Kind, register

MARKET_KEYS = ("collateral", "debt") + ASSET_KEYS


@dataclass(frozen=True)
class IsolatedMarket:
    """One isolated market (``kind = "isolated"``): a (collateral, debt) pair with its own parameters."""

    collateral: str
    debt: str
    params: AssetParams


MORPHO_KEYS = ("id", "loan", "collateral", "lltv")
LIQUIDATION_CURSOR, MAX_LIF = 0.3, 1.15


def morpho_lif(lltv: float) -> float:
    """Morpho Blue's liquidation incentive factor ``min(1.15, 1/(1 − 0.3·(1 − LLTV)))``."""
    return min(MAX_LIF, 1.0 / (1.0 - LIQUIDATION_CURSOR * (1.0 - lltv)))


def _morpho_markets(items: list, where: str) -> dict[str, Any]:
    """``[[rules.markets]]`` in Morpho Blue's form (``id``, ``loan``, ``collateral``, ``lltv``) as market tables:
    ``ltv = liquidation_threshold = lltv`` (Morpho lends up to the LLTV), ``liquidation_bonus = LIF − 1``."""
    from ..confkit import _number

    out: dict[str, Any] = {}
    for n, m in enumerate(items):
        w = f"{where}[{n}]"
        if not isinstance(m, Mapping):
            raise ConfigError(f"{w}: expected a table with {', '.join(MORPHO_KEYS)}")
        _check_keys(m, MORPHO_KEYS, w)
        for key in MORPHO_KEYS:
            if key not in m:
                raise ConfigError(f"{w}.{key}: missing")
        mid = _string(m["id"], f"{w}.id")
        if mid in out:
            raise ConfigError(f"{w}.id: duplicate market id {mid!r}")
        lltv = _number(m["lltv"], f"{w}.lltv")
        if not 0 < lltv < 1:
            raise ConfigError(f"{w}.lltv: must satisfy 0 < lltv < 1 (Morpho's 86 % is 0.86), got {lltv}")
        out[mid] = {"collateral": m["collateral"], "debt": _string(m["loan"], f"{w}.loan"), "ltv": lltv,
                    "liquidation_threshold": lltv, "liquidation_bonus": morpho_lif(lltv) - 1.0}
    return out


def parse_markets(table: Any, where: str) -> dict[str, IsolatedMarket]:
    if isinstance(table, list) and table:
        table = _morpho_markets(table, where)
    if not isinstance(table, Mapping) or not table:
        raise ConfigError(f"{where}: kind = \"isolated\" needs at least one [{where}.<id>] table "
                          f"with {', '.join(MARKET_KEYS)}")
    out: dict[str, IsolatedMarket] = {}
    pairs: dict[tuple[str, str], str] = {}
    for mid, m in table.items():
        w = f"{where}.{_quote_key(str(mid))}"
        if not isinstance(m, Mapping):
            raise ConfigError(f"{w}: expected a table with {', '.join(MARKET_KEYS)}")
        _check_keys(m, MARKET_KEYS, w)
        for key in ("collateral", "debt"):
            if key not in m:
                raise ConfigError(f"{w}.{key}: missing")
        coll, debt = _string(m["collateral"], f"{w}.collateral"), _string(m["debt"], f"{w}.debt")
        if coll == debt:
            raise ConfigError(f"{w}.debt: a market's debt asset must differ from its collateral ({coll!r})")
        if (coll, debt) in pairs:
            raise ConfigError(f"{w}: pair ({coll}, {debt}) already defined by market {pairs[(coll, debt)]!r}")
        pairs[(coll, debt)] = str(mid)
        params = _asset_params({k: v for k, v in m.items() if k in ASSET_KEYS}, w)
        out[str(mid)] = IsolatedMarket(coll, debt, params)
    return out


def _parse(table: Mapping[str, Any], where: str, assets: Mapping[str, AssetParams]) -> dict:
    return {"markets": parse_markets(table.get("markets"), f"{where}.markets")}


def _canonical(rule) -> dict:
    # a list, in config order: the first market that fits routes untagged positions and events
    return {"markets": [[m, {"collateral": x.collateral, "debt": x.debt, **vars(x.params)}]
                        for m, x in (rule.markets or {}).items()]}


def compile_isolated(rule: RuleSet, data: RunData, base: dict) -> Compiled:
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


KIND = register(Kind(
    name="isolated", keys=("markets",), parse=_parse, canonical=_canonical,
    compile=lambda rule, data, base: compile_isolated(rule, data, base),
    needs=frozenset({"position_rows", "event_markets"}), asset_params=False,
    summary="isolated (collateral, debt) markets, one engine account per position",
))
