"""``kind = "cross"``: correlated groups (e-mode style) — an account whose debts all lie in a group uses the
group's parameters for the group's assets (the first group in config order that holds every debt asset);
``[positions] emode`` pins an account to a group. Parameter rows: 0 = the assets' own, g + 1 = group g.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..confkit import ASSET_KEYS, AssetParams, _asset_params, _check_keys, _hint, _quote_key
from ..engine.types import Params
from ..errors import ConfigError
from . import Compiled, Kind, register
from .asset import asset_vectors

GROUP_KEYS = ("assets",) + ASSET_KEYS


@dataclass(frozen=True)
class Group:
    """A correlated group (``kind = "cross"``): its assets use these values for accounts that qualify."""

    assets: tuple[str, ...]
    params: AssetParams


def parse_groups(table: Any, where: str, assets: Mapping[str, AssetParams]) -> dict[str, Group]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected tables [{where}.<name>]")
    out: dict[str, Group] = {}
    for name, g in table.items():
        w = f"{where}.{_quote_key(str(name))}"
        if not isinstance(g, Mapping):
            raise ConfigError(f"{w}: expected a table with {', '.join(GROUP_KEYS)}")
        _check_keys(g, GROUP_KEYS, w)
        members = g.get("assets")
        if not isinstance(members, list) or not members or not all(isinstance(x, str) and x for x in members):
            raise ConfigError(f"{w}.assets: expected a non-empty list of asset symbols")
        for sym in members:
            if sym not in assets:
                raise ConfigError(f"{w}.assets: {sym!r} has no [rules.assets] parameters in this rule set"
                                  f"{_hint(sym, list(assets))}")
        out[str(name)] = Group(tuple(members), _asset_params({k: v for k, v in g.items() if k in ASSET_KEYS}, w))
    return out


GROUP_BY = ("debt", "emode")


def _parse(table: Mapping[str, Any], where: str, assets: Mapping[str, AssetParams]) -> dict:
    out: dict[str, Any] = {"groups": parse_groups(table.get("groups", {}), f"{where}.groups", assets)}
    by = table.get("group_by", "debt")
    if by not in GROUP_BY:
        raise ConfigError(f"{where}.group_by: expected \"debt\" (an account uses the first group holding all its "
                          f"debts) or \"emode\" (only the group its positions' emode names), got {by!r}")
    if by != "debt":
        out["group_by"] = by
    return out


def _canonical(rule) -> dict:
    # a list, in config order: the first group holding every debt asset wins
    out = {"groups": [[g, {"assets": list(x.assets), **vars(x.params)}] for g, x in (rule.groups or {}).items()]}
    if rule.setting("group_by") == "emode":  # only when set: the canonical form (and run_id) of older configs stays
        out["group_by"] = "emode"
    return out


def _compile(rule, data, base):
    ltv, lt, lb = asset_vectors(rule, data.assets)
    return compile_cross(rule, data, ltv, lt, lb, base)


def compile_cross(rule: RuleSet, data: RunData, ltv, lt, lb, base) -> Compiled:
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
    # -1: chosen from the debts at every call; 0: the assets' own values unless the emode names a group
    rows = np.full(len(data.accounts), 0 if rule.setting("group_by") == "emode" else -1, dtype=np.int64)
    if data.emode is not None:
        for g, name in enumerate(names):
            rows[data.emode == name] = g + 1
    return Compiled(data.book, data.events,
                    Params(stacked[None, :, 0], stacked[None, :, 1], stacked[None, :, 2],
                           account_row=rows, group_assets=masks, **base))


KIND = register(Kind(
    name="cross", keys=("groups", "group_by"), parse=_parse, canonical=_canonical, compile=_compile,
    needs=frozenset({"emode"}), summary="correlated groups (e-mode): one parameter row per group",
))
