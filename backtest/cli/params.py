"""``mbt params --at-block N``: an ingested Aave market's live parameters as a rule-set TOML (docs/onchain.md)."""

from __future__ import annotations

import click

from ..errors import MbtError
from .base import cli, db_option, debug_option


@cli.command("params")
@click.option("--at-block", "at_block", type=click.IntRange(min=0), required=True, metavar="N",
              help="Parameters in force after block N.")
@click.option("--market", default=None, metavar="ADDRESS", help="The Pool, when several markets are ingested.")
@click.option("--end-block", "end_block", type=click.IntRange(min=0), default=None, metavar="M",
              help="Write a [run] table from block N to block M (default: the last ingested block) so the file "
              "runs as it is after `mbt positions --at-block N --save`.")
@db_option
@debug_option
def params_cmd(at_block: int, market: str | None, end_block: int | None, db: str | None) -> None:
    """Print the live ltv / liquidation threshold / bonus / e-mode parameters at a block as a rule-set TOML."""
    from ..onchain import service
    from ..onchain.params import live_params, params_toml
    from ..store import Store, resolve_db_path
    from ..timeutil import format_instant

    with Store(resolve_db_path(db), read_only=True) as store:
        stream = service.find_stream(store, market)
        mk = service.load_market(store, stream)
        first, last = service.coverage(store, stream)
        if not first <= at_block <= last:
            raise MbtError(f"--at-block {at_block}: outside the ingested range {first:,}..{last:,} of {stream}")
        live = live_params(store, mk, at_block)
        start = end = None
        chain_id = int(stream.split(":", 1)[0])
        stop = last if end_block is None else end_block
        if stop < at_block:
            raise MbtError(f"--end-block {stop}: before --at-block {at_block}")
        ts = dict(store.rows("onchain_block_times", chain_id=chain_id, blocks=[at_block, stop]))
        if at_block in ts and stop in ts:
            start, end = format_instant(ts[at_block] * 1_000_000), format_instant(ts[stop] * 1_000_000)
    click.echo(params_toml(mk, live, start=start, end=end), nl=False)
