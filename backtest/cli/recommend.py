"""``mbt recommend RUN_ID``: the best point of a stored sweep under constraints (docs/sweeps.md)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import MbtError
from .base import cli, db_option, debug_option, err


def _num(v) -> str:
    if v is None:
        return "—"
    return f"{v:,.4f}" if abs(v) < 10 else f"{v:,.2f}"


@cli.command("recommend")
@click.argument("run_id")
@click.option("--objective", required=True, metavar="METRIC", help="Metric to optimise (capital_efficiency is "
              "maximised; bad debt, liquidation and risk metrics minimised).")
@click.option("--constraint", "constraints", multiple=True, metavar="EXPR",
              help='A limit such as "var_99_bad_debt_usd <= 250000" (repeatable; all must hold).')
@click.option("--max-change", "max_change", multiple=True, metavar="KEY=LIMIT",
              help="Largest change from the base of matching swept keys, e.g. assets.*.liquidation_threshold=0.03.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, help="Write the recommended rule set as TOML.")
@db_option
@debug_option
def recommend_cmd(run_id: str, objective: str, constraints: tuple[str, ...], max_change: tuple[str, ...],
                  out: str | None, db: str | None) -> None:
    """Among a sweep's points, the best objective under every constraint: current → recommended."""
    from ..recommend import base_value, load_sweep, parse_constraint, parse_max_change, recommend, rule_toml
    from ..store import Store, resolve_db_path
    from .output import render_table

    cons = [parse_constraint(c) for c in constraints]
    limits = [parse_max_change(m) for m in max_change]
    with Store(resolve_db_path(db), read_only=True) as store:
        sweep = load_sweep(store, run_id)
    rec = recommend(sweep, objective, cons, limits)
    if rec.rule is None:
        if rec.closest is None:
            raise MbtError(f"run {run_id}: no point has {objective}")
        click.echo(f"no point meets every constraint; closest: {rec.closest} "
                   + ", ".join(f"{k}={v:g}" for k, v in sweep.points[rec.closest].items()))
        for why in rec.closest_misses:
            click.echo(f"  misses {why}")
        raise SystemExit(1)
    point = sweep.points[rec.rule]
    click.echo(f"recommended {rec.rule} of {len(sweep.points):,} points ({rec.qualifying:,} meet the constraints), "
               f"objective {objective}")
    rows = [[k, _num(base_value(sweep, k)), _num(v), _num(v - (base_value(sweep, k) or 0.0))] for k, v in point.items()]
    click.echo(render_table(["parameter", f"current ({sweep.base})", "recommended", "change"], rows))
    cur, new = sweep.metrics.get(sweep.base, {}), sweep.metrics[rec.rule]
    names = [m for m in new if m in cur or m in new]
    mrows = [[m, _num(cur.get(m)), _num(new.get(m)),
              _num(None if cur.get(m) is None or new.get(m) is None else new[m] - cur[m])] for m in names]
    click.echo(render_table(["metric", "current", "recommended", "change"], mrows))
    if out:
        Path(out).write_text(f"# recommended by mbt recommend {run_id} --objective {objective}"
                             + "".join(f' --constraint "{c}"' for c in cons) + "\n"
                             + rule_toml(sweep.rules[rec.rule], "recommended"), encoding="utf-8")
        err(f"wrote {out}")
