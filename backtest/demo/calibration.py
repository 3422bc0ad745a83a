"""Recompute every measured constant of ``backtest.demo`` from the real data in ``shared/data``.

The demo generator (``backtest.demo``) holds only numbers; this module re-measures each of them from the
PROVENANCE.md data sets so they can be checked (``tests/unit/test_demo.py``) and printed side by side
(``calibration_report``). Nothing here is needed to generate or run the demo, and no data file is copied
into the project. See ``docs/demo.md`` for what each figure means.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import pathlib

import numpy as np
import pandas as pd

from .generate import (
    ASSETS,
    CALM_VOL,
    AFTERMATH_VOL,
    CORRELATION,
    CRASH_ANCHORS,
    CRASH_BETA,
    CRASH_DAY_OPEN,
    CRASH_SEGMENT_VOL,
    DAI_DEPEG_HIGH,
    DAI_DEPEG_LOW,
    DAY_AFTER_RATIO,
    DAY_BEFORE_RATIO,
    DEPEG_ASSET,
    ETH_DAI_POOL_DEPTH_USD,
    ETH_DAI_POOL_LP_END,
    GRID_START,
    HISTORY_CORRELATION,
    HISTORY_DAYS,
    HISTORY_DRIFT,
    HISTORY_VOL,
    STABLE_DEPTH_USD,
    STABLE_NOISE,
    STABLES,
    STUDENT_DF,
    VOL_RATIO,
    VOLATILE,
)

_ETH_10MIN = "crash_days_stablesims/eth_usd_10min/{}.json"
_DAI_BLACK_THURSDAY = "crash_days_stablesims/black_thursday_extra/dai_usd_10min_2020-03-12.json"
_ETH_MINUTE_JAN21 = "eth_usdt_minute_jan2021_riskdao/data_unified_0_ethusdt.csv.gz"
_COINGECKO = "coingecko_hourly_2021_2023_bhemen/{}_usd.csv.gz"
_ETH_DAI_POOL = "crash_days_stablesims/uniswap_v2_eth_dai_reserves_10min/{}.json"
_CURVE_3POOL = "curve_3pool_reserves_2020_riskdao/3Pool_0xbebc44782c7db0a1a60cb6fe97d0b483032ff1c7_curve.csv.gz"
_UNIV3_USDC_USDT = "uniswap_v3_usdc_usdt_hourly_quantlet/uniswap_v3_usdc_usdt_1bp_hourly_pool_state_2022_2026.parquet"
_POOL_DAYS = ("09-05-2020", "01-11-2021", "01-21-2021", "02-22-2021", "05-19-2021", "06-21-2021")
DEPTH_FACTOR = 1 / math.sqrt(0.98) - 1  # quote sold into x·y = k to move its price −2 %, per unit of quote reserve


def default_shared_data_dir() -> pathlib.Path:
    """``$MBT_SHARED_DATA`` if set, else ``shared/data`` beside the project root (DESIGN §8).

    The folder may not exist (e.g. after a non-editable ``pip install``).
    """
    override = os.environ.get("MBT_SHARED_DATA", "").strip()
    if override:
        return pathlib.Path(override).expanduser().resolve()
    return pathlib.Path(__file__).resolve().parents[3] / "shared" / "data"  # backtest/demo/ → beside the root


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


def _measure_history(cg: dict[str, pd.Series]) -> dict[str, float]:
    """Daily log-return std, mean and correlations over the ``HISTORY_DAYS`` before the demo window.

    Prices are CoinGecko's hourly samples interpolated at 00:00 UTC, the times the demo writes history at.
    """
    start = (GRID_START - pd.Timedelta(days=HISTORY_DAYS)).strftime("%Y-%m-%d")
    out: dict[str, float] = {}
    r = {}
    for s in ASSETS:
        day = _on_grid(cg[s], start, GRID_START.strftime("%Y-%m-%d"), "1D")
        r[s] = np.diff(np.log(day))
        out[f"{s}_history_daily_vol"] = float(r[s].std(ddof=1))
        if s in VOLATILE:
            out[f"{s}_history_daily_drift"] = float(r[s].mean())
    corr = np.corrcoef(np.stack([r[s] for s in VOLATILE]))
    for i, a in enumerate(VOLATILE):
        for j in range(i + 1, len(VOLATILE)):
            out[f"history_corr_{a}_{VOLATILE[j]}"] = float(corr[i, j])
    return out


def _measure_eth_dai_pool(root: pathlib.Path) -> dict[str, float]:
    """Uniswap v2 ETH/DAI 2 % depth and LP withdrawal on the crash day (and, for context, other crash days).

    Depth is the DAI reserve × (1/√0.98 − 1): the DAI a seller of ETH receives while moving the pool price
    −2 % (fee ignored). In x·y = k the quote reserve is L·√p with L = √(x·y), so depth moves with √price
    and with L, the liquidity LPs leave in the pool; the ratio of L at the day's last block to its first
    measures their withdrawal.
    """
    out: dict[str, float] = {}
    for day in _POOL_DAYS:
        pool = pd.DataFrame(json.loads((root / _ETH_DAI_POOL.format(day)).read_text()))
        depth = pool["DAI"].to_numpy() * DEPTH_FACTOR
        lp = np.sqrt(pool["DAI"].to_numpy() * pool["WETH"].to_numpy())
        key = "eth_dai_pool" if day == "05-19-2021" else f"eth_dai_pool_{day}"
        out[f"{key}_lp_end"] = float(lp[-1] / lp[0])
        out[f"{key}_lp_min"] = float(lp.min() / lp[0])
        out[f"{key}_depth_min_to_max"] = float(depth.min() / depth.max())
        if day == "05-19-2021":
            out[f"{key}_depth_usd"] = float(depth[0])
            out[f"{key}_dai_reserve_usd"] = float(pool["DAI"].iloc[0])
            out[f"{key}_first_price"] = float(pool["DAI"].iloc[0] / pool["WETH"].iloc[0])
    return out


def _stableswap_d(x: np.ndarray, amp: float) -> float:
    """Curve's StableSwap invariant D for balances ``x`` (same units) and amplification A."""
    n = len(x)
    s, d = float(x.sum()), float(x.sum())
    ann = amp * n
    for _ in range(255):
        dp = d
        for xi in x:
            dp = dp * d / (xi * n)
        prev, d = d, (ann * s + dp * n) * d / ((ann - 1) * d + (n + 1) * dp)
        if abs(d - prev) <= 1e-12 * d:
            break
    return d


def _stableswap_y(x: np.ndarray, j: int, amp: float, d: float) -> float:
    """Balance of coin ``j`` that keeps D with the other balances of ``x``."""
    n = len(x)
    ann = amp * n
    c, s = d, 0.0
    for k in range(n):
        if k != j:
            s += x[k]
            c = c * d / (x[k] * n)
    c = c * d / (ann * n)
    b = s + d / ann
    y = d
    for _ in range(255):
        prev, y = y, (y * y + c) / (2 * y + b - d)
        if abs(y - prev) <= 1e-13 * d:
            break
    return y


def stableswap_depth(x: np.ndarray, i: int, j: int, amp: float, move: float = 0.02) -> float:
    """Coin ``i`` sold for coin ``j`` (fee ignored) that lowers i's marginal price in j by ``move``.

    Parameters
    ----------
    x : balances (USD-like units, e.g. dollars), one per coin; amp : Curve's A.

    Returns
    -------
    Amount of coin i (same units as ``x``), found by bisection on the marginal price.
    """
    d = _stableswap_d(x, amp)

    def price(bal: np.ndarray) -> float:
        h = 1e-6 * float(bal.sum())
        bumped = bal.copy()
        bumped[i] += h
        return (_stableswap_y(bal, j, amp, d) - _stableswap_y(bumped, j, amp, d)) / h

    target = (1 - move) * price(x)
    lo, hi = 0.0, 2.0 * float(x[j])
    for _ in range(60):
        mid = (lo + hi) / 2
        bal = x.copy()
        bal[i] += mid
        lo, hi = (mid, hi) if price(bal) > target else (lo, mid)
    return lo


def _measure_curve_3pool(root: pathlib.Path) -> dict[str, float]:
    """2 % depth of each 3pool coin at the median balances of the rows with A = 200 (Sep–Oct 2020).

    Each coin is sold into whichever other coin gives the deeper market.
    """
    raw = pd.read_csv(root / _CURVE_3POOL)
    raw.columns = [c.strip() for c in raw.columns]
    raw = raw[raw["ampfactor"] == 200]
    coins, decimals = ("DAI", "USDC", "USDT"), (18, 6, 6)
    cols = [next(c for c in raw.columns if c.startswith(f"reserve_{coin}_")) for coin in coins]
    bal = np.column_stack([raw[c].astype(float) / 10.0**dec for c, dec in zip(cols, decimals, strict=True)])
    x = np.median(bal, axis=0)
    out: dict[str, float] = {"curve_3pool_rows_a200": float(len(raw))}
    for i, coin in enumerate(coins):
        out[f"curve_3pool_{coin}_balance_usd"] = float(x[i])
        out[f"{coin}_depth_usd"] = max(stableswap_depth(x, i, j, 200.0) for j in range(3) if j != i)
    return out


def _measure_univ3_usdc_usdt(root: pathlib.Path) -> dict[str, float]:
    """Uniswap v3 USDC/USDT 1-bp pool, context only: in-range liquidity L in 2022 and in the USDC depeg
    (median L on 2023-03-11/12 ÷ median over the 30 days before).

    ``L·(1/√0.98 − 1)`` is the USDC that would move the price −2 % if L held over the whole range (an upper
    bound: the liquidity is concentrated within a few ticks of 1).
    """
    pool = pd.read_parquet(root / _UNIV3_USDC_USDT, columns=["hour", "poolTick", "poolLiquidity"])
    pool = pool.set_index("hour").sort_index()
    liq = pool["poolLiquidity"].astype(float)
    calm = float(liq.loc["2022"].median())
    before = float(liq.loc["2023-02-08":"2023-03-09"].median())
    depeg = liq.loc["2023-03-11":"2023-03-12"]
    return {
        "univ3_usdc_usdt_constant_l_depth_usd_2022": calm * DEPTH_FACTOR / 1e6,
        "univ3_usdc_usdt_depeg_min_tick_price": float(1.0001 ** pool["poolTick"].loc["2023-03-11":"2023-03-12"].min()),
        "univ3_usdc_usdt_depeg_liquidity_ratio": float(depeg.median() / before),
    }


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
    needed += [root / _ETH_DAI_POOL.format(d) for d in _POOL_DAYS]
    needed += [root / _CURVE_3POOL, root / _UNIV3_USDC_USDT]
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
    out |= _measure_history(cg)
    out |= _measure_eth_dai_pool(root)
    out |= _measure_curve_3pool(root)
    out |= _measure_univ3_usdc_usdt(root)
    return out


def used_calibration() -> dict[str, float]:
    """The calibration constants ``backtest.demo`` generates with, keyed like ``measure_calibration``."""
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
    for s in VOLATILE:
        out[f"{s}_history_daily_vol"] = HISTORY_VOL[s]
        out[f"{s}_history_daily_drift"] = HISTORY_DRIFT[s]
    for i, a in enumerate(VOLATILE):
        for j in range(i + 1, len(VOLATILE)):
            out[f"history_corr_{a}_{VOLATILE[j]}"] = float(HISTORY_CORRELATION[i, j])
    out["eth_dai_pool_depth_usd"] = ETH_DAI_POOL_DEPTH_USD
    out["eth_dai_pool_lp_end"] = ETH_DAI_POOL_LP_END
    out |= {f"{s}_depth_usd": v for s, v in STABLE_DEPTH_USD.items()}
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
