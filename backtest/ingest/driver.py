"""The log-ingest driver of ``mbt ingest rpc``: plan, resume, reorg repair, chunks, progress — for any source.

A run: ask the node for its chain and head; the confirmed target is ``head − confirmations`` (capped by
``--to-block``), so the unsafe tail is never stored. If the stream (one source key, e.g. a feed, on one
chain) has data, its stored tail hash is compared with the node's: on a mismatch the highest checkpoint
still on the chain is found and everything above it is rolled back. The source then prepares the run
(``LogSource.prepare``: e.g. Chainlink reads the proxy's phases and when it switched to each). The blocks
still missing (above the stored range, and below it when ``--from-block`` reaches further back) are cut
into chunks on a fixed grid of ``--blocks-per-request`` blocks (cut again where the source says, e.g. at
phase switches) and each chunk is fetched, decoded and committed in one transaction with
``ingest_state``: a run killed anywhere resumes after its last whole chunk and ends with the same tables
as an uninterrupted run.

Per chunk: one batch for the chunk's end header, the header before it (a reorg during the run) and the
source's edge calls; ``eth_getLogs`` of the source's contracts and topics (split and regrown by
``LogFetcher``); then the source turns the logs into frames (``SourcePlan.read``), and ``RpcStore``
commits raw logs, frames, headers and checkpoint together. :func:`plan_ingest` does everything up to
the chunk list (``--dry-run`` prints it); :func:`run_ingest` executes it; :func:`redecode` rebuilds a
stream's frames from its stored raw logs without a node.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters.rpc.chain import BlockCache, Client, Header, LogFetcher, header_request, log_batch, map_header
from adapters.rpc.sources.base import ChunkInput, LogSource, PrepareContext, SourcePlan, StreamState, Unit
from adapters.rpc.transport import RpcError

from ..errors import MbtError
from .rpc_store import Chunk, RpcStore

__all__ = ["IngestRequest", "Plan", "RunReport", "check_same_chain", "plan_ingest", "redecode", "run_ingest"]


@dataclass(frozen=True)
class IngestRequest:
    """What the user asked for (validated CLI options); ``options`` are the source's own."""

    source: LogSource
    options: Mapping[str, Any]
    from_block: int | None
    to_block: int | None             # None = latest
    confirmations: int = 12
    blocks_per_request: int = 2000
    overwrite: bool = False


@dataclass
class Plan:
    """Everything decided before the first chunk is fetched."""

    chain_id: int
    stream: str
    head: int
    target: int
    endpoints: str
    state: StreamState | None
    rollback: tuple[int, str] | None                 # reorg: roll back to (block, hash)
    units: list[Unit]
    request: IngestRequest
    source_plan: SourcePlan
    notes: list[str] = field(default_factory=list)

    @property
    def source(self) -> LogSource:
        return self.request.source

    @property
    def blocks(self) -> int:
        """Blocks the plan will ingest."""
        return sum(u.hi - u.lo + 1 for u in self.units)

    def describe(self) -> str:
        """The plan as text (``--dry-run``)."""
        r = self.request
        lines = [
            f"mbt ingest rpc --source {self.source.name} (dry run: the plan only, nothing is written)",
            f"  endpoint(s)   {self.endpoints}",
            (f"  chain         {self.chain_id}; head {self.head:,}; confirmations {r.confirmations} → "
             f"target block {self.target:,}"),
            *self.source_plan.describe(self.stream),
        ]
        if self.state:
            lines.append(f"  stored        blocks {self.state.first_block:,}..{self.state.last_block:,}")
        else:
            lines.append("  stored        nothing yet")
        if self.rollback:
            lines.append(f"  reorg         stored tail differs from the chain: roll back to block {self.rollback[0]:,}")
        ups = [u for u in self.units if u.direction == "up"]
        downs = [u for u in self.units if u.direction == "down"]
        for name, units in (("backfill", downs), ("to ingest", ups)):
            if units:
                lo, hi = min(u.lo for u in units), max(u.hi for u in units)
                lines.append(f"  {name:<13} blocks {lo:,}..{hi:,} ({hi - lo + 1:,} blocks, {len(units):,} chunk(s) of "
                             f"≤ {r.blocks_per_request:,} blocks)")
        if not self.units:
            lines.append("  to ingest     nothing (stored range is up to date)")
        lines.extend(f"  note          {n}" for n in self.notes)
        return "\n".join(lines)


@dataclass
class RunReport:
    """Counters of one run (printed at the end); ``counts`` are the source's (e.g. rounds, prices)."""

    chunks: int = 0
    blocks: int = 0
    logs: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    rolled_back_to: int | None = None
    splits: int = 0                  # eth_getLogs ranges the provider refused (and that were split)
    seconds: float = 0.0

    def add(self, counts: Mapping[str, int]) -> None:
        for key, value in counts.items():
            self.counts[key] = self.counts.get(key, 0) + value


# -- planning -------------------------------------------------------------------------------------
def _chain_id(client: Any) -> int:
    chain = client.call("eth_chainId", [])
    return int(chain, 16)


def check_same_chain(transport: Any) -> None:
    """With several endpoints, each that answers must serve the same chain (fail-over must not cross chains)."""
    if len(transport.endpoints) < 2:
        return
    seen: dict[int, str] = {}
    for i, label in enumerate(transport.labels):
        try:
            chain = transport.call_on(i, "eth_chainId", [])
        except Exception:  # noqa: BLE001, S112 - an endpoint down now may be fine later; fail-over decides
            continue
        seen.setdefault(int(chain, 16), label)
    if len(seen) > 1:
        listing = ", ".join(f"{label} → chain {c}" for c, label in seen.items())
        raise MbtError(f"--rpc-url: the endpoints serve different chains ({listing})")


def _find_fork(client: Client, rpc: RpcStore, state: StreamState, head: int) -> tuple[int, str] | None:
    """None if the stored tail is still on the chain, else the highest checkpoint that is (or first−1).

    A node whose head is below the stored tail (a lagging fail-over endpoint) is not a reorg as long as
    the highest checkpoint it does have still matches.
    """
    cache = BlockCache(client)
    below = state.last_block
    if state.last_block <= head:
        now = cache.get([state.last_block], refresh=True)[state.last_block]
        if now is not None and now.hash == state.last_block_hash:
            return None
    else:
        below = head
        top = rpc.checkpoints_below(state.stream, head, 1)
        if top and (h := cache.get([top[0][0]], refresh=True)[top[0][0]]) is not None and h.hash == top[0][1]:
            return None
    while True:
        points = rpc.checkpoints_below(state.stream, below, 64)
        if not points:
            return state.first_block - 1, ""
        current = cache.get([b for b, _ in points], refresh=True)
        for block, stored_hash in points:
            header = current[block]
            if header is not None and header.hash == stored_hash:
                return block, stored_hash
        below = points[-1][0] - 1


def chunk_units(lo: int, hi: int, grid: int, cuts: list[int], direction: str,
                tracks_at: Callable[[int], tuple[Any, ...]]) -> list[Unit]:
    """Blocks ``lo..hi`` as chunks on the fixed grid of ``grid`` blocks, cut again at ``cuts``.

    The grid does not depend on where a run starts or stopped, so runs split anywhere store the same
    chunks; ``direction`` "down" (a backfill) lists them from the top.
    """
    if lo > hi:
        return []
    bounds = {lo} | set(range((lo // grid + 1) * grid, hi + 1, grid)) | {c for c in cuts if lo < c <= hi}
    starts = sorted(bounds)
    units = [Unit(s, (starts[i + 1] - 1) if i + 1 < len(starts) else hi, tracks_at(s), direction)
             for i, s in enumerate(starts)]
    return units if direction == "up" else units[::-1]


def plan_ingest(req: IngestRequest, client: Any, rpc: RpcStore | None, endpoints: str) -> Plan:
    """Decide what a run will do (reads the node; writes nothing).

    Parameters
    ----------
    req : IngestRequest
        The request.
    client : Transport
        The node.
    rpc : RpcStore or None
        The database (None when it does not exist yet, e.g. ``--dry-run`` on a new path).
    endpoints : str
        Redacted endpoint list, for the plan and the stream row.

    Returns
    -------
    Plan
    """
    source, noun = req.source, req.source.noun
    chain_id = _chain_id(client)
    head = int(client.call("eth_blockNumber", []), 16)
    target = head - req.confirmations
    if req.to_block is not None:
        target = min(target, req.to_block)
    stream = source.stream(chain_id, req.options)
    state = rpc.stream_state(source.name, stream) if rpc is not None else None
    rollback = _find_fork(client, rpc, state, head) if (state is not None and rpc is not None) else None
    notes: list[str] = []
    if state is not None and rollback is None and state.last_block > head:
        notes.append(f"the endpoint's head ({head:,}) is below the stored block {state.last_block:,}; it is "
                     f"behind (the stored blocks it has match)")
    if req.to_block is not None and req.to_block > head - req.confirmations:
        notes.append(f"--to-block {req.to_block:,} is within {req.confirmations} confirmations of the head "
                     f"({head:,}); stopping at {target:,}")

    last = state.last_block if state else None
    first = state.first_block if state else None
    if rollback is not None:
        last = rollback[0]
        first = min(first, last + 1) if first is not None else None
    if state is None and req.from_block is None:
        raise MbtError(f"--from-block: required for a {noun} not ingested yet (stream {stream})")
    if req.from_block is not None and last is not None and req.from_block > last + 1:
        raise MbtError(f"--from-block {req.from_block}: the {noun} is stored up to block {last:,}; starting later "
                       f"would leave a gap (use --from-block ≤ {last + 1:,}, or omit it to resume)")
    if req.from_block is not None and req.to_block is not None and req.from_block > req.to_block:
        raise MbtError(f"--from-block {req.from_block} is after --to-block {req.to_block}")

    up_lo = (last + 1) if last is not None else req.from_block
    down = (req.from_block, first - 1) if (first is not None and req.from_block is not None
                                           and req.from_block < first) else None
    if down is not None and req.to_block is not None and req.to_block < down[1]:
        # The stored range must stay one interval: a backfill always reaches the stored first block.
        raise MbtError(f"--to-block {req.to_block}: the {noun} is stored from block {first:,}; a backfill from "
                       f"{req.from_block:,} must reach {down[1]:,} (omit --to-block or raise it)")
    if target < 0:
        raise MbtError(f"--confirmations {req.confirmations}: the chain has only {head + 1} blocks")
    probe = max(target, min(last or 0, head))   # the contracts as of the newest block we store or stored
    splan = source.prepare(PrepareContext(client, rpc, req.options, chain_id, stream, state, rollback, probe,
                                          target))
    units = (chunk_units(up_lo, target, req.blocks_per_request, splan.cuts, "up", splan.tracks_at)
             if up_lo is not None else [])
    if down is not None:
        units = chunk_units(down[0], down[1], req.blocks_per_request, splan.cuts, "down", splan.tracks_at) + units
    if up_lo is not None and up_lo > target and state is None:
        notes.append(f"nothing to ingest: --from-block {up_lo:,} is above the confirmed target {target:,}")
    if units:
        splan.check_start(client, min(u.lo for u in units))
    return Plan(chain_id, stream, head, target, endpoints, state, rollback, units, req, splan,
                notes + list(splan.notes))


# -- one chunk --------------------------------------------------------------------------------------
class _ChunkReader:
    """Fetch one chunk: edge headers and the source's edge calls in one batch, logs, then the source's frames."""

    def __init__(self, client: Client, plan: Plan, fetcher: LogFetcher, blocks: BlockCache) -> None:
        self.client = client
        self.plan = plan
        self.fetcher = fetcher
        self.blocks = blocks
        self.topics = plan.source.topics()

    def _edges(self, unit: Unit) -> tuple[Header, Header | None]:
        # One batch: header of the chunk's last block (its hash is the checkpoint), the header before the
        # chunk (to notice a reorg between chunks), and whatever the source asks at the chunk's edges.
        splan = self.plan.source_plan
        calls = [header_request(unit.hi)] + ([header_request(unit.lo - 1)] if unit.lo > 0 else [])
        n_headers = len(calls)
        calls += splan.edge_calls(unit)
        answers = self.client.batch(calls)
        for answer in answers[:n_headers]:
            if isinstance(answer, RpcError):
                raise MbtError(f"eth_getBlockByNumber: {answer.message}")
        hi_header = map_header(answers[0])
        before = map_header(answers[1]) if unit.lo > 0 else None
        if hi_header is None:
            raise MbtError(f"block {unit.hi}: the node has no header for it (is the endpoint behind?)")
        splan.take_edges(unit, answers[n_headers:])
        return hi_header, before

    def read(self, unit: Unit, previous_hash: str | None) -> tuple[Chunk, dict[str, int]]:
        """Fetch and decode one chunk; returns it and the source's counters.

        ``previous_hash``: the hash committed for block ``unit.lo - 1`` in this run (None if unknown).
        """
        splan = self.plan.source_plan
        hi_header, before = self._edges(unit)
        if previous_hash is not None and before is not None and before.hash != previous_hash:
            raise MbtError(f"the chain reorganised at block {unit.lo - 1:,} during this run; run the same "
                           f"command again to repair and resume")
        addresses = splan.addresses(unit)
        logs = self.fetcher.fetch(addresses, self.topics, unit.lo, unit.hi) if addresses else []
        try:
            batch = log_batch(logs)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise MbtError(f"eth_getLogs {unit.lo}..{unit.hi}: a log does not decode as a {self.plan.source.title} "
                           f"event ({type(exc).__name__}: {exc})") from None
        outside = [b for b in batch.column("block").tolist() if not unit.lo <= b <= unit.hi]
        if outside or any(log.get("removed") for log in logs):
            raise MbtError(f"eth_getLogs {unit.lo}..{unit.hi}: the node returned a log outside the range or "
                           f"marked removed (block {outside[0] if outside else '?'}); retry later")
        out = splan.read(ChunkInput(unit, logs, batch, self.client, self.blocks))
        headers = {h.number: h for h in [hi_header, *out.headers]}
        chunk = Chunk(unit.lo, unit.hi, hi_header.hash, batch, out.frames,
                      sorted(headers.values(), key=lambda h: h.number))
        return chunk, out.counts


# -- the run ----------------------------------------------------------------------------------------
def run_ingest(plan: Plan, client: Any, rpc: RpcStore,
               progress: Callable[..., None] | None = None) -> RunReport:
    """Execute a plan: roll back a reorged tail, then fetch, decode and commit chunk by chunk.

    Parameters
    ----------
    plan : Plan
        From :func:`plan_ingest`.
    client : Transport
        The node.
    rpc : RpcStore
        The writable database.
    progress : callable, optional
        Called after each committed chunk with (blocks done, blocks total).

    Returns
    -------
    RunReport
    """
    report = RunReport()
    t0 = time.perf_counter()
    req = plan.request
    source, splan = plan.source, plan.source_plan
    state = plan.state
    if plan.rollback is not None and state is not None:
        block, block_hash = plan.rollback
        rpc.rollback_to(source=source, stream=plan.stream, chain_id=plan.chain_id, block=block,
                        block_hash=block_hash, settings=splan.stream_row)
        report.rolled_back_to = block
    first = state.first_block if state else None
    last = plan.rollback[0] if plan.rollback else (state.last_block if state else None)
    last_hash = plan.rollback[1] if plan.rollback else (state.last_block_hash if state else None)
    if first is not None and last is not None and last < first:
        first = last + 1
    fetcher = LogFetcher(client, req.blocks_per_request)
    blocks = BlockCache(client)
    reader = _ChunkReader(client, plan, fetcher, blocks)
    previous_up_hash = last_hash if last is not None and last >= 0 and last_hash else None
    total = plan.blocks
    done = 0
    for unit in plan.units:
        chunk, counts = reader.read(unit, previous_up_hash if unit.direction == "up" else None)
        if unit.direction == "up":
            last, last_hash = unit.hi, chunk.hi_hash
            previous_up_hash = chunk.hi_hash
            first = unit.lo if first is None else min(first, unit.lo)
        else:
            first = unit.lo
        assert last is not None and last_hash is not None
        stream_row = {"stream": plan.stream, "source": source.name, "chain_id": plan.chain_id, **splan.stream_row,
                      "first_block": first, "endpoint": plan.endpoints}
        # The stream row and the plan's rows go in with the run's first chunk (they only change between
        # runs), and the stream row again whenever a backfill chunk moves first_block.
        first_of_run = report.chunks == 0
        rpc.commit_chunk(chunk, source=source, stream=plan.stream,
                         stream_row=stream_row if first_of_run or unit.direction == "down" else {},
                         run_rows=splan.run_rows() if first_of_run else [], last_block=last,
                         last_block_hash=last_hash, chain_id=plan.chain_id, overwrite=req.overwrite)
        report.chunks += 1
        report.blocks += unit.hi - unit.lo + 1
        report.logs += len(chunk.raw_logs)
        report.add(counts)
        done += unit.hi - unit.lo + 1
        if progress:
            progress(done, total, report.logs)
    report.splits = fetcher.splits
    report.seconds = time.perf_counter() - t0
    return report


# -- re-decoding ------------------------------------------------------------------------------------
def find_stream(source: LogSource, rpc: RpcStore, key: str) -> StreamState:
    """The stored stream of ``key`` (the only one, whatever its chain)."""
    streams = rpc.find_streams(source.name, key)
    if not streams:
        raise MbtError(f"--redecode: {source.noun} {key} has not been ingested into this database")
    if len(streams) > 1:
        raise MbtError(f"--redecode: {source.noun} {key} is stored for several chains ({', '.join(streams)})")
    state = rpc.stream_state(source.name, streams[0])
    assert state is not None
    return state


def redecode(source: LogSource, rpc: RpcStore, options: Mapping[str, Any], overwrite: bool = False) -> RunReport:
    """Rebuild a stream's frames from its stored raw logs (no node needed), in one transaction."""
    t0 = time.perf_counter()
    state = find_stream(source, rpc, source.stream_key(options))
    logs = rpc.raw_logs(state.stream)
    out = source.redecode(rpc, state, logs)
    rpc.replace_decoded(source=source, stream=state.stream, frames=out.frames, settings=state.settings,
                        overwrite=overwrite)
    report = RunReport(logs=len(logs))
    report.add(out.counts)
    report.seconds = time.perf_counter() - t0
    return report
