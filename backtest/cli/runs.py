"""``mbt runs``: the runs stored in the database, newest first."""

from __future__ import annotations

from .base import cli, db_option, debug_option
from .sql import print_rows


@cli.command("runs")
@db_option
@debug_option
def runs_cmd(db: str | None) -> None:
    """List the runs stored in the database, newest first."""
    from ..store import Store, resolve_db_path

    with Store(resolve_db_path(db), read_only=True) as store:
        print_rows(*store.runs_summary())
