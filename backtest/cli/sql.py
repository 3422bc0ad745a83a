"""``mbt sql``: a query on a read-only connection, printed as a table (the store runs it)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import MbtError
from .base import cli, db_option, debug_option, err


def print_rows(headers: list[str] | None, rows: list[tuple]) -> None:
    """A result as an aligned table on stdout and its row count on stderr (nothing for no result)."""
    from .output import render_table

    if headers is None:
        return
    click.echo(render_table(headers, rows))
    err(f"({len(rows):,} row{'s' if len(rows) != 1 else ''})")


@cli.command("sql")
@click.argument("query", required=False)
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False), help="Read the SQL from FILE.")
@db_option
@debug_option
def sql_cmd(query: str | None, file: str | None, db: str | None) -> None:
    """Run SQL on a read-only connection and print the result as a table."""
    from ..store import Store, resolve_db_path

    if bool(query) == bool(file):
        raise MbtError("sql: give either a QUERY argument or -f FILE")
    if file:
        try:
            query = Path(file).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise MbtError(f"{file}: cannot read ({exc.strerror})") from None
    with Store(resolve_db_path(db), read_only=True) as store:
        print_rows(*store.user_query(query))
