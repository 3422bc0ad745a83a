"""Test helpers: build a DuckDB file from CSV texts through the CSV adapter and the store (no CLI)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from adapters.csv import read_table
from backtest.config import parse_config
from backtest.runner import run
from backtest.store import Store


def build(tmp: Path, **csv: str) -> Path:
    """A DuckDB file loaded from CSV texts (kind → text) in one transaction."""
    frames = {}
    for kind, text in csv.items():
        path = tmp / f"{kind}.csv"
        path.write_text(text)
        frames[kind] = (read_table(kind, path), path.name)
    db = tmp / "t.duckdb"
    with Store(str(db)) as store:
        store.ingest(frames)
    return db


def replay(db: Path, toml: str, engine: str = "fast", **kw):
    """Parse ``toml`` and run it on ``db``; returns the runner's ``RunOutput``."""
    cfg = parse_config(tomllib.loads(toml))
    with Store(str(db)) as store:
        return run(store, cfg, engine=engine, **kw)
