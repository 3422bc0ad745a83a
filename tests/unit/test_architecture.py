"""One direction of imports (STYLE.md): the engine and rule math never pull in I/O libraries."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("duckdb", "web3", "pandas", "pyarrow", "requests", "click")


def test_engine_imports_no_io_libraries():
    code = (
        "import sys\n"
        "import backtest.engine.fast, backtest.engine.reference, backtest.engine.health, backtest.outputs.metrics\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_only_the_store_imports_duckdb():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = []
    for path in list((root / "backtest").rglob("*.py")) + list((root / "adapters").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "import duckdb" in text and path.name not in ("store.py", "commands.py"):
            offenders.append(str(path.relative_to(root)))
    assert offenders == []


def test_numba_cache_lives_outside_the_package(tmp_path):
    # compiled kernels must not be written next to the installed modules (pip would leave them behind)
    env = {k: v for k, v in __import__("os").environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    code = "import backtest, os; print(os.environ['NUMBA_CACHE_DIR'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == str(tmp_path / "margin-backtester" / "numba")
