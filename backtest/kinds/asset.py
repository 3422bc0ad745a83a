"""``kind = "asset"``: per-asset LTV, liquidation threshold and bonus (DESIGN §3, the default)."""

from __future__ import annotations

from ..engine.types import Params
from . import Compiled, Kind, register


def asset_vectors(rule, assets: list[str]):
    p = rule.params(assets)
    return p.ltv, p.liquidation_threshold, p.liquidation_bonus


def _compile(rule, data, base):
    ltv, lt, lb = asset_vectors(rule, data.assets)
    return Compiled(data.book, data.events, Params(ltv, lt, lb, **base))


KIND = register(Kind(
    name="asset", keys=(), parse=lambda table, where, assets: {}, canonical=lambda rule: {},
    compile=_compile, summary="per-asset thresholds: HF = Σ c·p·LT / Σ d·p",
))
