"""``mbt ingest``: the group, and its file verbs ``csv`` and ``parquet`` (``rpc`` is in ``ingest_rpc``).

Only wiring: options → ``backtest.ingest.files.ingest_files`` → counts on stderr.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from ..errors import MbtError
from .base import VerbGroup, cli, db_option, debug_option, err

FILE_KINDS = ("prices", "positions", "events", "liquidity", "indices")


@cli.group("ingest", cls=VerbGroup, verbs={"rpc": "backtest.cli.ingest_rpc"}, context_settings={"show_default": True})
def ingest() -> None:
    """Load data into the database."""


def _file_options(noun: str) -> Callable[[Callable], Callable]:
    options = [
        click.option("--prices", type=click.Path(dir_okay=False), help=f"prices {noun} (timestamp, asset, price_usd)."),
        click.option("--positions", type=click.Path(dir_okay=False),
                     help=f"positions snapshot {noun} (account, asset, collateral, debt); replaces the stored "
                     "snapshot."),
        click.option("--events", type=click.Path(dir_okay=False),
                     help=f"events {noun} (timestamp, account, asset, action, amount)."),
        click.option("--liquidity", type=click.Path(dir_okay=False),
                     help=f"liquidity {noun} (timestamp, asset, depth_usd_2pct | reserve_asset, reserve_quote)."),
        click.option("--indices", type=click.Path(dir_okay=False),
                     help=f"interest indices {noun} (timestamp, asset, liquidity_index, variable_borrow_index)."),
        click.option("--overwrite", is_flag=True,
                     help="Replace stored rows whose key matches but whose values differ."),
        db_option,
        debug_option,
    ]

    def decorate(func: Callable) -> Callable:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _ingest(verb: str, parquet: bool | None, files: dict[str, str | None], overwrite: bool, db: str | None) -> None:
    from ..ingest.files import ingest_files
    from ..store import resolve_db_path

    if not any(files.values()):
        raise MbtError(f"ingest {verb}: give at least one of --prices, --positions, --events, --liquidity, --indices")
    path = resolve_db_path(db)
    frames, counts = ingest_files(path, files, overwrite=overwrite, parquet=parquet, warn=err)
    for kind, (frame, display) in frames.items():
        err(f"{display}: {len(frame):,} {kind} rows read, {counts[kind]:,} stored as new or changed")
    err(f"database: {path}")


@ingest.command("csv")
@_file_options("CSV")
def ingest_csv(prices: str | None, positions: str | None, events: str | None, liquidity: str | None,
               indices: str | None, overwrite: bool, db: str | None) -> None:
    """Load CSV files in one transaction: everything in the command is stored, or nothing.

    A file whose name ends in .parquet is read as Parquet (same columns and checks; docs/csv.md).
    """
    files = {"prices": prices, "positions": positions, "events": events, "liquidity": liquidity, "indices": indices}
    _ingest("csv", None, files, overwrite, db)


@ingest.command("parquet")
@_file_options("Parquet file")
def ingest_parquet(prices: str | None, positions: str | None, events: str | None, liquidity: str | None,
                   indices: str | None, overwrite: bool, db: str | None) -> None:
    """Load Parquet files in one transaction (the columns and checks of the CSV files; docs/csv.md)."""
    files = {"prices": prices, "positions": positions, "events": events, "liquidity": liquidity, "indices": indices}
    _ingest("parquet", True, files, overwrite, db)
