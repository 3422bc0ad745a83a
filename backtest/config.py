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

from . import kinds as _kinds
from . import models as _models
from .engine.types import Params
from .kinds.cross import GROUP_KEYS, Group  # noqa: F401  (settings types re-exported)
from .kinds.dynamic import DYNAMIC_DEFAULTS, DynamicSettings  # noqa: F401
from .kinds.haircut import HAIRCUT_DEFAULTS, HaircutSettings  # noqa: F401
from .kinds.isolated import MARKET_KEYS, IsolatedMarket  # noqa: F401
from .confkit import (  # noqa: F401  (re-exported: the config's public names)
    ASSET_KEYS, AssetParams, _asset_params, _check_keys, _choice, _duration, _hint, _instant, _merge, _number,
    _quote_key, _string,
)
from .errors import ConfigError
from .timeutil import format_instant, parse_duration, parse_instant

IMPLEMENTED_KINDS = ("asset", "isolated", "cross", "dynamic", "liquidity-haircut", "portfolio-scenario",
                     "portfolio-var")  # the built-ins (see kinds.names())
IMPLEMENTED_SLIPPAGE = ("none",)
PLANNED_SLIPPAGE = ("depth", "constant-product")

TOP_KEYS = ("run", "market", "rules", "scenarios", "sweep")
RUN_KEYS = ("name", "start", "end", "step", "price_source")
RATE_KEYS = ("base", "slope1", "slope2", "optimal_utilisation", "reserve_factor", "utilisation")
BASE_RULE_KEYS = ("name", "base", "kind", "assets", "market", "enforce_ltv")  # + the keys each kind owns


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
    """Liquidation mechanics shared by a rule set's accounts: a registered model and its settings.

    ``close_factor``, ``version``, ``protocol_fee`` and ``dust`` are the built-in models' keys (kept as
    fields); :meth:`model_settings` gives the resolved keys of the rule set's model (``settings`` holds
    the keys of models beyond the built-ins).
    """

    liquidation: str
    close_factor: float = 0.5
    gas_usd: float = 0.0
    slippage: str = "none"
    version: str = "v3"
    protocol_fee: float = 0.0
    dust: str = "revert"
    interest: Mapping[str, "RateCurve"] | None = None
    settings: Mapping[str, Any] | None = None

    @property
    def plugin(self) -> "_models.Model":
        """The liquidation model (``backtest.models``)."""
        return _models.get(self.liquidation)

    def model_settings(self) -> dict[str, Any]:
        """The model's own keys, resolved (what its ``engine_args`` reads)."""
        extra = self.settings or {}
        return {k: extra[k] if k in extra else getattr(self, k, v) for k, v in self.plugin.keys.items()}

    def engine_args(self) -> np.ndarray:
        return self.plugin.engine_args(self.model_settings())

    def canonical(self) -> dict[str, Any]:
        out: dict[str, Any] = {"liquidation": self.liquidation, "gas_usd": self.gas_usd, "slippage": self.slippage,
                               **self.model_settings()}
        if self.plugin.interest:
            out["interest"] = {a: vars(c).copy() for a, c in sorted((self.interest or {}).items())}
        return out


@dataclass(frozen=True)
class RuleSet:
    """One named rule set: per-asset parameters, its market mechanics, and its kind's own settings."""

    name: str
    kind: str
    assets: Mapping[str, AssetParams]  # or the kind's own per-asset dataclass (``Kind.asset_schema``)
    market: MarketConfig
    enforce_ltv: bool = False
    markets: Mapping[str, IsolatedMarket] | None = None
    groups: Mapping[str, Group] | None = None
    dynamic: DynamicSettings | None = None
    haircut: HaircutSettings | None = None
    options: Mapping[str, Any] | None = None  # settings of kinds beyond the built-ins, by key

    @property
    def plugin(self) -> "_kinds.Kind":
        """The rule kind (``backtest.kinds``)."""
        return _kinds.get(self.kind)

    def setting(self, key: str) -> Any:
        """A kind's resolved setting by its TOML key (built-in fields or ``options``)."""
        if key in ("markets", "groups", "dynamic", "haircut"):
            return getattr(self, key)
        return (self.options or {}).get(key)

    def require_assets(self, assets: list[str]) -> None:
        """Raise ``ConfigError`` naming the first of ``assets`` without ``[rules.assets]`` parameters."""
        missing = [a for a in assets if a not in self.assets]
        if missing:
            raise ConfigError(
                f"rules \"{self.name}\": no parameters for asset {missing[0]!r} "
                f"(add [rules.assets.{_quote_key(missing[0])}])")

    def params(self, assets: list[str]) -> Params:
        """Engine parameters for ``assets`` (column order), per-asset form; every asset must have them."""
        self.require_assets(assets)
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
    scenarios: tuple = ()   # backtest.scenarios.ScenarioSpec, in config order; () = the historical path only

    def canonical(self) -> dict[str, Any]:
        """Resolved config as plain data: bases expanded, defaults filled (keys sorted when dumped)."""
        run: dict[str, Any] = {"name": self.name, "start": format_instant(self.start_us),
                               "end": format_instant(self.end_us)}
        if self.step_s is not None:
            run["step_seconds"] = self.step_s
        if self.price_source is not None:
            run["price_source"] = self.price_source if isinstance(self.price_source, str) else dict(self.price_source)
        out = {
            "run": run,
            "rules": [_canonical_rule(r) for r in self.rules],
        }
        if self.scenarios:  # only when given: the canonical form (and run_id) of a plain run stays
            out["scenarios"] = [s.canonical() for s in self.scenarios]
        return out

    def canonical_json(self) -> str:
        return json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))


def _canonical_rule(r: RuleSet) -> dict[str, Any]:
    out: dict[str, Any] = {"name": r.name, "kind": r.kind, "market": r.market.canonical(),
                           "assets": {a: vars(p).copy() for a, p in sorted(r.assets.items())},
                           "enforce_ltv": r.enforce_ltv}
    out.update(r.plugin.canonical(r))
    return out


def _market(table: Any, where: str, inherited: Mapping[str, Any] | None = None) -> MarketConfig:
    """Resolve a ``[market]`` table: ``table`` is what this level wrote, ``inherited`` what it inherits.

    The model (``liquidation``) decides which keys apply: a key the model does not use is an error when
    written here, and is simply not inherited when it comes from ``[market]`` or a base rule set (so a
    global ``close_factor`` does not block a rule set's switch to an Aave model, whose close factor is fixed).
    """
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table")
    _check_keys(table, tuple(_models.all_keys()), where)
    merged = _merge(inherited or {}, table)
    liquidation = _models.check_name(merged.get("liquidation", "aave"), f"{where}.liquidation")
    model = _models.get(liquidation)
    accepted = set(_models.COMMON_KEYS) | set(model.keys) | ({"interest"} if model.interest else set())
    for key in table:
        if key not in accepted:
            if key == "interest" and liquidation == "aave":
                raise ConfigError(f"{where}.interest: liquidation = 'aave' (DESIGN §4) is interest-free; use "
                                  f"'aave-v2' or 'aave-v3'")
            raise _models.reject(key, model, where)
    merged = {k: v for k, v in merged.items() if k in accepted}
    written = frozenset(merged)
    m = {**_models.COMMON_KEYS, **model.keys, **merged}
    gas = _number(m["gas_usd"], f"{where}.gas_usd")
    if gas < 0:
        raise ConfigError(f"{where}.gas_usd: must be ≥ 0, got {gas}")
    slippage = _choice(m["slippage"], f"{where}.slippage", IMPLEMENTED_SLIPPAGE, PLANNED_SLIPPAGE)
    settings = model.parse(m, where, written)
    interest = _interest(m.get("interest", {}), f"{where}.interest") if model.interest else {}
    builtin = {k: settings[k] for k in ("close_factor", "version", "protocol_fee", "dust") if k in settings}
    extra = {k: v for k, v in settings.items() if k not in builtin}
    return MarketConfig(liquidation, gas_usd=gas, slippage=slippage, interest=interest or None,
                        settings=extra or None, **builtin)


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
    written_market: dict[str, dict[str, Any]] = {}  # rule set → the [rules.market] keys written along its bases
    rules: list[RuleSet] = []
    for n, raw in enumerate(rules_raw):
        where = f"rules[{n}]"
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: expected a table")
        _check_keys(raw, BASE_RULE_KEYS + tuple(_kinds.owned_keys()), where)
        if "name" not in raw:
            raise ConfigError(f"{where}.name: missing")
        rname = _string(raw["name"], f"{where}.name")
        where = f"rules.{_quote_key(rname)}"
        if rname in resolved:
            raise ConfigError(f"{where}.name: duplicate rule set name {rname!r}")
        table = {k: v for k, v in raw.items() if k not in ("name", "base")}
        parent_market: dict[str, Any] = {}
        if "base" in raw:
            base = _string(raw["base"], f"{where}.base")
            if base not in resolved:
                raise ConfigError(f"{where}.base: no earlier rule set named {base!r}{_hint(base, list(resolved))}")
            parent = resolved[base]
            if "kind" in table and table["kind"] != parent.get("kind", "asset"):
                raise ConfigError(f"{where}.kind: {table['kind']!r} differs from base {base!r} "
                                  f"({parent.get('kind', 'asset')!r}); kind is inherited and may not change")
            table = _merge(parent, table)
            parent_market = written_market[base]
        resolved[rname] = table
        own_market = raw.get("market", {})
        if not isinstance(own_market, Mapping):
            raise ConfigError(f"{where}.market: expected a table")
        written_market[rname] = _merge(parent_market, own_market)
        kind = _choice(table.get("kind", "asset"), f"{where}.kind", _kinds.names(), _kinds.PLANNED)
        plugin = _kinds.get(kind)
        assets_table = table.get("assets", {})
        if not isinstance(assets_table, Mapping):
            raise ConfigError(f"{where}.assets: expected a table of assets")
        if "market" in table:
            market = _market(own_market, f"{where}.market", _merge(market_table, parent_market))
        else:
            market = global_market
        asset_schema = plugin.asset_schema or market.plugin.asset_schema or _asset_params
        assets = {str(sym): asset_schema(p, f"{where}.assets.{_quote_key(str(sym))}")
                  for sym, p in assets_table.items()}
        for key, owners in _kinds.owned_keys().items():
            if key in table and kind not in owners:
                raise ConfigError(f"{where}.{key}: only valid with kind = {' or '.join(map(repr, owners))} "
                                  f"(this rule set is {kind!r})")
        enforce = table.get("enforce_ltv", False)
        if not isinstance(enforce, bool):
            raise ConfigError(f"{where}.enforce_ltv: expected true or false, got {enforce!r}")
        extra = plugin.parse(table, where, assets)
        builtin = {k: v for k, v in extra.items() if k in ("markets", "groups", "dynamic", "haircut")}
        options = {k: v for k, v in extra.items() if k not in builtin}
        if options:
            builtin["options"] = options
        rules.append(RuleSet(rname, kind, assets, market, enforce, **builtin))
    if "sweep" in data:  # checked here (typos are errors); only `mbt sweep` uses it
        from .sweep_grid import sweep_table

        sweep_table(data)
    scenario_specs = ()
    if "scenarios" in data:
        from .scenarios import parse_scenarios

        scenario_specs = parse_scenarios(data["scenarios"])
    return RunConfig(name, start, end, step, price_source, tuple(rules), path, scenario_specs)


def read_document(path: str | Path) -> dict[str, Any]:
    """The parsed TOML of a config file (not yet validated); errors name the file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror})") from None
    try:
        return tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a TOML run configuration file."""
    data = read_document(path)
    try:
        return parse_config(data, str(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
