"""The README's first screen stays true: its two commands are the ones CI runs, its table is `mbt demo`'s."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from backtest.cli import commands  # noqa: F401
from backtest.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_two_commands_and_ci_runs_the_test_command():
    blocks = re.findall(r"```sh\n(.*?)\n```", README, flags=re.S)
    assert blocks[0] == "pip install . && mbt demo"
    assert blocks[1] == "pip install -e '.[dev]' && python -m pytest"
    assert blocks[1] in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_readme_table_is_the_demo_output(tmp_path):
    shown = re.search(r"<!-- demo-output.*?-->\n```text\n(.*?)\n```", README, flags=re.S).group(1)
    r = CliRunner().invoke(cli, ["demo", "--db", str(tmp_path / "demo.duckdb")])
    assert r.exit_code == 0, r.stderr
    table = "\n".join(line for line in r.stdout.splitlines()
                      if not line.startswith(("run ", "stored in ")))
    assert table == shown
