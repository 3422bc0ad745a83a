"""The seeded, crash-shaped example that ``mbt demo`` builds, ingests and runs.

``write_demo_inputs`` writes four DESIGN §2 CSV files (prices, a position snapshot, an event ledger,
liquidity depth) and the bundled ``assets/demo.toml``: a synthetic three-day market on a 10-minute grid
whose middle day is a crash shaped like 2021-05-19 (ETH −43 % peak-to-trough close, partial rebound),
preceded by 90 days of daily prices (so volatility-driven rules have history at ``start``), hourly 2 %
depth that thins in the crash, a 12,000-account multi-asset book and a few hundred ledger events. Nothing
here is real data: the path is a deterministic profile built from a handful of *measured parameters*
plus seeded, fat-tailed, correlated noise, and the book is drawn from stated distributions.
``measure_calibration`` / ``calibration_report`` (in ``demo.calibration``, re-exported by the package) recompute
every parameter from ``../shared/data`` (when present) so the constants below can be checked; see
``docs/demo.md``. Same seed → byte-identical files.
"""

from __future__ import annotations

import importlib.resources
import itertools
import math
import pathlib
import tomllib
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_SEED = 20210519
DEFAULT_ACCOUNTS = 12_000

ASSETS: tuple[str, ...] = ("WETH", "WBTC", "LINK", "USDC", "DAI", "USDT")
VOLATILE: tuple[str, ...] = ("WETH", "WBTC", "LINK")
STABLES: tuple[str, ...] = ("USDC", "DAI", "USDT")
PRICE_SOURCE = "demo"

GRID_START = pd.Timestamp("2021-05-18T00:00:00Z")
STEP = pd.Timedelta(minutes=10)
STEPS_PER_DAY = 144
N_POINTS = 3 * STEPS_PER_DAY + 1  # 2021-05-18 00:00 … 2021-05-21 00:00 inclusive
CRASH_DAY = 1  # index of the crash day; day 0 is the calm run-up, day 2 the aftermath

# --- calibration (measured; docs/demo.md; ``measure_calibration`` recomputes each number) ------------
# ETH/USD 10-min closes on 2021-05-19: (step from 00:00, close ÷ the day's 00:00 open) at the first-leg low,
# the last plateau high, the close before the trough, the trough (the day's largest 10-min drop, −16 %, ends
# there), the bounce, the rebound high and the day close.
CRASH_ANCHORS: tuple[tuple[int, float], ...] = (
    (0, 1.0),
    (29, 0.8636),
    (55, 0.8894),
    (78, 0.6870),
    (79, 0.5762),
    (80, 0.6709),
    (101, 0.8664),
    (144, 0.7243),
)
# std of 10-min log returns around each straight anchor-to-anchor segment (same day, same order)
CRASH_SEGMENT_VOL: tuple[float, ...] = (0.0096, 0.0102, 0.0222, 0.0, 0.0, 0.0325, 0.0159)
CALM_VOL = 0.0071  # ETH 10-min log-return std, median day of Jan 2021 (minute quotes)
AFTERMATH_VOL = 0.0099  # ETH hourly log-return std on 2021-05-20 ÷ √6
STUDENT_DF = 6.4  # 4 + 6 / excess kurtosis of day-standardised 10-min returns, Jan 2021
# close ÷ open of the day before (2021-05-18) and after (2021-05-20) the crash, CoinGecko hourly
DAY_BEFORE_RATIO = {"WETH": 1.0344, "WBTC": 0.9856, "LINK": 1.1495}
DAY_AFTER_RATIO = {"WETH": 1.1131, "WBTC": 1.0872, "LINK": 1.1017}
# log peak-to-trough drawdown on 2021-05-19 relative to WETH's (CoinGecko hourly)
CRASH_BETA = {"WETH": 1.0, "WBTC": 0.618, "LINK": 1.187}
# 2-hour log-return std relative to WETH and correlations, 2021-05-17 → 05-22 (CoinGecko hourly)
VOL_RATIO = {"WETH": 1.0, "WBTC": 0.752, "LINK": 1.058}
CORRELATION = np.array([[1.0, 0.891, 0.878], [0.891, 1.0, 0.845], [0.878, 0.845, 1.0]])
CORRELATION.setflags(write=False)
CRASH_DAY_OPEN = {"WETH": 3375.69, "WBTC": 42959.0, "LINK": 42.623}  # USD at 2021-05-19 00:00
# stablecoins: robust noise (1.4826 × median |p − 1|, CoinGecko samples 2021-05-10 → 05-16) and DAI's crash-day
# extremes (a one-sample dip at the ETH trough, then a premium one hour later)
STABLE_NOISE = {"USDC": 0.0021, "DAI": 0.0024, "USDT": 0.0020}
DAI_DEPEG_LOW = 0.9270
DAI_DEPEG_HIGH = 1.0238
DEPEG_ASSET = "DAI"

# --- price history before the window (``kind = "dynamic"`` needs volatility from before ``start``) ----
# daily closes at 00:00 UTC over the HISTORY_DAYS before GRID_START: log-return std, mean and correlations
# (CoinGecko hourly interpolated at 00:00, 2021-02-17 → 05-18)
HISTORY_DAYS = 90
HISTORY_VOL = {"WETH": 0.0509, "WBTC": 0.0390, "LINK": 0.0657}
HISTORY_DRIFT = {"WETH": 0.0068, "WBTC": -0.0014, "LINK": 0.0017}
HISTORY_CORRELATION = np.array([[1.0, 0.700, 0.725], [0.700, 1.0, 0.682], [0.725, 0.682, 1.0]])
HISTORY_CORRELATION.setflags(write=False)

# --- liquidity (``kind = "liquidity-haircut"``): 2 % sell-side depth in USD per asset, hourly ---------
# Uniswap v2 ETH/DAI on 2021-05-19 (first block): DAI reserve × (1/√0.98 − 1), and √(x·y) at the day's last
# block ÷ its first (LP withdrawal). In x·y = k the quote reserve is L·√p, so depth follows √price × L.
ETH_DAI_POOL_DEPTH_USD = 689_600.0
ETH_DAI_POOL_LP_END = 0.9526
# 2 % depth of each stablecoin in Curve's 3pool (A = 200) at its median Sep–Oct 2020 balances, sold into
# the deeper of the two other coins (StableSwap invariant, fee ignored)
STABLE_DEPTH_USD = {"USDC": 48.73e6, "DAI": 54.22e6, "USDT": 53.04e6}
# stated choices (not measurements): the on-chain depth a liquidator reaches for ETH as a multiple of the
# one measured pair, and WBTC's and LINK's depth relative to ETH's
VENUE_MULTIPLIER = 20.0
DEPTH_SHARE = {"WETH": 1.0, "WBTC": 0.5, "LINK": 0.1}
LIQUIDITY_STEP = pd.Timedelta(hours=1)
LIQUIDITY_VENUE = "demo"

# --- book composition (stated choices, not measurements) -----------------------------------------------
PATTERNS: tuple[tuple[str, float], ...] = (
    ("eth-borrows-stables", 0.36),
    ("wbtc-borrows-stables", 0.13),
    ("link-borrows-stables", 0.05),
    ("stables-short-eth", 0.08),
    ("mixed", 0.20),
    ("supplier-only", 0.18),
)
SIZE_MEDIAN_USD = 4_000.0  # median collateral of an account
SIZE_LOG_SIGMA = 1.8  # log-normal σ of collateral size
WHALE_SHARE = 0.0005  # share of borrowers that are whales
WHALE_USD = (5e6, 5e7)  # whale collateral, log-uniform (USD)
WHALE_HF = (1.5, 2.0, 3.0)  # whales are careful: log-triangular (low, mode, high)
HF_LOW_SHARE, HF_LOW = 0.15, (1.05, 1.30)  # share of borrowers and HF range near liquidation
HF_HIGH_SHARE, HF_HIGH = 0.20, (3.0, 30.0)  # very safe borrowers (log-uniform)
HF_MID, HF_MID_MODE = (1.30, 3.0), 1.8  # everyone else: log-triangular with this mode
# labels that only some rule kinds read (stated choices): a few single-pair borrowers name their isolated
# market ("<collateral>-<debt>", the ids of the demo's isolated rule set), and a few borrowers of
# stablecoins only are flagged as the "stablecoins" e-mode group of its cross rule set
MARKET_LABEL_SHARE = 0.05
EMODE_LABEL_SHARE = 0.05
EMODE_GROUP = "stablecoins"
# the market an event goes to when the account has no debt (or only debt in the event's asset) to pair with
DEFAULT_DEBT = {"WETH": "USDC", "WBTC": "USDC", "LINK": "USDC", "USDC": "WETH", "DAI": "WETH", "USDT": "USDC"}


def demo_config_text() -> str:
    """The bundled run configuration ``backtest/assets/demo.toml`` (DESIGN §3) as text."""
    return importlib.resources.files("backtest.assets").joinpath("demo.toml").read_text("utf-8")


def baseline_thresholds() -> dict[str, float]:
    """Liquidation thresholds of the demo config's first (baseline) rule set.

    Returns
    -------
    dict asset → liquidation_threshold (fraction 0–1); the book's health factors target these.
    """
    rules = tomllib.loads(demo_config_text())["rules"][0]["assets"]
    return {a: float(rules[a]["liquidation_threshold"]) for a in ASSETS}


def baseline_ltvs() -> dict[str, float]:
    """LTVs of the demo config's first (baseline) rule set: asset → ltv (fraction 0–1)."""
    rules = tomllib.loads(demo_config_text())["rules"][0]["assets"]
    return {a: float(rules[a]["ltv"]) for a in ASSETS}


def grid_timestamps() -> pd.DatetimeIndex:
    """The demo's price grid: 433 UTC points, 10 minutes apart, 2021-05-18 00:00 → 05-21 00:00."""
    return pd.date_range(GRID_START, periods=N_POINTS, freq=STEP)


def _iso(ts: pd.DatetimeIndex | pd.Series) -> np.ndarray:
    return np.asarray(pd.DatetimeIndex(ts).strftime("%Y-%m-%dT%H:%M:%SZ"), dtype=object)


# ---------------------------------------------------------------------------------------------------
# prices


def _log_anchors(asset: str) -> tuple[np.ndarray, np.ndarray]:
    """Anchor steps on the global grid and log(price / crash-day open) for one volatile asset."""
    beta = CRASH_BETA[asset]
    base = CRASH_DAY * STEPS_PER_DAY
    steps = [0, *(base + s for s, _ in CRASH_ANCHORS), N_POINTS - 1]
    crash = [beta * math.log(r) for _, r in CRASH_ANCHORS]
    levels = [-math.log(DAY_BEFORE_RATIO[asset]), *crash, crash[-1] + math.log(DAY_AFTER_RATIO[asset])]
    return np.asarray(steps), np.asarray(levels)


def _eth_step_vol() -> np.ndarray:
    """ETH noise std of each of the N_POINTS − 1 increments (10-min log-return units)."""
    vol = np.full(N_POINTS - 1, CALM_VOL)
    base = CRASH_DAY * STEPS_PER_DAY
    bounds = [base + s for s, _ in CRASH_ANCHORS]
    for (a, b), v in zip(itertools.pairwise(bounds), CRASH_SEGMENT_VOL, strict=True):
        vol[a:b] = v
    vol[bounds[-1] :] = AFTERMATH_VOL
    return vol


def _correlated_t(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` × 3 unit-variance multivariate-t innovations with ``CORRELATION``.

    One chi-square mixing variable per step is shared by all assets, so a large move in ETH comes with
    large moves elsewhere (tail dependence), as on the crash day.
    """
    g = rng.standard_normal((n, 3)) @ np.linalg.cholesky(CORRELATION).T
    w = rng.chisquare(STUDENT_DF, size=(n, 1))
    return g * np.sqrt((STUDENT_DF - 2.0) / w)


def generate_prices(rng: np.random.Generator) -> pd.DataFrame:
    """Crash-shaped USD prices for every demo asset on the 10-minute grid.

    Volatile assets follow ``log p = profile + bridge``: ``profile`` interpolates straight lines between
    measured anchors (day-before drift, ``CRASH_ANCHORS`` — the crash day's turning points and its −16 %
    cascade candle — scaled in log space by ``CRASH_BETA``, day-after drift) and ``bridge`` is a random walk of correlated Student-t innovations with the measured
    per-segment volatility, pinned to zero at every anchor (so the anchors are hit exactly and the
    crash depth stays near the measured one). Stablecoins are 1 plus small independent noise; DAI dips to
    ``DAI_DEPEG_LOW`` at the ETH trough (back within 30 minutes either side), then trades at a premium
    that peaks at ``DAI_DEPEG_HIGH`` one hour after the trough and halves every hour.

    Parameters
    ----------
    rng : numpy Generator; the only source of randomness.

    Returns
    -------
    DataFrame with columns ``timestamp`` (ISO-8601 UTC string with ``Z``), ``asset``, ``price_usd``
    (USD per token, > 0) and ``source`` (``"demo"``), ordered by timestamp then ``ASSETS`` order.
    """
    t = np.arange(N_POINTS)
    eth_vol = _eth_step_vol()
    shocks = _correlated_t(rng, N_POINTS - 1)
    paths: dict[str, np.ndarray] = {}
    for k, asset in enumerate(VOLATILE):
        steps, levels = _log_anchors(asset)
        walk = np.concatenate(([0.0], np.cumsum(VOL_RATIO[asset] * eth_vol * shocks[:, k])))
        bridge = walk - np.interp(t, steps, walk[steps])
        paths[asset] = CRASH_DAY_OPEN[asset] * np.exp(np.interp(t, steps, levels) + bridge)
    for asset in STABLES:
        paths[asset] = 1.0 + STABLE_NOISE[asset] * rng.standard_normal(N_POINTS)
    paths[DEPEG_ASSET] = paths[DEPEG_ASSET] + _depeg_overlay()
    wide = np.column_stack([paths[a] for a in ASSETS])
    return pd.DataFrame(
        {
            "timestamp": np.repeat(_iso(grid_timestamps()), len(ASSETS)),
            "asset": np.tile(np.asarray(ASSETS, dtype=object), N_POINTS),
            "price_usd": wide.ravel(),
            "source": PRICE_SOURCE,
        }
    )


def _depeg_overlay() -> np.ndarray:
    """Deterministic deviation added to the depegging stablecoin (USD per token)."""
    trough = CRASH_DAY * STEPS_PER_DAY + min(CRASH_ANCHORS, key=lambda a: a[1])[0]
    t = np.arange(N_POINTS) - trough
    dip = (DAI_DEPEG_LOW - 1.0) * np.clip(1.0 - np.abs(t) / 3.0, 0.0, None)  # one real sample: < 1 h
    ramp = np.clip((t - 3) / 3.0, 0.0, 1.0)  # the real premium came one sample (1 h) later
    premium = (DAI_DEPEG_HIGH - 1.0) * ramp * np.power(0.5, np.clip(t - 6, 0, None) / 6.0)
    return dip + premium


def wide_prices(prices: pd.DataFrame) -> np.ndarray:
    """Prices as a dense (timestamps × ``ASSETS``) array, rows in time order (USD per token)."""
    table = prices.pivot(index="timestamp", columns="asset", values="price_usd")
    return table.loc[:, list(ASSETS)].sort_index().to_numpy(dtype=np.float64)


def window_prices(prices: pd.DataFrame) -> pd.DataFrame:
    """The rows of a demo prices frame inside the run window (drops the daily history before it)."""
    ts = pd.to_datetime(prices["timestamp"], utc=True)
    return prices.loc[(ts >= GRID_START).to_numpy()].reset_index(drop=True)


def history_timestamps() -> pd.DatetimeIndex:
    """Daily 00:00 UTC points before the window: ``HISTORY_DAYS`` of them, the last one day before it."""
    return pd.date_range(GRID_START - pd.Timedelta(days=HISTORY_DAYS), periods=HISTORY_DAYS, freq="1D")


def generate_history(rng: np.random.Generator, first: Mapping[str, float]) -> pd.DataFrame:
    """Daily prices for the ``HISTORY_DAYS`` before the window, so volatility can be measured at ``start``.

    Volatile assets walk backwards from the window's first prices with correlated normal daily log returns
    of the measured pre-crash size, drift and correlation (``HISTORY_VOL``, ``HISTORY_DRIFT``,
    ``HISTORY_CORRELATION``); stablecoins are 1 plus their calm noise. Only timestamps strictly before
    ``GRID_START`` are written, so the run's grid (every price timestamp in [start, end]) is unchanged.

    Parameters
    ----------
    rng : numpy Generator.
    first : asset → USD price at ``GRID_START`` (the window's first row), where the walk ends.

    Returns
    -------
    DataFrame like ``generate_prices`` (``timestamp, asset, price_usd, source``), one row per day and asset.
    """
    n = HISTORY_DAYS
    g = rng.standard_normal((n, len(VOLATILE))) @ np.linalg.cholesky(HISTORY_CORRELATION).T
    paths: dict[str, np.ndarray] = {}
    for k, asset in enumerate(VOLATILE):
        r = HISTORY_DRIFT[asset] + HISTORY_VOL[asset] * g[:, k]  # r[m]: day m → day m + 1 (day n = GRID_START)
        paths[asset] = float(first[asset]) * np.exp(-np.cumsum(r[::-1])[::-1])
    for asset in STABLES:
        paths[asset] = 1.0 + STABLE_NOISE[asset] * rng.standard_normal(n)
    wide = np.column_stack([paths[a] for a in ASSETS])
    return pd.DataFrame(
        {
            "timestamp": np.repeat(_iso(history_timestamps()), len(ASSETS)),
            "asset": np.tile(np.asarray(ASSETS, dtype=object), n),
            "price_usd": wide.ravel(),
            "source": PRICE_SOURCE,
        }
    )


# ---------------------------------------------------------------------------------------------------
# liquidity


def liquidity_timestamps() -> pd.DatetimeIndex:
    """Hourly UTC points over the window, both ends included (73 points)."""
    return pd.date_range(GRID_START, grid_timestamps()[-1], freq=LIQUIDITY_STEP)


def lp_factor(steps: np.ndarray) -> np.ndarray:
    """Share of pool liquidity (L = √(x·y)) left at grid ``steps``: 1 until the crash day opens, then a
    straight line to ``ETH_DAI_POOL_LP_END`` at its close, flat after."""
    day = CRASH_DAY * STEPS_PER_DAY
    return np.interp(steps, [day, day + STEPS_PER_DAY], [1.0, ETH_DAI_POOL_LP_END])


def generate_liquidity(prices: pd.DataFrame) -> pd.DataFrame:
    """Hourly 2 % sell-side depth in USD per asset (DESIGN §2 ``depth_usd_2pct`` form), from the prices.

    Volatile assets: ``ETH_DAI_POOL_DEPTH_USD × VENUE_MULTIPLIER × DEPTH_SHARE × √(p / crash-day open) ×
    lp_factor`` — the measured Uniswap v2 ETH/DAI depth, scaled to the venues a liquidator reaches, moving
    like a constant-product pool's quote reserve (√price) while LPs withdraw as measured on 2021-05-19.
    Stablecoins: their Curve 3pool depth × ``lp_factor``. So depth thins in the crash (WETH's by about
    30 % at the trough). Deterministic: no randomness beyond the prices.

    Parameters
    ----------
    prices : the window's prices (``generate_prices``; history rows are ignored).

    Returns
    -------
    DataFrame ``timestamp, asset, depth_usd_2pct, venue`` (``venue`` = ``"demo"``), ordered by timestamp
    then ``ASSETS`` order.
    """
    wide = wide_prices(window_prices(prices))
    steps = np.arange(0, N_POINTS, int(LIQUIDITY_STEP / STEP))
    lp = lp_factor(steps)
    cols = []
    for k, asset in enumerate(ASSETS):
        if asset in VOLATILE:
            level = ETH_DAI_POOL_DEPTH_USD * VENUE_MULTIPLIER * DEPTH_SHARE[asset]
            cols.append(level * np.sqrt(wide[steps, k] / CRASH_DAY_OPEN[asset]) * lp)
        else:
            cols.append(STABLE_DEPTH_USD[asset] * lp)
    return pd.DataFrame(
        {
            "timestamp": np.repeat(_iso(liquidity_timestamps()), len(ASSETS)),
            "asset": np.tile(np.asarray(ASSETS, dtype=object), steps.size),
            "depth_usd_2pct": np.column_stack(cols).ravel(),
            "venue": LIQUIDITY_VENUE,
        }
    )


# ---------------------------------------------------------------------------------------------------
# position book

_K = len(ASSETS)
_IX = {a: i for i, a in enumerate(ASSETS)}
_STABLE_DEBT = ((_IX["USDC"], _IX["DAI"], _IX["USDT"]), (0.45, 0.35, 0.20))


def reference_prices() -> dict[str, float]:
    """First-grid-point prices the book is sized with when none are given (USD per token).

    Volatile assets start exactly here in every seed (their first anchor is pinned); stablecoins use 1.
    """
    out = {a: CRASH_DAY_OPEN[a] / DAY_BEFORE_RATIO[a] for a in VOLATILE}
    out.update({a: 1.0 for a in STABLES})
    return out


def _account_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    raw = rng.bytes(20 * n).hex()
    ids = np.asarray(["0x" + raw[40 * i : 40 * (i + 1)] for i in range(n)], dtype=object)
    if len(set(ids)) != n:  # 160 random bits: never in practice, but ids must be a key
        raise RuntimeError("duplicate demo account id")
    return ids


def _add_one(
    rng: np.random.Generator,
    w: np.ndarray,
    rows: np.ndarray,
    choices: tuple[tuple[int, ...], tuple[float, ...]],
    weight: np.ndarray | float,
) -> None:
    """Add ``weight`` on one asset per row, drawn from ``choices`` = (asset indices, probabilities)."""
    idx, p = choices
    pick = np.asarray(idx)[rng.choice(len(idx), size=rows.size, p=p)]
    np.add.at(w, (rows, pick), weight)


def _add_some(rng: np.random.Generator, w: np.ndarray, rows: np.ndarray, p: np.ndarray, lo: int, hi: int) -> None:
    """Give each row ``lo``–``hi`` distinct assets (Gumbel top-k on log ``p``) with log-normal weights."""
    keys = np.log(np.where(p > 0, p, 1e-300)) + rng.gumbel(size=(rows.size, _K))
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    take = rank < rng.integers(lo, hi + 1, size=(rows.size, 1))
    w[rows] += take * rng.lognormal(0.0, 0.6, size=(rows.size, _K))


def _draw_hf(rng: np.random.Generator, n: int) -> np.ndarray:
    u = rng.random(n)
    low = rng.uniform(*HF_LOW, size=n)
    mid = np.exp(rng.triangular(*np.log([HF_MID[0], HF_MID_MODE, HF_MID[1]]), size=n))
    high = np.exp(rng.uniform(*np.log(HF_HIGH), size=n))
    return np.where(u < HF_LOW_SHARE, low, np.where(u < HF_LOW_SHARE + HF_HIGH_SHARE, high, mid))


def generate_book(rng: np.random.Generator, n: int, *, prices: Mapping[str, float] | None = None) -> pd.DataFrame:
    """A snapshot of ``n`` accounts with realistic multi-asset collateral and debt.

    Each account follows one of ``PATTERNS`` (ETH, WBTC or LINK collateral borrowing stablecoins;
    stablecoin collateral borrowing ETH; 2–3 collateral and 1–2 debt assets mixed; suppliers only). Its
    collateral is log-normal in USD (median ``SIZE_MEDIAN_USD``, σ ``SIZE_LOG_SIGMA``) with a few whales;
    its debt is set so that its health factor under the baseline rule set at ``prices`` is a draw from a
    three-part mixture: ``HF_LOW_SHARE`` in ``HF_LOW``, ``HF_HIGH_SHARE`` log-uniform in ``HF_HIGH``, the
    rest log-triangular over ``HF_MID``. No account starts below HF 1.05.

    Parameters
    ----------
    rng : numpy Generator.
    n : int, number of accounts (≥ 1).
    prices : asset → USD per token used to size positions and to target HFs; default
        ``reference_prices()``. Pass the first row of the generated prices to target HFs exactly.

    Returns
    -------
    DataFrame ``account, asset, collateral, debt`` (token units, ≥ 0), one row per account × asset with
    a non-zero amount; accounts are ``0x`` + 40 lowercase hex digits. An account never both supplies and
    borrows the same asset.
    """
    if n < 1:
        raise ValueError("n must be ≥ 1")
    ref = reference_prices() if prices is None else prices
    p0 = np.asarray([float(ref[a]) for a in ASSETS])
    lt = np.asarray([baseline_thresholds()[a] for a in ASSETS])
    ids = _account_ids(rng, n)
    pattern = rng.choice(len(PATTERNS), size=n, p=[s for _, s in PATTERNS])
    rows = {name: np.flatnonzero(pattern == i) for i, (name, _) in enumerate(PATTERNS)}
    cw = np.zeros((n, _K))
    dw = np.zeros((n, _K))

    def flip(r: np.ndarray, prob: float) -> np.ndarray:
        return r[rng.random(r.size) < prob]

    for name, lead, extra in (
        ("eth-borrows-stables", "WETH", ((_IX["USDC"], _IX["DAI"], _IX["WBTC"]), (0.4, 0.3, 0.3))),
        ("wbtc-borrows-stables", "WBTC", ((_IX["WETH"], _IX["USDC"]), (0.7, 0.3))),
        ("link-borrows-stables", "LINK", ((_IX["WETH"], _IX["USDC"]), (0.7, 0.3))),
    ):
        r = rows[name]
        cw[r, _IX[lead]] = 1.0
        r2 = flip(r, 0.3)
        _add_one(rng, cw, r2, extra, rng.uniform(0.1, 0.6, r2.size))
        _add_one(rng, dw, r, _STABLE_DEBT, 1.0)
        r2 = flip(r, 0.3)
        _add_one(rng, dw, r2, _STABLE_DEBT, rng.uniform(0.2, 0.6, r2.size))
    r = rows["stables-short-eth"]
    _add_one(rng, cw, r, ((_IX["USDC"], _IX["DAI"]), (0.6, 0.4)), 1.0)
    r2 = flip(r, 0.3)
    _add_one(rng, cw, r2, ((_IX["USDC"], _IX["DAI"]), (0.5, 0.5)), rng.uniform(0.2, 0.8, r2.size))
    dw[r, _IX["WETH"]] = 1.0
    r2 = flip(r, 0.15)
    dw[r2, _IX["WBTC"]] = rng.uniform(0.2, 0.6, r2.size)
    r = rows["mixed"]
    _add_some(rng, cw, r, np.array([0.35, 0.25, 0.15, 0.15, 0.10, 0.0]), 2, 3)
    _add_some(rng, dw, r, np.array([0.15, 0.0, 0.0, 0.40, 0.25, 0.20]), 1, 2)
    _add_some(rng, cw, rows["supplier-only"], np.array([0.30, 0.15, 0.10, 0.20, 0.10, 0.15]), 1, 3)
    wanted = dw.sum(axis=1) > 0
    dw *= cw == 0  # never borrow what you supply: such a loan goes to USDT (never collateral here)
    dw[wanted & (dw.sum(axis=1) == 0), _IX["USDT"]] = 1.0
    borrowers = np.flatnonzero(dw.sum(axis=1) > 0)
    r2 = flip(borrowers, 0.05)  # idle USDT beside a loan: held, never counted (baseline LT 0)
    cw[r2, _IX["USDT"]] += rng.uniform(0.05, 0.3, r2.size) * (dw[r2, _IX["USDT"]] == 0)

    size = np.exp(np.log(SIZE_MEDIAN_USD) + SIZE_LOG_SIGMA * rng.standard_normal(n)).clip(20.0, None)
    hf = _draw_hf(rng, n)
    whales = rng.choice(borrowers, size=round(WHALE_SHARE * borrowers.size), replace=False)
    size[whales] = np.exp(rng.uniform(*np.log(WHALE_USD), size=whales.size))
    hf[whales] = np.exp(rng.triangular(*np.log(WHALE_HF), size=whales.size))
    coll_usd = size[:, None] * cw / cw.sum(axis=1, keepdims=True)
    power = coll_usd @ lt
    owes = dw.sum(axis=1)
    debt_usd = np.where((owes > 0) & (power > 0), power / hf, 0.0)
    debt_usd = debt_usd[:, None] * dw / np.where(owes > 0, owes, 1.0)[:, None]
    collateral, debt = coll_usd / p0, debt_usd / p0
    a, k = np.nonzero((collateral > 0) | (debt > 0))
    return pd.DataFrame(
        {
            "account": ids[a],
            "asset": np.asarray(ASSETS, dtype=object)[k],
            "collateral": collateral[a, k],
            "debt": debt[a, k],
        }
    )


def dense_book(book: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions as dense arrays.

    Returns
    -------
    (accounts, collateral, debt): account ids in first-seen order, and two (accounts × ``ASSETS``)
    float arrays in token units.
    """
    accounts, a = np.unique(book["account"].to_numpy(), return_inverse=True)
    order = np.argsort(np.unique(a, return_index=True)[1])
    remap = np.empty_like(order)
    remap[order] = np.arange(order.size)
    a = remap[a]
    k = book["asset"].map(_IX).to_numpy()
    c = np.zeros((accounts.size, _K))
    d = np.zeros((accounts.size, _K))
    np.add.at(c, (a, k), book["collateral"].to_numpy(dtype=np.float64))
    np.add.at(d, (a, k), book["debt"].to_numpy(dtype=np.float64))
    return accounts[order], c, d


def market_id(collateral: str, debt: str) -> str:
    """The demo's isolated-market id for a (collateral, debt) pair: ``"<collateral>-<debt>"``."""
    return f"{collateral}-{debt}"


def label_book(rng: np.random.Generator, book: pd.DataFrame) -> pd.DataFrame:
    """The book with the optional DESIGN §2 ``market`` and ``emode`` columns filled for a few accounts.

    ``MARKET_LABEL_SHARE`` of the borrowers with exactly one collateral and one debt asset name their
    isolated market (``market_id``) on both rows; ``EMODE_LABEL_SHARE`` of the borrowers that owe only
    stablecoins carry ``emode = EMODE_GROUP`` on all their rows. Every other cell is empty. Neither label
    changes an ``asset`` rule set (markets are summed per account and asset); they only exercise the
    ``isolated`` and ``cross`` paths, and each label agrees with what those rules would pick anyway.
    """
    ids, c, d = dense_book(book)
    n_coll, n_debt = (c > 0).sum(axis=1), (d > 0).sum(axis=1)
    single = np.flatnonzero((n_coll == 1) & (n_debt == 1))
    pick = single[rng.random(single.size) < MARKET_LABEL_SHARE]
    names = np.asarray(ASSETS, dtype=object)
    markets = {ids[a]: market_id(names[np.argmax(c[a])], names[np.argmax(d[a])]) for a in pick}
    volatile_debt = (d[:, [_IX[a] for a in VOLATILE]] > 0).any(axis=1)
    stable_only = np.flatnonzero((n_debt > 0) & ~volatile_debt)
    emode = set(ids[stable_only[rng.random(stable_only.size) < EMODE_LABEL_SHARE]])
    account = book["account"].to_numpy()
    return book.assign(
        market=[markets.get(a, "") for a in account],
        emode=[EMODE_GROUP if a in emode else "" for a in account],
    )


def event_markets(events: pd.DataFrame, book: pd.DataFrame, prices: pd.DataFrame) -> np.ndarray:
    """An isolated-market id for each event (DESIGN §2 events ``market`` column), or ``""``.

    A supply or withdraw of asset i goes to market i-j, j = the account's largest debt by USD at the first
    prices other than i; a borrow or repay of j to i-j, i = its largest collateral other than j. Accounts
    that exist only in the ledger pair their supplied asset with their borrowed one. Without a debt to
    pair with, a supply goes to i-``DEFAULT_DEBT[i]``; a supplier-only account's withdrawals get ``""``
    (its collateral sits in one market per asset, so the event is unambiguous).
    """
    ids, c, d = dense_book(book)
    p0 = wide_prices(window_prices(prices))[0]
    row = {a: i for i, a in enumerate(ids)}
    coll_usd, debt_usd = c * p0, d * p0
    ledger_coll: dict[str, int] = {}
    ledger_debt: dict[str, int] = {}
    for account, asset, action in zip(events["account"], events["asset"], events["action"], strict=True):
        if account not in row:
            target = ledger_coll if action == "supply" else ledger_debt
            target.setdefault(account, _IX[asset])
    out = np.empty(len(events), dtype=object)
    rows = zip(events["account"], events["asset"], events["action"], strict=True)
    for e, (account, asset, action) in enumerate(rows):
        k = _IX[asset]
        if account in row:
            cu, du = coll_usd[row[account]].copy(), debt_usd[row[account]].copy()
        else:
            cu, du = np.zeros(_K), np.zeros(_K)
            cu[ledger_coll[account]] = 1.0
            if account in ledger_debt:
                du[ledger_debt[account]] = 1.0
        if action in ("supply", "withdraw"):
            if not du.any() and account in row:
                out[e] = ""  # a supplier: one position per collateral asset
                continue
            du[k] = 0.0
            out[e] = market_id(asset, ASSETS[int(np.argmax(du))] if du.any() else DEFAULT_DEBT[asset])
        else:
            cu[k] = 0.0
            out[e] = market_id(ASSETS[int(np.argmax(cu))], asset)
    return out


# ---------------------------------------------------------------------------------------------------
# event ledger

EVENT_MIX: tuple[tuple[str, float], ...] = (
    ("top-up", 0.30),  # supply more collateral, mostly on the crash day and by the least healthy
    ("repay", 0.22),
    ("repay-all", 0.07),  # 1.05–2 × the snapshot debt: capped at the balance
    ("withdraw", 0.20),
    ("withdraw-all", 0.06),  # suppliers only, 1.01–1.5 × the balance: capped
    ("borrow", 0.15),  # healthy borrowers (HF > 2.5) borrow more
)


def _event_offsets(rng: np.random.Generator, m: int, crash_share: float) -> np.ndarray:
    """Whole seconds after the grid start, in (0, window]; ``crash_share`` of them on the crash day."""
    window = (N_POINTS - 1) * int(STEP.total_seconds())
    day = STEPS_PER_DAY * int(STEP.total_seconds())
    anywhere = rng.integers(1, window + 1, size=m)
    crash = rng.integers(CRASH_DAY * day + 1, (CRASH_DAY + 1) * day + 1, size=m)
    return np.where(rng.random(m) < crash_share, crash, anywhere)


def generate_events(
    rng: np.random.Generator,
    book: pd.DataFrame,
    prices: pd.DataFrame,
    *,
    n_events: int = 400,
    new_accounts: int = 40,
    max_borrows: int = 30,
) -> pd.DataFrame:
    """A ledger of supply/withdraw/borrow/repay events after the snapshot, inside the price window.

    Existing accounts react to the market (``EVENT_MIX``): top-ups and repayments cluster on the crash
    day and favour the lowest health factors; some repay or withdraw more than they hold (the replay
    caps these and counts ``capped_events_usd``). ``new_accounts`` fresh accounts appear only here: each
    supplies WETH, WBTC or USDC and three in four later borrow stablecoins (or WETH against USDC) at a
    health factor of 1.4–2.5 at that moment's prices. Finally ``max_borrows`` other borrowers (health
    factor 1.5–3, no other event) borrow their largest debt asset up to 90–98 % of the baseline's LTV
    headroom at the prices of the step the event is applied at: allowed by the baseline, refused by a
    rule set with lower LTVs and ``enforce_ltv = true``. These are drawn last, so the other events do not
    depend on ``max_borrows``.

    Parameters
    ----------
    rng : numpy Generator.
    book : the snapshot from ``generate_book`` (token units).
    prices : prices from ``generate_prices`` (sizes new borrowers' loans).
    n_events : int, number of events (≥ 2 × ``new_accounts``); fewer only when the book has no
        supplier or no borrower to draw a kind of event from.
    new_accounts : int, accounts that exist only in the ledger.
    max_borrows : int, borrows up to the LTV limit, on top of ``n_events``.

    Returns
    -------
    DataFrame ``timestamp`` (ISO-8601 UTC with ``Z``, whole seconds, strictly after the grid start and
    at or before its end), ``account``, ``asset``, ``action``, ``amount`` (token units, > 0); sorted by
    timestamp, ties in generation order.
    """
    ids, c, d = dense_book(book)
    p0 = wide_prices(prices)
    lt = np.asarray([baseline_thresholds()[a] for a in ASSETS])
    hf_owed = d @ p0[0]
    hf = np.where(hf_owed > 0, (c @ (p0[0] * lt)) / np.where(hf_owed > 0, hf_owed, 1.0), np.inf)
    borrowers = np.flatnonzero(hf_owed > 0)
    suppliers = np.flatnonzero((hf_owed == 0) & (c.sum(axis=1) > 0))
    fresh = _account_ids(rng, new_accounts)
    n_new_borrow = int(np.sum(rng.random(new_accounts) < 0.75))
    n_old = n_events - new_accounts - n_new_borrow
    if n_old < 0:
        raise ValueError("n_events must be at least 2 × new_accounts")
    counts = rng.multinomial(n_old, [w for _, w in EVENT_MIX])
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def held(rows: np.ndarray, m: np.ndarray) -> np.ndarray:
        return np.argmax(m[rows] * p0[0], axis=1)  # the position with the largest USD value

    for (kind, _), m in zip(EVENT_MIX, counts, strict=True):
        pool = suppliers if kind.startswith("withdraw") else borrowers
        if kind == "borrow":
            pool = borrowers[hf[borrowers] > 2.5]
        if pool.size == 0:
            continue
        if kind == "top-up":
            weight = 1.0 / np.clip(hf[borrowers], 1.0, 10.0) ** 4  # the nervous top up
            rows = rng.choice(borrowers, size=m, p=weight / weight.sum())
            k = np.where(rng.random(m) < 0.25, _IX["USDC"], held(rows, c))
            usd = rng.uniform(0.1, 0.6, m) * (c[rows] @ p0[0])
            amount, action, crash = usd / p0[0, k], "supply", 0.7
        elif kind in ("repay", "repay-all", "borrow"):
            rows = rng.choice(pool, size=m)
            k = held(rows, d)
            lo, hi = {"repay": (0.2, 0.9), "repay-all": (1.05, 2.0), "borrow": (0.1, 0.5)}[kind]
            amount = rng.uniform(lo, hi, m) * d[rows, k]
            action, crash = ("borrow", 0.3) if kind == "borrow" else ("repay", 0.6)
        else:
            rows = rng.choice(pool, size=m)
            k = held(rows, c)
            lo, hi = (0.1, 0.9) if kind == "withdraw" else (1.01, 1.5)
            amount, action, crash = rng.uniform(lo, hi, m) * c[rows, k], "withdraw", 0.3
        parts.append((_event_offsets(rng, m, crash), ids[rows], k, np.full(m, action, dtype=object), amount))

    # accounts that only appear in the ledger
    k_col = np.asarray([_IX["WETH"], _IX["WBTC"], _IX["USDC"]])[rng.choice(3, size=new_accounts, p=[0.5, 0.2, 0.3])]
    window = (N_POINTS - 1) * int(STEP.total_seconds())
    t_supply = rng.integers(1, window - 6 * 3600, size=new_accounts)
    size_usd = np.exp(np.log(5_000.0) + 1.2 * rng.standard_normal(new_accounts))
    step_supply = t_supply // int(STEP.total_seconds())
    parts.append(
        (t_supply, fresh, k_col, np.full(new_accounts, "supply", dtype=object), size_usd / p0[step_supply, k_col])
    )
    b = np.arange(n_new_borrow)
    t_borrow = t_supply[b] + rng.integers(600, 6 * 3600, size=b.size)
    step_borrow = t_borrow // int(STEP.total_seconds())
    k_debt = np.where(
        k_col[b] == _IX["USDC"], _IX["WETH"], np.asarray(_STABLE_DEBT[0])[rng.choice(3, size=b.size, p=_STABLE_DEBT[1])]
    )
    debt_usd = (size_usd[b] / p0[step_supply[b], k_col[b]]) * p0[step_borrow, k_col[b]] * lt[k_col[b]]
    debt_usd /= rng.uniform(1.4, 2.5, b.size)
    parts.append(
        (t_borrow, fresh[b], k_debt, np.full(b.size, "borrow", dtype=object), debt_usd / p0[step_borrow, k_debt])
    )

    # borrowers who borrow up to just under the baseline's LTV limit (at the prices of the step the event
    # is applied at): allowed by the baseline, refused under lower LTVs when a rule set sets enforce_ltv
    used = set(np.concatenate([part[1] for part in parts]))
    pool = np.asarray([r for r in borrowers if 1.5 <= hf[r] <= 3.0 and ids[r] not in used], dtype=np.int64)
    if max_borrows > 0 and pool.size:
        rows = rng.choice(pool, size=min(max_borrows, pool.size), replace=False)
        t = _event_offsets(rng, rows.size, 0.5)
        at = p0[-(-t // int(STEP.total_seconds()))]
        ltv = np.asarray([baseline_ltvs()[a] for a in ASSETS])
        headroom = np.maximum(0.0, (c[rows] * at * ltv).sum(axis=1) - (d[rows] * at).sum(axis=1))
        k = held(rows, d)
        amount = rng.uniform(0.90, 0.98, rows.size) * headroom / at[np.arange(rows.size), k]
        parts.append((t, ids[rows], k, np.full(rows.size, "borrow", dtype=object), amount))

    offsets, account, k, action, amount = (np.concatenate(x) for x in zip(*parts, strict=True))
    order = np.argsort(offsets, kind="stable")
    keep = amount[order] > 0
    order = order[keep]
    return pd.DataFrame(
        {
            "timestamp": _iso(GRID_START + pd.to_timedelta(offsets[order], unit="s")),
            "account": account[order],
            "asset": np.asarray(ASSETS, dtype=object)[k[order]],
            "action": action[order],
            "amount": amount[order],
        }
    )


# ---------------------------------------------------------------------------------------------------
# files


def write_demo_inputs(
    out_dir: pathlib.Path | str, *, seed: int = DEFAULT_SEED, accounts: int = DEFAULT_ACCOUNTS
) -> dict[str, pathlib.Path]:
    """Write the demo's CSV inputs and its run configuration into ``out_dir``.

    Window prices, book, events, price history and the book's labels come from five independent child
    streams of ``seed`` (so changing ``accounts`` changes neither prices nor liquidity). The book targets
    health factors at the first window prices. Numbers are written with 10 significant digits, LF line
    ends, no index.

    Parameters
    ----------
    out_dir : directory, created if missing; existing demo files are overwritten.
    seed : int, the only source of randomness; same seed → byte-identical files.
    accounts : int, accounts in the snapshot (the ledger adds 40 more).

    Returns
    -------
    ``{"prices", "positions", "events", "liquidity", "config"}`` → paths of ``prices.csv`` (the
    ``HISTORY_DAYS`` daily history, then the 10-minute window), ``positions.csv`` (with ``market`` and
    ``emode``), ``events.csv`` (with ``market``), ``liquidity.csv`` (DESIGN §2 formats) and ``demo.toml``
    (DESIGN §3).
    """
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng_prices, rng_book, rng_events, rng_history, rng_labels = np.random.default_rng(seed).spawn(5)
    prices = generate_prices(rng_prices)
    first = dict(zip(prices["asset"].iloc[: len(ASSETS)], prices["price_usd"].iloc[: len(ASSETS)], strict=True))
    book = generate_book(rng_book, accounts, prices=first)
    events = generate_events(rng_events, book, prices)
    frames = {
        "prices": pd.concat([generate_history(rng_history, first), prices], ignore_index=True),
        "positions": label_book(rng_labels, book),
        "events": events.assign(market=event_markets(events, book, prices)),
        "liquidity": generate_liquidity(prices),
    }
    paths = {name: out / f"{name}.csv" for name in frames}
    for name, frame in frames.items():
        frame.to_csv(paths[name], index=False, float_format="%.10g", lineterminator="\n")
    paths["config"] = out / "demo.toml"
    paths["config"].write_text(demo_config_text(), encoding="utf-8", newline="\n")
    return paths
