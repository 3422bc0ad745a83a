"""Portfolio margin: ``kind = "portfolio-scenario"`` (SPAN-like scanning) and ``kind = "portfolio-var"``
(historical / filtered-historical VaR or expected shortfall). PROTOCOLS §9; docs/rules.md.

Both price the whole account: equity ``E = Σ c·p − Σ d·p`` over every asset it holds against a
requirement ``R``, the loss over joint price scenarios (``backtest.engine.portfolio`` holds the hooks).
Rule-set keys live in ``[rules.portfolio]``; per-asset keys in ``[rules.assets.<SYM>]`` (``psr`` and
``liquidation_bonus`` for scanning, ``liquidation_bonus`` for VaR) — no thresholds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .. import riskmath
from ..confkit import _check_keys, _duration, _number, _quote_key, _string
from ..engine import portfolio as hooks
from ..errors import ConfigError, MbtError
from ..timeutil import format_instant
from . import Compiled, Kind, register

DAY_S = 86_400
SCENARIO_DEFAULTS: dict[str, Any] = {"extreme_multiple": 2.0, "extreme_weight": 0.35, "initial_multiplier": 1.25,
                                     "offsets": "joint", "borrow_asset": None}
VAR_DEFAULTS: dict[str, Any] = {"method": "hs", "measure": "var", "alpha": 0.99, "horizon": "1d", "lookback": "180d",
                                "lambda": 0.94, "initial_multiplier": 1.25, "borrow_asset": "USDC"}
MIN_SCENARIOS = 20


@dataclass(frozen=True)
class ScanAsset:
    """Per-asset keys of ``portfolio-scenario``: price scan range (fraction > 0) and liquidation bonus."""

    psr: float
    liquidation_bonus: float


@dataclass(frozen=True)
class VarAsset:
    """Per-asset keys of ``portfolio-var``: the liquidation bonus."""

    liquidation_bonus: float


@dataclass(frozen=True)
class ScanSettings:
    extreme_multiple: float
    extreme_weight: float
    initial_multiplier: float
    offsets: str
    borrow_asset: str | None


@dataclass(frozen=True)
class VarSettings:
    method: str
    measure: str
    alpha: float
    horizon_s: int
    lookback_s: int
    lam: float
    initial_multiplier: float
    borrow_asset: str


def _bonus(table: Mapping[str, Any], where: str) -> float:
    if "liquidation_bonus" not in table:
        raise ConfigError(f"{where}.liquidation_bonus: missing")
    lb = _number(table["liquidation_bonus"], f"{where}.liquidation_bonus")
    if lb < 0:
        raise ConfigError(f"{where}.liquidation_bonus: must be ≥ 0 (a fraction: 0.05 = 5 %), got {lb}")
    return lb


def _scan_asset(table: Any, where: str) -> ScanAsset:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table with keys psr, liquidation_bonus")
    _check_keys(table, ("psr", "liquidation_bonus"), where)
    if "psr" not in table:
        raise ConfigError(f"{where}.psr: missing (the price scan range, a fraction like 0.15)")
    psr = _number(table["psr"], f"{where}.psr")
    if psr <= 0:
        raise ConfigError(f"{where}.psr: must be > 0 (a fraction of the price), got {psr}")
    return ScanAsset(psr, _bonus(table, where))


def _var_asset(table: Any, where: str) -> VarAsset:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table with key liquidation_bonus")
    _check_keys(table, ("liquidation_bonus",), where)
    return VarAsset(_bonus(table, where))


def _multiplier(t: Mapping[str, Any], where: str) -> float:
    im = _number(t["initial_multiplier"], f"{where}.initial_multiplier")
    if im < 1:
        raise ConfigError(f"{where}.initial_multiplier: must be ≥ 1, got {im}")
    return im


def _borrow(t: Mapping[str, Any], where: str, assets: Mapping[str, Any], written: bool) -> str | None:
    b = t["borrow_asset"]
    if b is None:
        return None
    b = _string(b, f"{where}.borrow_asset")
    if written and b not in assets:  # the default (USDC for VaR) is checked against the run's assets
        raise ConfigError(f"{where}.borrow_asset: {b!r} has no [rules.assets] parameters in this rule set")
    return b


def _portfolio_table(table: Mapping[str, Any], where: str, defaults: Mapping[str, Any]) -> tuple[dict, str]:
    w = f"{where}.portfolio"
    t = table.get("portfolio", {})
    if not isinstance(t, Mapping):
        raise ConfigError(f"{w}: expected a table")
    _check_keys(t, tuple(defaults), w)
    return {**defaults, **t}, w


def _parse_scan(table: Mapping[str, Any], where: str, assets: Mapping[str, Any]) -> dict:
    t, w = _portfolio_table(table, where, SCENARIO_DEFAULTS)
    em = _number(t["extreme_multiple"], f"{w}.extreme_multiple")
    if em <= 0:
        raise ConfigError(f"{w}.extreme_multiple: must be > 0, got {em}")
    ew = _number(t["extreme_weight"], f"{w}.extreme_weight")
    if not 0 <= ew <= 1:
        raise ConfigError(f"{w}.extreme_weight: must satisfy 0 ≤ extreme_weight ≤ 1, got {ew}")
    offsets = t["offsets"]
    if offsets not in ("joint", "none"):
        raise ConfigError(f"{w}.offsets: expected \"joint\" (all assets move together) or \"none\" (each scanned "
                          f"alone), got {offsets!r}")
    return {"portfolio": ScanSettings(em, ew, _multiplier(t, w), offsets,
                                      _borrow(t, w, assets, "borrow_asset" in table.get("portfolio", {})))}


def _parse_var(table: Mapping[str, Any], where: str, assets: Mapping[str, Any]) -> dict:
    t, w = _portfolio_table(table, where, VAR_DEFAULTS)
    method, meas = t["method"], t["measure"]
    if method not in ("hs", "fhs"):
        raise ConfigError(f"{w}.method: expected \"hs\" (historical) or \"fhs\" (filtered historical), got {method!r}")
    if meas not in ("var", "es"):
        raise ConfigError(f"{w}.measure: expected \"var\" or \"es\", got {meas!r}")
    alpha = _number(t["alpha"], f"{w}.alpha")
    if not 0 < alpha < 1:
        raise ConfigError(f"{w}.alpha: must satisfy 0 < alpha < 1, got {alpha}")
    horizon = _duration(t["horizon"], f"{w}.horizon")
    if horizon <= 0 or horizon % DAY_S:
        raise ConfigError(f"{w}.horizon: must be a whole number of days like \"1d\" or \"2d\", got {t['horizon']!r}")
    lookback = _duration(t["lookback"], f"{w}.lookback")
    if lookback <= 0:
        raise ConfigError(f"{w}.lookback: must be > 0, got {t['lookback']!r}")
    lam = _number(t["lambda"], f"{w}.lambda")
    if not 0 < lam < 1:
        raise ConfigError(f"{w}.lambda: must satisfy 0 < lambda < 1, got {lam}")
    return {"portfolio": VarSettings(method, meas, alpha, horizon, lookback, lam, _multiplier(t, w),
                                     _borrow(t, w, assets, "borrow_asset" in table.get("portfolio", {})))}


def _canonical(rule) -> dict:
    """Both kinds: the resolved ``[rules.portfolio]`` settings."""
    return {"portfolio": vars(rule.setting("portfolio")).copy()}


# -- compile -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PortfolioParams:
    """Engine parameters of a portfolio rule set (the interface of ``engine.types.Params``).

    scenarios : float64 (D, N, K) relative price moves ``G`` of each scenario set (zero-padded past ``count``)
    count : int64 (D,) scenarios in each set; kidx : int64 (D,) 0-based VaR position in each set
    day : int64 (T,) scenario set of each grid step
    lb : float64 (K,) liquidation bonus per asset; borrow : column of the borrowing-power asset
    """

    mode: int
    scenarios: np.ndarray
    count: np.ndarray
    kidx: np.ndarray
    day: np.ndarray
    lb: np.ndarray
    initial_multiplier: float
    borrow: int
    model: str
    model_args: np.ndarray
    protocol_fee: np.ndarray | None
    gas_usd: float
    enforce_ltv: bool
    close_factor: float = 0.5
    hooks: str = hooks.HOOKS

    def liquidation(self):
        from ..models import get

        return get(self.model), np.ascontiguousarray(self.model_args, dtype=np.float64)

    def fees(self, n_assets: int) -> np.ndarray:
        if self.protocol_fee is None:
            return np.zeros(n_assets)
        return np.ascontiguousarray(self.protocol_fee, dtype=np.float64)

    def day_index(self, n_steps: int) -> np.ndarray:
        return self.day[:n_steps]

    def pack(self, pc, pd, levels, n_accounts):
        return hooks.pack(self, pc, pd, levels, n_accounts)

    def _set(self, step: int) -> tuple[int, int, int]:
        g = int(self.day[step])
        return g, int(self.count[g]), int(self.kidx[g])

    def requirements(self, values: np.ndarray, step: int) -> np.ndarray:
        """``R`` of each account from its net USD values per asset (``c·p − d·p``, A × K) at ``step``."""
        g, n, k = self._set(step)
        return hooks._requirements(self.mode, np.ascontiguousarray(self.scenarios), g, n, k,
                                   np.ascontiguousarray(values, dtype=np.float64))

    def borrowing_power(self, collateral, debt, first_prices) -> float:
        """Σ over accounts of the largest total debt each could carry with ``E ≥ IM`` at the first step's
        prices, adding debt in its current debt mix (no debt: all in ``borrow_asset``), collateral unchanged."""
        cv = np.ascontiguousarray(collateral * first_prices, dtype=np.float64)
        dv = debt * first_prices
        total = dv.sum(axis=1)
        w = np.zeros_like(cv)
        owes = total > 0
        w[owes] = dv[owes] / total[owes, None]
        w[~owes, self.borrow] = 1.0
        g, n, k = self._set(0)
        caps = hooks._capacities(self.mode, np.ascontiguousarray(self.scenarios), g, n, k,
                                 float(self.initial_multiplier), cv, np.ascontiguousarray(w), 64, 60)
        return float(np.sum(caps))

    def collateral_mask(self, debt, n_steps) -> np.ndarray:
        return np.ones(debt.shape, dtype=bool)  # every asset counts in equity and can be seized

    def last_maintenance(self, collateral: np.ndarray, debt: np.ndarray, last_prices: np.ndarray,
                         n_steps: int) -> np.ndarray:
        """``Σ c·p − R`` of each account at the last step (the maintenance value its health factor uses)."""
        value = collateral * last_prices
        return value.sum(axis=1) - self.requirements(value - debt * last_prices, n_steps - 1)


def _base_params(rule, mode, G, count, kidx, day, lb, settings, borrow, base) -> PortfolioParams:
    return PortfolioParams(mode, np.ascontiguousarray(G), np.asarray(count, np.int64), np.asarray(kidx, np.int64),
                           np.asarray(day, np.int64), lb, float(settings.initial_multiplier), int(borrow),
                           base["model"], base["model_args"], base["protocol_fee"], float(base["gas_usd"]),
                           bool(base["enforce_ltv"]), float(base["close_factor"]))


def scan_moves(psr: np.ndarray, extreme_multiple: float, extreme_weight: float) -> np.ndarray:
    """(9, K) ``m_s·psr_k·w_s`` for ``m ∈ {0, ±1/3, ±2/3, ±1}`` (weight 1) and ``±extreme_multiple``."""
    m = np.array([0.0, 1 / 3, -1 / 3, 2 / 3, -2 / 3, 1.0, -1.0, extreme_multiple, -extreme_multiple])
    w = np.array([1.0] * 7 + [extreme_weight] * 2)
    return (m * w)[:, None] * psr[None, :]


def _compile_scan(rule, data, base):
    s = rule.setting("portfolio")
    assets = data.assets
    psr = np.array([rule.assets[a].psr for a in assets], dtype=np.float64)
    lb = np.array([rule.assets[a].liquidation_bonus for a in assets], dtype=np.float64)
    G = scan_moves(psr, s.extreme_multiple, s.extreme_weight)[None]
    borrow = assets.index(s.borrow_asset) if s.borrow_asset in assets else int(np.argmin(psr))
    mode = hooks.MODE_JOINT if s.offsets == "joint" else hooks.MODE_NONE
    T = len(data.grid_us)
    return Compiled(data.book, data.events,
                    _base_params(rule, mode, G, [G.shape[1]], [0], np.zeros(T, np.int64), lb, s, borrow, base))


def var_scenarios(rule_name: str, s: VarSettings, assets: list[str], series: Mapping[str, tuple],
                  grid_us: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(G (D, N, K), count (D,), kidx (D,), day (T,)) of ``portfolio-var``: one scenario set per UTC day of
    the grid, built at the day's first grid step ``now`` from prices at or before it.

    Scenario ``τ`` for every midnight with ``now − lookback < τ ≤ now``: ``r = ln(p(τ)/p(τ − h))`` of daily
    closes; FHS rescales ``r·σ_now/σ_τ`` (RiskMetrics EWMA over every stored daily return of the asset).
    """
    day_of = grid_us // riskmath.DAY_US
    first = np.flatnonzero(np.r_[True, day_of[1:] != day_of[:-1]])
    day = (np.cumsum(np.r_[True, day_of[1:] != day_of[:-1]]) - 1).astype(np.int64)
    nows = grid_us[first]
    h_us = s.horizon_s * 1_000_000
    lb_us = s.lookback_s * 1_000_000
    windows = [riskmath.midnights(int(now) - lb_us + 1, int(now)) for now in nows]
    sizes = [len(w) for w in windows]
    for now, n in zip(nows, sizes):
        if n < MIN_SCENARIOS:
            raise MbtError(f"rules \"{rule_name}\": portfolio.lookback {format_duration(s.lookback_s)} gives {n} "
                           f"daily scenarios at {format_instant(int(now))}; portfolio-var needs at least "
                           f"{MIN_SCENARIOS}")
    D, N, K = len(nows), max(sizes), len(assets)
    G = np.zeros((D, N, K))
    for k, asset in enumerate(assets):
        ts, px = series[asset]
        need = int(windows[0][0]) - h_us
        if s.method == "fhs":
            need -= riskmath.DAY_US  # σ of the window's first date needs one daily return before it
        if not len(ts) or ts[0] > need:
            first_at = format_instant(int(ts[0])) if len(ts) else "none"
            raise MbtError(f"rules \"{rule_name}\": asset {asset!r} has no price history covering the scenario "
                           f"window (needs a price at or before {format_instant(need)}; first is {first_at})")
        if s.method == "fhs":
            mids = riskmath.midnights(int(ts[0]), int(nows[-1]))
            closes = riskmath.closes_at(ts, px, mids)
            rho = np.diff(np.log(closes))
            v = riskmath.ewma_variances(rho, s.lam)  # v[i]: forecast for mids[i + 1]
        for d, (now, win) in enumerate(zip(nows, windows)):
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.log(riskmath.closes_at(ts, px, win) / riskmath.closes_at(ts, px, win - h_us))
            if s.method == "fhs":
                last = int(np.searchsorted(mids, now, side="right")) - 1  # T: the last midnight ≤ now
                sigma_now = math.sqrt(v[last])  # forecast for T + 1d
                pos = np.searchsorted(mids, win) - 1  # v index of each window date
                sigma_t = np.sqrt(v[pos])
                with np.errstate(divide="ignore", invalid="ignore"):
                    r = np.where(sigma_t > 0, r * sigma_now / sigma_t, r)
            G[d, :len(win), k] = np.expm1(r)
    kidx = np.array([riskmath.var_index(s.alpha, n) for n in sizes], dtype=np.int64)
    return G, np.asarray(sizes, np.int64), kidx, day


def format_duration(seconds: int) -> str:
    return f"{seconds // DAY_S}d" if seconds % DAY_S == 0 else f"{seconds}s"


def _compile_var(rule, data, base):
    s = rule.setting("portfolio")
    assets = data.assets
    lb = np.array([rule.assets[a].liquidation_bonus for a in assets], dtype=np.float64)
    if s.borrow_asset not in assets:
        raise ConfigError(f"rules.{_quote_key(rule.name)}.portfolio.borrow_asset: {s.borrow_asset!r} is not an asset "
                          f"of this run (assets: {', '.join(assets)}); set borrow_asset")
    G, count, kidx, day = var_scenarios(rule.name, s, assets, data.series, data.grid_us)
    mode = hooks.MODE_VAR if s.measure == "var" else hooks.MODE_ES
    return Compiled(data.book, data.events,
                    _base_params(rule, mode, G, count, kidx, day, lb, s, assets.index(s.borrow_asset), base))


SCAN = register(Kind(
    name="portfolio-scenario", keys=("portfolio",), parse=_parse_scan, canonical=_canonical,
    compile=_compile_scan, asset_schema=_scan_asset,
    summary="SPAN-like: equity ≥ the worst loss over price-scan scenarios (psr per asset)",
))
VAR = register(Kind(
    name="portfolio-var", keys=("portfolio",), parse=_parse_var, canonical=_canonical,
    compile=_compile_var, asset_schema=_var_asset,
    summary="equity ≥ historical / filtered-historical VaR or ES of the account over a horizon",
))
