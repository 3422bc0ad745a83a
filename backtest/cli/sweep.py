"""``mbt sweep CONFIG --grid KEY=VALUES …``: a parameter sweep, committed job by job (docs/sweeps.md).

Only wiring: read the config, build the grid from ``--grid`` and/or ``[sweep]``, call
``backtest.sweep.run_sweep`` with a progress bar, print the points (or one JSON document).
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from typing import Iterator

import click

from .base import cli, db_option, debug_option, err


@contextmanager
def _bar(label: str) -> Iterator:
    """rich progress bar on stderr: jobs done, jobs/s, ETA (silent when stderr is not a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                   TextColumn("{task.completed:,.0f}/{task.total:,.0f} jobs"),
                   TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
                   console=console, disable=not console.is_terminal)
    task = bar.add_task(label, total=1, rate="")
    t0 = time.perf_counter()
    first: list[int] = []

    def update(done: int, total: int) -> None:
        if not first:
            first.append(done)
        elapsed = time.perf_counter() - t0
        rate = f"{(done - first[0]) / elapsed:,.1f} jobs/s" if elapsed > 0 and done > first[0] else ""
        bar.update(task, completed=done, total=max(total, 1), rate=rate)

    with bar:
        yield update


def _cell(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 10 else f"{v:,.2f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


@cli.command("sweep")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--grid", "grid", multiple=True, metavar="KEY=VALUES",
              help="A swept setting of the base rule set and its values: start:stop:step (inclusive) or a,b,c; "
              "e.g. assets.WETH.liquidation_threshold=0.70:0.85:0.01. Repeat for a cartesian product.")
@click.option("--base", default=None, metavar="RULE", help="The rule set the points start from (default: [sweep] base, "
              "else the first rule set).")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option("--executor", type=click.Choice(["local", "processes", "dask"]), default="local",
              help="Where jobs run: threads here, local processes, or a Dask cluster.")
@click.option("--scheduler", metavar="ADDR", default=None, help="Dask scheduler address (with --executor dask).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Jobs at once (threads, processes or LocalCluster workers; default: the cores).")
@click.option("--restart", is_flag=True, help="Drop what an earlier start of this sweep committed and start over.")
@debug_option
def sweep_cmd(config: str, grid: tuple[str, ...], base: str | None, db: str | None, as_json: bool, executor: str,
              scheduler: str | None, workers: int | None, restart: bool) -> None:
    """Replay a grid of rule sets derived from a base one (× every scenario); resumable after any interruption."""
    from ..config import read_document
    from ..store import Store, resolve_db_path
    from ..sweep import grid_from_cli, run_sweep, sweep_table

    doc = read_document(config)
    table_base, table_grid = sweep_table(doc)
    cli_grid = grid_from_cli(grid)
    full = {**table_grid, **cli_grid}
    path = resolve_db_path(db)
    t0 = time.perf_counter()
    import shlex

    words = ["mbt", "sweep", config, "--db", path] + [w for g in grid for w in ("--grid", g)] + \
        (["--base", base] if base else []) + (["--executor", executor] if executor != "local" else [])
    with Store(path) as store, _bar("sweep") as update:
        out = run_sweep(store, doc, full, base or table_base, path=config, executor=executor, scheduler=scheduler,
                        restart=restart, progress=update, notice=lambda text: err(f"mbt: {text}"),
                        workers=workers, command=shlex.join(words))
    seconds = time.perf_counter() - t0
    for values, why in out.invalid:
        err("skipped " + ", ".join(f"{k}={v:g}" for k, v in values.items()) + f": {why}")
    if as_json:
        click.echo(json.dumps({"run_id": out.run_id, "base": out.base,
                               "points": [{"rule": p.rule, **p.values} for p in out.points],
                               "invalid": [{"values": v, "error": e} for v, e in out.invalid],
                               "results": out.results}, allow_nan=False))
        return
    from .output import render_table

    keys = list(full)
    star = [r for r in out.results if r["scenario"] == "*"]
    pick = star if star else [r for r in out.results if r["scenario"] != "*"]
    cols = (["var_99_bad_debt_usd", "es_99_bad_debt_usd", "mean_bad_debt_usd", "p_bad_debt"] if star
            else ["bad_debt_usd", "liquidations", "liquidated_debt_usd"])
    ce = {r["rule"]: r.get("capital_efficiency") for r in out.results if r["scenario"] != "*"}
    values = {p.rule: p.values for p in out.points}
    rows = [[r["rule"]] + [_cell(values.get(r["rule"], {}).get(k)) for k in keys] + [_cell(r[c]) for c in cols]
            + [_cell(ce.get(r["rule"]))] for r in pick]
    click.echo(f"sweep {out.name!r}  run_id {out.run_id}  ({len(out.points):,} points + base {out.base!r}, "
               f"{out.jobs:,} jobs, {out.skipped:,} already stored, {seconds:.2f} s)")
    click.echo(render_table(["rule"] + keys + cols + ["capital_efficiency"], rows))
    click.echo(f"stored in {path}: run_metrics, liquidations, timeseries, sweep_points (run_id = '{out.run_id}')")
    sys.stdout.flush()
