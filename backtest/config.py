"""Run configuration: TOML → validated, fully resolved, frozen rule sets (DESIGN §3).

Every key is checked: unknown keys, invalid values and values not implemented yet raise ``ConfigError``
with one line naming the key (and a did-you-mean hint where one fits). ``base`` deep-merges a rule set
over an earlier one; the resolved form (bases expanded, defaults filled, keys sorted) is what a run's
``run_id`` is hashed from.
"""

from __future__ import annotations

import difflib
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .engine.types import Params
from .errors import ConfigError
from .timeutil import format_instant, parse_duration, parse_instant

IMPLEMENTED_LIQUIDATION = ("aave", "aave-v2", "aave-v3")
PLANNED_LIQUIDATION = ("comet", "compound-v2", "morpho-blue", "maker-clipper", "liquity")
AAVE_V3_VERSIONS = {"v3.0": 2, "v3.1": 2, "v3.2": 2, "v3.3": 3, "v3.4": 4, "v3.5": 4, "v3.6": 4, "v3.7": 4, "v3": 4}
DUST_MODES = ("revert", "reduce")
IMPLEMENTED_KINDS = ("asset", "isolated", "cross", "dynamic", "liquidity-haircut")
PLANNED_KINDS = ("portfolio",)
IMPLEMENTED_SLIPPAGE = ("none",)
PLANNED_SLIPPAGE = ("depth", "constant-product")

TOP_KEYS = ("run", "market", "rules")
RUN_KEYS = ("name", "start", "end", "step", "price_source")
MARKET_DEFAULTS: dict[str, Any] = {"liquidation": "aave", "close_factor": 0.5, "gas_usd": 0.0, "slippage": "none",
                                   "version": "v3", "protocol_fee": 0.0, "dust": "revert", "interest": {}}
RATE_KEYS = ("base", "slope1", "slope2", "optimal_utilisation", "reserve_factor", "utilisation")
RULE_KEYS = ("name", "base", "kind", "assets", "market", "enforce_ltv", "markets", "groups", "dynamic", "haircut")
KIND_KEYS = {"markets": "isolated", "groups": "cross", "dynamic": "dynamic", "haircut": "liquidity-haircut"}
ASSET_KEYS = ("ltv", "liquidation_threshold", "liquidation_bonus")
MARKET_KEYS = ("collateral", "debt") + ASSET_KEYS
GROUP_KEYS = ("assets",) + ASSET_KEYS
DYNAMIC_DEFAULTS: dict[str, Any] = {
    "lambda": 0.94, "vol_interval": "1d", "min_history": 30, "confidence": 0.99, "horizon_days": 1.0,
    "floor": 0.5, "cap": 0.95, "update_every": "1d", "max_step": 0.05,
}
HAIRCUT_DEFAULTS: dict[str, Any] = {"k": 1.0, "floor": 0.5}


@dataclass(frozen=True)
class AssetParams:
    """Per-asset parameters: ``ltv`` and ``liquidation_threshold`` fractions 0–1, ``liquidation_bonus`` ≥ 0."""

    ltv: float
    liquidation_threshold: float
    liquidation_bonus: float


@dataclass(frozen=True)
class RateCurve:
    """Aave-style two-slope interest curve of one asset (annual rates as fractions).

    ``utilisation`` fixes U; None takes U = Σ debt ÷ Σ collateral of the asset in the snapshot.
    """

    base: float
    slope1: float
    slope2: float
    optimal_utilisation: float
    reserve_factor: float
    utilisation: float | None = None


@dataclass(frozen=True)
class MarketConfig:
    """Liquidation mechanics shared by a rule set's accounts."""

    liquidation: str
    close_factor: float
    gas_usd: float
    slippage: str
    version: str = "v3"
    protocol_fee: float = 0.0
    dust: str = "revert"
    interest: Mapping[str, "RateCurve"] | None = None

    @property
    def model(self) -> int:
        """Engine liquidation model code (see ``engine.types.Params.model``)."""
        if self.liquidation == "aave-v2":
            return 1
        if self.liquidation == "aave-v3":
            return AAVE_V3_VERSIONS[self.version]
        return 0


@dataclass(frozen=True)
class IsolatedMarket:
    """One isolated market (``kind = "isolated"``): a (collateral, debt) pair with its own parameters."""

    collateral: str
    debt: str
    params: AssetParams


@dataclass(frozen=True)
class Group:
    """A correlated group (``kind = "cross"``): its assets use these values for accounts that qualify."""

    assets: tuple[str, ...]
    params: AssetParams


@dataclass(frozen=True)
class DynamicSettings:
    """Volatility-driven thresholds (``kind = "dynamic"``); durations in seconds."""

    lam: float
    vol_interval_s: int
    min_history: int
    confidence: float
    horizon_days: float
    floor: float
    cap: float
    update_every_s: int
    max_step: float


@dataclass(frozen=True)
class HaircutSettings:
    """Liquidity haircut (``kind = "liquidity-haircut"``): ``LT·max(floor, 1 − k·size/depth)``."""

    k: float
    floor: float


@dataclass(frozen=True)
class RuleSet:
    """One named rule set: per-asset parameters, its market mechanics, and its kind's own settings."""

    name: str
    kind: str
    assets: Mapping[str, AssetParams]
    market: MarketConfig
    enforce_ltv: bool = False
    markets: Mapping[str, IsolatedMarket] | None = None
    groups: Mapping[str, Group] | None = None
    dynamic: DynamicSettings | None = None
    haircut: HaircutSettings | None = None

    def params(self, assets: list[str]) -> Params:
        """Engine parameters for ``assets`` (column order), per-asset form; every asset must have them."""
        missing = [a for a in assets if a not in self.assets]
        if missing:
            raise ConfigError(
                f"rules \"{self.name}\": no parameters for asset {missing[0]!r} "
                f"(add [rules.assets.{_quote_key(missing[0])}])")
        ap = [self.assets[a] for a in assets]
        return Params(
            ltv=np.array([x.ltv for x in ap], dtype=np.float64),
            liquidation_threshold=np.array([x.liquidation_threshold for x in ap], dtype=np.float64),
            liquidation_bonus=np.array([x.liquidation_bonus for x in ap], dtype=np.float64),
            close_factor=self.market.close_factor,
            gas_usd=self.market.gas_usd,
        )


@dataclass(frozen=True)
class RunConfig:
    """A whole run: window, grid, price-source choice and rule sets (the first is the baseline)."""

    name: str
    start_us: int
    end_us: int
    step_s: int | None
    price_source: str | Mapping[str, str] | None
    rules: tuple[RuleSet, ...]
    path: str

    def canonical(self) -> dict[str, Any]:
        """Resolved config as plain data: bases expanded, defaults filled (keys sorted when dumped)."""
        run: dict[str, Any] = {"name": self.name, "start": format_instant(self.start_us),
                               "end": format_instant(self.end_us)}
        if self.step_s is not None:
            run["step_seconds"] = self.step_s
        if self.price_source is not None:
            run["price_source"] = self.price_source if isinstance(self.price_source, str) else dict(self.price_source)
        return {
            "run": run,
            "rules": [_canonical_rule(r) for r in self.rules],
        }

    def canonical_json(self) -> str:
        return json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))


def _canonical_rule(r: RuleSet) -> dict[str, Any]:
    market = vars(r.market).copy()
    market["interest"] = {a: vars(c).copy() for a, c in sorted((r.market.interest or {}).items())}
    out: dict[str, Any] = {"name": r.name, "kind": r.kind, "market": market,
                           "assets": {a: vars(p).copy() for a, p in sorted(r.assets.items())},
                           "enforce_ltv": r.enforce_ltv}
    if r.markets is not None:
        out["markets"] = {m: {"collateral": x.collateral, "debt": x.debt, **vars(x.params)}
                          for m, x in sorted(r.markets.items())}
    if r.groups is not None:
        out["groups"] = {g: {"assets": list(x.assets), **vars(x.params)} for g, x in r.groups.items()}
    if r.dynamic is not None:
        out["dynamic"] = vars(r.dynamic).copy()
    if r.haircut is not None:
        out["haircut"] = vars(r.haircut).copy()
    return out


def _quote_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _hint(key: str, allowed: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(allowed)}"


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}.{_quote_key(key)}: unknown key{_hint(key, allowed)}" if where
                              else f"{_quote_key(key)}: unknown key{_hint(key, allowed)}")


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{key}: must be finite, got {value!r}")
    return value


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}: expected a non-empty string, got {value!r}")
    return value


def _choice(value: Any, key: str, implemented: tuple[str, ...], planned: tuple[str, ...]) -> str:
    value = _string(value, key)
    if value in implemented:
        return value
    if value in planned:
        raise ConfigError(f"{key}: {value!r} is not implemented yet; available: {', '.join(implemented)}")
    raise ConfigError(f"{key}: invalid value {value!r}{_hint(value, implemented + planned)}")


def _instant(value: Any, key: str) -> int:
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a quoted timestamp string like \"2021-05-19T00:00:00Z\", got {value!r}")
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _merge(parent: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(parent)
    for key, value in child.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _market(table: Any, where: str) -> MarketConfig:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table")
    _check_keys(table, tuple(MARKET_DEFAULTS), where)
    m = {**MARKET_DEFAULTS, **table}
    liquidation = _choice(m["liquidation"], f"{where}.liquidation", IMPLEMENTED_LIQUIDATION, PLANNED_LIQUIDATION)
    cf = _number(m["close_factor"], f"{where}.close_factor")
    if not 0 < cf <= 1:
        raise ConfigError(f"{where}.close_factor: must satisfy 0 < close_factor ≤ 1, got {cf}")
    gas = _number(m["gas_usd"], f"{where}.gas_usd")
    if gas < 0:
        raise ConfigError(f"{where}.gas_usd: must be ≥ 0, got {gas}")
    slippage = _choice(m["slippage"], f"{where}.slippage", IMPLEMENTED_SLIPPAGE, PLANNED_SLIPPAGE)
    if liquidation != "aave" and "close_factor" in table:
        raise ConfigError(f"{where}.close_factor: fixed by the protocol for liquidation = {liquidation!r} "
                          f"(only used with liquidation = 'aave')")
    for key in ("version", "protocol_fee", "dust"):
        if key in table and liquidation != "aave-v3":
            raise ConfigError(f"{where}.{key}: only valid with liquidation = 'aave-v3'")
    version = _string(m["version"], f"{where}.version")
    if version not in AAVE_V3_VERSIONS:
        raise ConfigError(f"{where}.version: invalid value {version!r}{_hint(version, tuple(AAVE_V3_VERSIONS))}")
    fee = _number(m["protocol_fee"], f"{where}.protocol_fee")
    if not 0 <= fee <= 1:
        raise ConfigError(f"{where}.protocol_fee: must satisfy 0 ≤ protocol_fee ≤ 1 (a share of the bonus), got {fee}")
    dust = _choice(m["dust"], f"{where}.dust", DUST_MODES, ())
    if "dust" in table and AAVE_V3_VERSIONS[version] < 3:
        raise ConfigError(f"{where}.dust: the dust rule starts with v3.3 (version is {version!r})")
    interest = _interest(m["interest"], f"{where}.interest")
    if interest and liquidation == "aave":
        raise ConfigError(f"{where}.interest: liquidation = 'aave' (DESIGN §4) is interest-free; use 'aave-v2' "
                          f"or 'aave-v3'")
    return MarketConfig(liquidation, cf, gas, slippage, version, fee, dust, interest or None)


def _interest(table: Any, where: str) -> dict[str, RateCurve]:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected tables [{where}.<SYM>]")
    out: dict[str, RateCurve] = {}
    for sym, t in table.items():
        w = f"{where}.{_quote_key(str(sym))}"
        if not isinstance(t, Mapping):
            raise ConfigError(f"{w}: expected a table with {', '.join(RATE_KEYS)}")
        _check_keys(t, RATE_KEYS, w)
        for key in RATE_KEYS[:4]:
            if key not in t:
                raise ConfigError(f"{w}.{key}: missing")
        vals = {k: _number(t[k], f"{w}.{k}") for k in RATE_KEYS if k in t}
        for k in ("base", "slope1", "slope2"):
            if vals[k] < 0:
                raise ConfigError(f"{w}.{k}: must be ≥ 0, got {vals[k]}")
        if not 0 < vals["optimal_utilisation"] < 1:
            raise ConfigError(f"{w}.optimal_utilisation: must satisfy 0 < U_opt < 1, got {vals['optimal_utilisation']}")
        for k in ("reserve_factor", "utilisation"):
            if k in vals and not 0 <= vals[k] <= 1:
                raise ConfigError(f"{w}.{k}: must satisfy 0 ≤ {k} ≤ 1, got {vals[k]}")
        out[str(sym)] = RateCurve(vals["base"], vals["slope1"], vals["slope2"], vals["optimal_utilisation"],
                                  vals.get("reserve_factor", 0.0), vals.get("utilisation"))
    return out


def _asset_params(table: Any, where: str) -> AssetParams:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table with keys {', '.join(ASSET_KEYS)}")
    _check_keys(table, ASSET_KEYS, where)
    for key in ASSET_KEYS:
        if key not in table:
            raise ConfigError(f"{where}.{key}: missing (every asset needs {', '.join(ASSET_KEYS)})")
    ltv = _number(table["ltv"], f"{where}.ltv")
    lt = _number(table["liquidation_threshold"], f"{where}.liquidation_threshold")
    lb = _number(table["liquidation_bonus"], f"{where}.liquidation_bonus")
    if not 0 <= lt < 1:
        raise ConfigError(f"{where}.liquidation_threshold: must satisfy 0 ≤ liquidation_threshold < 1, got {lt}")
    if not 0 <= ltv <= lt:
        raise ConfigError(f"{where}.ltv: must satisfy 0 ≤ ltv ≤ liquidation_threshold ({lt}), got {ltv}")
    if lb < 0:
        raise ConfigError(f"{where}.liquidation_bonus: must be ≥ 0 (a fraction: Aave's 10500 bps = 0.05), got {lb}")
    return AssetParams(ltv, lt, lb)


def _markets(table: Any, where: str) -> dict[str, IsolatedMarket]:
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


def _groups(table: Any, where: str, assets: Mapping[str, AssetParams]) -> dict[str, Group]:
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


def _duration(value: Any, key: str) -> int:
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string like \"1d\", got {value!r}")
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _dynamic(table: Any, where: str) -> DynamicSettings:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table")
    _check_keys(table, tuple(DYNAMIC_DEFAULTS), where)
    t = {**DYNAMIC_DEFAULTS, **table}
    lam = _number(t["lambda"], f"{where}.lambda")
    if not 0 < lam < 1:
        raise ConfigError(f"{where}.lambda: must satisfy 0 < lambda < 1, got {lam}")
    mh = t["min_history"]
    if isinstance(mh, bool) or not isinstance(mh, int) or mh < 2:
        raise ConfigError(f"{where}.min_history: expected an integer ≥ 2, got {mh!r}")
    conf = _number(t["confidence"], f"{where}.confidence")
    if not 0.5 <= conf < 1:
        raise ConfigError(f"{where}.confidence: must satisfy 0.5 ≤ confidence < 1, got {conf}")
    horizon = _number(t["horizon_days"], f"{where}.horizon_days")
    if horizon <= 0:
        raise ConfigError(f"{where}.horizon_days: must be > 0, got {horizon}")
    floor, cap = _number(t["floor"], f"{where}.floor"), _number(t["cap"], f"{where}.cap")
    if not 0 <= floor <= cap < 1:
        raise ConfigError(f"{where}.cap: must satisfy 0 ≤ floor ≤ cap < 1, got floor {floor}, cap {cap}")
    step = _number(t["max_step"], f"{where}.max_step")
    if step <= 0:
        raise ConfigError(f"{where}.max_step: must be > 0, got {step}")
    return DynamicSettings(lam, _duration(t["vol_interval"], f"{where}.vol_interval"), mh, conf, horizon,
                           floor, cap, _duration(t["update_every"], f"{where}.update_every"), step)


def _haircut(table: Any, where: str) -> HaircutSettings:
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


def parse_config(data: Mapping[str, Any], path: str = "<config>") -> RunConfig:
    """Validate and resolve a parsed TOML document (see DESIGN §3)."""
    _check_keys(data, TOP_KEYS, "")
    run = data.get("run")
    if not isinstance(run, Mapping):
        raise ConfigError("run: missing [run] table (name, start, end)")
    _check_keys(run, RUN_KEYS, "run")
    name = _string(run["name"], "run.name") if "name" in run else Path(path).stem
    for key in ("start", "end"):
        if key not in run:
            raise ConfigError(f"run.{key}: missing")
    start = _instant(run["start"], "run.start")
    end = _instant(run["end"], "run.end")
    if end < start:
        raise ConfigError(f"run.end: {run['end']} is before run.start {run['start']}")
    step = None
    if "step" in run:
        if not isinstance(run["step"], str):
            raise ConfigError(f"run.step: expected a string like \"10min\", got {run['step']!r}")
        try:
            step = parse_duration(run["step"])
        except ValueError as exc:
            raise ConfigError(f"run.step: {exc}") from None
    price_source: str | dict[str, str] | None = None
    if "price_source" in run:
        ps = run["price_source"]
        if isinstance(ps, Mapping):
            price_source = {str(k): _string(v, f"run.price_source.{_quote_key(str(k))}") for k, v in ps.items()}
        else:
            price_source = _string(ps, "run.price_source")

    market_table = data.get("market", {})
    global_market = _market(market_table, "market")

    rules_raw = data.get("rules")
    if not isinstance(rules_raw, list) or not rules_raw:
        raise ConfigError("rules: at least one [[rules]] table is required (the first is the baseline)")
    resolved: dict[str, dict[str, Any]] = {}
    rules: list[RuleSet] = []
    for n, raw in enumerate(rules_raw):
        where = f"rules[{n}]"
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: expected a table")
        _check_keys(raw, RULE_KEYS, where)
        if "name" not in raw:
            raise ConfigError(f"{where}.name: missing")
        rname = _string(raw["name"], f"{where}.name")
        where = f"rules.{_quote_key(rname)}"
        if rname in resolved:
            raise ConfigError(f"{where}.name: duplicate rule set name {rname!r}")
        table = {k: v for k, v in raw.items() if k not in ("name", "base")}
        if "base" in raw:
            base = _string(raw["base"], f"{where}.base")
            if base not in resolved:
                raise ConfigError(f"{where}.base: no earlier rule set named {base!r}{_hint(base, list(resolved))}")
            parent = resolved[base]
            if "kind" in table and table["kind"] != parent.get("kind", "asset"):
                raise ConfigError(f"{where}.kind: {table['kind']!r} differs from base {base!r} "
                                  f"({parent.get('kind', 'asset')!r}); kind is inherited and may not change")
            table = _merge(parent, table)
        resolved[rname] = table
        kind = _choice(table.get("kind", "asset"), f"{where}.kind", IMPLEMENTED_KINDS, PLANNED_KINDS)
        assets_table = table.get("assets", {})
        if not isinstance(assets_table, Mapping):
            raise ConfigError(f"{where}.assets: expected a table of assets")
        assets = {str(sym): _asset_params(p, f"{where}.assets.{_quote_key(str(sym))}")
                  for sym, p in assets_table.items()}
        market = _market(_merge(market_table, table.get("market", {})), f"{where}.market") \
            if "market" in table else global_market
        for key, owner in KIND_KEYS.items():
            if key in table and kind != owner:
                raise ConfigError(f"{where}.{key}: only valid with kind = {owner!r} (this rule set is {kind!r})")
        enforce = table.get("enforce_ltv", False)
        if not isinstance(enforce, bool):
            raise ConfigError(f"{where}.enforce_ltv: expected true or false, got {enforce!r}")
        extra: dict[str, Any] = {}
        if kind == "isolated":
            extra["markets"] = _markets(table.get("markets"), f"{where}.markets")
        elif kind == "cross":
            extra["groups"] = _groups(table.get("groups", {}), f"{where}.groups", assets)
        elif kind == "dynamic":
            extra["dynamic"] = _dynamic(table.get("dynamic", {}), f"{where}.dynamic")
        elif kind == "liquidity-haircut":
            extra["haircut"] = _haircut(table.get("haircut", {}), f"{where}.haircut")
        rules.append(RuleSet(rname, kind, assets, market, enforce, **extra))
    return RunConfig(name, start, end, step, price_source, tuple(rules), path)


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a TOML run configuration file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    try:
        return parse_config(data, str(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
