"""``mbt ingest rpc --source NAME``: load a registered log source from a JSON-RPC endpoint (docs/rpc.md).

Only wiring: the command's options are the driver's (blocks, endpoints, retries, ...) plus every
registered source's own (Chainlink adds ``--feed``, ``--asset``, ...), all handed to
``backtest.ingest.rpc``; this module adds the progress bar (rich, on stderr).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from ..ingest import rpc
from .base import db_option, debug_option, err
from .ingest import ingest


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[..., None]]:
    """rich progress bar on stderr: blocks done, blocks/s, logs/s, ETA (silent when stderr is not a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class _Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            elapsed = task.elapsed or 0.0
            logs = task.fields.get("logs", 0)
            per = f", {logs / elapsed:,.0f} logs/s" if elapsed > 0 and logs else ""
            return Text((f"{speed:,.0f} blocks/s" if speed else "… blocks/s") + per)

    console = Console(stderr=True)
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                   TextColumn("{task.completed:,.0f}/{task.total:,.0f} blocks"), _Rate(),
                   TextColumn("ETA"), TimeRemainingColumn(), console=console, disable=not console.is_terminal)
    task = bar.add_task(label, total=max(total, 1), logs=0)
    with bar:
        yield lambda done, total, logs=0: bar.update(task, completed=done, total=max(total, 1), logs=logs)


def _source_option(opt: rpc.SourceOption) -> Callable:
    text = f"{opt.help} [--source {'|'.join(rpc.owners(opt.flag))}]"
    if opt.is_flag:
        return click.option(opt.flag, opt.dest, is_flag=True, help=text)
    return click.option(opt.flag, opt.dest, metavar=opt.metavar, default=None, help=text)


def _source_help() -> str:
    listed = "; ".join(f"{s.name}: {s.description}" for s in rpc.SOURCES.values())
    return f"What to read. {listed}. Planned: {', '.join(rpc.PLANNED)}."


_OPTIONS = [
    click.option("--source", "source_name", required=True, metavar="NAME", help=_source_help()),
    *[_source_option(opt) for opt in rpc.source_options()],
    click.option("--from-block", type=click.IntRange(min=0), help="First block (required for a new stream; a "
                 "resumed stream continues after its stored range, and an earlier value backfills)."),
    click.option("--to-block", default="latest", metavar="N|latest", help="Last block (capped at head − "
                 "confirmations)."),
    click.option("--rpc-url", "rpc_urls", multiple=True, envvar="ETH_RPC_URL", metavar="URL",
                 help="JSON-RPC endpoint; repeat for fail-over (default: $ETH_RPC_URL, space-separated). Shown "
                 "only as scheme://host[:port]."),
    click.option("--confirmations", type=click.IntRange(min=0), default=12,
                 help="Blocks below the head that are never stored (reorg safety)."),
    click.option("--max-rps", type=click.FloatRange(min=0, min_open=True), default=None,
                 help="At most this many HTTP requests per second (all endpoints together).  [default: unlimited]"),
    click.option("--blocks-per-request", type=click.IntRange(min=1), default=2000,
                 help="Blocks per eth_getLogs request and per committed chunk (halved on provider limits, "
                 "regrown after successes)."),
    click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
                 help="HTTP timeout per request, seconds."),
    click.option("--retries", type=click.IntRange(min=0), default=8,
                 help="Retries per request (backoff with jitter; Retry-After honoured) before giving up."),
    click.option("--overwrite", is_flag=True, help="Replace stored prices with the same key but different values."),
    click.option("--redecode", is_flag=True, help="Rebuild this stream's decoded rows (e.g. rounds and prices) from "
                 "stored raw logs (no RPC needed), e.g. after loading new quote prices."),
    click.option("--dry-run", is_flag=True, help="Print the plan (phases, ranges, resume point) and exit; "
                 "nothing is written."),
    db_option,
    debug_option,
]


def _with_options(func: Callable) -> Callable:
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


@ingest.command("rpc")
@_with_options
def ingest_rpc(source_name: str, from_block: int | None, to_block: str, rpc_urls: tuple[str, ...],
               confirmations: int, max_rps: float | None, blocks_per_request: int, timeout: float, retries: int,
               overwrite: bool, redecode: bool, dry_run: bool, db: str | None, **source_options: Any) -> None:
    """Load a source's history from a JSON-RPC endpoint (e.g. Chainlink rounds into prices), resumably and exactly."""
    from ..store import resolve_db_path

    source = rpc.get_source(source_name)
    options = rpc.own_options(source, source_options)
    path = resolve_db_path(db)
    if redecode:
        err(rpc.redecode(source, options, path, overwrite=overwrite))
        return
    settings = rpc.Settings(from_block=from_block, to_block=rpc.parse_to_block(to_block), rpc_urls=rpc_urls,
                            confirmations=confirmations, max_rps=max_rps, blocks_per_request=blocks_per_request,
                            timeout=timeout, retries=retries, overwrite=overwrite)
    rpc.ingest(source, options, settings, path, dry_run=dry_run, progress=_progress, echo=click.echo, note=err)
