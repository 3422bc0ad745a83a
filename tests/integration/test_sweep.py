"""``mbt sweep``: grid parsing, points == separate rule sets, invalid points skipped, resume after SIGKILL."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import duckdb
import pytest

from backtest.errors import ConfigError
from backtest.sweep import grid_from_cli, key_path, parse_values
from tests.dbutil import build, replay
from tests.unit.test_scenarios import HEAD, POSITIONS, _prices

ROOT = Path(__file__).resolve().parents[2]
MBT = [sys.executable, "-c", "from backtest.cli.main import main; main()"]
SCEN = """
[[scenarios]]
kind = "historical"
[[scenarios]]
name = "drop"
kind = "shock-grid"
assets = ["WETH", "WBTC"]
moves = [-0.2, -0.35]
"""


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("sweep"), prices=_prices(), positions=POSITIONS)


def _cli(args: list[str]):
    from click.testing import CliRunner

    from backtest.cli.main import cli

    return CliRunner().invoke(cli, args)


def test_values_and_keys_parse_exactly() -> None:
    v = parse_values("0.70:0.85:0.01", "k")
    assert len(v) == 16 and v[0] == 0.70 and v[-1] == 0.85 and v[5] == 0.75
    assert parse_values("0.05,0.075,0.10", "k") == [0.05, 0.075, 0.10]
    assert key_path('assets."USDC.e".ltv') == ["assets", "USDC.e", "ltv"]
    assert grid_from_cli(["market.gas_usd=1,2"]) == {"market.gas_usd": [1.0, 2.0]}
    for bad, msg in (("0.9:0.8:0.01", "stop ≥ start"), ("1,x", "numbers separated by commas"),
                     ("0.1,0.1", "listed twice")):
        with pytest.raises(ConfigError, match=msg):
            parse_values(bad, "k")
    with pytest.raises(ConfigError, match="expected KEY=VALUES"):
        grid_from_cli(["assets.WETH.ltv"])


def test_sweep_points_equal_separate_rule_sets_and_invalid_points_are_skipped(db: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text(HEAD + SCEN)
    out = _cli(["sweep", str(cfg), "--db", str(db), "--json", "--grid", "assets.WETH.liquidation_threshold=0.7,0.8,0.9",
                "--grid", "assets.WETH.ltv=0.6,0.75"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    # only (0.7, 0.75) is invalid: ltv above the threshold
    assert [p["rule"] for p in doc["points"]] == ["sweep-0001", "sweep-0003", "sweep-0004", "sweep-0005", "sweep-0006"]
    assert len(doc["invalid"]) == 1 and "ltv" in doc["invalid"][0]["error"]
    assert "skipped assets.WETH.liquidation_threshold=0.7, assets.WETH.ltv=0.75" in out.stderr
    # the same rule sets written by hand, run as one plain run: identical per-scenario metrics
    hand = HEAD + SCEN
    for p in doc["points"]:
        hand += (f'\n[[rules]]\nname = "{p["rule"]}"\nbase = "base"\n[rules.assets.WETH]\n'
                 f'liquidation_threshold = {p["assets.WETH.liquidation_threshold"]!r}\nltv = {p["assets.WETH.ltv"]!r}\n')
    plain = {(r["rule"], r["scenario"]): r for r in replay(db, hand).results()}
    swept = {(r["rule"], r["scenario"]): r for r in doc["results"]}
    assert set(plain) == set(swept) and len(swept) == 6 * 3 + 6
    for key, row in swept.items():
        assert row == plain[key], key
    con = duckdb.connect(str(db), read_only=True)
    try:
        stored = con.execute("SELECT rule, key, value FROM sweep_points WHERE run_id = ? ORDER BY rule, key",
                             [doc["run_id"]]).fetchall()
    finally:
        con.close()
    assert stored[:2] == [("sweep-0001", "assets.WETH.liquidation_threshold", 0.7), ("sweep-0001", "assets.WETH.ltv", 0.6)]
    assert len(stored) == 10


def _tables(path: Path, run_id: str) -> dict[str, list]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(f"SELECT * EXCLUDE (run_id) FROM {t} WHERE run_id = ? ORDER BY ALL", [run_id]).fetchall()
                for t in ("run_metrics", "liquidations", "timeseries", "sweep_points", "sweep_jobs")}
    finally:
        con.close()


@pytest.mark.slow
def test_a_sweep_killed_with_sigkill_resumes_to_identical_tables(tmp_path: Path) -> None:
    import shutil

    base = build(tmp_path, prices=_prices(), positions=POSITIONS)
    cfg = tmp_path / "k.toml"
    cfg.write_text(HEAD + """
[[scenarios]]
name = "mc"
kind = "gbm"
lookback = "48h"
paths = 30
seed = 4
""")
    args = ["sweep", str(cfg), "--grid", "assets.WETH.liquidation_threshold=0.76:0.84:0.01",
            "--grid", "market.close_factor=0.5,1.0"]
    clean = tmp_path / "clean.duckdb"
    shutil.copy(base, clean)
    t0 = time.perf_counter()   # the uninterrupted run, timed as the killed ones start (a child process)
    ref = subprocess.run([*MBT, *args, "--db", str(clean), "--json"], cwd=ROOT, capture_output=True, text=True,
                         check=False)
    wall = time.perf_counter() - t0
    assert ref.returncode == 0, ref.stderr
    run_id = json.loads(ref.stdout)["run_id"]
    total = (1 + 18) * 30
    killed = tmp_path / "killed.duckdb"
    shutil.copy(base, killed)
    rng = random.Random(3)
    partial = []
    for k in range(12):   # kill at later and later fractions of the measured run until two kills landed mid-sweep
        proc = subprocess.Popen([*MBT, *args, "--db", str(killed)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(wall * min(0.98, 0.5 + 0.05 * k + rng.uniform(0.0, 0.03)))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        con = duckdb.connect(str(killed), read_only=True)
        try:
            partial.append(con.execute("SELECT count(*) FROM sweep_jobs WHERE run_id = ?", [run_id]).fetchone()[0]
                           if con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = "
                                          "'sweep_jobs'").fetchone()[0] else 0)
        finally:
            con.close()
        if sum(0 < n < total for n in partial) >= 2 or partial[-1] == total:
            break
    print("partial commits after each kill:", partial)
    assert any(0 < n < total for n in partial), partial       # at least one kill landed mid-sweep
    done = subprocess.run([*MBT, *args, "--db", str(killed), "--json"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"] == json.loads(ref.stdout)["results"]
    assert _tables(killed, run_id) == _tables(clean, run_id)


def test_sweep_errors_are_one_line(db: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "e.toml"
    cfg.write_text(HEAD)
    for args, text in ((["--grid", "assets.WETH.ltv=0.9,0.95"], "every point of the grid is invalid"),
                       ([], "no grid"),
                       (["--grid", "assets.WETH.ltv=0.5", "--base", "nope"], "no rule set named 'nope'")):
        out = _cli(["sweep", str(cfg), "--db", str(db), *args])
        assert out.exit_code == 2 and len(out.stderr.strip().splitlines()) == 1, out.output
        assert text in out.stderr
    bad = tmp_path / "b.toml"
    bad.write_text(HEAD + '\n[sweep]\nbse = "base"\n')
    out = _cli(["run", str(bad), "--db", str(db)])
    assert out.exit_code == 2 and "sweep.bse: unknown key" in out.stderr


@pytest.fixture(scope="module")
def swept(db: Path, tmp_path_factory) -> tuple[Path, str, dict]:
    cfg = tmp_path_factory.mktemp("rec") / "r.toml"
    cfg.write_text(HEAD + SCEN)
    out = _cli(["sweep", str(cfg), "--db", str(db), "--json",
                "--grid", "assets.WETH.liquidation_threshold=0.70:0.90:0.05", "--grid", "assets.WETH.ltv=0.65,0.70"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    return db, doc["run_id"], doc


def _star(doc: dict) -> dict[str, dict]:
    return {r["rule"]: r for r in doc["results"] if r["scenario"] == "*"}


def _hist(doc: dict) -> dict[str, dict]:
    return {r["rule"]: r for r in doc["results"] if r["scenario"] == "historical"}


def test_recommend_maximises_the_objective_under_constraints_and_limits(swept, tmp_path: Path) -> None:
    db, run_id, doc = swept
    star, hist = _star(doc), _hist(doc)
    values = {p["rule"]: p for p in doc["points"]}
    budget = sorted(star[r]["var_99_bad_debt_usd"] for r in values)[len(values) // 2]
    out_toml = tmp_path / "rec.toml"
    res = _cli(["recommend", run_id, "--objective", "capital_efficiency", "--constraint",
                f"var_99_bad_debt_usd <= {budget!r}", "--max-change", "assets.*.liquidation_threshold=0.06",
                "--db", str(db), "--out", str(out_toml)])
    assert res.exit_code == 0, res.output
    chosen = res.stdout.split()[1]
    # by hand: qualifying points, best capital efficiency, ties → smallest total change from the base (0.8 / 0.75)
    ok = [r for r in values if star[r]["var_99_bad_debt_usd"] <= budget
          and abs(values[r]["assets.WETH.liquidation_threshold"] - 0.8) <= 0.06 + 1e-12]
    best = max(hist[r]["capital_efficiency"] for r in ok)
    tied = [r for r in ok if hist[r]["capital_efficiency"] == best]
    expect = min(tied, key=lambda r: abs(values[r]["assets.WETH.liquidation_threshold"] - 0.8)
                 + abs(values[r]["assets.WETH.ltv"] - 0.75))
    assert chosen == expect
    rule = tomllib.loads(out_toml.read_text())["rules"][0]
    assert rule["name"] == "recommended"
    assert rule["assets"]["WETH"]["liquidation_threshold"] == values[expect]["assets.WETH.liquidation_threshold"]
    assert rule["assets"]["WETH"]["ltv"] == values[expect]["assets.WETH.ltv"]


def test_recommend_exits_1_with_the_closest_miss(swept) -> None:
    db, run_id, doc = swept
    res = _cli(["recommend", run_id, "--objective", "capital_efficiency", "--constraint", "var_99_bad_debt_usd < -1",
                "--db", str(db)])
    assert res.exit_code == 1 and "no point meets every constraint; closest:" in res.stdout
    assert "misses var_99_bad_debt_usd < -1" in res.stdout
    bad = _cli(["recommend", run_id, "--objective", "capital_efficency", "--db", str(db)])
    assert bad.exit_code == 2 and "unknown metric 'capital_efficency'" in bad.stderr


def test_frontier_is_exactly_the_non_dominated_set(swept) -> None:
    db, run_id, doc = swept
    res = _cli(["frontier", run_id, "--x", "capital_efficiency", "--y", "var_99_bad_debt_usd", "--db", str(db)])
    assert res.exit_code == 0, res.output
    shown = [line.split()[0] for line in res.stdout.splitlines()[2:]]
    star, hist = _star(doc), _hist(doc)
    pts = {r: (hist[r]["capital_efficiency"], star[r]["var_99_bad_debt_usd"]) for r in star}

    def dominated(r):
        x, y = pts[r]
        return any(x2 >= x and y2 <= y and (x2 > x or y2 < y) for q, (x2, y2) in pts.items() if q != r)

    assert set(shown) == {r for r in pts if not dominated(r)} and shown


@pytest.mark.slow
def test_a_sweep_on_a_dask_local_cluster_stores_what_local_threads_store(db: Path, tmp_path: Path) -> None:
    import shutil

    cfg = tmp_path / "d.toml"
    cfg.write_text(HEAD + SCEN)
    grid = ["--grid", "assets.WETH.liquidation_threshold=0.75,0.8,0.85"]
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    shutil.copy(db, a)
    shutil.copy(db, b)
    local = _cli(["sweep", str(cfg), "--db", str(a), "--json", *grid])
    dask = _cli(["sweep", str(cfg), "--db", str(b), "--json", "--executor", "dask", "--workers", "2", *grid])
    assert local.exit_code == 0 and dask.exit_code == 0, local.output + dask.output
    assert json.loads(local.stdout) == json.loads(dask.stdout)
    run_id = json.loads(local.stdout)["run_id"]
    assert _tables(a, run_id) == _tables(b, run_id)
