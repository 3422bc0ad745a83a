"""The ``mbt`` click group and what every verb shares (``--debug``, ``--db``, one-line errors).

The verb modules (``demo``, ``ingest``, ``ingest_rpc``, ``run``, ``runs``, ``sql``) import this module and
register themselves on :data:`cli`; ``backtest.cli.main`` imports them all. Nothing here imports a verb,
so there is no import cycle.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import click

from .. import __version__
from ..errors import MbtError

CONTEXT = {"help_option_names": ["-h", "--help"], "show_default": True}


def err(text: str) -> None:
    """One line on stderr (progress, counts, notes: stdout stays for results)."""
    click.echo(text, err=True)


def debug_option(func: Callable) -> Callable:
    """Add ``--debug`` to a command and turn ``MbtError`` into one line + exit 2."""

    @click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
    @functools.wraps(func)
    def wrapper(*args: Any, debug: bool = False, **kwargs: Any) -> Any:
        debug = debug or bool((click.get_current_context().find_root().params or {}).get("debug"))
        try:
            return func(*args, **kwargs)
        except MbtError as exc:
            if debug:
                raise
            click.echo(f"mbt: error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            if debug:
                raise
            click.echo("mbt: interrupted", err=True)
            sys.exit(130)

    return wrapper


db_option = click.option("--db", "db", default=None, metavar="PATH",
                         help="DuckDB file (default: $MBT_DB, else mbt.duckdb in the current directory).")


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="mbt")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors (for every command).")
def cli(debug: bool) -> None:
    """margin-backtester: replay lending history under alternative margin rules."""
