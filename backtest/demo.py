"""The seeded, crash-shaped example that ``mbt demo`` builds, ingests and runs.

``write_demo_inputs`` writes three DESIGN §2 CSV files (prices, a position snapshot, an event ledger) and
the bundled ``assets/demo.toml``: a synthetic three-day market on a 10-minute grid whose middle day is a
crash shaped like 2021-05-19 (ETH −43 % peak-to-trough close, partial rebound), a 12,000-account
multi-asset book and a few hundred ledger events. Nothing here is real data: the path is a deterministic
profile built from a handful of *measured parameters* plus seeded, fat-tailed, correlated noise, and the
book is drawn from stated distributions. ``measure_calibration`` / ``calibration_report`` recompute every
parameter from ``../shared/data`` (when present) so the constants below can be checked; see
``docs/demo.md``. Same seed → byte-identical files.
"""

from __future__ import annotations

import importlib.resources
import itertools
import json
import math
import os
import pathlib
import tomllib
from collections.abc import Mapping

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
) -> pd.DataFrame:
    """A ledger of supply/withdraw/borrow/repay events after the snapshot, inside the price window.

    Existing accounts react to the market (``EVENT_MIX``): top-ups and repayments cluster on the crash
    day and favour the lowest health factors; some repay or withdraw more than they hold (the replay
    caps these and counts ``capped_events_usd``). ``new_accounts`` fresh accounts appear only here: each
    supplies WETH, WBTC or USDC and three in four later borrow stablecoins (or WETH against USDC) at a
    health factor of 1.4–2.5 at that moment's prices.

    Parameters
    ----------
    rng : numpy Generator.
    book : the snapshot from ``generate_book`` (token units).
    prices : prices from ``generate_prices`` (sizes new borrowers' loans).
    n_events : int, number of events (≥ 2 × ``new_accounts``); fewer only when the book has no
        supplier or no borrower to draw a kind of event from.
    new_accounts : int, accounts that exist only in the ledger.

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

    Prices, book and events come from three independent child streams of ``seed`` (so changing
    ``accounts`` does not change the market). The book targets health factors at the first generated
    prices. Numbers are written with 10 significant digits, LF line ends, no index.

    Parameters
    ----------
    out_dir : directory, created if missing; existing demo files are overwritten.
    seed : int, the only source of randomness; same seed → byte-identical files.
    accounts : int, accounts in the snapshot (the ledger adds 40 more).

    Returns
    -------
    ``{"prices", "positions", "events", "config"}`` → paths of ``prices.csv``, ``positions.csv``,
    ``events.csv`` (DESIGN §2 formats) and ``demo.toml`` (DESIGN §3).
    """
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng_prices, rng_book, rng_events = np.random.default_rng(seed).spawn(3)
    prices = generate_prices(rng_prices)
    first = dict(zip(prices["asset"].iloc[: len(ASSETS)], prices["price_usd"].iloc[: len(ASSETS)], strict=True))
    book = generate_book(rng_book, accounts, prices=first)
    events = generate_events(rng_events, book, prices)
    paths = {name: out / f"{name}.csv" for name in ("prices", "positions", "events")}
    for name, frame in (("prices", prices), ("positions", book), ("events", events)):
        frame.to_csv(paths[name], index=False, float_format="%.10g", lineterminator="\n")
    paths["config"] = out / "demo.toml"
    paths["config"].write_text(demo_config_text(), encoding="utf-8", newline="\n")
    return paths


# ---------------------------------------------------------------------------------------------------
# calibration: recompute every measured constant from ../shared/data

_ETH_10MIN = "crash_days_stablesims/eth_usd_10min/{}.json"
_DAI_BLACK_THURSDAY = "crash_days_stablesims/black_thursday_extra/dai_usd_10min_2020-03-12.json"
_ETH_MINUTE_JAN21 = "eth_usdt_minute_jan2021_riskdao/data_unified_0_ethusdt.csv.gz"
_COINGECKO = "coingecko_hourly_2021_2023_bhemen/{}_usd.csv.gz"


def default_shared_data_dir() -> pathlib.Path:
    """``$MBT_SHARED_DATA`` if set, else ``shared/data`` beside the project root (DESIGN §8).

    The folder may not exist (e.g. after a non-editable ``pip install``).
    """
    override = os.environ.get("MBT_SHARED_DATA", "").strip()
    if override:
        return pathlib.Path(override).expanduser().resolve()
    return pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


def _bars(path: pathlib.Path) -> tuple[np.ndarray, pd.DataFrame]:
    """log(close / first open) with the open prepended (element i+1 = close of bar i), and the bars."""
    bars = pd.DataFrame(json.loads(path.read_text()))
    x = np.log(np.concatenate(([bars["price_open"].iloc[0]], bars["price_close"].to_numpy())))
    return x - x[0], bars


def _coingecko(root: pathlib.Path, symbol: str) -> pd.Series:
    raw = pd.read_csv(root / _COINGECKO.format(symbol))
    index = pd.to_datetime(raw["timestamp"], unit="ms", utc=True)
    return pd.Series(raw["USD_price"].to_numpy(), index=index).sort_index()


def _on_grid(series: pd.Series, start: str, end: str, freq: str) -> np.ndarray:
    grid = pd.date_range(start, end, freq=freq, tz="UTC")
    return np.interp(grid.asi8, series.index.asi8, series.to_numpy())


def _measure_eth_crash(x: np.ndarray, bars: pd.DataFrame) -> dict[str, float]:
    out: dict[str, float] = {}
    trough = int(np.argmin(x))
    leg1 = int(np.argmin(x[: 8 * 6 + 1]))
    plateau = trough - 24 + int(np.argmax(x[trough - 24 : trough]))  # highest close in the 4 h before
    rebound = trough + int(np.argmax(x[trough:]))
    anchors = [0, leg1, plateau, trough - 1, trough, trough + 1, rebound, len(x) - 1]
    for i, a in enumerate(anchors):
        out[f"anchor_{i}_step"] = float(a)
        out[f"anchor_{i}_ratio"] = float(np.exp(x[a]))
    for i, (a, b) in enumerate(itertools.pairwise(anchors)):
        r = np.diff(x[a : b + 1])
        out[f"segment_{i}_vol"] = float(np.sqrt(np.mean((r - r.mean()) ** 2))) if r.size else 0.0
    r = np.diff(x)
    peak = float(np.max(x[: trough + 1]))
    out["drawdown_close"] = float(1 - np.exp(x[trough] - peak))
    out["drawdown_low"] = float(1 - bars["price_low"].min() / bars["price_high"].iloc[:trough].max())
    out["drawdown_hours"] = float((trough - int(np.argmax(x[: trough + 1]))) / 6)
    span = np.exp(peak) - np.exp(x[trough])
    out["rebound_high_fraction"] = float((np.exp(x[rebound]) - np.exp(x[trough])) / span)
    out["close_recovery_fraction"] = float((np.exp(x[-1]) - np.exp(x[trough])) / span)
    out["max_10min_drop"] = float(np.expm1(r.min()))
    out["day_vol_10min"] = float(r.std(ddof=1))
    return out


def measure_calibration(shared_data_dir: pathlib.Path | str | None = None) -> dict[str, float] | None:
    """Recompute the demo's calibration figures from the real data in ``shared/data``.

    Parameters
    ----------
    shared_data_dir : directory holding the PROVENANCE.md data sets; default ``default_shared_data_dir()``.

    Returns
    -------
    dict figure name → value (ratios as fractions, volatilities as std of log returns per 10 minutes
    unless the name says otherwise), or ``None`` when any needed file is absent.
    """
    root = pathlib.Path(shared_data_dir) if shared_data_dir is not None else default_shared_data_dir()
    needed = [
        root / _ETH_10MIN.format("05-19-2021"),
        root / _ETH_10MIN.format("03-12-2020"),
        root / _DAI_BLACK_THURSDAY,
        root / _ETH_MINUTE_JAN21,
    ]
    needed += [root / _COINGECKO.format(s) for s in ASSETS]
    if not all(p.is_file() for p in needed):
        return None
    x, bars = _bars(root / _ETH_10MIN.format("05-19-2021"))
    out = {"eth_crash_day_open": float(bars["price_open"].iloc[0])}
    out |= {f"eth_{k}": v for k, v in _measure_eth_crash(x, bars).items()}
    bt, bt_bars = _bars(root / _ETH_10MIN.format("03-12-2020"))
    bt_m = _measure_eth_crash(bt, bt_bars)
    out |= {f"black_thursday_eth_{k}": bt_m[k] for k in ("drawdown_close", "drawdown_low", "day_vol_10min")}
    dai_bt = pd.DataFrame(json.loads((root / _DAI_BLACK_THURSDAY).read_text()))
    out["black_thursday_dai_max_close"] = float(dai_bt["price_close"].max())

    minute = pd.read_csv(root / _ETH_MINUTE_JAN21, usecols=["timestamp_x", "ask_price", "bid_price"])
    mid = pd.Series(
        ((minute["ask_price"] + minute["bid_price"]) / 2).to_numpy(),
        index=pd.to_datetime(minute["timestamp_x"], unit="us", utc=True),
    )
    r = np.log(mid.resample("10min").last().dropna()).diff().dropna()
    by_day = r.groupby(r.index.floor("D"))
    out["eth_calm_vol_10min"] = float(by_day.std().median())
    z = (r - by_day.transform("mean")) / by_day.transform("std")
    kurt = float(np.mean(z**4) - 3)
    out["eth_calm_excess_kurtosis"] = kurt
    out["student_df"] = 4 + 6 / kurt

    cg = {s: _coingecko(root, s) for s in ASSETS}
    for s in VOLATILE:
        day = _on_grid(cg[s], "2021-05-18", "2021-05-21", "1D")
        out[f"{s}_day_before_ratio"] = float(day[1] / day[0])
        out[f"{s}_day_after_ratio"] = float(day[3] / day[2])
        out[f"{s}_crash_day_open"] = float(day[1])
        h = _on_grid(cg[s], "2021-05-19", "2021-05-20", "1h")
        t = int(np.argmin(h))
        out[f"{s}_log_drawdown"] = float(np.log(h[: t + 1].max() / h[t]))
    for s in VOLATILE:
        out[f"{s}_crash_beta"] = out[f"{s}_log_drawdown"] / out["WETH_log_drawdown"]
    after = np.diff(np.log(_on_grid(cg["WETH"], "2021-05-20", "2021-05-21", "1h")))
    out["eth_aftermath_vol_10min"] = float(after.std(ddof=1) / np.sqrt(6))
    two_h = np.diff(
        np.log(np.column_stack([_on_grid(cg[s], "2021-05-17", "2021-05-22", "2h") for s in VOLATILE])), axis=0
    )
    corr = np.corrcoef(two_h.T)
    crash_2h = np.diff(
        np.log(np.column_stack([_on_grid(cg[s], "2021-05-19", "2021-05-20", "2h") for s in VOLATILE])), axis=0
    )
    for j, s in enumerate(VOLATILE[1:], start=1):
        out[f"corr_crash_day_2h_WETH_{s}"] = float(np.corrcoef(crash_2h[:, 0], crash_2h[:, j])[0, 1])
    sd = two_h.std(axis=0, ddof=1)
    for i, a in enumerate(VOLATILE):
        out[f"{a}_vol_ratio"] = float(sd[i] / sd[0])
        for j in range(i + 1, len(VOLATILE)):
            out[f"corr_{a}_{VOLATILE[j]}"] = float(corr[i, j])
    for s in STABLES:
        calm = cg[s].loc["2021-05-10":"2021-05-16"]
        out[f"{s}_noise"] = float(1.4826 * np.median(np.abs(calm.to_numpy() - 1)))
        crash = cg[s].loc["2021-05-19"]
        out[f"{s}_crash_day_min"] = float(crash.min())
        out[f"{s}_crash_day_max"] = float(crash.max())
    return out


def used_calibration() -> dict[str, float]:
    """The calibration constants this module generates with, keyed like ``measure_calibration``."""
    out: dict[str, float] = {}
    for i, (step, ratio) in enumerate(CRASH_ANCHORS):
        out[f"eth_anchor_{i}_step"] = float(step)
        out[f"eth_anchor_{i}_ratio"] = ratio
    out |= {f"eth_segment_{i}_vol": v for i, v in enumerate(CRASH_SEGMENT_VOL)}
    out["eth_crash_day_open"] = CRASH_DAY_OPEN["WETH"]
    out["eth_calm_vol_10min"] = CALM_VOL
    out["eth_aftermath_vol_10min"] = AFTERMATH_VOL
    out["student_df"] = STUDENT_DF
    for s in VOLATILE:
        out[f"{s}_day_before_ratio"] = DAY_BEFORE_RATIO[s]
        out[f"{s}_day_after_ratio"] = DAY_AFTER_RATIO[s]
        out[f"{s}_crash_beta"] = CRASH_BETA[s]
        out[f"{s}_vol_ratio"] = VOL_RATIO[s]
        if s != "WETH":
            out[f"{s}_crash_day_open"] = CRASH_DAY_OPEN[s]
    for i, a in enumerate(VOLATILE):
        for j in range(i + 1, len(VOLATILE)):
            out[f"corr_{a}_{VOLATILE[j]}"] = float(CORRELATION[i, j])
    out |= {f"{s}_noise": v for s, v in STABLE_NOISE.items()}
    out[f"{DEPEG_ASSET}_crash_day_min"] = DAI_DEPEG_LOW
    out[f"{DEPEG_ASSET}_crash_day_max"] = DAI_DEPEG_HIGH
    return out


def calibration_report(shared_data_dir: pathlib.Path | str | None = None) -> str:
    """A plain-text table: every calibration figure measured from the data beside the value used.

    Figures measured for context only (no generator constant) show ``-`` as the used value. When the
    data is absent the report is one line saying so (never an error).
    """
    measured = measure_calibration(shared_data_dir)
    if measured is None:
        return "calibration data not found (DESIGN §8: ../shared/data); nothing measured"
    used = used_calibration()
    width = max(map(len, measured))
    lines = [f"{'figure':<{width}}  {'measured':>12}  {'used':>12}"]
    for key, value in measured.items():
        u = f"{used[key]:12.4f}" if key in used else f"{'-':>12}"
        lines.append(f"{key:<{width}}  {value:12.4f}  {u}")
    return "\n".join(lines)
