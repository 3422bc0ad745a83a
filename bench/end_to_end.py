"""End-to-end benchmark: ``mbt run --json`` as a user runs it against a per-step NumPy implementation.

Builds (once; cached in ``bench/out/e2e/``) a seeded dataset of 200,000 accounts × 6 assets × 2,000
ten-minute steps with a crash (``common.crash_prices`` / ``random_book`` / ``random_events``), writes the
DESIGN §2 CSVs and a two-rule-set TOML (``liquidation = "aave"``), and loads them into a fresh DuckDB file
with ``mbt ingest csv``. Then, after one untimed warm-up of each, it times ``mbt run CONFIG --db DB --json``
and ``python bench/numpy_baseline.py CONFIG --db DB`` as child processes (process start to exit, peak
RSS from ``os.wait4``), alternating them, checks that both produce the same metrics, and reports the
ratio against the requirement (mbt ≤ ½ of the baseline). Finally ``bench/run_phases.py`` times the stages
of one run in a fresh process (imports, config, DuckDB read, numba cache load, replay, metrics, result
tables, write), and ``python -X importtime`` names the heaviest imports.

    python bench/end_to_end.py                   # --help for the knobs
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import common

GENERATOR_VERSION = "e2e-1"  # bump when the generated data changes shape
GRID_START = pd.Timestamp("2021-05-08T00:00:00Z")
STEP = pd.Timedelta(minutes=10)
# rule set 2 lowers LTV and liquidation threshold of the volatile assets by these amounts
TIGHTER = {"WETH": 0.05, "WBTC": 0.05, "LINK": 0.10}
GAS_USD = 1.0
COMPARED = ("liquidations", "bad_debt_usd", "realised_bad_debt_usd", "unrealised_bad_debt_usd",
            "liquidated_debt_usd", "liquidation_penalty_usd", "insolvent_accounts", "borrowing_power_usd",
            "capital_efficiency", "capped_events_usd")


def _mbt() -> str:
    exe = Path(sys.executable).with_name("mbt")
    return str(exe) if exe.exists() else (shutil.which("mbt") or "mbt")


def _iso(ts: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(ts.strftime("%Y-%m-%dT%H:%M:%SZ"), dtype=object)


def config_text(start: str, end: str) -> str:
    lines = ["# bench/end_to_end.py: generated; two rule sets, DESIGN §4 'aave' liquidations", "[run]",
             'name = "bench-e2e"', f'start = "{start}"', f'end = "{end}"', "", "[market]",
             'liquidation = "aave"', "close_factor = 0.5", f"gas_usd = {GAS_USD}", 'slippage = "none"', "",
             "[[rules]]", 'name = "current"']
    for a in common.ASSETS_6:
        ltv, lt, lb = common.RISK_PARAMS[a]
        lines += [f"[rules.assets.{a}]", f"ltv = {ltv}", f"liquidation_threshold = {lt}",
                  f"liquidation_bonus = {lb}"]
    lines += ["", "[[rules]]", 'name = "tighter"', 'base = "current"']
    for a, d in TIGHTER.items():
        ltv, lt, _ = common.RISK_PARAMS[a]
        lines += [f"[rules.assets.{a}]", f"ltv = {round(ltv - d, 4)}", f"liquidation_threshold = {round(lt - d, 4)}"]
    return "\n".join(lines) + "\n"


def generate(out: Path, accounts: int, steps: int, events_per_account: float, seed: int) -> dict[str, Path]:
    """Write prices.csv, positions.csv, events.csv and bench.toml into ``out``."""
    assets = common.ASSETS_6
    K = len(assets)
    prices = common.crash_prices(assets, steps, seed)
    coll, debt = common.random_book(assets, accounts, prices[0], seed + 1)
    _, lt, _ = common.risk_arrays(assets)
    stable = np.array([a in common.STABLES for a in assets])
    ev = common.random_events(coll, debt, prices, int(events_per_account * accounts), seed + 2, lt > 0, stable)
    grid = pd.date_range(GRID_START, periods=steps, freq=STEP)
    files = {k: out / f"{k}.csv" for k in ("prices", "positions", "events")}
    pd.DataFrame({"timestamp": np.repeat(_iso(grid), K), "asset": np.tile(np.asarray(assets, dtype=object), steps),
                  "price_usd": prices.ravel()}).to_csv(files["prices"], index=False)
    raw = np.random.default_rng(seed + 3).bytes(20 * accounts).hex()
    ids = np.asarray(["0x" + raw[40 * i:40 * (i + 1)] for i in range(accounts)], dtype=object)
    a_idx, k_idx = np.nonzero((coll > 0) | (debt > 0))
    pd.DataFrame({"account": ids[a_idx], "asset": np.asarray(assets, dtype=object)[k_idx],
                  "collateral": coll[a_idx, k_idx], "debt": debt[a_idx, k_idx]}).to_csv(files["positions"], index=False)
    ev_ts = grid[ev.step] - pd.to_timedelta(ev.seconds_before, unit="s")
    secs = (ev_ts - grid[0]).total_seconds().to_numpy().astype(np.int64)
    block = 12_400_000 + secs // 13  # ~13 s blocks, monotone in time
    log_index = np.zeros(len(block), dtype=np.int64)
    if len(block):
        starts = np.r_[0, np.flatnonzero(np.diff(block)) + 1]
        log_index = np.arange(len(block)) - np.repeat(starts, np.diff(np.r_[starts, len(block)]))
    actions = np.asarray(["supply", "withdraw", "borrow", "repay"], dtype=object)
    pd.DataFrame({"timestamp": _iso(ev_ts), "account": ids[ev.account],
                  "asset": np.asarray(assets, dtype=object)[ev.asset], "action": actions[ev.action],
                  "amount": ev.amount, "block": block, "log_index": log_index}).to_csv(files["events"], index=False)
    files["config"] = out / "bench.toml"
    files["config"].write_text(config_text(_iso(grid[:1])[0], _iso(grid[-1:])[0]), encoding="utf-8")
    return files


def _generator_digest() -> str:
    """Hash of the code and constants that shape the data, so a change to them regenerates the cache."""
    parts = [inspect.getsource(f) for f in (common.crash_prices, common.random_book, common.random_events,
                                             common.risk_arrays, common._weighted_pick, generate, config_text)]
    parts += [repr((common.VOLATILE_SPECS, common.STABLES, common.RISK_PARAMS, common.CALM_VOL, common.CRASH_FALL,
                    common.REBOUND, common.STUDENT_DF, common.CORR, GRID_START, STEP, TIGHTER, GAS_USD))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def prepare(out: Path, accounts: int, steps: int, events_per_account: float, seed: int) -> tuple[Path, Path]:
    """CSV + DuckDB for these parameters, reusing ``out`` when its manifest matches; → (config, db)."""
    manifest = {"generator": GENERATOR_VERSION, "accounts": accounts, "steps": steps,
                "events_per_account": events_per_account, "seed": seed,
                "generator_sha": _generator_digest()}
    tag = f"a{accounts}-t{steps}-s{seed}"
    work = out / tag
    db = work / "bench.duckdb"
    mpath = work / "manifest.json"
    if db.exists() and mpath.exists() and json.loads(mpath.read_text()) == manifest:
        print(f"dataset: cached in {common.shell_line([str(work)])} (delete it to regenerate)")
        return work / "bench.toml", db
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    files = generate(work, accounts, steps, events_per_account, seed)
    gen_s = time.perf_counter() - t0
    cmd = [_mbt(), "ingest", "csv", "--prices", str(files["prices"]), "--positions", str(files["positions"]),
           "--events", str(files["events"]), "--db", str(db)]
    ing = common.timed_child(cmd)
    if ing.returncode != 0:
        raise SystemExit(f"ingest failed ({ing.returncode}):\n{ing.stderr}")
    sizes = ", ".join(f"{k} {files[k].stat().st_size / 2**20:.1f} MiB" for k in ("prices", "positions", "events"))
    print(f"dataset: generated in {gen_s:.1f} s ({sizes}); ingested in {ing.wall_s:.1f} s, "
          f"peak RSS {ing.maxrss_mib:.0f} MiB:\n  {common.shell_line(cmd)}")
    for line in ing.stderr.strip().splitlines():
        print(f"  | {line}")
    mpath.write_text(json.dumps(manifest, indent=1))
    return files["config"], db


def _importtime(top: int = 8) -> list[tuple[str, float]]:
    """The heaviest top-level imports of ``mbt run`` (``python -X importtime``), cumulative seconds."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", "import backtest.cli.commands, backtest.runner"],
                       capture_output=True, text=True, check=True)
    rows = []
    for line in r.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cum, name = (x.strip() for x in line[len("import time:"):].split("|"))
        if cum.isdigit() and not name.startswith(" ") and "." not in name.strip():
            rows.append((name.strip(), int(cum) / 1e6))
    return sorted(rows, key=lambda x: -x[1])[:top]


# ---------------------------------------------------------------------------------------------------


EXACT = ("liquidations", "insolvent_accounts", "bad_debt_usd", "realised_bad_debt_usd", "unrealised_bad_debt_usd")


def _compare(mbt_doc: dict, base_doc: dict) -> bool:
    """Counts and bad debt must be bit-identical; other USD sums within 1e-9 relative (the contract does
    not fix their summation order, e.g. capped events are summed account-major by mbt, in time by the
    baseline)."""
    ok = True
    print("\n| rule | metric | mbt run | NumPy baseline | equal |")
    print("|---|---|---:|---:|:---:|")
    for m_row, b_row in zip(mbt_doc["results"], base_doc["results"], strict=True):
        for key in COMPARED:
            a, b = m_row[key], b_row[key]
            if a == b:
                flag = "yes"
            elif key not in EXACT and a is not None and b is not None and abs(a - b) <= 1e-9 * max(abs(a), abs(b)):
                flag = f"≈ (rel. {abs(a - b) / max(abs(a), abs(b)):.0e})"
            else:
                flag = "NO"
                ok = False
            print(f"| {m_row['rule']} | {key} | {a!r} | {b!r} | {flag} |")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accounts", type=int, default=200_000)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--events-per-account", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=20210519)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each command (after one warm-up)")
    ap.add_argument("--out", default=str(common.OUT_DIR / "e2e"), help="work directory (cached dataset)")
    ap.add_argument("--threads", default="1",
                    help="BLAS/OpenMP/numba threads of both children: a number, or 'default' to leave the "
                         "environment alone (OpenBLAS then spins 2 threads; badly so under background load)")
    ap.add_argument("--no-phases", action="store_true", help="skip the per-phase breakdown of `mbt run`")
    args = ap.parse_args(argv)

    print(f"# reproduce: {common.reproduce_line('bench/end_to_end.py')}")
    common.print_machine()
    config, db = prepare(Path(args.out), args.accounts, args.steps, args.events_per_account, args.seed)
    mbt_cmd = [_mbt(), "run", str(config), "--db", str(db), "--json"]
    base_cmd = [sys.executable, str(common.BENCH_DIR / "numpy_baseline.py"), str(config), "--db", str(db)]

    env = common.thread_env(args.threads)
    pin = "" if args.threads == "default" else " ".join(f"{v}={args.threads}" for v in common.THREAD_VARS) + " "
    print(f"child environment: {pin or 'inherited unchanged (library default thread pools)'}")
    print(f"mbt:      {pin}{common.shell_line(mbt_cmd)}")
    print(f"baseline: {pin}{common.shell_line(base_cmd)}")
    runs: dict[str, list[common.ChildRun]] = {"mbt": [], "numpy": []}
    cmds = {"mbt": mbt_cmd, "numpy": base_cmd}
    for name, cmd in cmds.items():  # untimed warm-ups (numba cache, OS file cache)
        r = common.timed_child(cmd, env=env)
        if r.returncode != 0:
            raise SystemExit(f"{name} failed ({r.returncode}):\n{r.stderr[-2000:]}")
        print(f"warm-up {name}: {r.wall_s:.2f} s")
    for _ in range(args.repeats):  # alternate, so background load spreads over both
        for name, cmd in cmds.items():
            r = common.timed_child(cmd, env=env)
            if r.returncode != 0:
                raise SystemExit(f"{name} failed ({r.returncode}):\n{r.stderr[-2000:]}")
            runs[name].append(r)
    mbt_doc = json.loads(runs["mbt"][-1].stdout)
    base_doc = json.loads(runs["numpy"][-1].stdout)
    base_phases = json.loads(runs["numpy"][-1].stderr.strip().splitlines()[-1])
    same = _compare(mbt_doc, base_doc)
    print(f"\nsame results (liquidation counts, insolvent accounts and bad debt bit-identical; other sums "
          f"within 1e-9): {same}")

    print(f"\n{args.repeats} timed runs each (alternating), wall = process start to exit, "
          f"peak RSS = the child's maximum resident set size")
    print("\n| command | wall best s | wall median s | all runs s | CPU s (median, user+sys) | peak RSS MiB |")
    print("|---|---:|---:|---|---:|---:|")
    stats = {}
    for name in ("mbt", "numpy"):
        w = [r.wall_s for r in runs[name]]
        stats[name] = (min(w), statistics.median(w))
        label = "mbt run --json" if name == "mbt" else "NumPy baseline"
        cpu = statistics.median(r.cpu_s for r in runs[name])
        print(f"| {label} | {min(w):.2f} | {statistics.median(w):.2f} | {', '.join(f'{x:.2f}' for x in w)} "
              f"| {cpu:.2f} | {max(r.maxrss_mib for r in runs[name]):.0f} |")
    ratio_med = stats["mbt"][1] / stats["numpy"][1]
    ratio_best = stats["mbt"][0] / stats["numpy"][0]
    verdict = "MET" if ratio_med <= 0.5 else "MISSED"
    print(f"\nmbt / baseline: median {ratio_med:.3f}, best {ratio_best:.3f} "
          f"(speed-up ×{1 / ratio_med:.1f}); requirement mbt ≤ 0.5 × baseline: {verdict}")
    print("baseline phases (last run, s): " + ", ".join(f"{k} {v:.2f}" for k, v in base_phases["phases_s"].items()))

    if not args.no_phases:
        child_cmd = [sys.executable, str(common.BENCH_DIR / "run_phases.py"), str(config), "--db", str(db)]
        child = common.timed_child(child_cmd, env=env)
        if child.returncode != 0:
            raise SystemExit(f"phases child failed:\n{child.stderr[-2000:]}")
        ph = json.loads(child.stdout)
        start = common.timed_child([sys.executable, "-c", "pass"])
        inside = sum(ph["phases_s"].values())
        print(f"\nphases of one `mbt run` in a fresh process: {common.shell_line(child_cmd)}\n"
              f"(total {child.wall_s:.2f} s wall, peak RSS {child.maxrss_mib:.0f} MiB; rows written {ph['rows']})")
        print("\n| phase | s | peak RSS so far, MiB |\n|---|---:|---:|")
        print(f"| interpreter start (≈ python -c pass) | {start.wall_s:.3f} | |")
        for k, v in ph["phases_s"].items():
            print(f"| {k} | {v:.3f} | {ph['peak_rss_mib'][k]:.0f} |")
        print(f"| interpreter exit and the rest (wall − above) | {child.wall_s - start.wall_s - inside:.3f} | |")
        print(f"\nevaluated share of account-steps per rule set: "
              + ", ".join(f"{x:.3%}" for x in ph["evaluated_share"]))
        print("heaviest imports (python -X importtime, cumulative s): "
              + ", ".join(f"{n} {s:.3f}" for n, s in _importtime()))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
