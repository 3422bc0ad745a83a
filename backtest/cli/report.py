"""``mbt report [RUN_ID|latest] --format html|md --out DIR``: a governance report of a stored run."""

from __future__ import annotations

from pathlib import Path

import click

from .base import cli, db_option, debug_option, err


@cli.command("report")
@click.argument("run_id", required=False, default="latest")
@click.option("--format", "fmt", type=click.Choice(["html", "md"]), default="html",
              help="html: one self-contained file; md: Markdown with PNG charts beside it (for a forum post).")
@click.option("--out", "out", type=click.Path(file_okay=False), default="report", show_default=True, metavar="DIR")
@click.option("--top", type=click.IntRange(min=1), default=10, help="How many most-affected accounts to list.")
@db_option
@debug_option
def report_cmd(run_id: str, fmt: str, out: str, top: int, db: str | None) -> None:
    """Write a report of RUN_ID (default: the newest run): summary, parameters, metrics, charts, methodology."""
    from ..outputs.report import build_report, write_report
    from ..store import Store, resolve_db_path

    with Store(resolve_db_path(db), read_only=True) as store:
        rid = store.resolve_run(run_id)
        rep = build_report(store, rid, top=top)
    path = write_report(rep, Path(out), fmt)
    err(f"wrote {path} ({len(rep.charts)} charts)")
    click.echo(str(path))
