"""``mbt ingest rpc``: load Chainlink prices from a JSON-RPC endpoint (docs/rpc.md).

Only wiring: validate options, build the transport (``adapters.rpc.transport``), open the store, run the
plan (``backtest.ingest_rpc``) with a progress bar on stderr. Endpoint URLs are never echoed: everything
shown names them as ``scheme://host[:port]``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import MbtError
from ..store import Store, resolve_db_path
from .commands import ingest
from .main import db_option, debug_option

if TYPE_CHECKING:  # web3, pandas and the ingest machinery load only when the command runs
    from adapters.rpc.transport import Transport

    from ..ingest_rpc import IngestRequest, Plan, RunReport

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _err(text: str) -> None:
    click.echo(text, err=True)


def _to_block(value: str) -> int | None:
    if value.strip().lower() == "latest":
        return None
    try:
        block = int(value.replace("_", ""), 0)
    except ValueError:
        raise MbtError(f"--to-block {value!r}: expected a block number or 'latest'") from None
    if block < 0:
        raise MbtError(f"--to-block {value}: must be >= 0")
    return block


def _endpoints(urls: tuple[str, ...]) -> list[str]:
    from adapters.rpc.redact import redact_url

    flat = [u for item in urls for u in item.split()]
    if not flat:
        raise MbtError("--rpc-url: give an endpoint (or set $ETH_RPC_URL), e.g. https://mainnet.infura.io/v3/KEY")
    for url in flat:
        shown = redact_url(url)
        if shown == "<invalid URL>" or not shown.startswith(("http://", "https://")):
            raise MbtError(f"--rpc-url {shown if shown != '<invalid URL>' else '(hidden)'}: expected an "
                           f"http:// or https:// URL with a host")
    return flat


class _Progress:
    """rich progress bar on stderr: blocks done, blocks/s, ETA (silent when stderr is not a terminal)."""

    def __init__(self, label: str, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
        from rich.text import Text

        class _Rate(ProgressColumn):
            def render(self, task: Task) -> Text:
                speed = task.finished_speed or task.speed
                return Text(f"{speed:,.0f} blocks/s" if speed else "… blocks/s")

        console = Console(stderr=True)
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                            TextColumn("{task.completed:,.0f}/{task.total:,.0f} blocks"), _Rate(),
                            TextColumn("ETA"), TimeRemainingColumn(), console=console,
                            disable=not console.is_terminal)
        self.task = self.bar.add_task(label, total=max(total, 1))

    def __enter__(self) -> _Progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def update(self, done: int, total: int) -> None:
        """Blocks committed so far (called after each chunk)."""
        self.bar.update(self.task, completed=done, total=max(total, 1))


@ingest.command("rpc")
@click.option("--source", type=click.Choice(["chainlink"]), required=True,
              help="What to read. chainlink: a Chainlink price feed (its proxy and every phase aggregator).")
@click.option("--feed", metavar="ADDRESS", help="The feed's proxy address (EACAggregatorProxy), 0x + 40 hex digits.")
@click.option("--asset", metavar="SYM", help="prices.asset to store under (default: the base of the feed's "
              "description(), e.g. USDC for \"USDC / USD\").")
@click.option("--quote-asset", metavar="SYM", help="For a feed not quoted in USD (e.g. stETH / ETH): the asset "
              "whose USD prices in the database convert it (latest price at or before each round).")
@click.option("--quote-source", metavar="NAME", help="prices.source of the quote asset's prices, when several "
              "are stored.")
@click.option("--from-block", type=click.IntRange(min=0), help="First block (required for a new feed; a "
              "resumed feed continues after its stored range, and an earlier value backfills).")
@click.option("--to-block", default="latest", metavar="N|latest", help="Last block (capped at head − "
              "confirmations).")
@click.option("--rpc-url", "rpc_urls", multiple=True, envvar="ETH_RPC_URL", metavar="URL",
              help="JSON-RPC endpoint; repeat for fail-over (default: $ETH_RPC_URL, space-separated). Shown "
              "only as scheme://host[:port].")
@click.option("--confirmations", type=click.IntRange(min=0), default=12,
              help="Blocks below the head that are never stored (reorg safety).")
@click.option("--max-rps", type=click.FloatRange(min=0, min_open=True), default=None,
              help="At most this many HTTP requests per second (all endpoints together).  [default: unlimited]")
@click.option("--blocks-per-request", type=click.IntRange(min=1), default=2000,
              help="Blocks per eth_getLogs request and per committed chunk (halved on provider limits, "
              "regrown after successes).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              help="HTTP timeout per request, seconds.")
@click.option("--retries", type=click.IntRange(min=0), default=8,
              help="Retries per request (backoff with jitter; Retry-After honoured) before giving up.")
@click.option("--all-rounds", is_flag=True, help="Store every round of every phase aggregator, not only those "
              "transmitted while the proxy pointed to it.")
@click.option("--overwrite", is_flag=True, help="Replace stored prices with the same key but different values.")
@click.option("--redecode", is_flag=True, help="Rebuild this feed's rounds and prices from stored raw logs "
              "(no RPC needed), e.g. after loading new quote prices.")
@click.option("--dry-run", is_flag=True, help="Print the plan (phases, ranges, resume point) and exit; "
              "nothing is written.")
@db_option
@debug_option
def ingest_rpc(source: str, feed: str | None, asset: str | None, quote_asset: str | None, quote_source: str | None,
               from_block: int | None, to_block: str, rpc_urls: tuple[str, ...], confirmations: int,
               max_rps: float | None, blocks_per_request: int, timeout: float, retries: int, all_rounds: bool,
               overwrite: bool, redecode: bool, dry_run: bool, db: str | None) -> None:
    """Load a Chainlink feed's rounds into prices (source "chainlink"), resumably and exactly."""
    from adapters.rpc.transport import RpcError, Transport

    from ..ingest_rpc import IngestRequest
    from ..ingest_rpc import redecode as redecode_stream
    from ..store_rpc import RpcStore

    if not feed:
        raise MbtError("--feed: required (the feed's proxy address)")
    if not _ADDRESS.match(feed):
        raise MbtError(f"--feed {feed!r}: expected 0x followed by 40 hex digits")
    for flag, value in (("--asset", asset), ("--quote-asset", quote_asset), ("--quote-source", quote_source)):
        if value is not None and not value.strip():
            raise MbtError(f"{flag}: must not be blank")
    path = resolve_db_path(db)
    if redecode:
        with Store(path) as store:
            report = redecode_stream(RpcStore(store), feed.lower(), overwrite=overwrite)
        _err(f"re-decoded {report.logs:,} stored logs → {report.rounds:,} rounds, {report.prices:,} prices "
             f"({report.seconds:.2f} s, no RPC)")
        return
    request = IngestRequest(feed=feed.lower(), from_block=from_block, to_block=_to_block(to_block),
                            confirmations=confirmations, asset=asset, quote_asset=quote_asset,
                            quote_source=quote_source, blocks_per_request=blocks_per_request,
                            all_rounds=all_rounds, overwrite=overwrite)
    transport = Transport(_endpoints(rpc_urls), timeout=timeout, retries=retries, max_rps=max_rps)
    try:
        try:
            outcome = _run(request, transport, path, dry_run)
        except RpcError as exc:
            # A node error that retrying cannot fix (the message is already scrubbed of URL secrets).
            raise MbtError(f"rpc {transport.describe()}: {exc.message} (code {exc.code})") from None
    finally:
        transport.close()
    if outcome is not None:
        _summary(*outcome, transport, path)


def _run(request: IngestRequest, transport: Transport, path: str, dry_run: bool) -> tuple[RunReport, Plan] | None:
    from ..ingest_rpc import check_same_chain, plan_ingest, run_ingest
    from ..store_rpc import RpcStore

    check_same_chain(transport)
    if dry_run:
        # Read-only, and only if the database exists: a dry run never creates or changes a file.
        store = Store(path, read_only=True) if Path(path).exists() else None
        try:
            plan = plan_ingest(request, transport, RpcStore(store) if store else None, transport.describe())
        finally:
            if store:
                store.close()
        click.echo(plan.describe())
        return None
    if Path(path).exists():
        store = Store(path)
        try:
            plan = plan_ingest(request, transport, RpcStore(store), transport.describe())
        except BaseException:
            store.close()
            raise
    else:
        # Plan before creating the file: a run that fails up front (bad endpoint, bad feed) leaves no file.
        plan = plan_ingest(request, transport, None, transport.describe())
        if not plan.units:
            _err(f"nothing to ingest ({'; '.join(plan.notes) or 'empty range'}); {path} not created")
            return None
        store = Store(path)
    with store:
        rpc = RpcStore(store)
        for note in plan.notes:
            _err(f"note: {note}")
        with _Progress(f"{plan.asset} {plan.feed.checksum[:10]}…", plan.blocks) as bar:
            report = run_ingest(plan, transport, rpc, progress=bar.update)
    return report, plan


def _summary(report: RunReport, plan: Plan, transport: Transport, path: str) -> None:
    from ..ingest_rpc import SOURCE

    stats = transport.stats
    causes = ", ".join(f"{k} {v}" for k, v in sorted(stats.by_cause.items())) or "none"
    rate = report.blocks / report.seconds if report.seconds > 0 else 0.0
    if report.rolled_back_to is not None:
        _err(f"reorg: the stored tail was no longer on the chain; rolled back to block {report.rolled_back_to:,} "
             f"and re-ingested from there")
    span = (f"blocks {min(u.lo for u in plan.units):,}..{max(u.hi for u in plan.units):,}" if plan.units
            else "nothing new")
    _err(f"{SOURCE} {plan.asset} ({plan.stream}) {span}: {report.rounds:,} rounds "
         f"({report.walked:,} via getRoundData), {report.logs:,} logs, {report.prices:,} prices stored; "
         f"{report.chunks:,} chunk(s) in {report.seconds:.1f} s ({rate:,.0f} blocks/s); confirmed head "
         f"{plan.target:,} ({plan.request.confirmations} confirmations)")
    if report.skipped_nonpositive:
        _err(f"warning: {report.skipped_nonpositive:,} round(s) with a price <= 0 kept in chainlink_rounds but not "
             f"stored as prices")
    _err(f"rpc {transport.describe()}: {stats.http_requests:,} HTTP requests ({stats.batches:,} batches, "
         f"{stats.calls:,} calls), {stats.retries:,} retries ({causes}), {report.splits:,} range splits, "
         f"{stats.failovers:,} fail-overs, {stats.waited_s:.1f} s waiting")
    _err(f"database: {path}")
