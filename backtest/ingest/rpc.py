"""``mbt ingest rpc``: from validated options to a finished run (or a plan, or a re-decode).

The CLI hands over the option values; this module picks the source (``adapters.rpc.sources``), checks
the options it owns, builds the transport, opens the store only when there is something to write (a run
that fails up front, or a dry run, never creates the database file), runs the driver, and phrases the
summary. Endpoint URLs are only ever shown as ``scheme://host[:port]``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.rpc.sources import PLANNED, SOURCES, get_source
from adapters.rpc.sources.base import LogSource, SourceOption

from ..errors import MbtError

if TYPE_CHECKING:  # web3, pyarrow and DuckDB load only when a run starts
    from adapters.rpc.transport import Transport

    from .driver import Plan, RunReport

__all__ = ["PLANNED", "SOURCES", "Progress", "Settings", "SourceOption", "endpoints", "get_source", "ingest",
           "own_options", "owners", "parse_to_block", "redecode", "source_options", "summary"]

#: Opens a progress display for (label, total blocks); the context's value is called with (done, total).
Progress = Callable[[str, int], AbstractContextManager[Callable[[int, int], None]]]


def source_options() -> list[SourceOption]:
    """Every registered source's options, once per flag (sources may share one, e.g. --asset)."""
    seen: dict[str, SourceOption] = {}
    for source in SOURCES.values():
        for opt in source.options:
            seen.setdefault(opt.flag, opt)
    return list(seen.values())


def owners(flag: str) -> list[str]:
    """Names of the sources that take option ``flag``."""
    return [s.name for s in SOURCES.values() if any(o.flag == flag for o in s.options)]


def own_options(source: LogSource, given: Mapping[str, Any]) -> dict[str, Any]:
    """The options of ``source``, validated; another source's option given on the command line is an error."""
    mine = {o.dest for o in source.options}
    for opt in source_options():
        if opt.dest not in mine and given.get(opt.dest) not in (None, False):
            raise MbtError(f"{opt.flag}: not an option of --source {source.name}")
    return source.validate({o.dest: given.get(o.dest) for o in source.options})


def parse_to_block(value: str) -> int | None:
    """``--to-block``: a block number (decimal, hex, ``_`` separators) or ``latest`` (None)."""
    if value.strip().lower() == "latest":
        return None
    try:
        block = int(value.replace("_", ""), 0)
    except ValueError:
        raise MbtError(f"--to-block {value!r}: expected a block number or 'latest'") from None
    if block < 0:
        raise MbtError(f"--to-block {value}: must be >= 0")
    return block


def endpoints(urls: tuple[str, ...] | list[str]) -> list[str]:
    """``--rpc-url`` values (each may hold several, space-separated), checked to be http(s) URLs."""
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


def redecode(source: LogSource, options: Mapping[str, Any], db_path: str, *, overwrite: bool = False) -> str:
    """Rebuild a stream's decoded rows from its stored raw logs (no node); returns the summary line."""
    from ..store import Store
    from .driver import redecode as redecode_stream
    from .rpc_store import RpcStore

    with Store(db_path) as store:
        report = redecode_stream(source, RpcStore(store), options, overwrite=overwrite)
    return f"{source.redecode_summary(report.counts, report.logs)} ({report.seconds:.2f} s, no RPC)"


@dataclass
class Settings:
    """The driver's options of one run (everything but the source's own)."""

    from_block: int | None
    to_block: int | None
    rpc_urls: tuple[str, ...]
    confirmations: int = 12
    max_rps: float | None = None
    blocks_per_request: int = 2000
    timeout: float = 30.0
    retries: int = 8
    overwrite: bool = False


def ingest(source: LogSource, options: Mapping[str, Any], settings: Settings, db_path: str, *, dry_run: bool,
           progress: Progress | None = None, echo: Callable[[str], None] = print,
           note: Callable[[str], None] = print) -> None:
    """One ``mbt ingest rpc`` run (or, with ``dry_run``, its plan on ``echo``; nothing is written).

    Parameters
    ----------
    source : LogSource
        The source.
    options : mapping
        Its validated options (:func:`own_options`).
    settings : Settings
        The driver's options.
    db_path : str
        The database (created only when a run has something to store).
    dry_run : bool
        Print the plan and stop.
    progress : callable, optional
        Progress display for the chunks (label, total blocks) → context giving an update callable.
    echo, note : callable
        Where the plan (stdout) and notes, summary and warnings (stderr) go, one line per call.
    """
    from adapters.rpc.transport import RpcError, Transport

    from .driver import IngestRequest

    request = IngestRequest(source=source, options=options, from_block=settings.from_block,
                            to_block=settings.to_block, confirmations=settings.confirmations,
                            blocks_per_request=settings.blocks_per_request, overwrite=settings.overwrite)
    transport = Transport(endpoints(settings.rpc_urls), timeout=settings.timeout, retries=settings.retries,
                          max_rps=settings.max_rps)
    try:
        try:
            outcome = _run(request, transport, db_path, dry_run, progress, echo, note)
        except RpcError as exc:
            # A node error that retrying cannot fix (the message is already scrubbed of URL secrets).
            raise MbtError(f"rpc {transport.describe()}: {exc.message} (code {exc.code})") from None
    finally:
        transport.close()
    if outcome is not None:
        for line in summary(*outcome, transport, db_path):
            note(line)


def _no_progress(label: str, total: int) -> AbstractContextManager[Callable[[int, int], None]]:
    return nullcontext(lambda done, total, logs=0: None)


def _run(request: Any, transport: Transport, path: str, dry_run: bool, progress: Progress | None,
         echo: Callable[[str], None], note: Callable[[str], None]) -> tuple[RunReport, Plan] | None:
    from ..store import Store
    from .driver import check_same_chain, plan_ingest, run_ingest
    from .rpc_store import RpcStore

    check_same_chain(transport)
    if dry_run:
        # Read-only, and only if the database exists: a dry run never creates or changes a file.
        store = Store(path, read_only=True) if Path(path).exists() else None
        try:
            plan = plan_ingest(request, transport, RpcStore(store) if store else None, transport.describe())
        finally:
            if store:
                store.close()
        echo(plan.describe())
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
            note(f"nothing to ingest ({'; '.join(plan.notes) or 'empty range'}); {path} not created")
            return None
        store = Store(path)
    with store:
        rpc = RpcStore(store)
        for text in plan.notes:
            note(f"note: {text}")
        with (progress or _no_progress)(plan.source_plan.label, plan.blocks) as update:
            report = run_ingest(plan, transport, rpc, progress=update)
    return report, plan


def summary(report: RunReport, plan: Plan, transport: Transport, path: str) -> Iterator[str]:
    """The lines printed after a run: what was stored, warnings, what the transport did, the database."""
    source, splan = plan.source, plan.source_plan
    stats = transport.stats
    causes = ", ".join(f"{k} {v}" for k, v in sorted(stats.by_cause.items())) or "none"
    rate = report.blocks / report.seconds if report.seconds > 0 else 0.0
    if report.rolled_back_to is not None:
        yield (f"reorg: the stored tail was no longer on the chain; rolled back to block {report.rolled_back_to:,} "
               f"and re-ingested from there")
    span = (f"blocks {min(u.lo for u in plan.units):,}..{max(u.hi for u in plan.units):,}" if plan.units
            else "nothing new")
    stored = source.summary(splan, report.counts, report.logs)
    yield (f"{source.name} {splan.subject} ({plan.stream}) {span}: {stored}; "
           f"{report.chunks:,} chunk(s) in {report.seconds:.1f} s ({rate:,.0f} blocks/s); confirmed head "
           f"{plan.target:,} ({plan.request.confirmations} confirmations)")
    yield from source.warnings(report.counts)
    yield (f"rpc {transport.describe()}: {stats.http_requests:,} HTTP requests ({stats.batches:,} batches, "
           f"{stats.calls:,} calls), {stats.retries:,} retries ({causes}), {report.splits:,} range splits, "
           f"{stats.failovers:,} fail-overs, {stats.waited_s:.1f} s waiting")
    yield f"database: {path}"
