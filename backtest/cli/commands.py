"""The verbs of ``mbt``: demo, ingest csv, run, sql, runs. Each only wires adapters, store and runner."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import click

from ..config import load_config
from ..errors import MbtError
from ..store import Store, resolve_db_path
from .main import cli, db_option, debug_option
from .output import comparison_table, format_cell, render_table

KINDS = ("prices", "positions", "events", "liquidity", "indices")


def _err(text: str) -> None:
    click.echo(text, err=True)


def read_inputs(files: dict[str, str | None]) -> dict:
    """Validate every given CSV (before the database is touched) → ``kind → (frame, display name)``."""
    from adapters.csv import read_table

    frames = {}
    for kind in KINDS:
        path = files.get(kind)
        if path:
            frames[kind] = (read_table(kind, path, display_name=path, warn=_err), path)
    return frames


@cli.group("ingest", context_settings={"show_default": True})
def ingest() -> None:
    """Load data into the database."""


@ingest.command("csv")
@click.option("--prices", type=click.Path(dir_okay=False), help="prices CSV (timestamp, asset, price_usd).")
@click.option("--positions", type=click.Path(dir_okay=False),
              help="positions snapshot CSV (account, asset, collateral, debt); replaces the stored snapshot.")
@click.option("--events", type=click.Path(dir_okay=False),
              help="events CSV (timestamp, account, asset, action, amount).")
@click.option("--liquidity", type=click.Path(dir_okay=False),
              help="liquidity CSV (timestamp, asset, depth_usd_2pct | reserve_asset, reserve_quote).")
@click.option("--indices", type=click.Path(dir_okay=False),
              help="interest indices CSV (timestamp, asset, liquidity_index, variable_borrow_index).")
@click.option("--overwrite", is_flag=True, help="Replace stored rows whose key matches but whose values differ.")
@db_option
@debug_option
def ingest_csv(prices: str | None, positions: str | None, events: str | None, liquidity: str | None,
               indices: str | None, overwrite: bool, db: str | None) -> None:
    """Load CSV files in one transaction: everything in the command is stored, or nothing."""
    files = {"prices": prices, "positions": positions, "events": events, "liquidity": liquidity,
             "indices": indices}
    if not any(files.values()):
        raise MbtError("ingest csv: give at least one of --prices, --positions, --events, --liquidity, --indices")
    frames = read_inputs(files)
    path = resolve_db_path(db)
    with Store(path) as store:
        counts = store.ingest(frames, overwrite=overwrite)
    for kind, (frame, display) in frames.items():
        _err(f"{display}: {len(frame):,} {kind} rows read, {counts[kind]:,} stored as new or changed")
    _err(f"database: {path}")


def _print_run(output, as_json: bool, db_path: str, seconds: float) -> None:
    if as_json:
        click.echo(json.dumps(output.document(), allow_nan=False))
        return
    inputs = output.inputs
    click.echo(f"run {output.name!r}  run_id {output.run_id}  "
               f"({len(inputs.accounts):,} accounts × {len(inputs.assets)} assets × {len(inputs.grid_us):,} steps, "
               f"{seconds:.2f} s)")
    click.echo(comparison_table(output.results()))
    click.echo(f"stored in {db_path}: tables runs, run_metrics, liquidations, timeseries (run_id = '{output.run_id}')")


@cli.command("run")
@click.argument("config", type=click.Path(dir_okay=False))
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout (DESIGN §6).")
@click.option("--executor", type=click.Choice(["local", "processes", "dask"]), default="local",
              help="Where rule sets are replayed: in this process, or in local processes (one per rule set).")
@click.option("--scheduler", metavar="ADDR", default=None, help="Dask scheduler address (with --executor dask).")
@click.option("--engine", type=click.Choice(["fast", "reference"]), default="fast",
              help="fast: compiled, event-skipping; reference: the literal DESIGN §4 loop (slow, for checking).")
@debug_option
def run_cmd(config: str, db: str | None, as_json: bool, executor: str, scheduler: str | None, engine: str) -> None:
    """Replay the stored data under every rule set of CONFIG and compare them side by side."""
    from ..runner import run

    if executor == "dask":
        raise MbtError("--executor dask: not implemented yet; use local or processes")
    if scheduler:
        raise MbtError("--scheduler: only used with --executor dask")
    cfg = load_config(config)
    path = resolve_db_path(db)
    t0 = time.perf_counter()
    with Store(path) as store:
        output = run(store, cfg, engine=engine, executor=executor)
    _print_run(output, as_json, path, time.perf_counter() - t0)


@cli.command("demo")
@click.option("--json", "as_json", is_flag=True, help="Print what `mbt run --json` prints.")
@db_option
@click.option("--keep", type=click.Path(file_okay=False), default=None,
              help="Also write the generated CSVs and demo.toml to this directory.")
@debug_option
def demo_cmd(as_json: bool, db: str | None, keep: str | None) -> None:
    """Generate the bundled crash example, load it through the CSV path, run it and print the comparison."""
    from ..demo import write_demo_inputs
    from ..runner import run

    path = resolve_db_path(db)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mbt-demo-") as tmp:
        out = Path(keep) if keep else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        files = write_demo_inputs(out)
        frames = read_inputs({k: str(files[k]) for k in KINDS if k in files})
        if "events" in frames:
            ev, name = frames["events"]
            frames["events"] = (ev.assign(tx_hash=[f"demo-{i}" for i in range(len(ev))]), name)
        cfg = load_config(files["config"])
        with Store(path) as store:
            store.ingest(frames, before=[("DELETE FROM prices WHERE source = 'demo'", []),
                                         ("DELETE FROM events WHERE tx_hash LIKE 'demo-%'", []),
                                         ("DELETE FROM liquidity WHERE venue = 'demo'", [])])
            if not as_json:
                _err(f"demo data loaded into {path} ({time.perf_counter() - t0:.1f} s); replaying…")
            output = run(store, cfg)
    _print_run(output, as_json, path, time.perf_counter() - t0)
    if keep and not as_json:
        click.echo(f"demo inputs written to {keep}/ (re-run with: mbt run {keep}/demo.toml --db {path})")


def _print_query(cur) -> None:
    if cur.description is None:
        return
    headers = [d[0] for d in cur.description]
    rows = cur.fetchall()
    click.echo(render_table(headers, rows))
    _err(f"({len(rows):,} row{'s' if len(rows) != 1 else ''})")


@cli.command("sql")
@click.argument("query", required=False)
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False), help="Read the SQL from FILE.")
@db_option
@debug_option
def sql_cmd(query: str | None, file: str | None, db: str | None) -> None:
    """Run SQL on a read-only connection and print the result as a table."""
    import duckdb

    if bool(query) == bool(file):
        raise MbtError("sql: give either a QUERY argument or -f FILE")
    if file:
        try:
            query = Path(file).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise MbtError(f"{file}: cannot read ({exc.strerror})") from None
    with Store(resolve_db_path(db), read_only=True) as store:
        try:
            cur = store.con.execute(query)
        except duckdb.Error as exc:
            raise MbtError(f"sql: {str(exc).splitlines()[0]}") from None
        _print_query(cur)


@cli.command("runs")
@db_option
@debug_option
def runs_cmd(db: str | None) -> None:
    """List the runs stored in the database, newest first."""
    with Store(resolve_db_path(db), read_only=True) as store:
        rows = store.con.execute("""
            SELECT r.run_id, r.name, strftime(r.created_at, '%Y-%m-%d %H:%M:%S') AS created_utc,
                   r.grid_steps AS steps, r.accounts,
                   (SELECT count(DISTINCT rule) FROM run_metrics m WHERE m.run_id = r.run_id) AS rule_sets,
                   (SELECT value FROM run_metrics m WHERE m.run_id = r.run_id AND m.metric = 'bad_debt_usd'
                    ORDER BY rowid LIMIT 1) AS baseline_bad_debt_usd
            FROM runs r ORDER BY r.created_at DESC""")
        _print_query(rows)
