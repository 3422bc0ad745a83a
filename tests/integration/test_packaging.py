"""The wheel ships what a non-editable install needs: the SQL files and the demo's assets."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_contains_sql_and_demo_assets(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("margin_backtester-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for sql in (ROOT / "sql").glob("*.sql"):
        assert f"backtest/sql/{sql.name}" in names
    assert "backtest/assets/demo.toml" in names
    assert "backtest/cli/main.py" in names and "adapters/csv.py" in names
    assert any(n.endswith("entry_points.txt") for n in names)
    text = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "mbt = backtest.cli.main:main" in text


def test_every_package_of_the_tree_is_listed_for_the_wheel():
    """A package folder missing from pyproject's explicit list would be absent from a non-editable install."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for top in ("backtest", "adapters"):
        for init in (ROOT / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(ROOT).parts))
    assert found - listed == set()
    assert "mbt_errors" in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["py-modules"]
