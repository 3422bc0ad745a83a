"""The ingest-source registry and its CLI wiring (no node): names, planned sources, per-source options.

Also the house rule that keeps the adapters usable on their own: nothing in ``adapters/`` imports
``backtest`` (checked on the source text with ``ast``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.rpc.sources import PLANNED, SOURCES, get_source, register_source
from adapters.rpc.sources.base import LogSource, SourceOption
from adapters.rpc.sources.chainlink import SOURCE as CHAINLINK
from backtest.cli.main import cli
from backtest.errors import MbtError

ROOT = Path(__file__).resolve().parents[2]


def _mbt(*args: str):
    return CliRunner().invoke(cli, ["ingest", "rpc", *args])


def test_chainlink_is_registered_with_its_declarations() -> None:
    assert SOURCES["chainlink"] is CHAINLINK and get_source("chainlink") is CHAINLINK
    assert {o.flag for o in CHAINLINK.options} == {"--feed", "--asset", "--quote-asset", "--quote-source",
                                                    "--all-rounds"}
    assert [o.flag for o in CHAINLINK.options if o.required] == ["--feed"]
    assert set(CHAINLINK.events()) == {"AnswerUpdated", "NewTransmissionOCR1", "NewTransmissionOCR2"}
    assert len(CHAINLINK.topics()) == 1 and len(CHAINLINK.topics()[0]) == 3


@pytest.mark.parametrize("name", PLANNED)
def test_planned_sources_are_not_implemented_yet(name: str, tmp_path: Path) -> None:
    result = _mbt("--source", name, "--db", str(tmp_path / "x.duckdb"))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"mbt: error: --source {name}: not implemented yet "
                                                  f"(available: {', '.join(SOURCES)})"]
    assert not (tmp_path / "x.duckdb").exists()


def test_an_unknown_source_is_one_line() -> None:
    result = _mbt("--source", "uniswap")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "--source 'uniswap': unknown source (available: chainlink" in result.stderr


def test_required_option_and_bad_values_are_one_line() -> None:
    result = _mbt("--source", "chainlink", "--from-block", "0", "--rpc-url", "http://127.0.0.1:1")
    assert result.exit_code == 2 and result.stderr.strip() == "mbt: error: --feed: required (the feed's proxy address)"
    result = _mbt("--source", "chainlink", "--feed", "0x" + "11" * 20, "--asset", " ")
    assert result.exit_code == 2 and result.stderr.strip() == "mbt: error: --asset: must not be blank"


def test_register_a_source_and_refuse_another_sources_option() -> None:
    from backtest.ingest.rpc import own_options as _own_options

    class Toy(LogSource):
        name = "toy-source"
        title = "Toy"
        options = (SourceOption("--pool", "pool", "A pool.", metavar="ADDRESS", required="the pool's address"),)

    toy = register_source(Toy())
    try:
        with pytest.raises(ValueError):
            register_source(Toy())   # a name is registered once
        assert get_source("toy-source") is toy
        assert _own_options(toy, {"pool": "0x1", "feed": None, "all_rounds": False}) == {"pool": "0x1"}
        with pytest.raises(MbtError, match="^--pool: required \\(the pool's address\\)$"):
            _own_options(toy, {"pool": None})
        with pytest.raises(MbtError, match="^--feed: not an option of --source toy-source$"):
            _own_options(toy, {"pool": "0x1", "feed": "0x" + "11" * 20})
    finally:
        del SOURCES["toy-source"]


def test_adapters_never_import_backtest() -> None:
    offenders = []
    for path in sorted((ROOT / "adapters").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "backtest"]
    assert offenders == []
