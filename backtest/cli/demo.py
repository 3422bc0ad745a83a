"""``mbt demo``: generate the bundled crash example, load it through the CSV path, run it, print the table."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click

from .base import cli, db_option, debug_option, err
from .run import print_run


@cli.command("demo")
@click.option("--json", "as_json", is_flag=True, help="Print what `mbt run --json` prints.")
@db_option
@click.option("--keep", type=click.Path(file_okay=False), default=None,
              help="Also write the generated CSVs and demo.toml to this directory.")
@debug_option
def demo_cmd(as_json: bool, db: str | None, keep: str | None) -> None:
    """Generate the bundled crash example, load it through the CSV path, run it and print the comparison."""
    from ..config import load_config
    from ..demo import write_demo_inputs
    from ..ingest.files import KINDS, read_inputs
    from ..runner import run
    from ..store import Store, resolve_db_path

    path = resolve_db_path(db)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mbt-demo-") as tmp:
        out = Path(keep) if keep else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        files = write_demo_inputs(out)
        frames = read_inputs({k: str(files[k]) for k in KINDS if k in files}, warn=err)
        if "events" in frames:
            ev, name = frames["events"]
            frames["events"] = (ev.assign(tx_hash=[f"demo-{i}" for i in range(len(ev))]), name)
        cfg = load_config(files["config"])
        with Store(path) as store:
            # The demo replaces its own earlier rows (and only those), in the load's transaction.
            store.ingest(frames, before=list(Store.DEMO_CLEANUP))
            if not as_json:
                err(f"demo data loaded into {path} ({time.perf_counter() - t0:.1f} s); replaying…")
            output = run(store, cfg, command=f"mbt demo --db {path}")
    print_run(output, as_json, path, time.perf_counter() - t0)
    report = _write_report(path, output.run_id)
    err(f"report: {report} (mbt report --format md --out DIR for a forum post)")
    if keep and not as_json:
        click.echo(f"demo inputs written to {keep}/ (re-run with: mbt run {keep}/demo.toml --db {path})")


def _write_report(db_path: str, run_id: str) -> Path:
    """The demo run's HTML report, in ``mbt-report/`` beside the database."""
    from ..outputs.report import build_report, write_report
    from ..store import Store

    with Store(db_path, read_only=True) as store:
        rep = build_report(store, run_id)
    return write_report(rep, Path(db_path).resolve().parent / "mbt-report", "html")
