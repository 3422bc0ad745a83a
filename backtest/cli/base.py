"""The ``mbt`` click group and what every verb shares (``--debug``, ``--db``, one-line errors).

The verb modules (``demo``, ``ingest``, ``ingest_rpc``, ``run``, ``runs``, ``sql``, …) import this module and
register themselves on :data:`cli` when imported; ``backtest.cli.main`` names them (:class:`VerbGroup`), and
a verb's module is imported when that verb is invoked. Nothing here imports a verb, so there is no import
cycle.
"""

from __future__ import annotations

import functools
import importlib
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


class VerbGroup(click.Group):
    """A click group whose verbs live in modules imported only when a verb is asked for (``verbs``: name →
    module, each module registering its verb on import): ``mbt run`` then loads neither the RPC sources nor
    the demo. ``--help`` lists them all."""

    def __init__(self, *args: Any, verbs: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.verbs: dict[str, str] = dict(verbs or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.verbs))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in self.verbs:
            importlib.import_module(self.verbs[name])
        return self.commands.get(name)

    def load_all(self) -> None:
        """Import every verb module (for code that walks ``commands``)."""
        for module in self.verbs.values():
            importlib.import_module(module)


@click.group(cls=VerbGroup, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="mbt")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors (for every command).")
def cli(debug: bool) -> None:
    """margin-backtester: replay lending history under alternative margin rules."""
