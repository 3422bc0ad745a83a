"""``mbt export RUN_ID|latest --format parquet|csv --out DIR``: every result table of a run, exactly."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from click.testing import CliRunner

from backtest.cli.main import cli
from backtest.outputs.metrics import METRICS
from tests.dbutil import build, replay
from tests.unit.test_scenarios import HEAD, POSITIONS, _prices


def test_export_writes_every_table_of_the_run(tmp_path: Path) -> None:
    db = build(tmp_path, prices=_prices(), positions=POSITIONS)
    toml = HEAD.replace("gas_usd = 1e12", "gas_usd = 0.0") + ('[[scenarios]]\nkind = "historical"\n[[scenarios]]\n'
                                                           'name = "s"\nkind = "shock-grid"\nassets = ["WETH"]\n'
                                                           'moves = [-0.4, -0.6]\n')
    out = replay(db, toml)
    other = replay(db, HEAD)   # a second run: only the asked one is exported
    assert other.run_id != out.run_id
    con = duckdb.connect(str(db), read_only=True)
    want = {t: con.execute(f"SELECT count(*) FROM {t} WHERE run_id = ?", [out.run_id]).fetchone()[0]
            for t in ("runs", "run_metrics", "liquidations", "timeseries", "account_states")}
    metrics = con.execute("SELECT rule, scenario, metric, value FROM run_metrics WHERE run_id = ? "
                          "ORDER BY rule, scenario, metric", [out.run_id]).fetchall()
    con.close()
    assert want["liquidations"] > 0 and want["run_metrics"] == 3 * len(METRICS) + 8 and want["account_states"] > 0
    res = CliRunner().invoke(cli, ["export", out.run_id, "--out", str(tmp_path / "pq"), "--db", str(db)])
    assert res.exit_code == 0, res.output
    for table, n in want.items():
        t = pq.read_table(tmp_path / "pq" / f"{table}.parquet")
        assert t.num_rows == n and set(t.column("run_id").to_pylist()) == {out.run_id}
    got = pq.read_table(tmp_path / "pq" / "run_metrics.parquet").select(["rule", "scenario", "metric", "value"])
    assert sorted(tuple(r.values()) for r in got.to_pylist()) == sorted(metrics)
    res = CliRunner().invoke(cli, ["export", out.run_id, "--format", "csv", "--out", str(tmp_path / "csv"),
                                   "--db", str(db)])
    assert res.exit_code == 0, res.output
    with open(tmp_path / "csv" / "liquidations.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == want["liquidations"] and rows[0]["run_id"] == out.run_id
    assert not (tmp_path / "csv" / "sweep_points.csv").exists()     # not a sweep


def test_export_latest_and_unknown_runs(tmp_path: Path) -> None:
    db = build(tmp_path, prices=_prices(), positions=POSITIONS)
    res = CliRunner().invoke(cli, ["export", "latest", "--out", str(tmp_path / "x"), "--db", str(db)])
    assert res.exit_code == 2 and "no runs stored" in res.stderr
    out = replay(db, HEAD)
    res = CliRunner().invoke(cli, ["export", "latest", "--out", str(tmp_path / "x"), "--db", str(db)])
    assert res.exit_code == 0 and pq.read_table(tmp_path / "x" / "runs.parquet").column("run_id").to_pylist() == [out.run_id]
    res = CliRunner().invoke(cli, ["export", "0123456789abcdef", "--out", str(tmp_path / "y"), "--db", str(db)])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "run '0123456789abcdef': not in" in res.stderr
