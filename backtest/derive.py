"""``mbt derive``: a risk-based rule set from stored prices (PROTOCOLS §9 "Mapping to lending parameters").

Per asset — or per correlated group, from its members' price ratios — ``Δ_α(h)``, the α-quantile adverse
move over the horizon h (historical simulation of overlapping h-day returns, or a parametric EWMA σ); then
``LB_min = (1 + gas/D_repaid)/(1 − slip)``, ``LT = (1 − Δ)/LB_min`` and ``ltv = LT − gap``. Daily closes
take only prices at or before ``at``: no look-ahead by construction. Everything here but ``load_inputs`` is
pure; ``derive_rules`` returns data (:class:`DerivedRules`) that ``rules_toml`` writes with a comment on
every value. docs/derive.md has the formulas and a worked example.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from itertools import permutations
from typing import Any

import numpy as np

from .confkit import _hint
from .errors import ConfigError, MbtError
from .riskmath import closes_at, ewma_variances, midnights, var_index, z_score
from .rules import DEPTH_FACTOR
from .timeutil import format_instant, parse_duration

METHODS = ("hs", "ewma")
MIN_RETURNS = 20  # fewer returns than this give no usable 99 % quantile (hs) or a σ still set by its seed (ewma)
LT_CAP = 0.99


# -- options ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeriveSettings:
    """How Δ, the slippage and the parameters are derived.

    method : ``"hs"`` (historical simulation) or ``"ewma"`` (parametric, RiskMetrics σ)
    alpha : float, confidence 0.5–1 (exclusive)
    horizon_days : int, whole days h
    lookback_s : int, seconds of close dates the hs returns end in (``at − lookback < τ ≤ at``)
    lam : float, EWMA decay λ (0–1, exclusive)
    gas_usd : float, USD per liquidation (g)
    debt_repaid_usd : float, USD repaid by one liquidation (D_repaid)
    slippage : float | None, fraction 0–1 for every asset; None = from the liquidity table
    ltv_gap : float, fraction 0–1 between LT and ltv
    """

    method: str = "hs"
    alpha: float = 0.99
    horizon_days: int = 1
    lookback_s: int = 180 * 86400
    lam: float = 0.94
    gas_usd: float = 5.0
    debt_repaid_usd: float = 10_000.0
    slippage: float | None = None
    ltv_gap: float = 0.05


def _float(value: Any, flag: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} {value!r}: expected a number") from None
    if not math.isfinite(out):
        raise ConfigError(f"{flag} {value!r}: must be finite")
    return out


def _duration_s(value: str, flag: str) -> int:
    try:
        return parse_duration(str(value))
    except ValueError as exc:
        raise ConfigError(f"{flag}: {exc}") from None


def parse_settings(*, method: str = "hs", alpha: Any = "0.99", horizon: str = "1d", lookback: str = "180d",
                   lam: Any = "0.94", gas_usd: Any = "5.0", debt_repaid_usd: Any = "10000",
                   slippage: Any = None, ltv_gap: Any = "0.05") -> DeriveSettings:
    """Check the option values (text as typed, or numbers); ``ConfigError`` names the option."""
    if method not in METHODS:
        raise ConfigError(f"--method {method!r}: expected hs (historical simulation) or ewma (parametric)")
    a = _float(alpha, "--alpha")
    if not 0.5 <= a < 1:
        raise ConfigError(f"--alpha {alpha}: must satisfy 0.5 ≤ alpha < 1 (0.99 is the 99 % quantile)")
    h = _duration_s(horizon, "--horizon")
    if h % 86400:
        raise ConfigError(f"--horizon {horizon!r}: whole days only, e.g. \"1d\" or \"2d\"")
    look = _duration_s(lookback, "--lookback")
    lm = _float(lam, "--lambda")
    if not 0 < lm < 1:
        raise ConfigError(f"--lambda {lam}: must satisfy 0 < lambda < 1 (RiskMetrics daily: 0.94)")
    gas = _float(gas_usd, "--gas-usd")
    if gas < 0:
        raise ConfigError(f"--gas-usd {gas_usd}: must be ≥ 0")
    debt = _float(debt_repaid_usd, "--debt-repaid-usd")
    if debt <= 0:
        raise ConfigError(f"--debt-repaid-usd {debt_repaid_usd}: must be > 0")
    slip = None
    if slippage is not None:
        slip = _float(slippage, "--slippage")
        if not 0 <= slip < 1:
            raise ConfigError(f"--slippage {slippage}: must satisfy 0 ≤ slippage < 1 (a fraction: 1 % = 0.01)")
    gap = _float(ltv_gap, "--ltv-gap")
    if not 0 <= gap < 1:
        raise ConfigError(f"--ltv-gap {ltv_gap}: must satisfy 0 ≤ ltv-gap < 1")
    return DeriveSettings(method, a, h // 86400, look, lm, gas, debt, slip, gap)


def parse_assets(text: str) -> list[str]:
    """``"WETH,WBTC"`` → ``["WETH", "WBTC"]`` (order kept, repeats dropped)."""
    out = [s.strip() for s in text.split(",")]
    if not out or not all(out):
        raise ConfigError(f"--assets {text!r}: expected asset symbols separated by commas, e.g. WETH,WBTC")
    return list(dict.fromkeys(out))


def parse_group(text: str) -> tuple[str, tuple[str, ...]]:
    """``"ETH=WETH,WSTETH"`` → ``("ETH", ("WETH", "WSTETH"))``: at least two distinct assets."""
    name, eq, rest = text.partition("=")
    members = [s.strip() for s in rest.split(",")]
    if not eq or not name.strip() or not all(members):
        raise ConfigError(f"--group {text!r}: expected NAME=SYM1,SYM2,..., e.g. ETH=WETH,WSTETH")
    members = list(dict.fromkeys(members))
    if len(members) < 2:
        raise ConfigError(f"--group {text!r}: a group needs at least two different assets")
    return name.strip(), tuple(members)


def parse_groups(texts: tuple[str, ...] | list[str]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for text in texts:
        name, members = parse_group(text)
        if name in out:
            raise ConfigError(f"--group {text!r}: group {name!r} is given twice")
        out[name] = members
    return out


# -- Δ: the adverse move ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Move:
    """``Δ_α(h)`` of one price series (an asset, or a ratio ``A/B``) and where it came from.

    delta : float, fraction of value lost at the α-quantile
    returns : int, returns it was estimated from
    last_close_us : int, the last daily close used (µs)
    sigma : float | None, ewma only: the daily σ forecast for the day after the last close
    """

    label: str
    delta: float
    method: str
    returns: int
    last_close_us: int
    sigma: float | None = None


def daily_closes(ts: np.ndarray, px: np.ndarray, at_us: int) -> tuple[np.ndarray, np.ndarray]:
    """(UTC midnights ``τ ≤ at`` from the first price on, the close at each): prices after ``at_us`` are
    dropped first. ``ts`` must be sorted; at one timestamp the last row wins (the highest round)."""
    ts = np.asarray(ts, dtype=np.int64)
    keep = ts <= at_us
    ts, px = ts[keep], np.asarray(px, dtype=np.float64)[keep]
    if not len(ts):
        return np.zeros(0, np.int64), np.zeros(0)
    when = midnights(int(ts[0]), int(at_us))
    return when, closes_at(ts, px, when)


def ratio_closes(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Daily closes of the ratio ``p_a/p_b`` on the midnights both have (both series end at the same ``at``)."""
    n = min(len(a[0]), len(b[0]))
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    when = a[0][len(a[0]) - n:]
    if not np.array_equal(when, b[0][len(b[0]) - n:]):
        raise ValueError("closes of a ratio must end at the same midnight")
    return when, a[1][len(a[1]) - n:] / b[1][len(b[1]) - n:]


def _too_few(what: str, n: int, kind: str) -> MbtError:
    return MbtError(f"{what}: {n} {kind} (at least {MIN_RETURNS} are needed; lengthen --lookback or load more "
                    f"price history)")


def hs_move(label: str, when: np.ndarray, closes: np.ndarray, at_us: int, lookback_s: int, horizon_days: int,
            alpha: float, what: str | None = None) -> Move:
    """Historical simulation: ``Δ = VaR_α`` of the losses ``1 − e^r`` of the overlapping h-day log returns
    ``r_τ = ln(p(τ)/p(τ − h))`` with ``at − lookback < τ ≤ at`` (the ⌈αN⌉-th smallest loss)."""
    h = horizon_days
    idx = np.arange(h, len(when))
    idx = idx[when[idx] > at_us - lookback_s * 1_000_000]
    n = len(idx)
    if n < MIN_RETURNS:
        raise _too_few(what or label, n, f"overlapping {h}d returns with close dates in the "
                       f"{lookback_s / 86400:g}-day lookback to {format_instant(at_us)}")
    losses = 1.0 - np.exp(np.log(closes[idx] / closes[idx - h]))
    k = var_index(alpha, n)
    return Move(label, float(np.partition(losses, k)[k]), "hs", n, int(when[idx[-1]]))


def ewma_move(label: str, when: np.ndarray, closes: np.ndarray, lam: float, horizon_days: int, alpha: float,
              what: str | None = None) -> Move:
    """Parametric: ``Δ = z_α·σ·√h`` with σ the RiskMetrics forecast after the last of all daily log returns
    (``riskmath.ewma_variances``, seeded with the first return's square)."""
    r = np.diff(np.log(closes))
    if len(r) < MIN_RETURNS:
        raise _too_few(what or label, len(r), "daily returns (ewma uses every stored daily close)")
    sigma = math.sqrt(float(ewma_variances(r, lam)[-1]))
    return Move(label, z_score(alpha) * sigma * math.sqrt(horizon_days), "ewma", len(r), int(when[-1]), sigma)


def adverse_move(label: str, closes: tuple[np.ndarray, np.ndarray], settings: DeriveSettings, at_us: int,
                 what: str | None = None) -> Move:
    """``Δ_α(h)`` of one close series by ``settings.method``."""
    when, px = closes
    if settings.method == "hs":
        return hs_move(label, when, px, at_us, settings.lookback_s, settings.horizon_days, settings.alpha, what)
    return ewma_move(label, when, px, settings.lam, settings.horizon_days, settings.alpha, what)


# -- slippage and the bonus ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Slip:
    """The price impact of selling one liquidation's seized collateral, and the bonus it needs.

    slip : float, fraction of the sale lost
    lb_min : float, ``(1 + g/D_repaid)/(1 − slip)``
    source : ``"override"`` (--slippage), ``"liquidity"`` or ``"none"`` (no rows: slip 0)
    depth_usd : float | None, quote moving the price −2 %, summed over venues
    reserve_usd : float | None, the pool's reserve value X = depth / (1/√0.98 − 1)
    seized_usd : float | None, Q = D_repaid·LB_min
    """

    slip: float
    lb_min: float
    source: str
    depth_usd: float | None = None
    venues: int = 0
    reserve_usd: float | None = None
    seized_usd: float | None = None


def lb_min(gas_usd: float, debt_repaid_usd: float, slip: float) -> float:
    """The least bonus a liquidator acts for: ``(1 + g/D_repaid)/(1 − slip)`` (a factor, 1.05 = 5 %)."""
    return (1.0 + gas_usd / debt_repaid_usd) / (1.0 - slip)


def pool_lb_min(reserve_usd: float, gas_usd: float, debt_repaid_usd: float) -> tuple[float, float]:
    """(LB_min, slip) when selling ``Q = D·LB`` into a constant-product pool of reserve value X costs
    ``Q/(X + Q)``: the fixed point of ``LB = a/(1 − Q/(X + Q))``, ``a = 1 + g/D``, is ``LB = a·X/(X − a·D)``.

    Raises ``ValueError`` when ``X ≤ a·D`` (no bonus makes the liquidation pay).
    """
    a = 1.0 + gas_usd / debt_repaid_usd
    if reserve_usd <= a * debt_repaid_usd:
        raise ValueError("pool too shallow")
    lb = a * reserve_usd / (reserve_usd - a * debt_repaid_usd)
    q = debt_repaid_usd * lb
    return lb, q / (reserve_usd + q)


def asset_slip(asset: str, depth: tuple[float, int] | None, settings: DeriveSettings) -> Slip:
    """The slippage and LB_min of one asset: ``--slippage``, else its depth (``(depth_usd, venues)``), else 0."""
    g, d = settings.gas_usd, settings.debt_repaid_usd
    if settings.slippage is not None:
        return Slip(settings.slippage, lb_min(g, d, settings.slippage), "override")
    if depth is None:
        return Slip(0.0, lb_min(g, d, 0.0), "none")
    depth_usd, venues = depth
    reserve = depth_usd / DEPTH_FACTOR
    try:
        lb, slip = pool_lb_min(reserve, g, d)
    except ValueError:
        raise MbtError(f"asset {asset!r}: stored liquidity (depth ${depth_usd:,.0f} at −2 % over {venues} venue(s), "
                       f"a pool of ${reserve:,.0f}) is too shallow for any bonus to pay a ${d:,.0f} liquidation; "
                       f"lower --debt-repaid-usd or give --slippage") from None
    return Slip(slip, lb, "liquidity", depth_usd, venues, reserve, d * lb)


# -- parameters ---------------------------------------------------------------------------------------
def _down(x: float) -> float:
    return math.floor(round(x * 1e4, 8)) / 1e4


def _up(x: float) -> float:
    return math.ceil(round(x * 1e4, 8)) / 1e4


@dataclass(frozen=True)
class Derived:
    """The written parameters of one asset or group, and what they came from.

    ltv, liquidation_threshold : float, fractions 0–1, rounded down to 4 decimals
    liquidation_bonus : float, ``LB_min − 1`` rounded up to 4 decimals (never below the minimum)
    lt_raw : float, ``(1 − Δ)/LB_min`` before clipping to [0, 0.99] and rounding
    slip_asset : whose slip set LB_min (a group: the member with the largest)
    """

    ltv: float
    liquidation_threshold: float
    liquidation_bonus: float
    lt_raw: float
    move: Move
    slip: Slip
    slip_asset: str


def parameters(move: Move, slip: Slip, ltv_gap: float, slip_asset: str) -> Derived:
    """``LT = (1 − Δ)/LB_min`` in [0, 0.99], ``ltv = max(0, LT − gap)``, ``bonus = LB_min − 1``."""
    raw = (1.0 - move.delta) / slip.lb_min
    lt = _down(min(max(raw, 0.0), LT_CAP))
    ltv = min(_down(max(0.0, lt - ltv_gap)), lt)
    return Derived(ltv, lt, _up(slip.lb_min - 1.0), raw, move, slip, slip_asset)


@dataclass(frozen=True)
class DerivedRules:
    """A derived rule set: per-asset parameters and, with groups, ``kind = "cross"`` group parameters."""

    name: str
    at_us: int
    settings: DeriveSettings
    assets: dict[str, Derived]
    groups: dict[str, tuple[tuple[str, ...], Derived]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "cross" if self.groups else "asset"


def derive_rules(series: dict[str, tuple[np.ndarray, np.ndarray]], depth: dict[str, tuple[float, int]],
                 settings: DeriveSettings, at_us: int, *, groups: dict[str, tuple[str, ...]] | None = None,
                 name: str = "derived", sources: dict[str, str] | None = None) -> DerivedRules:
    """Derive every asset of ``series`` (sorted ``(ts µs, price)`` arrays) and every group.

    ``depth`` holds ``(depth_usd, venues)`` of the assets with liquidity rows at ``at_us``. A group's Δ is the
    largest over its ordered pairs (i, j) of the Δ of ``p_i/p_j``; its LB_min is its members' largest.
    Raises ``MbtError`` naming the asset or pair that lacks history.
    """
    closes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    out: dict[str, Derived] = {}
    slips: dict[str, Slip] = {}
    for asset, (ts, px) in series.items():
        closes[asset] = daily_closes(ts, px, at_us)
        if not len(closes[asset][0]):
            raise MbtError(f"asset {asset!r}: no daily close at or before {format_instant(at_us)} (its first price "
                           f"is later, or after the last midnight before it)")
        move = adverse_move(asset, closes[asset], settings, at_us, f"asset {asset!r}")
        slips[asset] = asset_slip(asset, depth.get(asset), settings)
        out[asset] = parameters(move, slips[asset], settings.ltv_gap, asset)
    derived_groups: dict[str, tuple[tuple[str, ...], Derived]] = {}
    for gname, members in (groups or {}).items():
        for sym in members:
            if sym not in series:
                raise MbtError(f"--group {gname}: asset {sym!r} is not among the derived assets"
                               f"{_hint(sym, list(series))}")
        moves = [adverse_move(f"{i}/{j}", ratio_closes(closes[i], closes[j]), settings, at_us,
                              f"group {gname!r}: ratio {i}/{j}") for i, j in permutations(members, 2)]
        worst = max(moves, key=lambda m: m.delta)
        widest = max(members, key=lambda s: slips[s].lb_min)
        derived_groups[gname] = (members, parameters(worst, slips[widest], settings.ltv_gap, widest))
    return DerivedRules(name, at_us, settings, out, derived_groups, dict(sources or {}))


# -- TOML ---------------------------------------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _key(k: str) -> str:
    return k if re.match(r"^[A-Za-z0-9_-]+$", k) else json.dumps(k)


def _pct(alpha: float) -> str:
    return f"{alpha * 100:.10g} %"


def _move_text(m: Move, s: DeriveSettings) -> str:
    h = f"{s.horizon_days}d"
    last = format_instant(m.last_close_us)
    if m.method == "hs":
        return f"{m.label} hs {_pct(s.alpha)} {h} over {m.returns} returns to {last}"
    return (f"{m.label} ewma z {z_score(s.alpha):.4f} × σ {m.sigma:.6f} × √{s.horizon_days} "
            f"(λ {s.lam:g}, {m.returns} daily returns to {last})")


def _slip_text(sl: Slip, asset: str, s: DeriveSettings) -> str:
    base = f"LB_min = (1 + {s.gas_usd:g} / {s.debt_repaid_usd:,.0f}) / (1 − slip {sl.slip:.6f}); "
    if sl.source == "override":
        return base + "slip from --slippage"
    if sl.source == "none":
        return base + f"slip 0: no liquidity rows for {asset} at or before --at"
    return base + (f"slip = Q / (X + Q) of {asset}, Q ${sl.seized_usd:,.0f} seized, X ${sl.reserve_usd:,.0f} "
                   f"pool = depth ${sl.depth_usd:,.0f} ({sl.venues} venue{'s' if sl.venues != 1 else ''}) "
                   f"/ (1/√0.98 − 1)")


def _param_lines(d: Derived, s: DeriveSettings, group: bool) -> list[str]:
    raw = d.lt_raw
    clip = "" if 0 <= raw <= LT_CAP else (f" = {raw:.4f}, capped at {LT_CAP}" if raw > LT_CAP
                                          else f" = {raw:.4f}, floored at 0")
    pairs = " (the largest over the group's ordered pairs)" if group else ""
    gap = (f"LT {d.liquidation_threshold:.4f} − gap {s.ltv_gap:g}" if d.liquidation_threshold >= s.ltv_gap
           else f"max(0, LT {d.liquidation_threshold:.4f} − gap {s.ltv_gap:g})")
    whose = f" ({d.slip_asset}: the group's largest)" if group else ""
    return [
        f"ltv = {d.ltv:.4f}  # {gap}",
        (f"liquidation_threshold = {d.liquidation_threshold:.4f}  # (1 − Δ {d.move.delta:.4f}) / LB_min "
         f"{d.slip.lb_min:.6f}{clip}; Δ = {_move_text(d.move, s)}{pairs}"),
        (f"liquidation_bonus = {d.liquidation_bonus:.4f}  # LB_min {d.slip.lb_min:.6f} − 1{whose}; "
         + _slip_text(d.slip, d.slip_asset, s)),
    ]


def rules_toml(rules: DerivedRules, command: str | None = None) -> str:
    """The rule set as one ``[[rules]]`` TOML table a config accepts, with a ``#`` comment on every value."""
    s = rules.settings
    at = format_instant(rules.at_us)
    look = f"lookback {s.lookback_s / 86400:g}d" if s.method == "hs" else f"lambda {s.lam:g} (every stored close)"
    lines = [f"# {command}"] if command else []
    lines += [
        (f"# Risk-based rule set (docs/derive.md, PROTOCOLS §9): method {s.method}, alpha {s.alpha:g}, "
         f"horizon {s.horizon_days}d, {look}, at {at}"),
        "# daily close = the last price at or before each UTC midnight, prices at or before --at only",
        (f"# LT = (1 − Δ) / LB_min clipped to [0, {LT_CAP}]; LB_min = (1 + gas ${s.gas_usd:g} / D_repaid "
         f"${s.debt_repaid_usd:,.0f}) / (1 − slip); ltv = max(0, LT − {s.ltv_gap:g})"),
        "# rounded to 4 decimals: ltv and LT down, the bonus up (never below LB_min − 1)",
    ]
    if rules.sources:
        lines.append("# prices: " + ", ".join(f"{a} from {src!r}" for a, src in rules.sources.items()))
    kind = ("correlated groups (--group): their assets use the group's values" if rules.groups
            else "per-asset parameters (no --group)")
    lines += ["", "[[rules]]", f"name = {json.dumps(rules.name)}  # --name",
              f"kind = {json.dumps(rules.kind)}  # {kind}"]
    for asset, d in rules.assets.items():
        lines += ["", f"[rules.assets.{_key(asset)}]", *_param_lines(d, s, False)]
    for gname, (members, d) in rules.groups.items():
        lines += ["", f"[rules.groups.{_key(gname)}]",
                  f"assets = [{', '.join(json.dumps(m) for m in members)}]  # --group {gname}={','.join(members)}",
                  *_param_lines(d, s, True)]
    # a TOML comment may hold no line break or control character (a --name or symbol could bring one)
    return "\n".join(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", line) for line in lines) + "\n"


# -- reading the store --------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeriveInputs:
    """What ``derive_rules`` needs from the store: sorted price arrays, depth at ``at_us``, the sources."""

    series: dict[str, tuple[np.ndarray, np.ndarray]]
    depth: dict[str, tuple[float, int]]
    sources: dict[str, str]
    at_us: int


def _choose(have: dict[str, dict[str, int]], asset: str, price_source: str | None) -> str:
    srcs = sorted(have[asset])
    if price_source is not None:
        if price_source not in have[asset]:
            raise ConfigError(f"--price-source {price_source!r}: asset {asset!r} has no prices from it "
                              f"(sources: {', '.join(srcs)})")
        return price_source
    if len(srcs) > 1:
        raise ConfigError(f"asset {asset!r} has prices from several sources ({', '.join(srcs)}); choose one with "
                          f"--price-source")
    return srcs[0]


def load_inputs(store, assets: list[str] | None, price_source: str | None, at_us: int | None) -> DeriveInputs:
    """Read prices (at or before ``at_us``; default: the chosen sources' last price time) and depth.

    ``assets`` None = every asset with stored prices (from ``price_source`` when given). Read-only.
    """
    if not store.table_exists("prices"):
        raise MbtError(f"{store.path}: no prices table (not an mbt database?)")
    have: dict[str, dict[str, int]] = {}
    for asset, source, last in store.rows("derive_price_sources"):
        have.setdefault(asset, {})[source] = int(last)
    if not have:
        raise MbtError(f"{store.path}: no prices stored (load them with `mbt ingest csv --prices FILE`)")
    if assets is None:
        assets = sorted(a for a, s in have.items() if price_source is None or price_source in s)
        if not assets:
            every = sorted({src for s in have.values() for src in s})
            raise ConfigError(f"--price-source {price_source!r}: no asset has prices from it (sources: "
                              f"{', '.join(every)})")
    for asset in assets:
        if asset not in have:
            raise MbtError(f"asset {asset!r}: no prices stored{_hint(asset, sorted(have))}")
    chosen = {a: _choose(have, a, price_source) for a in assets}
    if at_us is None:
        at_us = max(have[a][chosen[a]] for a in assets)
    series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for asset in assets:
        raw = store.query("derive_prices", asset=asset, source=chosen[asset], at_us=at_us).fetchnumpy()
        ts = np.asarray(raw["ts_us"], dtype=np.int64)
        if not len(ts):
            raise MbtError(f"asset {asset!r}: no {chosen[asset]!r} prices at or before --at {format_instant(at_us)}")
        series[asset] = (ts, np.asarray(raw["price_usd"], dtype=np.float64))
    depth: dict[str, tuple[float, int]] = {}
    if store.table_exists("liquidity"):
        for asset, d, venues in store.rows("derive_liquidity", assets=assets, at_us=at_us, factor=DEPTH_FACTOR):
            depth[asset] = (float(d), int(venues))
    return DeriveInputs(series, depth, chosen, at_us)

