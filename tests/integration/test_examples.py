"""The example configs in data/examples/ run against the database `mbt demo` builds, and the demo itself
compares one rule set of every kind (docs/rules.md): every result row carries its kind and every rule set
liquidates someone in the demo's crash."""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from backtest.cli import commands  # noqa: F401  (registers the verbs)
from backtest.cli.main import cli
from backtest.config import IMPLEMENTED_KINDS, load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "data" / "examples"
KINDS = ("asset", "isolated", "cross", "dynamic", "liquidity-haircut", "portfolio-scenario", "portfolio-var")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """(database built by `mbt demo --json`, its JSON document)."""
    db = tmp_path_factory.mktemp("examples") / "demo.duckdb"
    r = CliRunner().invoke(cli, ["demo", "--db", str(db), "--json"])
    assert r.exit_code == 0, r.stderr
    return db, json.loads(r.stdout)


def test_one_example_per_kind() -> None:
    assert set(KINDS) == set(IMPLEMENTED_KINDS)
    assert sorted(p.name for p in EXAMPLES.glob("*.toml")) == sorted(f"{k}.toml" for k in KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_example_is_a_baseline_and_a_variant_of_its_kind(kind: str) -> None:
    cfg = load_config(EXAMPLES / f"{kind}.toml")  # valid (exit 2 otherwise)
    assert [r.kind for r in cfg.rules] == ["asset", kind]
    assert cfg.price_source == "demo"
    text = (EXAMPLES / f"{kind}.toml").read_text("utf-8")
    assert text.startswith("# ") and f"mbt run data/examples/{kind}.toml" in text  # commented, says how to run
    assert tomllib.loads(text)["run"]["start"] == "2021-05-18T00:00:00Z"


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_example_runs_on_the_demo_database(kind: str, demo: tuple[Path, dict]) -> None:
    db, _ = demo
    r = CliRunner().invoke(cli, ["run", str(EXAMPLES / f"{kind}.toml"), "--db", str(db), "--json"])
    assert r.exit_code == 0, r.stderr
    rows = json.loads(r.stdout)["results"]
    assert [row["kind"] for row in rows] == ["asset", kind]
    for row in rows:
        assert row["liquidations"] > 0, row["rule"]
        assert row["borrowing_power_usd"] is not None and row["borrowing_power_usd"] > 0, row["rule"]


@pytest.mark.slow
def test_demo_has_one_rule_set_of_each_kind(demo: tuple[Path, dict]) -> None:
    _, doc = demo
    rows = doc["results"]
    kinds = Counter(row["kind"] for row in rows)
    assert set(kinds) == set(KINDS)
    assert all(kinds[k] == 1 for k in KINDS if k not in ("asset", "isolated"))  # isolated: also Morpho's model
    assert rows[0]["kind"] == "asset" and rows[0]["rule"] == "current"
    assert len(rows) <= 12
    for row in rows:
        assert row["liquidations"] > 0, row["rule"]
        assert row["borrowing_power_usd"] is not None, row["rule"]
    by_rule = {row["rule"]: row for row in rows}
    enforcing = [r for r in load_config(ROOT / "backtest" / "assets" / "demo.toml").rules if r.enforce_ltv]
    assert len(enforcing) == 1 and by_rule[enforcing[0].name]["blocked_borrow_usd"] > 0
