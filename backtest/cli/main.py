"""The ``mbt`` command (DESIGN §6): names the verb modules, which register themselves on the group when
the verb is invoked (so ``mbt run`` imports neither the RPC sources nor the demo).

Errors the user can fix are ``MbtError``: printed as one line on stderr, exit status 2, no traceback
unless ``--debug``. ``main`` is the console-script entry point (``mbt = backtest.cli.main:main``).
"""

from __future__ import annotations

import gc
import logging
import os
import sys

# One BLAS thread unless the user says otherwise (read when numpy loads OpenBLAS, so before any import
# of numpy): mbt runs its jobs on both cores itself, and its few mat-vecs (health factors, metrics) are too
# small to share. OpenBLAS's default pool spins a second thread after each call, which then competes with
# the replay threads for a core: `mbt run` on the end-to-end book took 1.72-2.01 s with it, 1.52-1.63 s
# without (bench/RESULTS.md, issue #8, 2026-12-06).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .base import cli, db_option, debug_option  # noqa: E402

#: verb → the module that registers it (imported when the verb is invoked; ``ingest rpc`` likewise)
VERBS = {name: f"backtest.cli.{name}" for name in (
    "demo", "derive", "export", "frontier", "ingest", "params", "positions", "recommend", "report", "run", "runs",
    "scenarios", "sql", "sweep")}
cli.verbs.update(VERBS)

__all__ = ["cli", "db_option", "debug_option", "main"]


#: the cyclic garbage collector's first threshold in the ``mbt`` process (CPython's default: 700)
GC_THRESHOLD = 100_000


def main() -> None:
    # A run allocates millions of objects while it imports numba, DuckDB and the plug-ins, and holds them:
    # at CPython's default thresholds the collector walked them ≈ 250 times (two full passes), 0.12-0.14 s of
    # the end-to-end benchmark's `mbt run`, all of it on the single-threaded start. Arrays are freed by their
    # reference counts, not by the collector; cyclic garbage is still collected, just in larger batches.
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
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
