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
