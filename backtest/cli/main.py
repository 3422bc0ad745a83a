"""The ``mbt`` command (DESIGN §6): imports the verb modules, which register themselves on the group.

Errors the user can fix are ``MbtError``: printed as one line on stderr, exit status 2, no traceback
unless ``--debug``. ``main`` is the console-script entry point (``mbt = backtest.cli.main:main``).
"""

from __future__ import annotations

from . import demo, ingest, ingest_rpc, run, runs, sql  # noqa: F401  (each registers its verb)
from .base import cli, db_option, debug_option

__all__ = ["cli", "db_option", "debug_option", "main"]


def main() -> None:
    cli(prog_name="mbt")
