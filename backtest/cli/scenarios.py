"""``mbt scenarios CONFIG``: summarise a run's scenario paths (volatility, drawdowns) and write them as Parquet."""

from __future__ import annotations

from pathlib import Path

import click

from .base import cli, db_option, debug_option, err


@cli.command("scenarios")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Also write every path to DIR/paths.parquet (scenario, ts, asset, price_usd), for plots.")
@db_option
@debug_option
def scenarios_cmd(config: str, out: str | None, db: str | None) -> None:
    """Generate the scenarios of CONFIG on the stored data; print per-asset volatility and drawdown quantiles."""
    from ..config import load_config
    from ..outputs.scenario_summary import summarise, write_paths
    from ..inputs import load_inputs
    from ..scenarios import paths
    from ..scenarios.stochastic import step_seconds
    from ..store import Store, resolve_db_path
    from .output import render_table

    cfg = load_config(config)
    with Store(resolve_db_path(db), read_only=True) as store:
        inputs = load_inputs(store, cfg)
    data = inputs.data
    generated = paths(cfg, data)
    rows = summarise(generated, data.assets, step_seconds(cfg, data))
    cols = ["asset", "paths", "vol_annual", "drawdown_p50", "drawdown_p95", "drawdown_p99", "final_p05", "final_p50"]
    click.echo(render_table(cols, [[r["asset"], f"{r['paths']:,}"] + [f"{r[c]:.4f}" for c in cols[2:]] for r in rows],
                            align=["l"] + ["r"] * (len(cols) - 1)))
    err(f"{len(generated):,} paths × {len(data.grid_us):,} steps: " + ", ".join(p.scenario for p in generated[:5])
        + (" …" if len(generated) > 5 else ""))
    if out:
        path = write_paths(generated, data.assets, Path(out))
        err(f"wrote {path}")
