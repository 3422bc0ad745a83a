"""Rule kinds (margin methods) as named plug-ins: one registry that config, runner and engines use.

A kind says how a rule set's margin requirement is computed. Each kind is one module that builds a
:class:`Kind` and calls :func:`register`:

- its TOML schema: the ``[[rules]]`` keys it owns (``keys``) and ``parse``, which validates them and
  returns the resolved settings (stored on the ``RuleSet``);
- its canonical form (``canonical``): plain data hashed into ``run_id`` — tables whose order changes
  results (first group wins, first market routes) stay lists, in config order;
- the data it needs from the store (``needs``): ``position_rows``, ``event_markets``, ``emode``, ``depth``;
- its compile step (``compile``): rule set + run data → engine inputs (``rules.Compiled``). The engine
  parameters it returns carry the **requirement seam**: the hooks module (maintenance value, initial
  capacity, eligible collateral, bonus, an optional block bound) — ``backtest.engine.tables`` for every
  built-in kind; a kind with another requirement names its own module (see ``engine/tables.py``).

Adding a kind is one module plus a ``register`` call (built-ins are listed in :data:`BUILTIN`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from ..engine.types import Book, Events
from ..registry import Registry

PLANNED: tuple[str, ...] = ()
BUILTIN = ("backtest.kinds.asset", "backtest.kinds.isolated", "backtest.kinds.cross", "backtest.kinds.dynamic",
           "backtest.kinds.haircut", "backtest.kinds.portfolio")
_REGISTRY: Registry = Registry(BUILTIN)
KINDS = _REGISTRY.items  # name → plug-in (use register() to add)


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


@dataclass(frozen=True)
class Kind:
    """One rule kind.

    name : the ``kind`` value
    keys : ``[[rules]]`` keys this kind owns (only valid with it)
    parse : ``parse(table, where, assets) -> {field: settings}`` — ``table`` is the resolved rule table,
        ``assets`` its parsed ``[rules.assets]``; the returned fields are stored on the ``RuleSet``
        (``markets``, ``groups``, ``dynamic``, ``haircut`` for the built-ins, else in ``RuleSet.options``)
    canonical : ``canonical(rule) -> dict`` of the kind's settings as plain data for ``run_id``
    compile : ``compile(rule, data, base) -> Compiled``; ``base`` holds the market's engine arguments
    needs : data loaded for it by the runner
    asset_params : every asset of the run must have ``[rules.assets]`` parameters
    asset_schema : ``asset_schema(table, where) -> object`` parses one ``[rules.assets.<SYM>]`` table (a
        dataclass: its fields are the canonical form); None = ``ltv`` / ``liquidation_threshold`` /
        ``liquidation_bonus`` (``confkit.AssetParams``). ``base`` merges the raw tables before parsing.
    """

    name: str
    keys: tuple[str, ...]
    parse: Callable[[Mapping[str, Any], str, Mapping[str, Any]], dict]
    canonical: Callable[[Any], dict]
    compile: Callable[[Any, Any, dict], Any]
    needs: frozenset[str] = frozenset()
    asset_params: bool = True
    summary: str = ""
    asset_schema: Callable[[Any, str], Any] | None = None


def register(item: Kind) -> Kind:
    """Add a plug-in (a later registration of the same name replaces it)."""
    return _REGISTRY.register(item.name, item)


def names() -> tuple[str, ...]:
    return _REGISTRY.names()


def get(name: str) -> Kind:
    return _REGISTRY.get(name)


def owned_keys() -> dict[str, tuple[str, ...]]:
    """Every kind-owned ``[[rules]]`` key → the kinds that own it (``portfolio`` is shared by two)."""
    out: dict[str, tuple[str, ...]] = {}
    for k in _REGISTRY.values():
        for key in k.keys:
            out[key] = out.get(key, ()) + (k.name,)
    return out
