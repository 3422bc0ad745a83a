"""``mbt frontier RUN_ID``: the Pareto set of a stored sweep on two metrics (docs/sweeps.md)."""

from __future__ import annotations

import click

from .base import cli, db_option, debug_option, err
from .recommend import _num


@cli.command("frontier")
@click.argument("run_id")
@click.option("--x", "x", required=True, metavar="METRIC", help="First metric (maximised; --minimize-x to flip).")
@click.option("--y", "y", required=True, metavar="METRIC", help="Second metric (minimised; --maximize-y to flip).")
@click.option("--minimize-x", is_flag=True)
@click.option("--maximize-y", is_flag=True)
@db_option
@debug_option
def frontier_cmd(run_id: str, x: str, y: str, minimize_x: bool, maximize_y: bool, db: str | None) -> None:
    """The Pareto set of a sweep's rule sets on two metrics."""
    from ..recommend import frontier, load_sweep
    from ..store import Store, resolve_db_path
    from .output import render_table

    with Store(resolve_db_path(db), read_only=True) as store:
        sweep = load_sweep(store, run_id)
    names = frontier(sweep, x, y, maximize_x=not minimize_x, minimize_y=not maximize_y)
    keys = sorted({k for p in sweep.points.values() for k in p})
    rows = [[n] + [_num(sweep.points.get(n, {}).get(k)) for k in keys] + [_num(sweep.metrics[n].get(x)),
                                                                        _num(sweep.metrics[n].get(y))] for n in names]
    click.echo(render_table(["rule"] + keys + [x, y], rows))
    err(f"({len(names):,} of {len(sweep.points) + 1:,} rule sets on the frontier)")
