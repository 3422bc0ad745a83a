"""``mbt positions``: an ingested Aave market's positions at a block or an instant, exactly (docs/onchain.md).

Only wiring: open the store, rebuild the market from its stored logs (``backtest.onchain``), print, save, or
compare with the chain (``--check-block``).
"""

from __future__ import annotations

import csv
import io
import json

import click

from ..errors import MbtError
from .base import cli, db_option, debug_option, err


def _render(rows: list[dict], fmt: str) -> str:
    from ..onchain.service import POSITION_COLUMNS

    if fmt == "json":
        return json.dumps(rows)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=POSITION_COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "collateral_enabled": str(r["collateral_enabled"]).lower()})
        return buf.getvalue().rstrip("\n")
    from .output import render_table

    return render_table(list(POSITION_COLUMNS), [tuple(r[c] for c in POSITION_COLUMNS) for r in rows])


@cli.command("positions")
@click.option("--at-block", "at_block", type=click.IntRange(min=0), default=None, metavar="N",
              help="Positions after block N (interest to N's timestamp).")
@click.option("--at", "at", default=None, metavar="TIMESTAMP",
              help="Positions at an instant (ISO-8601 with zone, or unix seconds): blocks up to then, interest to it.")
@click.option("--market", default=None, metavar="ADDRESS", help="The Pool, when several markets are ingested.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.option("--save", is_flag=True, help="Make these positions the database's snapshot, the market's later actions "
              "its events, and its indices complete, so `mbt run` replays the real book from here.")
@click.option("--check-block", "check_block", type=click.IntRange(min=0), default=None, metavar="N",
              help="Compare the reconstruction at block N with the node (balanceOf of every token, getUserAccountData); "
              "exit 1 when a raw balance differs.")
@click.option("--rpc-url", "rpc_urls", multiple=True, envvar="ETH_RPC_URL", metavar="URL",
              help="Node for --check-block, or for a block timestamp that is not stored.")
@db_option
@debug_option
def positions_cmd(at_block: int | None, at: str | None, market: str | None, fmt: str, save: bool,
                  check_block: int | None, rpc_urls: tuple[str, ...], db: str | None) -> None:
    """Every account's collateral and debt in an ingested Aave market, rebuilt from its logs, to the wei."""
    from ..onchain import service
    from ..store import Store, resolve_db_path
    from ..timeutil import parse_instant

    given = [x for x in (at_block, at, check_block) if x is not None]
    if len(given) != 1:
        raise MbtError("positions: give exactly one of --at-block N, --at TIMESTAMP, --check-block N")
    path = resolve_db_path(db)
    with Store(path, read_only=not save) as store:
        stream = service.find_stream(store, market)
        mk = service.load_market(store, stream)
        if check_block is not None:
            from ..onchain.check import check_positions

            if not rpc_urls:
                raise MbtError("--check-block: needs --rpc-url (or $ETH_RPC_URL)")
            where = service.at_block(store, stream, check_block, rpc_urls)
            report, differs = check_positions(mk, where, rpc_urls, store=store)
            click.echo(report)
            if differs:
                raise SystemExit(1)
            return
        if at_block is not None:
            where = service.at_block(store, stream, at_block, rpc_urls)
        else:
            try:
                us = parse_instant(at)
            except ValueError as exc:
                raise MbtError(f"--at: {exc}") from None
            where = service.at_instant(store, stream, us // 1_000_000)
        rows = service.position_rows(mk, where)
        if save:
            counts = service.save_snapshot(store, mk, where, rows)
            err(f"saved {counts['positions']:,} positions (block {where.block:,}) as the snapshot, "
                f"{counts['events']:,} later actions as events, {counts['indices']:,} index rows into {path}")
    click.echo(_render(rows, fmt))
    if fmt == "table":
        err(f"({len(rows):,} position{'s' if len(rows) != 1 else ''} at block {where.block:,}, ts {where.ts})")
