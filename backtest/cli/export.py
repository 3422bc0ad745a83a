"""``mbt export RUN_ID|latest --format parquet|csv --out DIR``: every result table of a run as files."""

from __future__ import annotations

from pathlib import Path

import click

from .base import cli, db_option, debug_option, err


@cli.command("export")
@click.argument("run_id")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet")
@click.option("--out", "out", type=click.Path(file_okay=False), required=True, metavar="DIR")
@db_option
@debug_option
def export_cmd(run_id: str, fmt: str, out: str, db: str | None) -> None:
    """Write a run's runs, run_metrics, liquidations, timeseries (and sweep_points) rows to DIR."""
    from ..outputs.export import write_table
    from ..store import Store, resolve_db_path

    with Store(resolve_db_path(db), read_only=True) as store:
        rid = store.resolve_run(run_id)
        tables = {name: store.run_table(name, rid) for name in store.RESULT_TABLES}
    folder = Path(out)
    for name, table in tables.items():
        if name == "sweep_points" and table.num_rows == 0:
            continue
        path = write_table(table, folder / f"{name}.{fmt}", fmt)
        err(f"{path}: {table.num_rows:,} rows")
