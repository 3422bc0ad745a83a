"""Every fenced ```sql block of docs/sql-cookbook.md runs as written on the demo database, read-only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from backtest.cli.main import cli
from backtest.store import Store

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = re.findall(r"```sql\n(.*?)```", (ROOT / "docs" / "sql-cookbook.md").read_text(encoding="utf-8"), re.S)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("cookbook") / "demo.duckdb"
    r = CliRunner().invoke(cli, ["demo", "--db", str(db)])
    assert r.exit_code == 0, r.output
    return db


def test_the_cookbook_has_at_least_twelve_questions() -> None:
    assert len(BLOCKS) >= 12


@pytest.mark.parametrize("n", range(len(BLOCKS)))
def test_every_cookbook_query_runs_on_the_demo_database(demo_db: Path, n: int) -> None:
    with Store(str(demo_db), read_only=True) as store:
        headers, rows = store.user_query(BLOCKS[n])
    assert headers, f"block {n + 1} returned no columns"
    assert rows, f"block {n + 1} returned no rows on the demo database"


def test_a_cookbook_query_through_mbt_sql(demo_db: Path, tmp_path: Path) -> None:
    f = tmp_path / "q.sql"
    f.write_text(BLOCKS[0])
    r = CliRunner().invoke(cli, ["sql", "-f", str(f), "--db", str(demo_db)])
    assert r.exit_code == 0, r.output
    assert "current" in r.stdout and "tighter" in r.stdout


def test_account_states_add_up_to_the_run_metrics(demo_db: Path) -> None:
    # every rule kind of the demo: per-account unrealised bad debt sums to the metric; the accounts left owing
    # or written off are a superset of the insolvent ones
    with Store(str(demo_db), read_only=True) as store:
        rows = store.con.execute(
            "SELECT a.rule, sum(a.unrealised_bad_debt_usd), max(m.value), "
            "count(*) FILTER (WHERE a.written_off OR a.unrealised_bad_debt_usd > 0), max(i.value) "
            "FROM account_states a JOIN run_metrics m ON m.run_id = a.run_id AND m.rule = a.rule "
            "AND m.scenario = a.scenario AND m.metric = 'unrealised_bad_debt_usd' "
            "JOIN run_metrics i ON i.run_id = a.run_id AND i.rule = a.rule AND i.scenario = a.scenario "
            "AND i.metric = 'insolvent_accounts' WHERE a.run_id = (SELECT latest_run()) GROUP BY a.rule").fetchall()
    assert len(rows) == 12
    for rule, per_account, metric, under_water, insolvent in rows:
        if rule == "comet":  # Comet's unrealised bad debt is the protocol's (absorbed collateral not yet sold)
            assert per_account == 0 and metric >= 0 and under_water == insolvent == 0, rule
            continue
        assert per_account == pytest.approx(metric, rel=1e-9, abs=1e-6), rule
        assert under_water == insolvent, rule
