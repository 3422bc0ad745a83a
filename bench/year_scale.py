"""Year-scale benchmark: ``mbt run`` over one year of Ethereum blocks.

100,000 accounts × 10 assets × 2,628,000 steps (365 days of 12-second blocks), two rule sets of
``kind = "asset"``. The market is a calm year — a correlated Student-t random walk, ETH at 35 % annual
volatility, stablecoins mean-reverting within ±0.1 % of 1 — with two crash weeks: ETH −35 % over three days
then 40 % of the log fall recovered over four (at 30 % of the path), and −25 % over two days then half back
over five (at 72 %); the other volatile assets follow with their betas, volatility is ×3 in those weeks,
DAI trades at a premium and wstETH at a 2 % discount around the first trough. The book (Aave-v3-like
parameters, illustrative) mixes suppliers, long borrowers (volatile collateral, mostly stablecoin debt),
shorts (stablecoin collateral, volatile debt) and wstETH/WETH loopers; borrowers' health factors are
mostly 1.2–3 with a tail at 1.03–1.12. A few ledger events (default 0.2 per account) are spread over the
year.

Data (cached outside the git tree, in ``${TMPDIR:-/tmp}/mbt-bench-year/<size-seed>/``, keyed by the sizes,
the seed and a hash of the generator; delete the folder to rebuild):

- ``prices.parquet`` written with pyarrow (one row group per asset), ``positions.csv``, ``events.csv``,
  ``year.toml`` (``run.step = "12s"``; ``--grid prices`` uses the price timestamps instead);
- ``year.duckdb``: a fresh database. When ``mbt ingest csv --help`` mentions Parquet (the CLI reads
  ``*.parquet`` since commit 47bc885) everything is loaded by one
  ``mbt ingest csv --prices prices.parquet --positions … --events …``. With older code on the path
  (FALLBACK, marked below) positions and events go through ``mbt ingest csv`` and the Parquet prices
  through the project's Python ingest API, ``backtest.store.Store.ingest``, as a DataFrame shaped like the
  CSV adapter's output (both paths store identical rows: checked at the reduced scale). The manifest
  records which path built the cached database.

Then ``mbt run year.toml --db year.duckdb --json`` is timed as a child process (wall, CPU, peak RSS via GNU
``time``), and ``bench/run_phases.py`` runs it once more in a fresh process with every phase timed (read,
grid, compile, kernel, exact totals, metrics, result tables, write) and the peak RSS after each.

    python bench/year_scale.py                                   # full scale; minutes
    python bench/year_scale.py --steps 262800 --accounts 10000   # quick check (36.5 days)
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import common

GENERATOR_VERSION = "year-1"  # bump when the generated data changes shape
YEAR_STEPS = 2_628_000  # 365 days × 7,200 blocks of 12 s
STEP_S = 12
GRID_START_S = 1_704_067_200  # 2024-01-01T00:00:00Z
FIRST_BLOCK = 18_908_895  # roughly mainnet's block at GRID_START
DAY = 86_400 // STEP_S  # steps per day

# symbol → (price at step 0, crash beta, volatility relative to ETH); sorted() order is the engine's
YEAR_VOLATILE: dict[str, tuple[float, float, float]] = {
    "WETH": (2_280.0, 1.00, 1.00),
    "wstETH": (2_640.0, 1.00, 1.00),  # WETH × a staking ratio (see year_prices)
    "WBTC": (42_200.0, 0.62, 0.75),
    "LINK": (15.2, 1.19, 1.15),
    "UNI": (6.3, 1.15, 1.20),
    "AAVE": (106.0, 1.10, 1.20),
    "CRV": (0.59, 1.35, 1.45),
}
YEAR_STABLES = ("DAI", "USDC", "USDT")
ASSETS_10 = tuple(sorted((*YEAR_VOLATILE, *YEAR_STABLES)))
# (ltv, liquidation_threshold, liquidation_bonus): Aave v3 mainnet-like, illustrative
YEAR_RISK: dict[str, tuple[float, float, float]] = {
    "AAVE": (0.66, 0.73, 0.075),
    "CRV": (0.35, 0.41, 0.083),
    "DAI": (0.63, 0.77, 0.05),
    "LINK": (0.53, 0.68, 0.07),
    "UNI": (0.65, 0.77, 0.10),
    "USDC": (0.77, 0.80, 0.045),
    "USDT": (0.75, 0.78, 0.045),
    "WBTC": (0.73, 0.78, 0.05),
    "WETH": (0.80, 0.825, 0.05),
    "wstETH": (0.785, 0.81, 0.06),
}
TIGHTER_POINTS = 0.05  # rule set 2: LTV and threshold of every volatile asset 5 points lower
ETH_ANNUAL_VOL = 0.35
STUDENT_DF = 4.0
CORR = 0.80
STABLE_SD = 0.0005  # stablecoin deviation from 1 (moving average of white noise, 2 h window)
# crash weeks: (start as a share of the path, fall, days falling, share of the log fall recovered, days)
CRASHES = ((0.30, 0.35, 3, 0.40, 4), (0.72, 0.25, 2, 0.50, 5))
GAS_USD = 1.0
DEFAULT_OUT = Path(os.environ.get("TMPDIR") or "/tmp") / "mbt-bench-year"


# ---------------------------------------------------------------------------------------------------
# data


def crash_windows(steps: int) -> list[tuple[int, int, int]]:
    """(first step of the fall, trough, end of the recovery) of each crash week, clipped to the path."""
    out = []
    for share, _, fall_days, _, rec_days in CRASHES:
        t0 = int(share * steps)
        trough = min(t0 + fall_days * DAY, steps - 1)
        out.append((t0, trough, min(trough + rec_days * DAY, steps - 1)))
    return out


def _moving_average_noise(rng: np.random.Generator, steps: int, window: int, sd: float) -> np.ndarray:
    """Smooth noise of standard deviation ``sd``: a ``window``-step moving average of white noise."""
    w = rng.standard_normal(steps + window)
    c = np.cumsum(w)
    ma = (c[window:] - c[:-window]) / np.sqrt(window)
    return sd * ma[:steps]


def year_prices(assets: tuple[str, ...], steps: int, seed: int) -> np.ndarray:
    """(steps × assets) USD prices on a 12-second grid: calm correlated walk plus the crash weeks."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    profile = np.zeros(steps)  # ETH's deterministic log-price path: 0 outside the crashes
    vol_mult = np.ones(steps)
    troughs = []
    for (t0, trough, end), (_, fall, _, back, _) in zip(crash_windows(steps), CRASHES):
        lf = np.log(1.0 - fall)
        profile += np.interp(t, [0, t0, trough, end, steps - 1], [0, 0, lf, lf * (1 - back), lf * (1 - back)])
        vol_mult[t0:end] = 3.0
        troughs.append(trough)
    sd_step = ETH_ANNUAL_VOL / np.sqrt(YEAR_STEPS)
    vol = [a for a in assets if a in YEAR_VOLATILE and a != "wstETH"]
    common_f = rng.standard_normal(steps)
    mix = np.sqrt((STUDENT_DF - 2.0) / rng.chisquare(STUDENT_DF, size=steps))  # shared t-scale
    out = np.empty((steps, len(assets)))
    cols = {a: k for k, a in enumerate(assets)}
    for a in vol:
        p0, beta, vr = YEAR_VOLATILE[a]
        g = (np.sqrt(CORR) * common_f + np.sqrt(1.0 - CORR) * rng.standard_normal(steps)) * mix
        g[0] = 0.0
        walk = np.cumsum(sd_step * vr * vol_mult * g)
        out[:, cols[a]] = p0 * np.exp(beta * profile + walk)
    if "wstETH" in cols:
        p_ratio = YEAR_VOLATILE["wstETH"][0] / YEAR_VOLATILE["WETH"][0]
        ratio = p_ratio * np.exp(0.03 * t / YEAR_STEPS + _moving_average_noise(rng, steps, 600, 1e-4))
        depeg = -0.02 * np.exp(-0.5 * ((t - troughs[0]) / (1.5 * DAY)) ** 2) if troughs else 0.0
        out[:, cols["wstETH"]] = out[:, cols["WETH"]] * ratio * (1.0 + depeg)
    for a in assets:
        if a in YEAR_STABLES:
            noise = _moving_average_noise(rng, steps, 600, STABLE_SD) * np.where(vol_mult > 1, 3.0, 1.0)
            premium = sum(0.01 * np.exp(-0.5 * ((t - tr) / (0.5 * DAY)) ** 2) for tr in troughs) \
                if a == "DAI" else 0.0
            out[:, cols[a]] = 1.0 + noise + premium
    return out


def year_risk(assets: tuple[str, ...], shift: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ltv, lt, lb) in ``assets`` order; ``shift`` lowers LTV and threshold of the volatile assets."""
    s = np.array([shift if a in YEAR_VOLATILE else 0.0 for a in assets])
    ltv = np.array([YEAR_RISK[a][0] for a in assets]) - s
    lt = np.array([YEAR_RISK[a][1] for a in assets]) - s
    lb = np.array([YEAR_RISK[a][2] for a in assets])
    return ltv, lt, lb


def year_book(assets: tuple[str, ...], accounts: int, first_prices: np.ndarray, seed: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """A (collateral, debt) book in token units (accounts × assets).

    15 % of accounts only supply; 5 % are wstETH/WETH loopers at HF 1.03–1.12; of the other borrowers one
    in eight is short (stablecoin collateral, volatile debt), the rest long (1–3 collateral assets, mostly
    volatile; 1–2 debt assets, mostly stablecoins). Collateral worth is log-normal (median 5,000 USD).
    Health factors of long and short borrowers: 8 % 1.03–1.08, 4 % 1.08–1.2, 73 % log-uniform 1.2–3,
    15 % log-uniform 3–8.
    """
    rng = np.random.default_rng(seed)
    K = len(assets)
    _, lt, _ = year_risk(assets)
    is_vol = np.array([a in YEAR_VOLATILE for a in assets])
    k_eth, k_steth = assets.index("WETH"), assets.index("wstETH")
    u = rng.random(accounts)
    supplier = u < 0.15
    looper = (u >= 0.15) & (u < 0.20)
    short = ~supplier & ~looper & (rng.random(accounts) < 1 / 8)
    w_long = np.where(lt > 0, np.where(is_vol, 1.0, 0.3), 0.0)
    w_long[k_eth] += 2.0
    w_short = np.where((lt > 0) & ~is_vol, 1.0, 0.0)
    wc = np.where(short[:, None], w_short[None, :], w_long[None, :])
    n_coll = rng.choice([1, 2, 3], size=accounts, p=[0.55, 0.30, 0.15])
    coll_mask = common._weighted_pick(rng, wc, n_coll)
    w_debt_long = np.where(is_vol, 0.1, 1.0)
    w_debt_short = np.where(is_vol, 1.0, 0.0)
    w_debt_short[k_eth] += 2.0
    wd = np.where(short[:, None], w_debt_short[None, :], w_debt_long[None, :]) * ~coll_mask
    n_debt = np.where(supplier, 0, rng.choice([1, 2], size=accounts, p=[0.8, 0.2]))
    debt_mask = common._weighted_pick(rng, wd, n_debt)
    coll_mask[looper] = False
    coll_mask[looper, k_steth] = True
    debt_mask[looper] = False
    debt_mask[looper, k_eth] = True
    size_usd = np.clip(rng.lognormal(np.log(5000.0), 1.8, size=accounts), 50.0, 5e7)
    share = rng.exponential(size=(accounts, K)) * coll_mask
    share /= share.sum(axis=1, keepdims=True)
    coll_usd = share * size_usd[:, None]
    v = rng.random(accounts)
    hf = np.where(v < 0.08, rng.uniform(1.03, 1.08, accounts),
                  np.where(v < 0.12, rng.uniform(1.08, 1.2, accounts),
                           np.where(v < 0.85, np.exp(rng.uniform(np.log(1.2), np.log(3.0), accounts)),
                                    np.exp(rng.uniform(np.log(3.0), np.log(8.0), accounts)))))
    hf[looper] = rng.uniform(1.03, 1.12, int(looper.sum()))
    debt_total = (coll_usd @ lt) / hf
    dshare = rng.exponential(size=(accounts, K)) * debt_mask
    dsum = dshare.sum(axis=1, keepdims=True)
    dshare = np.divide(dshare, dsum, out=np.zeros_like(dshare), where=dsum > 0)
    debt_usd = dshare * debt_total[:, None]
    return coll_usd / first_prices, debt_usd / first_prices


def config_text(start: str, end: str, grid: str) -> str:
    lines = ["# bench/year_scale.py: generated; a year of 12-second blocks, two rule sets (kind = asset)",
             "[run]", 'name = "bench-year"', f'start = "{start}"', f'end = "{end}"']
    if grid == "step":
        lines.append(f'step = "{STEP_S}s"')
    lines += ["", "[market]", 'liquidation = "aave"', "close_factor = 0.5", f"gas_usd = {GAS_USD}",
              'slippage = "none"']
    for name, shift in (("current", 0.0), ("tighter", TIGHTER_POINTS)):
        lines += ["", "[[rules]]", f'name = "{name}"', 'kind = "asset"']
        ltv, lt, lb = year_risk(ASSETS_10, shift)
        for k, a in enumerate(ASSETS_10):
            lines += [f"[rules.assets.{a}]", f"ltv = {round(float(ltv[k]), 4)}",
                      f"liquidation_threshold = {round(float(lt[k]), 4)}", f"liquidation_bonus = {lb[k]}"]
    return "\n".join(lines) + "\n"


def _iso(seconds: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").astype(object) + "Z"


def write_prices_parquet(path: Path, prices: np.ndarray, assets: tuple[str, ...]) -> None:
    """Long table (timestamp, asset, price_usd), one row group per asset, zstd."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    T = prices.shape[0]
    ts = pa.array((GRID_START_S + STEP_S * np.arange(T, dtype=np.int64)) * 1_000_000,
                  type=pa.timestamp("us", tz="UTC"))
    schema = pa.schema([("timestamp", pa.timestamp("us", tz="UTC")), ("asset", pa.dictionary(pa.int8(), pa.string())),
                        ("price_usd", pa.float64())])
    with pq.ParquetWriter(path, schema, compression="zstd") as w:
        for k, a in enumerate(assets):
            asset = pa.DictionaryArray.from_arrays(pa.array(np.zeros(T, np.int8)), pa.array([a]))
            w.write_table(pa.table([ts, asset, pa.array(np.ascontiguousarray(prices[:, k]))], schema=schema),
                          row_group_size=T)


def generate(work: Path, accounts: int, steps: int, events: int, seed: int, grid: str) -> dict[str, Path]:
    import pandas as pd

    assets = ASSETS_10
    files = {"prices": work / "prices.parquet", "positions": work / "positions.csv",
             "events": work / "events.csv", "config": work / "year.toml"}
    t0 = time.perf_counter()
    prices = year_prices(assets, steps, seed)
    write_prices_parquet(files["prices"], prices, assets)
    t1 = time.perf_counter()
    coll, debt = year_book(assets, accounts, prices[0], seed + 1)
    _, lt, _ = year_risk(assets)
    stable = np.array([a in YEAR_STABLES for a in assets])
    ev = common.random_events(coll, debt, prices, events, seed + 2, lt > 0, stable)
    del prices
    raw = np.random.default_rng(seed + 3).bytes(20 * accounts).hex()
    ids = np.asarray(["0x" + raw[40 * i:40 * (i + 1)] for i in range(accounts)], dtype=object)
    a_idx, k_idx = np.nonzero((coll > 0) | (debt > 0))
    names = np.asarray(assets, dtype=object)
    pd.DataFrame({"account": ids[a_idx], "asset": names[k_idx], "collateral": coll[a_idx, k_idx],
                  "debt": debt[a_idx, k_idx]}).to_csv(files["positions"], index=False)
    # an event at step s happened within the 12 s before its block's grid point (s ≥ 1)
    before = np.random.default_rng(seed + 4).integers(0, STEP_S, len(ev.step))
    secs = GRID_START_S + STEP_S * ev.step - before
    order = np.lexsort((-before, ev.step))
    secs, before_o = secs[order], before[order]
    block = FIRST_BLOCK + ev.step[order] - (before_o > 0)  # the block that held the event
    log_index = np.zeros(len(block), dtype=np.int64)
    if len(block):
        starts = np.r_[0, np.flatnonzero(np.diff(block)) + 1]
        log_index = np.arange(len(block)) - np.repeat(starts, np.diff(np.r_[starts, len(block)]))
    actions = np.asarray(["supply", "withdraw", "borrow", "repay"], dtype=object)
    pd.DataFrame({"timestamp": _iso(secs), "account": ids[ev.account[order]], "asset": names[ev.asset[order]],
                  "action": actions[ev.action[order]], "amount": ev.amount[order], "block": block,
                  "log_index": log_index}).to_csv(files["events"], index=False)
    grid_s = GRID_START_S + STEP_S * np.array([0, steps - 1])
    start, end = _iso(grid_s)
    files["config"].write_text(config_text(start, end, grid), encoding="utf-8")
    print(f"  prices {steps:,} × {len(assets)} generated and written in {t1 - t0:.1f} s; book and events in "
          f"{time.perf_counter() - t1:.1f} s; " + ", ".join(f"{k} {files[k].stat().st_size / 2**20:.1f} MiB"
                                                            for k in ("prices", "positions", "events")))
    return files


def _generator_digest() -> str:
    parts = [inspect.getsource(f) for f in (year_prices, year_book, year_risk, crash_windows, config_text,
                                             _moving_average_noise, write_prices_parquet, generate,
                                             common.random_events, common._weighted_pick)]
    parts.append(repr((YEAR_VOLATILE, YEAR_STABLES, YEAR_RISK, TIGHTER_POINTS, ETH_ANNUAL_VOL, STUDENT_DF, CORR,
                       STABLE_SD, CRASHES, GAS_USD, STEP_S, GRID_START_S, FIRST_BLOCK)))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------
# ingest


def _mbt() -> str:
    exe = Path(sys.executable).with_name("mbt")
    return str(exe) if exe.exists() else (shutil.which("mbt") or "mbt")


def cli_reads_parquet() -> bool:
    """True once ``mbt ingest csv`` accepts Parquet (its help text mentions it)."""
    r = subprocess.run([_mbt(), "ingest", "csv", "--help"], capture_output=True, text=True)
    return r.returncode == 0 and "parquet" in r.stdout.lower()


def ingest_parquet_prices_via_store(db: Path, parquet: Path) -> int:
    """FALLBACK for code older than 47bc885 (no ``mbt ingest csv --prices FILE.parquet``): read the Parquet
    with pyarrow and load it through ``backtest.store.Store.ingest`` (the project's Python ingest API; one
    transaction, its own conflict checks), as a frame shaped like ``adapters.csv.read_table("prices", …)``'s
    output. Categorical columns keep 26 M rows from becoming Python strings. Only used when the ``mbt`` on
    the path cannot read Parquet; delete once such code need not be measured."""
    import pandas as pd
    import pyarrow.parquet as pq

    from backtest.store import Store

    table = pq.read_table(parquet)
    n = table.num_rows
    frame = pd.DataFrame({
        "asset": table["asset"].to_pandas(),  # dictionary → Categorical
        "source": pd.Categorical.from_codes(np.zeros(n, np.int8), ["csv"]),
        "timestamp": table["timestamp"].to_pandas(),
        "round_id": pd.Categorical.from_codes(np.zeros(n, np.int8), [0]),
        "price_usd": table["price_usd"].to_numpy(),
        "block": pd.arrays.IntegerArray(np.zeros(n, np.int64), np.ones(n, dtype=bool)),  # all missing
        "_line": np.arange(2, n + 2, dtype=np.int64),
    })
    del table
    with Store(str(db)) as store:
        return store.ingest({"prices": (frame, str(parquet))})["prices"]


def prepare(out: Path, accounts: int, steps: int, events: int, seed: int, grid: str) -> tuple[Path, Path, dict]:
    manifest = {"generator": GENERATOR_VERSION, "accounts": accounts, "steps": steps, "events": events,
                "seed": seed, "grid": grid, "generator_sha": _generator_digest(),
                "schema_sha": common.schema_digest()}
    work = out / f"a{accounts}-t{steps}-k{len(ASSETS_10)}-e{events}-s{seed}-{grid}"
    db, mpath = work / "year.duckdb", work / "manifest.json"
    if db.exists() and mpath.exists():
        saved = json.loads(mpath.read_text())
        if {k: saved.get(k) for k in manifest} == manifest:
            print(f"dataset: cached in {work} (delete it to regenerate); ingest: {saved.get('ingest', '?')}")
            return work / "year.toml", db, saved
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    print(f"dataset: generating into {work}")
    files = generate(work, accounts, steps, events, seed, grid)
    t0 = time.perf_counter()
    if cli_reads_parquet():
        how = "cli"
        cmd = [_mbt(), "ingest", "csv", "--prices", str(files["prices"]), "--positions", str(files["positions"]),
               "--events", str(files["events"]), "--db", str(db)]
        r = common.timed_child(cmd)
        if r.returncode != 0:
            raise SystemExit(f"ingest failed ({r.returncode}):\n{r.stderr}")
        print(f"  ingested with the CLI in {r.wall_s:.1f} s, peak RSS {r.maxrss_mib:.0f} MiB:\n  "
              f"{common.shell_line(cmd)}")
    else:
        how = "fallback: positions/events via `mbt ingest csv`, Parquet prices via backtest.store.Store.ingest"
        cmd = [_mbt(), "ingest", "csv", "--positions", str(files["positions"]), "--events", str(files["events"]),
               "--db", str(db)]
        r = common.timed_child(cmd)
        if r.returncode != 0:
            raise SystemExit(f"ingest failed ({r.returncode}):\n{r.stderr}")
        t1 = time.perf_counter()
        n = ingest_parquet_prices_via_store(db, files["prices"])
        print(f"  FALLBACK ingest (`mbt ingest csv` has no Parquet yet): positions + events with\n  "
              f"{common.shell_line(cmd)}\n  in {r.wall_s:.1f} s (peak RSS {r.maxrss_mib:.0f} MiB); {n:,} Parquet "
              f"price rows via Store.ingest in {time.perf_counter() - t1:.1f} s")
    for line in r.stderr.strip().splitlines():
        print(f"  | {line}")
    manifest["ingest"] = how
    manifest["ingest_s"] = round(time.perf_counter() - t0, 2)
    mpath.write_text(json.dumps(manifest, indent=1))
    return files["config"], db, manifest


# ---------------------------------------------------------------------------------------------------


def _report(walls: list[float], rss: list[float], results: list[dict], account_steps: int, what: str) -> None:
    best = min(walls)
    print(f"\n{what} end to end: best {best:.1f} s, median {statistics.median(walls):.1f} s over {len(walls)} "
          f"run(s); {account_steps:.3g} account-steps per rule set → {len(results) * account_steps / best:.3g} "
          f"account-steps/s over all rule sets, wall; peak RSS {max(rss):.0f} MiB; "
          f"target < 60 s: {'MET' if best < 60 else 'MISSED'}")
    print("\n| rule | liquidations | bad debt USD | insolvent accounts | capital efficiency |\n|---|---:|---:|---:|---:|")
    for row in results:
        print(f"| {row['rule']} | {row['liquidations']:,} | {row['bad_debt_usd']:,.2f} | "
              f"{row['insolvent_accounts']:,} | {row['capital_efficiency']} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=YEAR_STEPS, help="12-second steps (default: one year)")
    ap.add_argument("--events-per-account", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=20240101)
    ap.add_argument("--grid", choices=("step", "prices"), default="step",
                    help='step: run.step = "12s"; prices: the grid is the price timestamps')
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="cache folder (outside the git tree)")
    ap.add_argument("--runs", type=int, default=1, help="timed `mbt run` processes (best and median reported)")
    ap.add_argument("--threads", default="1", help="BLAS/OpenMP/numba threads of the children, or 'default'")
    ap.add_argument("--no-phases", action="store_true", help="skip the run_phases.py breakdown")
    ap.add_argument("--phases-only", action="store_true",
                    help="skip the separate `mbt run` child: the run_phases.py child (runner.run in a fresh "
                         "process, same imports, timers around its steps) gives the end-to-end figure; halves "
                         "the time at full scale")
    ap.add_argument("--generate-only", action="store_true", help="build the cached dataset and stop")
    ap.add_argument("--json-out", help="also write a JSON summary here (default: <cache>/summary-<time>.json)")
    args = ap.parse_args(argv)

    print(f"# reproduce: {common.reproduce_line('bench/year_scale.py')}")
    common.print_machine()
    events = int(round(args.events_per_account * args.accounts))
    config, db, manifest = prepare(Path(args.out), args.accounts, args.steps, events, args.seed, args.grid)
    if args.generate_only:
        return 0
    env = common.thread_env(args.threads)
    mbt_cmd = [_mbt(), "run", str(config), "--db", str(db), "--json"]
    pin = "" if args.threads == "default" else " ".join(f"{v}={args.threads}" for v in common.THREAD_VARS) + " "
    pp = f"PYTHONPATH={env['PYTHONPATH']} " if env.get("PYTHONPATH") else ""
    print(f"mbt: {pin}{pp}{common.shell_line(mbt_cmd)}")
    account_steps = args.accounts * args.steps
    runs = []
    for n in range(0 if args.phases_only else args.runs):
        r = common.timed_child(mbt_cmd, env=env)
        if r.returncode != 0:
            raise SystemExit(f"mbt run failed ({r.returncode}):\n{r.stderr[-3000:]}")
        runs.append(r)
        print(f"run {n + 1}: {r.wall_s:.1f} s wall, {r.cpu_s:.1f} s CPU, peak RSS {r.maxrss_mib:.0f} MiB "
              f"({common.load_line()})")
    walls = [r.wall_s for r in runs]
    summary = {"manifest": manifest, "cmd": common.shell_line(mbt_cmd), "walls_s": walls,
               "cpu_s": [r.cpu_s for r in runs], "peak_rss_mib": [r.maxrss_mib for r in runs],
               "load": common.load_line(), "machine": common.machine()}
    if runs:
        doc = json.loads(runs[-1].stdout)
        _report(walls, [r.maxrss_mib for r in runs], doc["results"], account_steps, "`mbt run`")
        summary["results"] = doc["results"]
    if not args.no_phases:
        child_cmd = [sys.executable, str(common.BENCH_DIR / "run_phases.py"), str(config), "--db", str(db)]
        child = common.timed_child(child_cmd, env=env)
        if child.returncode != 0:
            raise SystemExit(f"phases child failed:\n{child.stderr[-3000:]}")
        ph = json.loads(child.stdout)
        start = statistics.median(common.timed_child([sys.executable, "-c", "pass"]).wall_s for _ in range(3))
        print(f"\nphases of one run in a fresh process ({common.load_line()}):\n  {pp}{common.shell_line(child_cmd)}\n"
              f"  wall {child.wall_s:.1f} s, peak RSS {child.maxrss_mib:.0f} MiB; shape {ph['shape']}; "
              f"liquidation rows {ph['rows']}")
        print("\n(↳ rows are parts of the phase above them)")
        print("\n| phase | s | peak RSS after, MiB |\n|---|---:|---:|")
        print(f"| interpreter start (python -c pass) | {start:.3f} | |")
        for k, v in ph["phases_s"].items():
            print(f"| {common.phase_label(k)} | {v:.3f} | {ph['peak_rss_mib'][k]:.0f} |")
        print(f"| interpreter exit and the rest (wall − above) | "
              f"{child.wall_s - start - sum(v for k, v in ph['phases_s'].items() if not k.startswith(' ')):.3f} | |")
        print("\nevaluated share of account-steps per rule set: "
              + ", ".join(f"{x:.4%}" for x in ph["evaluated_share"]))
        summary["phases"] = ph
        if not runs:
            _report([child.wall_s], [child.maxrss_mib], ph["metrics"], account_steps,
                    "runner.run in a fresh process (bench/run_phases.py)")
            summary["results"] = ph["metrics"]
        summary["phases_wall_s"] = child.wall_s
        summary["phases_peak_rss_mib"] = child.maxrss_mib
    out = Path(args.json_out) if args.json_out else db.parent / f"summary-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(summary, indent=1))
    print(f"\nsummary: {out}")
    print(f"reproduce: {common.reproduce_line('bench/year_scale.py')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
