"""``kind = "liquidity-haircut"``: LT and LTV of an account's asset scaled by
``max(floor, 1 − k·size/depth)``, size = its collateral value, depth = the ±2 % DEX depth at the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..confkit import AssetParams, _check_keys, _number
from ..engine.types import Params
from ..errors import ConfigError, MbtError
from . import Compiled, Kind, register
from .asset import asset_vectors

HAIRCUT_DEFAULTS: dict[str, Any] = {"k": 1.0, "floor": 0.5}


@dataclass(frozen=True)
class HaircutSettings:
    """Liquidity haircut (``kind = "liquidity-haircut"``): ``LT·max(floor, 1 − k·size/depth)``."""

    k: float
    floor: float


def parse_haircut(table: Any, where: str) -> HaircutSettings:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table")
    _check_keys(table, tuple(HAIRCUT_DEFAULTS), where)
    t = {**HAIRCUT_DEFAULTS, **table}
    k, floor = _number(t["k"], f"{where}.k"), _number(t["floor"], f"{where}.floor")
    if k < 0:
        raise ConfigError(f"{where}.k: must be ≥ 0, got {k}")
    if not 0 <= floor <= 1:
        raise ConfigError(f"{where}.floor: must satisfy 0 ≤ floor ≤ 1, got {floor}")
    return HaircutSettings(k, floor)


def _parse(table: Mapping[str, Any], where: str, assets: Mapping[str, AssetParams]) -> dict:
    return {"haircut": parse_haircut(table.get("haircut", {}), f"{where}.haircut")}


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


def _compile(rule, data, base):
    ltv, lt, lb = asset_vectors(rule, data.assets)
    depth = _depth_for(rule, data, lt)
    return Compiled(data.book, data.events, Params(ltv, lt, lb, depth_usd=depth, haircut_k=rule.haircut.k,
                                                   haircut_floor=rule.haircut.floor, **base))


KIND = register(Kind(
    name="liquidity-haircut", keys=("haircut",), parse=_parse,
    canonical=lambda rule: {"haircut": vars(rule.haircut).copy()}, compile=_compile,
    needs=frozenset({"depth"}), summary="thresholds scaled down by position size over DEX depth",
))
