"""Shared pieces of the benchmarks: a seeded crash-shaped market, a realistic position book, a ledger of
events, a child-process timer (wall time and peak RSS) and a description of the machine.

Nothing here is real data. The path is a calm correlated random walk (Student-t innovations), then the
volatile assets fall about 45 % over ~100 steps (ETH went 3,376 → 1,862 on 2021-05-19) with higher noise,
rebound part of the way, and drift on; stablecoins stay near 1 (DAI trades at a small premium around the
trough). The book gives each borrower 1–3 collateral assets and 1–2 debt assets sized to a target health
factor between 1.02 and 4, with a share of borrowers close to 1 so that the crash liquidates many of them.
Everything is drawn from one ``numpy.random.Generator`` seeded by the caller, so a seed fixes the bytes.
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"

# symbol → (price at step 0 in USD, crash beta (multiplies ETH's log fall), volatility relative to ETH)
VOLATILE_SPECS: dict[str, tuple[float, float, float]] = {
    "WETH": (3376.0, 1.00, 1.00),
    "WBTC": (42_959.0, 0.62, 0.75),
    "LINK": (42.62, 1.19, 1.06),
    "UNI": (35.4, 1.15, 1.10),
    "AAVE": (520.0, 1.10, 1.12),
}
STABLES = ("USDC", "DAI", "USDT")
# symbol → (ltv, liquidation_threshold, liquidation_bonus): Aave v2 mainnet-like; USDT is not collateral
RISK_PARAMS: dict[str, tuple[float, float, float]] = {
    "WETH": (0.80, 0.825, 0.05),
    "WBTC": (0.70, 0.75, 0.065),
    "LINK": (0.70, 0.75, 0.10),
    "UNI": (0.60, 0.65, 0.10),
    "AAVE": (0.60, 0.65, 0.10),
    "USDC": (0.80, 0.85, 0.05),
    "DAI": (0.75, 0.80, 0.05),
    "USDT": (0.0, 0.0, 0.0),
}
ASSETS_8 = ("AAVE", "DAI", "LINK", "UNI", "USDC", "USDT", "WBTC", "WETH")  # sorted, as the engine expects
ASSETS_6 = ("DAI", "LINK", "USDC", "USDT", "WBTC", "WETH")

CALM_VOL = 0.004  # ETH 10-minute log-return std outside the crash
CRASH_FALL = 0.45  # ETH peak-to-trough fall; other volatile assets scale the log fall by their beta
REBOUND = 0.40  # share of the log fall recovered after the trough
STUDENT_DF = 6.0
CORR = 0.85  # pairwise correlation of the volatile assets' innovations


def crash_prices(assets: tuple[str, ...], steps: int, seed: int, *, crash_start: int | None = None,
                 crash_len: int = 100) -> np.ndarray:
    """A (steps × assets) USD price path: calm walk, ~45 % crash over ``crash_len`` steps, partial rebound.

    Parameters
    ----------
    assets : symbols (column order); each in ``VOLATILE_SPECS`` or ``STABLES``
    steps : number of grid steps (10-minute spacing is assumed for the volatilities)
    seed : seed of the generator
    crash_start : first step of the fall (default 55 % into the path)
    crash_len : steps from the last calm point to the trough
    """
    rng = np.random.default_rng(seed)
    t0 = int(0.55 * steps) if crash_start is None else crash_start
    trough = min(t0 + crash_len, steps - 1)
    recovered = min(trough + 2 * crash_len, steps - 1)
    t = np.arange(steps)
    # deterministic profile of ETH's log price: 0 → log(1 − fall) at the trough → partial rebound
    fall = np.log(1.0 - CRASH_FALL)
    profile = np.interp(t, [0, t0, trough, recovered, steps - 1], [0.0, 0.0, fall, fall * (1 - REBOUND),
                                                                      fall * (1 - REBOUND)])
    vol_mult = np.ones(steps)
    vol_mult[t0:trough] = 2.0
    vol_mult[trough:recovered] = 1.5
    vol = [a for a in assets if a in VOLATILE_SPECS]
    n = len(vol)
    common = rng.standard_normal((steps, 1))
    own = rng.standard_normal((steps, n))
    g = np.sqrt(CORR) * common + np.sqrt(1.0 - CORR) * own
    mix = np.sqrt((STUDENT_DF - 2.0) / rng.chisquare(STUDENT_DF, size=(steps, 1)))
    shocks = g * mix
    shocks[0] = 0.0
    out = np.empty((steps, len(assets)))
    for k, a in enumerate(assets):
        if a in VOLATILE_SPECS:
            p0, beta, vr = VOLATILE_SPECS[a]
            walk = np.cumsum(CALM_VOL * vr * vol_mult * shocks[:, vol.index(a)])
            out[:, k] = p0 * np.exp(beta * profile + walk)
        elif a in STABLES:
            noise = 0.0015 * rng.standard_normal(steps) * np.where(vol_mult > 1, 2.0, 1.0)
            premium = 0.015 * np.exp(-0.5 * ((t - trough) / 10.0) ** 2) if a == "DAI" else 0.0
            out[:, k] = 1.0 + noise + premium
        else:
            raise ValueError(f"unknown asset {a!r}")
    return out


def risk_arrays(assets: tuple[str, ...], lt_shift: dict[str, float] | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ltv, liquidation_threshold, liquidation_bonus) arrays in ``assets`` order; ``lt_shift`` subtracts
    from both ltv and threshold of the named assets."""
    shift = lt_shift or {}
    ltv = np.array([RISK_PARAMS[a][0] - shift.get(a, 0.0) for a in assets])
    lt = np.array([RISK_PARAMS[a][1] - shift.get(a, 0.0) for a in assets])
    lb = np.array([RISK_PARAMS[a][2] for a in assets])
    return ltv, lt, lb


def _weighted_pick(rng: np.random.Generator, weights: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Boolean (rows × assets): for each row, ``count[row]`` distinct assets drawn with ``weights``
    (rows × assets, 0 = never) without replacement (Gumbel top-k)."""
    with np.errstate(divide="ignore"):
        keys = np.log(weights) + rng.gumbel(size=weights.shape)
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    return (rank < count[:, None]) & (weights > 0)


def random_book(assets: tuple[str, ...], accounts: int, first_prices: np.ndarray, seed: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """A (collateral, debt) book, token units, (accounts × assets).

    18 % of accounts only supply. Borrowers: 1–3 collateral assets (mostly volatile), 1–2 debt assets
    (mostly stablecoins; one in six borrowers is short a volatile asset against stablecoins), collateral
    worth a log-normal amount (median 4,000 USD), debt sized to a health factor drawn from: 15 % in
    1.02–1.20, 50 % log-uniform 1.20–2.5, 35 % log-uniform 2.5–4.
    """
    rng = np.random.default_rng(seed)
    K = len(assets)
    _, lt, _ = risk_arrays(assets)
    is_vol = np.array([a in VOLATILE_SPECS for a in assets])
    eth = np.array([a == "WETH" for a in assets])
    borrower = rng.random(accounts) >= 0.18
    short = borrower & (rng.random(accounts) < 1 / 6)
    # collateral choice weights per row
    w_long = np.where(lt > 0, np.where(is_vol, 1.0, 0.25), 0.0) + 2.0 * eth
    w_short = np.where((lt > 0) & ~is_vol, 1.0, 0.0)
    wc = np.where(short[:, None], w_short[None, :], w_long[None, :])
    n_coll = rng.choice([1, 2, 3], size=accounts, p=[0.55, 0.30, 0.15])
    coll_mask = _weighted_pick(rng, wc, n_coll)
    # debt among the assets not used as collateral
    w_debt_long = np.where(is_vol, 0.15, 1.0)
    w_debt_short = np.where(is_vol, 1.0, 0.0) + 2.0 * eth
    wd = np.where(short[:, None], w_debt_short[None, :], w_debt_long[None, :]) * ~coll_mask
    n_debt = np.where(borrower, rng.choice([1, 2], size=accounts, p=[0.8, 0.2]), 0)
    debt_mask = _weighted_pick(rng, wd, n_debt)
    size_usd = np.clip(rng.lognormal(np.log(4000.0), 1.8, size=accounts), 20.0, 5e7)
    share = rng.exponential(size=(accounts, K)) * coll_mask
    share /= share.sum(axis=1, keepdims=True)
    coll_usd = share * size_usd[:, None]
    u = rng.random(accounts)
    hf = np.where(u < 0.15, rng.uniform(1.02, 1.20, accounts),
                  np.where(u < 0.65, np.exp(rng.uniform(np.log(1.2), np.log(2.5), accounts)),
                           np.exp(rng.uniform(np.log(2.5), np.log(4.0), accounts))))
    debt_total = (coll_usd @ lt) / hf
    dshare = rng.exponential(size=(accounts, K)) * debt_mask
    dsum = dshare.sum(axis=1, keepdims=True)
    dshare = np.divide(dshare, dsum, out=np.zeros_like(dshare), where=dsum > 0)
    debt_usd = dshare * debt_total[:, None]
    return coll_usd / first_prices, debt_usd / first_prices


@dataclass
class EventArrays:
    """A ledger in application order: step (≥ 1), account, asset, action (0 supply, 1 withdraw, 2 borrow,
    3 repay), amount (token units), and the seconds before its grid point at which it happened."""

    step: np.ndarray
    account: np.ndarray
    asset: np.ndarray
    action: np.ndarray
    amount: np.ndarray
    seconds_before: np.ndarray


def random_events(coll: np.ndarray, debt: np.ndarray, prices: np.ndarray, count: int, seed: int,
                  collateral_ok: np.ndarray, stable: np.ndarray) -> EventArrays:
    """``count`` events on random accounts at random steps 1…T−1, sorted into application order.

    Supplies/withdrawals hit one of the account's collateral assets, borrows/repays one of its debt assets
    (a stablecoin when it has none); amounts are 5–60 % (supply, borrow) or 10–130 % (withdraw, repay —
    some get capped) of the snapshot balance, or 100–5,000 USD where the balance is zero.
    """
    rng = np.random.default_rng(seed)
    T, K = prices.shape
    A = coll.shape[0]
    acct = rng.integers(0, A, count)
    step = rng.integers(1, T, count)
    action = rng.choice(4, size=count, p=[0.30, 0.20, 0.25, 0.25]).astype(np.int8)
    on_coll = action <= 1
    bal = np.where(on_coll[:, None], coll[acct], debt[acct])
    fallback = np.where(on_coll[:, None], collateral_ok[None, :], stable[None, :]) * 1.0
    held = bal > 0
    weights = np.where(held.any(axis=1)[:, None], held * 1.0, fallback)
    asset = np.argmax(np.log(np.where(weights > 0, weights, 1e-300)) + rng.gumbel(size=(count, K)), axis=1)
    snap = bal[np.arange(count), asset]
    frac = np.where((action == 0) | (action == 2), rng.uniform(0.05, 0.6, count), rng.uniform(0.1, 1.3, count))
    usd = rng.uniform(100.0, 5000.0, count)
    amount = np.where(snap > 0, frac * snap, usd / prices[step, asset])
    before = rng.integers(0, 600, count)
    order = np.lexsort((-before, step))  # within a step: earlier first
    return EventArrays(step[order], acct[order], asset[order].astype(np.int64), action[order],
                       amount[order], before[order])


# ---------------------------------------------------------------------------------------------------
# child processes


@dataclass
class ChildRun:
    """Outcome of one timed child process."""

    wall_s: float
    cpu_s: float  # user + system CPU seconds of the child
    maxrss_mib: float
    returncode: int
    stdout: str
    stderr: str


def timed_child(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> ChildRun:
    """Run ``cmd``; wall time from start to reaped exit, the child's CPU time and peak RSS.

    CPU and peak RSS come from GNU ``/usr/bin/time`` when present: Linux carries the RSS high-water mark
    of the process that forks over ``execve``, so ``ru_maxrss`` of a child forked straight from this
    (possibly large) process would report at least this process's own peak. Under ``/usr/bin/time`` the
    command is forked from a tiny process instead. Without it, ``os.wait4`` is used (an upper bound).
    Output goes through temporary files so a chatty child cannot block on a pipe.
    """
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(mode="r", suffix=".time") as tf:
        full = [gnu_time, "-q", "-f", "%M %U %S", "-o", tf.name, *cmd] if gnu_time else cmd
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        rss_kib, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        if gnu_time:
            fields = tf.read().split()
            if len(fields) >= 3:
                rss_kib, cpu = int(fields[-3]), float(fields[-2]) + float(fields[-1])
        out.seek(0)
        err.seek(0)
        return ChildRun(wall, cpu, rss_kib / 1024.0, proc.returncode,
                        out.read().decode(errors="replace"), err.read().decode(errors="replace"))


THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def thread_env(threads: str) -> dict[str, str]:
    """The environment for child processes: ``threads = "default"`` leaves it alone, a number pins the
    BLAS/OpenMP/numba thread pools to that many threads."""
    env = dict(os.environ)
    if threads != "default":
        env.update({v: threads for v in THREAD_VARS})
    return env


def shell_line(cmd: list[str]) -> str:
    """``cmd`` as one copy-pasteable shell line, paths relative to the repository root where possible."""
    parts = []
    for c in cmd:
        try:
            c = str(Path(c).resolve().relative_to(REPO)) if os.sep in c and Path(c).exists() else c
        except ValueError:
            pass
        parts.append(shlex.quote(c))
    return " ".join(parts)


def machine() -> dict[str, str]:
    """CPU model, core counts, load and library versions, for the report header."""
    import duckdb
    import numba

    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "mbt_commit": _git("rev-parse", "--short", "HEAD"),
        "engine_fast.py": _engine_state(),
        "cpu": model,
        "nproc": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "duckdb": duckdb.__version__,
        "load_avg_1_5_15": " ".join(f"{x:.2f}" for x in load),
    }


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def _engine_state() -> str:
    """sha256 prefix of the ``backtest/engine/fast.py`` that is actually imported, and where it is from
    (this checkout, committed or not, or another tree put first on ``PYTHONPATH``)."""
    import hashlib

    import backtest.engine.fast as fast

    path = Path(fast.__file__).resolve()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    try:
        rel = path.relative_to(REPO)
    except ValueError:
        return f"{digest} (from {path.parent.parent.parent})"
    dirty = _git("status", "--porcelain", "--", str(rel))
    return digest + (" (uncommitted changes)" if dirty else " (as committed)")


def print_machine() -> None:
    m = machine()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in m.items()))


def reproduce_line(script: str) -> str:
    """The command that reproduces this run (from the repository root): the virtualenv actually in use,
    and ``PYTHONPATH`` when it is set (e.g. a ``git archive`` snapshot of the code put first)."""
    args = " ".join(shlex.quote(a) for a in sys.argv[1:])
    venv = Path(sys.prefix) / "bin" / "activate"
    prefix = f". {shlex.quote(str(venv))} && " if venv.exists() else ""
    pp = os.environ.get("PYTHONPATH")
    env = f"PYTHONPATH={shlex.quote(pp)} " if pp else ""
    return f"{prefix}{env}python {script}" + (f" {args}" if args else "")


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, MiB (``ru_maxrss``, KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def phase_label(label: str) -> str:
    """A ``run_phases.py`` label for a Markdown table: nested phases (two leading spaces) get a ↳."""
    return "↳ " + label.strip() if label.startswith("  ") else label


def load_line() -> str:
    """``uptime``-style load averages, for noting the load next to a timing."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return "load average " + ", ".join(f"{x:.2f}" for x in load)


def schema_digest() -> str:
    """Hash of the store's schema files (``sql/schema*.sql``): a cached benchmark database made under other
    table definitions (e.g. another column compression) is rebuilt, so it measures what ``mbt`` creates now."""
    import hashlib

    sql = Path(__file__).resolve().parent.parent / "sql"
    h = hashlib.sha256()
    for path in sorted(sql.glob("schema*.sql")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]
