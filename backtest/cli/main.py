"""The ``mbt`` command (DESIGN §6): names the verb modules, which register themselves on the group when
the verb is invoked (so ``mbt run`` imports neither the RPC sources nor the demo).

Errors the user can fix are ``MbtError``: printed as one line on stderr, exit status 2, no traceback
unless ``--debug``. ``main`` is the console-script entry point (``mbt = backtest.cli.main:main``).
"""

from __future__ import annotations

import logging
import os
import sys

from .base import cli, db_option, debug_option

#: verb → the module that registers it (imported when the verb is invoked; ``ingest rpc`` likewise)
VERBS = {name: f"backtest.cli.{name}" for name in (
    "demo", "derive", "export", "frontier", "ingest", "params", "positions", "recommend", "report", "run", "runs",
    "scenarios", "sql", "sweep")}
cli.verbs.update(VERBS)

__all__ = ["cli", "db_option", "debug_option", "main"]


def main() -> None:
    try:
        cli(prog_name="mbt")
        code = 0
    except SystemExit as exc:  # click ends every command this way
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    # Everything the command opened (the store, executors, clusters) is closed by now. Leave without the
    # interpreter's teardown, which frees every object of a large run one by one (≈ 0.4 s after a
    # 200,000-account replay); MBT_SLOW_EXIT=1 keeps the ordinary exit.
    if os.environ.get("MBT_SLOW_EXIT"):
        sys.exit(code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said there
            code = code or 1
    os._exit(code)
