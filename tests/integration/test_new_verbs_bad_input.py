"""Bad input to the verbs and options added with issues #9–#11: one line on stderr, exit 2, no traceback, and
the database as it was (or not created at all)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from backtest.cli.main import cli
from tests.dbutil import build, replay
from tests.unit.test_scenarios import HEAD, POSITIONS, _prices

POOL = "0x" + "11" * 20
TABLES = ("runs", "run_metrics", "liquidations", "timeseries", "positions", "events", "account_states")


def _mbt(args: list[str]):
    return CliRunner().invoke(cli, args)


def _one_line(result, text: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mbt: error: ") and "Traceback" not in result.output, result.stderr
    assert text in lines[0], lines[0]


def _state(db: Path) -> dict[str, list]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in TABLES}
    finally:
        con.close()


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    path = build(tmp_path, prices=_prices(), positions=POSITIONS)
    replay(path, HEAD)   # one stored run
    return path


@pytest.mark.parametrize("args, text", [
    (["--pool", "0x123"], "--pool '0x123': expected 0x followed by 40 hex digits"),
    (["--pool", POOL, "--aave-version", "v9"], "--aave-version 'v9': expected one of v3.0"),
    (["--pool", POOL, "--prices", "chainlink"], "--prices 'chainlink': expected oracle or none"),
    (["--pool", POOL, "--price-every", "10"], "--price-every: a positive number of blocks, with --prices oracle"),
    (["--pool", POOL, "--prices", "oracle", "--price-every", "ten"], "--price-every 'ten': expected a whole number"),
    ([], "--pool: required (the market's Pool address)"),
])
def test_aave_source_options(tmp_path: Path, args: list[str], text: str) -> None:
    target = tmp_path / "never.duckdb"
    r = _mbt(["ingest", "rpc", "--source", "aave-v3", "--from-block", "0", "--rpc-url", "http://127.0.0.1:9",
              "--db", str(target), *args])
    _one_line(r, text)
    assert not target.exists()


@pytest.mark.parametrize("args, text", [
    (["positions", "--at-block", "5", "--save"], "no Aave market in this database"),
    (["positions", "--at-block", "5", "--check-block", "5"], "exactly one of"),
    (["params", "--at-block", "5"], "no Aave market in this database"),
    (["run", "CFG", "--json"], "scenarios.x.moves.WETH: a move must be > -1"),
    (["scenarios", "CFG"], "scenarios.x.moves.WETH: a move must be > -1"),
    (["sweep", "CFG", "--grid", "assets.WETH.ltv=0.5"], "scenarios.x.moves.WETH: a move must be > -1"),
    (["sweep", "OK", "--grid", "assets.WETH.ltv"], "--grid 'assets.WETH.ltv': expected KEY=VALUES"),
    (["sweep", "OK", "--grid", "assets.WETH.ltv=0.9:0.8:0.1"], "stop ≥ start"),
    (["recommend", "RID", "--objective", "capital_efficiency", "--constraint", "var_99 is small"],
     "--constraint 'var_99 is small': expected METRIC OP NUMBER"),
    (["recommend", "RID", "--objective", "capital_efficiency", "--max-change", "assets.*.ltv"],
     "--max-change 'assets.*.ltv': expected KEY_PATTERN=LIMIT"),
    (["recommend", "RID", "--objective", "capital_efficiency"], "not a sweep (no sweep_points"),
    (["frontier", "RID", "--x", "nope", "--y", "bad_debt_usd"], "not a sweep (no sweep_points"),
    (["report", "0000000000000000"], "run '0000000000000000': not in"),
    (["export", "0000000000000000", "--out", "OUT"], "run '0000000000000000': not in"),
])
def test_new_verbs_refuse_bad_input_and_leave_the_database_alone(db: Path, tmp_path: Path, args: list[str],
                                                                  text: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(HEAD + '\n[[scenarios]]\nname = "x"\nkind = "shock"\nmoves = { WETH = -1.5 }\n')
    ok = tmp_path / "ok.toml"
    ok.write_text(HEAD)
    con = duckdb.connect(str(db), read_only=True)
    run_id = con.execute("SELECT run_id FROM runs").fetchone()[0]
    con.close()
    subst = {"CFG": str(bad), "OK": str(ok), "RID": run_id, "OUT": str(tmp_path / "out")}
    before = _state(db)
    r = _mbt([subst.get(a, a) for a in args] + ["--db", str(db)])
    _one_line(r, text)
    assert _state(db) == before
    assert not (tmp_path / "out").exists()


def test_frontier_and_recommend_name_an_unknown_metric(db: Path, tmp_path: Path) -> None:
    ok = tmp_path / "ok.toml"
    ok.write_text(HEAD)
    sw = _mbt(["sweep", str(ok), "--db", str(db), "--json", "--grid", "assets.WETH.ltv=0.5,0.6"])
    assert sw.exit_code == 0, sw.output
    import json

    run_id = json.loads(sw.stdout)["run_id"]
    before = _state(db)
    _one_line(_mbt(["frontier", run_id, "--x", "capital_eficiency", "--y", "bad_debt_usd", "--db", str(db)]),
              "--x: unknown metric 'capital_eficiency'")
    _one_line(_mbt(["recommend", run_id, "--objective", "capital_efficiency", "--constraint", "bad_det_usd <= 1",
                    "--db", str(db)]), "--constraint: unknown metric 'bad_det_usd'")
    assert _state(db) == before
