"""CSV → DuckDB → run → metrics through the real CLI (click runner, in-process)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from backtest.cli.main import cli
from backtest.cli import commands  # noqa: F401  (registers the verbs)
from backtest.outputs.metrics import METRICS

PRICES = """timestamp,asset,price_usd
2021-05-19T00:00:00Z,WETH,2000
2021-05-19T00:00:00Z,USDC,1
2021-05-19T01:00:00Z,WETH,1400
2021-05-19T02:00:00Z,WETH,1000
"""
POSITIONS = """account,asset,collateral,debt
0xAbC0000000000000000000000000000000000001,WETH,10,0
0xAbC0000000000000000000000000000000000001,USDC,0,12000
bob,WETH,100,0
bob,USDC,0,50000
"""
EVENTS = """timestamp,account,asset,action,amount
2021-05-19T00:30:00Z,bob,USDC,repay,1000
2021-05-19T01:30:00Z,carol,WETH,supply,5
2021-05-19T01:30:00Z,carol,USDC,borrow,3000
2021-05-19T01:40:00Z,carol,USDC,repay,5000
"""
CONFIG = """[run]
name = "toy"
start = "2021-05-19T00:00:00Z"
end = "2021-05-19T02:00:00Z"
[[rules]]
name = "current"
[rules.assets.WETH]
ltv = 0.80
liquidation_threshold = 0.825
liquidation_bonus = 0.05
[rules.assets.USDC]
ltv = 0.80
liquidation_threshold = 0.85
liquidation_bonus = 0.05
[[rules]]
name = "tight"
base = "current"
[rules.assets.WETH]
ltv = 0.6
liquidation_threshold = 0.7
"""


def mbt(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    for name, text in [("prices.csv", PRICES), ("positions.csv", POSITIONS), ("events.csv", EVENTS),
                       ("run.toml", CONFIG)]:
        (tmp_path / name).write_text(text)
    return tmp_path


def ingest(work: Path, *extra: str):
    return mbt("ingest", "csv", "--prices", str(work / "prices.csv"), "--positions", str(work / "positions.csv"),
               "--events", str(work / "events.csv"), "--db", str(work / "t.duckdb"), *extra)


def counts(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("prices", "positions", "events", "runs", "run_metrics", "liquidations", "timeseries")}


def test_ingest_run_json_and_tables(work):
    r = ingest(work)
    assert r.exit_code == 0, r.stderr
    assert counts(work / "t.duckdb")["prices"] == 4
    r = mbt("run", str(work / "run.toml"), "--db", str(work / "t.duckdb"), "--json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) == {"run_id", "results"}
    cur, tight = doc["results"]
    assert (cur["rule"], cur["kind"], cur["scenario"]) == ("current", "asset", "historical")
    # the WETH account: 4 calls, bad debt 1500 − 775/1.05 (see tests/unit/test_engine_examples.py)
    assert cur["liquidations"] == 4 and isinstance(cur["liquidations"], int)
    assert cur["bad_debt_usd"] == pytest.approx(1500 - 775 / 1.05)
    assert cur["capped_events_usd"] == pytest.approx(2000.0)  # carol repays 5000 of a 3000 debt
    assert tight["capital_efficiency"] == pytest.approx(0.75)
    assert tight["bad_debt_usd"] == 0.0 and tight["liquidations"] == 6
    c = counts(work / "t.duckdb")
    assert c["runs"] == 1 and c["run_metrics"] == 2 * len(METRICS) and c["liquidations"] == 10 and c["timeseries"] == 2 * 3
    with duckdb.connect(str(work / "t.duckdb"), read_only=True) as con:
        assert con.execute("SELECT DISTINCT account FROM liquidations").fetchall() == \
            [("0xabc0000000000000000000000000000000000001",)]
        # the view pivots metrics per rule
        assert con.execute("SELECT liquidations FROM run_results WHERE rule = 'tight'").fetchone()[0] == 6


def test_rerun_is_reproducible_and_replaces_rows(work):
    ingest(work)
    first = json.loads(mbt("run", str(work / "run.toml"), "--db", str(work / "t.duckdb"), "--json").stdout)
    before = counts(work / "t.duckdb")
    second = json.loads(mbt("run", str(work / "run.toml"), "--db", str(work / "t.duckdb"), "--json").stdout)
    assert first == second
    assert counts(work / "t.duckdb") == before
    # reference engine: same numbers, same run_id (the engine is not part of the config)
    ref = json.loads(mbt("run", str(work / "run.toml"), "--db", str(work / "t.duckdb"), "--json",
                         "--engine", "reference").stdout)
    assert ref == first
    # a change of data changes the run_id
    (work / "more.csv").write_text("timestamp,asset,price_usd\n2021-05-19T01:30:00Z,WETH,1300\n")
    assert mbt("ingest", "csv", "--prices", str(work / "more.csv"), "--db", str(work / "t.duckdb")).exit_code == 0
    third = json.loads(mbt("run", str(work / "run.toml"), "--db", str(work / "t.duckdb"), "--json").stdout)
    assert third["run_id"] != first["run_id"]


def test_loading_twice_is_a_noop_and_conflicts_need_overwrite(work):
    ingest(work)
    db = work / "t.duckdb"
    before = counts(db)
    assert ingest(work).exit_code == 0
    assert counts(db) == before
    (work / "conflict.csv").write_text("timestamp,asset,price_usd\n2021-05-19T01:00:00Z,WETH,1450\n")
    r = mbt("ingest", "csv", "--prices", str(work / "conflict.csv"), "--db", str(db))
    assert r.exit_code == 2
    assert r.stderr.strip().endswith("use --overwrite to replace it")
    assert f"{work / 'conflict.csv'}:2:price_usd:" in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 3
    assert mbt("ingest", "csv", "--prices", str(work / "conflict.csv"), "--db", str(db), "--overwrite").exit_code == 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT price_usd FROM prices WHERE asset = 'WETH' AND hour(timestamp) = 1").fetchone() \
            == (1450.0,)


def _digest(db: Path, events: str = "*") -> str:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = [con.execute(f"SELECT {events if t == 'events' else '*'} FROM {t} ORDER BY ALL").fetchall()
                for t in ("prices", "positions", "events", "liquidity", "indices")]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.mark.parametrize("bad_file, text, where", [
    ("positions.csv", "account,asset,collateral,debt\nbob,WETH,-1,0\n", ":2:collateral:"),
    ("events.csv", "timestamp,account,asset,action,amount\n2021-05-19T00:30:00,bob,USDC,repay,1\n", ":2:timestamp:"),
    ("prices.csv", "timestamp,asset,price_usd\n2021-05-19T00:00:00Z,WETH,0\n", ":2:price_usd:"),
    ("liquidity.csv", "timestamp,asset,depth_usd_2pct\n2021-05-19T00:00:00Z,WETH,-5\n", ":2:depth_usd_2pct:"),
    ("indices.csv", "timestamp,asset,liquidity_index,variable_borrow_index\n"
                    "2021-05-19T00:00:00Z,USDC,1.02e27,abc\n", ":2:variable_borrow_index:"),
])
def test_bad_input_is_one_line_exit_2_and_database_untouched(work, bad_file, text, where):
    ingest(work)
    db = work / "t.duckdb"
    before = _digest(db)
    (work / "good.csv").write_text("timestamp,asset,price_usd\n2021-05-20T00:00:00Z,WETH,900\n")
    (work / bad_file).write_text(text)
    kind = bad_file.removesuffix(".csv")
    r = mbt("ingest", "csv", "--prices", str(work / "good.csv"), f"--{kind}", str(work / bad_file), "--db", str(db)) \
        if kind != "prices" else mbt("ingest", "csv", "--prices", str(work / bad_file), "--db", str(db))
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and where in lines[0] and "Traceback" not in r.stderr
    assert _digest(db) == before  # the good prices file was not stored either


def test_debug_shows_traceback(work):
    (work / "p.csv").write_text("timestamp,asset,price_usd\nyesterday,WETH,1\n")
    with pytest.raises(Exception):
        mbt("ingest", "csv", "--prices", str(work / "p.csv"), "--db", str(work / "t.duckdb"), "--debug")


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c.replace("[rules.assets.USDC]\nltv = 0.80\nliquidation_threshold = 0.85\nliquidation_bonus = 0.05\n",
                         ""), "no parameters for asset 'USDC'"),
    (lambda c: c.replace('end = "2021-05-19T02:00:00Z"', 'end = "2021-05-21T02:00:00Z"').replace(
        'start = "2021-05-19T00:00:00Z"', 'start = "2021-05-20T00:00:00Z"'), "empty grid"),
    (lambda c: c.replace('end = "2021-05-19T02:00:00Z"', 'end = "2021-05-18T02:00:00Z"').replace(
        'start = "2021-05-19T00:00:00Z"', 'start = "2021-05-18T00:00:00Z"'),
     "asset 'USDC': no 'csv' prices at or before run.end 2021-05-18T02:00:00Z"),
    (lambda c: c.replace('start = "2021-05-19T00:00:00Z"', 'start = "2021-05-18T23:00:00Z"'),
     "asset 'USDC': no price at or before the first grid point 2021-05-18T23:30:00Z"),
])
def test_run_checks_data_against_config(work, edit, expected):
    ingest(work)
    (work / "early.csv").write_text("timestamp,asset,price_usd\n2021-05-18T23:30:00Z,WETH,2100\n")
    assert mbt("ingest", "csv", "--prices", str(work / "early.csv"), "--db", str(work / "t.duckdb")).exit_code == 0
    (work / "bad.toml").write_text(edit(CONFIG))
    r = mbt("run", str(work / "bad.toml"), "--db", str(work / "t.duckdb"))
    assert r.exit_code == 2
    assert expected in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_step_grid_and_hourly_prices_carry_forward(work):
    ingest(work)
    (work / "step.toml").write_text(CONFIG.replace("[run]\n", '[run]\nstep = "30min"\n'))
    doc = json.loads(mbt("run", str(work / "step.toml"), "--db", str(work / "t.duckdb"), "--json").stdout)
    with duckdb.connect(str(work / "t.duckdb"), read_only=True) as con:
        n = con.execute("SELECT count(*) FROM timeseries WHERE run_id = ? AND rule = 'current'",
                        [doc["run_id"]]).fetchone()[0]
    assert n == 5  # 00:00, 00:30, …, 02:00


def test_several_sources_need_price_source(work):
    ingest(work)
    (work / "cl.csv").write_text("timestamp,asset,price_usd,source\n2021-05-19T00:00:00Z,WETH,2001,chainlink\n")
    mbt("ingest", "csv", "--prices", str(work / "cl.csv"), "--db", str(work / "t.duckdb"))
    r = mbt("run", str(work / "run.toml"), "--db", str(work / "t.duckdb"))
    assert r.exit_code == 2 and "asset 'WETH' has prices from several sources (chainlink, csv)" in r.stderr
    (work / "ps.toml").write_text(CONFIG.replace("[run]\n", '[run]\nprice_source = { WETH = "csv" }\n'))
    assert mbt("run", str(work / "ps.toml"), "--db", str(work / "t.duckdb")).exit_code == 0


def test_sql_is_read_only_and_runs_lists(work):
    ingest(work)
    db = str(work / "t.duckdb")
    mbt("run", str(work / "run.toml"), "--db", db)
    r = mbt("sql", "SELECT rule, value FROM run_metrics WHERE metric = 'liquidations' ORDER BY rule", "--db", db)
    assert r.exit_code == 0 and "current" in r.stdout and "tight" in r.stdout
    r = mbt("sql", "DELETE FROM prices", "--db", db)
    assert r.exit_code == 2 and "read-only" in r.stderr.lower()
    (work / "q.sql").write_text("SELECT count(*) AS n FROM liquidations;")
    r = mbt("sql", "-f", str(work / "q.sql"), "--db", db)
    assert r.exit_code == 0 and r.stdout.split() == ["n", "--", "10"]
    r = mbt("runs", "--db", db)
    assert r.exit_code == 0 and "toy" in r.stdout
    r = mbt("sql", "SELECT 1", "--db", str(work / "missing.duckdb"))
    assert r.exit_code == 2 and "database not found" in r.stderr


def test_mbt_db_environment_variable(work, monkeypatch):
    monkeypatch.setenv("MBT_DB", str(work / "env.duckdb"))
    r = mbt("ingest", "csv", "--prices", str(work / "prices.csv"))
    assert r.exit_code == 0
    assert (work / "env.duckdb").exists()


def test_processes_executor_gives_the_same_results(work):
    ingest(work)
    db = str(work / "t.duckdb")
    local = json.loads(mbt("run", str(work / "run.toml"), "--db", db, "--json").stdout)
    procs = json.loads(mbt("run", str(work / "run.toml"), "--db", db, "--json", "--executor", "processes").stdout)
    assert procs == local
    r = mbt("run", str(work / "run.toml"), "--db", db, "--scheduler", "tcp://127.0.0.1:1")
    assert r.exit_code == 2 and "--scheduler" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_dask_executor_gives_the_same_results(work):
    pytest.importorskip("distributed")
    ingest(work)
    db = str(work / "t.duckdb")
    local = json.loads(mbt("run", str(work / "run.toml"), "--db", db, "--json").stdout)
    r = mbt("run", str(work / "run.toml"), "--db", db, "--json", "--executor", "dask")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) == local


def test_conflicting_indices_need_overwrite_and_leave_the_database_untouched(work):
    ingest(work)
    db = work / "t.duckdb"
    (work / "idx.csv").write_text("timestamp,asset,liquidity_index,variable_borrow_index\n"
                                  "2021-05-19T00:00:00Z,USDC,1.02e27,1.03e27\n")
    assert mbt("ingest", "csv", "--indices", str(work / "idx.csv"), "--db", str(db)).exit_code == 0
    before = _digest(db)
    (work / "idx2.csv").write_text("timestamp,asset,liquidity_index,variable_borrow_index\n"
                                   "2021-05-19T00:00:00Z,USDC,1.02e27,1.04e27\n")
    r = mbt("ingest", "csv", "--prices", str(work / "prices.csv"), "--indices", str(work / "idx2.csv"), "--db", str(db))
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and ":2:variable_borrow_index:" in lines[0] and "--overwrite" in lines[0]
    assert _digest(db) == before


# -- Parquet files: the same columns, checks and one-line errors as CSV --------------------------------
def _parquet_inputs(work: Path) -> dict[str, Path]:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = {}
    for kind in ("prices", "positions", "events"):
        frame = pd.read_csv(work / f"{kind}.csv", dtype=str)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if "timestamp" in frame:
            ts = pd.to_datetime(frame["timestamp"], utc=True)
            table = table.set_column(table.schema.get_field_index("timestamp"), "timestamp",
                                     pa.array(ts, pa.timestamp("us", tz="UTC")))
        for col in ("price_usd", "collateral", "debt", "amount"):
            if col in frame:
                table = table.set_column(table.schema.get_field_index(col), col, pa.array(frame[col].astype(float)))
        out[kind] = work / f"{kind}.parquet"
        pq.write_table(table, out[kind])
    return out


@pytest.mark.parametrize("verb", ["csv", "parquet"])
def test_parquet_files_load_the_same_rows_as_csv(work, verb):
    files = _parquet_inputs(work)
    ingest(work)
    db = work / "pq.duckdb"
    r = mbt("ingest", verb, "--prices", str(files["prices"]), "--positions", str(files["positions"]),
            "--events", str(files["events"]), "--db", str(db))
    assert r.exit_code == 0, r.stderr
    assert f"{files['prices']}: 4 prices rows read, 4 stored as new or changed" in r.stderr
    # Identical rows; only the events' internal load-order column counts rows, not lines (same order).
    assert _digest(db, events="* EXCLUDE (seq)") == _digest(work / "t.duckdb", events="* EXCLUDE (seq)")
    in_order = []
    for path in (db, work / "t.duckdb"):
        with duckdb.connect(str(path), read_only=True) as con:
            in_order.append(con.execute("SELECT * EXCLUDE (seq) FROM events ORDER BY seq").fetchall())
    assert in_order[0] == in_order[1]
    # and the same replay
    a = json.loads(mbt("run", str(work / "run.toml"), "--db", str(work / "t.duckdb"), "--json").stdout)
    b = json.loads(mbt("run", str(work / "run.toml"), "--db", str(db), "--json").stdout)
    assert a == b


def _bad_parquet(work: Path, case: str) -> tuple[Path, str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ts = pa.array([1_621_382_400, 1_621_386_000], pa.int64())
    tables = {
        "value": (pa.table({"timestamp": ts, "asset": ["WETH", "WETH"], "price_usd": [900.0, float("nan")]}),
                  ":2:price_usd: not finite: 'nan'"),
        "type": (pa.table({"timestamp": ts, "asset": ["WETH", "WETH"], "price_usd": ["900", "901"],
                           "block": [True, False]}),
                 ":0:block: expected an integer column, got Parquet type bool"),
        "missing": (pa.table({"timestamp": ts, "asset": ["WETH", "WETH"]}), ":0:price_usd: missing required column"),
    }
    table, where = tables[case]
    path = work / f"bad-{case}.parquet"
    pq.write_table(table, path)
    return path, where


@pytest.mark.parametrize("case", ["value", "type", "missing"])
def test_bad_parquet_is_one_line_exit_2_and_database_untouched(work, case):
    ingest(work)
    db = work / "t.duckdb"
    before = _digest(db)
    bad, where = _bad_parquet(work, case)
    r = mbt("ingest", "parquet", "--prices", str(bad), "--db", str(db))
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert lines == [f"mbt: error: {bad}{where}"]
    # several files in one command: the good one is not stored either
    r = mbt("ingest", "csv", "--prices", str(bad), "--events", str(work / "events.csv"), "--db", str(db))
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert _digest(db) == before
