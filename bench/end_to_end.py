"""End-to-end benchmark: ``mbt run --json`` as a user runs it against a per-step NumPy implementation.

Builds (once; cached in ``bench/out/e2e/``) a seeded dataset of 200,000 accounts × 6 assets × 2,000
ten-minute steps with a crash (``common.crash_prices`` / ``random_book`` / ``random_events``), writes the
DESIGN §2 CSVs and a two-rule-set TOML (``liquidation = "aave"``), and loads them into a fresh DuckDB file
with ``mbt ingest csv``. Then, after an untimed warm-up round (and byte-compiling the package and the
generated kernel modules, as ``pip install .`` does: see ``_byte_compile``), it times ``mbt run CONFIG --db DB --json``
and ``python bench/numpy_baseline.py CONFIG --db DB`` as child processes (process start to exit; CPU and
peak RSS from GNU ``time``) in three interleaved rounds — mbt, numpy, mbt, numpy, mbt, numpy — takes each
command's **best** round, checks that every run printed the same metrics and that mbt's equal the
baseline's, and prints the ratio best ÷ best with the command to reproduce it (requirement ≤ 0.5; issue
#8's target ≤ 0.12). Finally ``bench/run_phases.py`` times the stages of ``mbt run`` in fresh processes
(imports, config, each DuckDB query, grid, fingerprint, rule compilation, kernel, exact totals, metrics,
result tables, write, exit), and ``python -X importtime`` names the heaviest imports.

To measure a fixed version of the code while the checkout is being edited, put a snapshot first:
``git archive HEAD | tar -x -C /tmp/mbt-snap && ln -s ../sql /tmp/mbt-snap/backtest/sql`` and run with
``PYTHONPATH=/tmp/mbt-snap`` (the children inherit it).

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
                "generator_sha": _generator_digest(), "schema_sha": common.schema_digest()}
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
    # -P: do not put the current directory first on sys.path (PYTHONPATH must win, as for `mbt`)
    r = subprocess.run([sys.executable, "-P", "-X", "importtime", "-c", "import backtest.cli.commands, backtest.runner"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"(python -X importtime failed: {r.stderr.strip().splitlines()[-1:]})")
        return []
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


def _compare(mbt_doc: dict, base_doc: dict) -> tuple[bool, bool]:
    """(counts and bad debt bit-identical, every compared metric bit-identical). Other USD sums may differ
    within 1e-9 relative (the contract does not fix their summation order, e.g. capped events are summed
    account-major by mbt, in time by the baseline); they are flagged ≈ in the table."""
    ok = True
    identical = True
    print("\n| rule | metric | mbt run | NumPy baseline | equal |")
    print("|---|---|---:|---:|:---:|")
    for m_row, b_row in zip(mbt_doc["results"], base_doc["results"], strict=True):
        for key in COMPARED:
            a, b = m_row[key], b_row[key]
            if a == b:
                flag = "yes"
            elif key not in EXACT and a is not None and b is not None and abs(a - b) <= 1e-9 * max(abs(a), abs(b)):
                flag = f"≈ (rel. {abs(a - b) / max(abs(a), abs(b)):.0e})"
                identical = False
            else:
                flag = "NO"
                ok = identical = False
            print(f"| {m_row['rule']} | {key} | {a!r} | {b!r} | {flag} |")
    return ok, identical


def phases(config: Path, db: Path, env: dict[str, str], n_runs: int) -> None:
    """Run ``bench/run_phases.py`` ``n_runs`` times in fresh processes; print the median (min–max) of each
    phase, the peak RSS after it, and the wall time the process spent outside the timed phases."""
    child_cmd = [sys.executable, str(common.BENCH_DIR / "run_phases.py"), str(config), "--db", str(db)]
    docs, walls = [], []
    start = statistics.median(common.timed_child([sys.executable, "-c", "pass"]).wall_s for _ in range(3))
    for _ in range(n_runs):
        child = common.timed_child(child_cmd, env=env)
        if child.returncode != 0:
            raise SystemExit(f"phases child failed:\n{child.stderr[-2000:]}")
        docs.append(json.loads(child.stdout))
        walls.append(child.wall_s)
    print(f"\nphases of `mbt run` in a fresh process, {n_runs} runs ({common.load_line()}):\n"
          f"  {common.shell_line(child_cmd)}\n"
          f"(wall {', '.join(f'{w:.2f}' for w in walls)} s; rows written {docs[-1]['rows']})")
    print("\n(↳ rows are parts of the phase above them)")
    print("\n| phase | median s | min–max s | peak RSS after, MiB |\n|---|---:|---|---:|")
    print(f"| interpreter start (python -c pass, median of 3) | {start:.3f} | | |")
    for k in docs[0]["phases_s"]:
        v = [d["phases_s"].get(k, 0.0) for d in docs]
        print(f"| {common.phase_label(k)} | {statistics.median(v):.3f} | {min(v):.3f}–{max(v):.3f} "
              f"| {statistics.median(d['peak_rss_mib'].get(k, 0.0) for d in docs):.0f} |")
    rest = [w - start - sum(v for k, v in d["phases_s"].items() if not k.startswith(" "))
            for w, d in zip(walls, docs)]
    print(f"| interpreter exit and the rest (wall − above) | {statistics.median(rest):.3f} "
          f"| {min(rest):.3f}–{max(rest):.3f} | |")
    print(f"| **total wall** | **{statistics.median(walls):.3f}** | {min(walls):.3f}–{max(walls):.3f} | |")
    print("\nevaluated share of account-steps per rule set: "
          + ", ".join(f"{x:.3%}" for x in docs[-1]["evaluated_share"]))


TARGET_RATIO = 0.12  # issue #8: best mbt ÷ best NumPy baseline, to be reached later
REQUIRED_RATIO = 0.5  # the original end-to-end requirement


def _doc_metrics(doc: dict) -> list[tuple]:
    return [(row["rule"], *(row[k] for k in COMPARED)) for row in doc["results"]]


BYTE_COMPILE = """
import compileall, os, sys
import adapters, backtest
from backtest.engine.kernels import kernel_dir
dirs = [os.path.dirname(m.__file__) for m in (backtest, adapters)] + [str(kernel_dir())]
ok = all(compileall.compile_dir(d, quiet=1) for d in dirs if os.path.isdir(d))
print(("" if ok else "FAILED ") + ", ".join(dirs))
"""


def _byte_compile(env: dict[str, str]) -> str:
    """Byte-compile the code the children import (the package the children find, and the generated kernel
    modules) into ``__pycache__``, as ``pip install .`` does at install: with ``PYTHONDONTWRITEBYTECODE`` set
    (as on the benchmark machine) an editable checkout's modules would otherwise be compiled from source in
    every child (≈ 0.05 s of each `mbt run`). Python still reads existing byte code under that setting."""
    out = subprocess.run([sys.executable, "-c", BYTE_COMPILE], env=env, capture_output=True, text=True)
    return out.stdout.strip() or out.stderr.strip()[-300:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accounts", type=int, default=200_000)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--events-per-account", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=20210519)
    ap.add_argument("--rounds", type=int, default=3,
                    help="timed interleaved rounds (mbt, numpy) after the warm-up; each command's figure is "
                         "its best round")
    ap.add_argument("--warmup", type=int, default=1,
                    help="untimed rounds first (numba cache, OS file cache); 0 to time from cold")
    ap.add_argument("--out", default=str(common.OUT_DIR / "e2e"), help="work directory (cached dataset)")
    ap.add_argument("--threads", default="1",
                    help="BLAS/OpenMP/numba threads of both children: a number, or 'default' to leave the "
                         "environment alone (OpenBLAS then spins 2 threads; badly so under background load)")
    ap.add_argument("--no-phases", action="store_true", help="skip the per-phase breakdown of `mbt run`")
    ap.add_argument("--phase-runs", type=int, default=3, help="fresh-process runs of bench/run_phases.py")
    args = ap.parse_args(argv)

    print(f"# reproduce: {common.reproduce_line('bench/end_to_end.py')}")
    common.print_machine()
    config, db = prepare(Path(args.out), args.accounts, args.steps, args.events_per_account, args.seed)
    mbt_cmd = [_mbt(), "run", str(config), "--db", str(db), "--json"]
    base_cmd = [sys.executable, str(common.BENCH_DIR / "numpy_baseline.py"), str(config), "--db", str(db)]

    env = common.thread_env(args.threads)
    pin = "" if args.threads == "default" else " ".join(f"{v}={args.threads}" for v in common.THREAD_VARS) + " "
    pp = f"PYTHONPATH={env['PYTHONPATH']} " if env.get("PYTHONPATH") else ""
    print(f"child environment: {pin or 'inherited unchanged (library default thread pools)'}{pp}")
    print(f"mbt:      {pin}{pp}{common.shell_line(mbt_cmd)}")
    print(f"baseline: {pin}{pp}{common.shell_line(base_cmd)}")
    runs: dict[str, list[common.ChildRun]] = {"mbt": [], "numpy": []}
    loads: list[str] = []
    cmds = {"mbt": mbt_cmd, "numpy": base_cmd}

    def child(name: str) -> common.ChildRun:
        r = common.timed_child(cmds[name], env=env)
        if r.returncode != 0:
            raise SystemExit(f"{name} failed ({r.returncode}):\n{r.stderr[-2000:]}")
        return r

    for n in range(args.warmup):  # untimed (numba cache, OS file cache)
        for name in cmds:
            print(f"warm-up {n + 1} {name}: {child(name).wall_s:.2f} s")
    print(f"byte-compiled for the children: {_byte_compile(env)}")
    for n in range(args.rounds):  # interleaved: mbt, numpy, mbt, numpy, …; background load hits both
        for name in cmds:
            runs[name].append(child(name))
        loads.append(common.load_line())
        print(f"round {n + 1}: mbt {runs['mbt'][-1].wall_s:.2f} s, numpy {runs['numpy'][-1].wall_s:.2f} s "
              f"({loads[-1]})")

    # every run of a command must print the same metrics, and mbt the same as the baseline
    mbt_docs = [json.loads(r.stdout) for r in runs["mbt"]]
    base_docs = [json.loads(r.stdout) for r in runs["numpy"]]
    stable = all(_doc_metrics(d) == _doc_metrics(mbt_docs[0]) for d in mbt_docs) and \
        all(_doc_metrics(d) == _doc_metrics(base_docs[0]) for d in base_docs)
    base_phases = json.loads(runs["numpy"][-1].stderr.strip().splitlines()[-1])
    same, identical = _compare(mbt_docs[-1], base_docs[-1])
    print(f"\nevery run of each command printed the same metrics: {stable}")
    print(f"mbt == baseline: counts and bad debt bit-identical: {same}; every compared metric bit-identical: "
          f"{identical}")

    print(f"\n{args.rounds} interleaved rounds (mbt, numpy) after {args.warmup} warm-up round(s); wall = process "
          f"start to exit; peak RSS = the child's maximum resident set size")
    print("\n| command | wall best s | wall median s | all rounds s | CPU s (best round, user+sys) | peak RSS MiB |")
    print("|---|---:|---:|---|---:|---:|")
    best: dict[str, float] = {}
    med: dict[str, float] = {}
    for name in ("mbt", "numpy"):
        w = [r.wall_s for r in runs[name]]
        b = min(range(len(w)), key=w.__getitem__)
        best[name], med[name] = w[b], statistics.median(w)
        label = "mbt run --json" if name == "mbt" else "NumPy baseline"
        print(f"| {label} | {w[b]:.2f} | {med[name]:.2f} | {', '.join(f'{x:.2f}' for x in w)} "
              f"| {runs[name][b].cpu_s:.2f} | {max(r.maxrss_mib for r in runs[name]):.0f} |")
    ratio = best["mbt"] / best["numpy"]
    print(f"\nmbt ÷ baseline, best of {args.rounds} interleaved rounds each: **{ratio:.3f}** "
          f"(×{1 / ratio:.1f}; median ÷ median {med['mbt'] / med['numpy']:.3f})")
    print(f"requirement ≤ {REQUIRED_RATIO}: {'MET' if ratio <= REQUIRED_RATIO else 'MISSED'}; "
          f"target ≤ {TARGET_RATIO} (issue #8): {'MET' if ratio <= TARGET_RATIO else 'not yet'} "
          f"(at this baseline, mbt would need ≤ {TARGET_RATIO * best['numpy']:.2f} s)")
    print(f"loads during the rounds: {'; '.join(loads)}")
    print(f"reproduce: {common.reproduce_line('bench/end_to_end.py')}")
    print("baseline phases (last run, s): " + ", ".join(f"{k} {v:.2f}" for k, v in base_phases["phases_s"].items()))

    if not args.no_phases:
        phases(config, db, env, args.phase_runs)
        print("heaviest imports (python -X importtime, cumulative s): "
              + ", ".join(f"{n} {s:.3f}" for n, s in _importtime()))
    return 0 if same and stable else 1


if __name__ == "__main__":
    sys.exit(main())
