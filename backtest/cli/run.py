"""``mbt run CONFIG.toml``: replay the stored data under every rule set of a config and compare them.

Only wiring: load the config, open the store, call ``backtest.runner.run`` with the engine and executor
options, print the table (or one JSON document with ``--json``).
"""

from __future__ import annotations

import json
import time

import click

from .base import cli, db_option, debug_option


def print_run(output, as_json: bool, db_path: str, seconds: float) -> None:
    """What ``mbt run`` and ``mbt demo`` print: the comparison table, or one JSON document on stdout."""
    from .output import across_table, comparison_table

    if as_json:
        click.echo(json.dumps(output.document(), allow_nan=False))
        return
    inputs = output.inputs
    click.echo(f"run {output.name!r}  run_id {output.run_id}  "
               f"({len(inputs.accounts):,} accounts × {len(inputs.assets)} assets × {len(inputs.grid_us):,} steps, "
               f"{seconds:.2f} s)")
    results = output.results()
    if output.across:
        names = sorted({o.scenario for o in output.outcomes})
        shown = ", ".join(names[:4]) + (f", … ({len(names):,} in all)" if len(names) > 4 else "")
        click.echo(f"{len(names):,} scenarios: {shown}")
        click.echo(across_table(results))
        click.echo(f"per-scenario metrics: --json, or mbt sql \"SELECT * FROM run_results WHERE run_id = "
                   f"'{output.run_id}' ORDER BY rule, scenario\"")
    else:
        click.echo(comparison_table(results))
    click.echo(f"stored in {db_path}: tables runs, run_metrics, liquidations, timeseries (run_id = '{output.run_id}')")


def _executor_options(executor: str, scheduler: str | None) -> dict[str, str]:
    # The runner checks the combination (e.g. --scheduler without --executor dask); scheduler goes only
    # when given, so a runner without Dask support still takes the call.
    options = {"executor": executor}
    if scheduler is not None:
        options["scheduler"] = scheduler
    return options


@cli.command("run")
@click.argument("config", type=click.Path(dir_okay=False))
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout (DESIGN §6).")
@click.option("--executor", type=click.Choice(["local", "processes", "dask"]), default="local",
              help="Where rule sets are replayed: in this process, in local processes (one per rule set), or on a "
              "Dask cluster.")
@click.option("--scheduler", metavar="ADDR", default=None, help="Dask scheduler address (with --executor dask).")
@click.option("--engine", type=click.Choice(["fast", "reference"]), default="fast",
              help="fast: compiled, event-skipping; reference: the literal DESIGN §4 loop (slow, for checking).")
@debug_option
def run_cmd(config: str, db: str | None, as_json: bool, executor: str, scheduler: str | None, engine: str) -> None:
    """Replay the stored data under every rule set of CONFIG and compare them side by side."""
    import contextlib
    import shlex

    from ..inputs import Prefetch
    from ..store import Store, resolve_db_path

    options = _executor_options(executor, scheduler)
    path = resolve_db_path(db)
    with contextlib.ExitStack() as stack:
        # the store reads run on a thread while the config (and numba with its plug-ins) loads; see Prefetch
        pre = Prefetch.start(path, config)
        if pre is not None:  # on the way out, whatever happened: the reads joined first, then the store closed
            stack.callback(pre.store.close)
            stack.callback(pre.close)
        from ..config import load_config
        from ..runner import run

        cfg = load_config(config)
        t0 = time.perf_counter()
        words = ["mbt", "run", config, "--db", path] + (["--engine", engine] if engine != "fast" else []) + \
            (["--executor", executor] if executor != "local" else []) + (["--scheduler", scheduler] if scheduler else [])
        store = pre.store if pre is not None else stack.enter_context(Store(path))
        output = run(store, cfg, engine=engine, command=shlex.join(words), prefetched=pre, **options)
    print_run(output, as_json, path, time.perf_counter() - t0)
