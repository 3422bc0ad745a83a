"""``mbt params``: an ingested Aave market's live risk parameters at a block, as a rule-set TOML.

The parameters come from the PoolConfigurator's events up to the block (``aave_config_events``):
``CollateralConfigurationChanged`` (LTV, liquidation threshold, bonus per reserve),
``LiquidationProtocolFeeChanged``, ``ReserveFactorChanged``, ``EModeCategoryAdded`` (a category's values and
label) and ``AssetCollateralInEModeChanged`` / ``AssetBorrowableInEModeChanged`` (its members). The TOML is a
``kind = "cross"`` rule set whose groups are the e-mode categories, pinned by the accounts' e-mode
(``group_by = "emode"``): what ``mbt run`` replays as the "current" column of a governance comparison.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..errors import MbtError
from .aave import Market


@dataclass
class ReserveParams:
    ltv: int = 0                  # bps
    liquidation_threshold: int = 0
    liquidation_bonus: int = 0    # bps, 10500 = 5 % bonus
    reserve_factor: int = 0
    protocol_fee: int = 0
    configured: bool = False


@dataclass
class Category:
    ltv: int
    liquidation_threshold: int
    liquidation_bonus: int
    label: str
    collateral: set[str] = field(default_factory=set)
    borrowable: set[str] = field(default_factory=set)


@dataclass
class LiveParams:
    block: int
    reserves: dict[str, ReserveParams]
    categories: dict[int, Category]
    price_sources: dict[str, str] = field(default_factory=dict)   # reserve → AaveOracle source (AssetSourceUpdated)


def live_params(store, market: Market, block: int) -> LiveParams:
    rows = store.rows("onchain_config_events", stream=market.stream, block=block)
    reserves = {r: ReserveParams() for r in market.reserves}
    cats: dict[int, Category] = {}
    sources: dict[str, str] = {}
    for event, asset, category, v1, v2, v3, flag, label, address in rows:
        p = reserves.get(asset) if asset else None
        if event == "CollateralConfigurationChanged" and p is not None:
            p.ltv, p.liquidation_threshold, p.liquidation_bonus = int(v1), int(v2), int(v3)
            p.configured = True
        elif event == "ReserveFactorChanged" and p is not None:
            p.reserve_factor = int(v2)
        elif event == "LiquidationProtocolFeeChanged" and p is not None:
            p.protocol_fee = int(v2)
        elif event == "AssetSourceUpdated" and asset:
            sources[asset] = address
        elif event == "EModeCategoryAdded":
            old = cats.get(int(category))
            cats[int(category)] = Category(int(v1), int(v2), int(v3), label or "",
                                           old.collateral if old else set(), old.borrowable if old else set())
        elif event in ("AssetCollateralInEModeChanged", "AssetBorrowableInEModeChanged"):
            c = cats.get(int(category))
            if c is None:
                continue
            members = c.collateral if event == "AssetCollateralInEModeChanged" else c.borrowable
            (members.add if flag else members.discard)(asset)
    missing = [market.reserves[r].symbol for r, p in reserves.items() if not p.configured]
    if missing:
        raise MbtError(f"block {block}: no CollateralConfigurationChanged stored for {', '.join(missing)}; ingest the "
                       f"market from its deployment block (parameters are read from the configurator's events)")
    return LiveParams(block, reserves, cats, sources)


def _frac(bps: int) -> str:
    return repr(bps / 10_000)


def _bonus(bps: int) -> str:
    return repr((bps - 10_000) / 10_000) if bps else "0.0"


def _key(sym: str) -> str:
    return sym if sym.replace("_", "").replace("-", "").isalnum() else f'"{sym}"'


def params_toml(market: Market, live: LiveParams, *, start: str | None = None, end: str | None = None) -> str:
    """The TOML text: [run] (when ``start``/``end`` are given), [market], one ``cross`` rule set ``live``."""
    sym = {r: market.reserves[r].symbol for r in market.reserves}
    fees = Counter(p.protocol_fee for p in live.reserves.values())
    fee = fees.most_common(1)[0][0] if fees else 0
    lines = [f"# Live parameters of Aave market {market.pool} ({market.version}) at block {live.block:,},",
             "# from its PoolConfigurator's events (mbt params). bps → fractions: bonus 10500 → 0.05."]
    if start and end:
        lines += ["", "[run]", f'name = "aave-{market.pool[:10]}"', f'start = "{start}"', f'end = "{end}"']
    lines += ["", "[market]", 'liquidation = "aave-v3"' if market.version != "v2" else 'liquidation = "aave-v2"']
    if market.version != "v2":
        lines.append(f'version = "{market.version}"')
        lines.append(f"protocol_fee = {_frac(fee)}")
        per = ", ".join(f"{sym[r]} {p.protocol_fee}" for r, p in live.reserves.items())
        lines.append(f"# liquidation protocol fee per reserve, bps: {per}")
    lines += ["", "[[rules]]", 'name = "live"', 'kind = "cross"', 'group_by = "emode"']
    for r, p in live.reserves.items():
        lines += ["", f"[rules.assets.{_key(sym[r])}]",
                  f"ltv = {_frac(p.ltv)}", f"liquidation_threshold = {_frac(p.liquidation_threshold)}",
                  f"liquidation_bonus = {_bonus(p.liquidation_bonus)}",
                  f"# reserve_factor_bps = {p.reserve_factor}"]
    if live.price_sources:
        lines += ["", "# AaveOracle price sources (AssetSourceUpdated); where one is a Chainlink proxy, its history loads with"]
        for r in market.reserves:
            if r in live.price_sources:
                lines.append(f"#   mbt ingest rpc --source chainlink --feed {live.price_sources[r]} --asset {sym[r]}")
    for cid, c in sorted(live.categories.items()):
        members = [sym[r] for r in market.reserves if r in c.collateral]
        if not members:
            continue
        lines += ["", f"[rules.groups.emode-{cid}]     # e-mode {cid} \"{c.label}\"",
                  "assets = [" + ", ".join(f'"{m}"' for m in members) + "]",
                  f"ltv = {_frac(c.ltv)}", f"liquidation_threshold = {_frac(c.liquidation_threshold)}",
                  f"liquidation_bonus = {_bonus(c.liquidation_bonus)}"]
        borrow = [sym[r] for r in market.reserves if r in c.borrowable]
        lines.append("# borrowable in this e-mode: " + (", ".join(borrow) or "none"))
    return "\n".join(lines) + "\n"
