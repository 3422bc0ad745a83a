"""Orchestration of ``mbt ingest rpc --source chainlink``: plan, resume, reorg repair, chunks, progress.

A run: ask the node for its chain and head; the confirmed target is ``head − confirmations`` (capped by
``--to-block``), so the unsafe tail is never stored. If the stream (one feed on one chain) has data, its
stored tail hash is compared with the node's: on a mismatch the highest checkpoint still on the chain is
found and everything above it is rolled back. The proxy's phases are read at the target and, unless
``--all-rounds``, the block at which the proxy switched to each phase is found, so only rounds a consumer
of the proxy could see are stored. The blocks still missing (above the stored range, and below it when
``--from-block`` reaches further back) are cut into chunks on a fixed grid of ``--blocks-per-request``
blocks (cut again at phase switches) and each chunk is fetched, decoded and committed in one
transaction with ``ingest_state``: a run killed anywhere resumes after its last whole chunk and ends
with the same tables as an uninterrupted run.

Per chunk: ``eth_getLogs`` of the tracked aggregators (split and regrown by ``LogFetcher``), one batch for
the chunk's end header and each aggregator's latest round at both ends, and — where the rounds counted
by the contract exceed the rounds seen in logs — a ``getRoundData`` walk plus a search for the block of
each recovered round. ``plan_ingest`` does everything up to the chunk list (``--dry-run`` prints it);
``run_ingest`` executes it; ``redecode`` rebuilds rounds and prices from stored raw logs without a node.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from adapters.rpc import chainlink as cl
from adapters.rpc.chain import (
    BlockCache,
    Client,
    Header,
    LogFetcher,
    header_request,
    log_batch,
    log_headers,
    map_header,
)
from adapters.rpc.chainlink_logs import (
    GET_ROUND_DATA,
    PRICE_EVENTS,
    TOPICS,
    assemble_rounds,
    decode_logs,
    empty_rounds,
    fill_timestamps,
    scale_answers,
)
from adapters.rpc.transport import RpcError

from .errors import MbtError
from .store_rpc import Chunk, RpcStore, StreamState

SOURCE = "chainlink"
NO_ACTIVATION = 1 << 62   # "never" as a block number (a later phase that does not exist yet)


@dataclass(frozen=True)
class IngestRequest:
    """What the user asked for (validated CLI options)."""

    feed: str                        # lower-case proxy address
    from_block: int | None
    to_block: int | None             # None = latest
    confirmations: int = 12
    asset: str | None = None
    quote_asset: str | None = None
    quote_source: str | None = None
    blocks_per_request: int = 2000
    all_rounds: bool = False
    overwrite: bool = False


@dataclass(frozen=True)
class Unit:
    """One chunk: blocks ``lo..hi`` and the phases whose rounds are collected in it."""

    lo: int
    hi: int
    phases: tuple[int, ...]
    direction: str                   # "up" (extends last_block) or "down" (extends first_block)


@dataclass
class Plan:
    """Everything decided before the first chunk is fetched."""

    chain_id: int
    stream: str
    head: int
    target: int
    endpoints: str
    feed: cl.Feed
    asset: str
    quote_asset: str | None
    quote_source: str | None
    phases: dict[int, tuple[str, int, int | None]]   # phase → (aggregator, decimals, activation)
    state: StreamState | None
    rollback: tuple[int, str] | None                 # reorg: roll back to (block, hash)
    units: list[Unit]
    request: IngestRequest
    quote: tuple[np.ndarray, np.ndarray] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def blocks(self) -> int:
        """Blocks the plan will ingest."""
        return sum(u.hi - u.lo + 1 for u in self.units)

    def describe(self) -> str:
        """The plan as text (``--dry-run``)."""
        r = self.request
        quote = f" × {self.quote_asset} USD ({self.quote_source})" if self.quote_asset else ""
        rounds = ("every round of every phase aggregator" if r.all_rounds
                  else "rounds the proxy served (each phase from its switch block)")
        lines = [
            f"mbt ingest rpc --source {SOURCE} (dry run: the plan only, nothing is written)",
            f"  endpoint(s)   {self.endpoints}",
            (f"  chain         {self.chain_id}; head {self.head:,}; confirmations {r.confirmations} → "
             f"target block {self.target:,}"),
            (f"  feed          {self.feed.checksum} \"{self.feed.description}\" (decimals {self.feed.decimals}) → "
             f"asset {self.asset}{quote}, stream {self.stream}"),
            f"  rounds        {rounds}",
        ]
        for p, (agg, dec, act) in sorted(self.phases.items()):
            when = (f"active from block {act:,}" if act is not None and act < NO_ACTIVATION
                    else "activation not searched")
            lines.append(f"  phase {p:<7} {agg} (decimals {dec}), {when}")
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
    """Counters of one run (printed at the end)."""

    chunks: int = 0
    blocks: int = 0
    logs: int = 0
    rounds: int = 0
    walked: int = 0
    prices: int = 0
    skipped_nonpositive: int = 0
    rolled_back_to: int | None = None
    splits: int = 0                  # eth_getLogs ranges the provider refused (and that were split)
    seconds: float = 0.0


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


def _resolve_asset(req: IngestRequest, feed: cl.Feed, state: StreamState | None) -> tuple[str, str | None]:
    base, quote = cl.parse_description(feed.description)
    asset = req.asset or base
    if not asset:
        raise MbtError(f"--asset: the feed's description {feed.description!r} does not name a base asset "
                       f"(\"BASE / QUOTE\"); pass --asset SYMBOL")
    if req.quote_asset is None and quote is not None and quote != "USD":
        raise MbtError(f"--quote-asset: feed \"{feed.description}\" is quoted in {quote}, not USD; pass --quote-asset "
                       f"with the symbol whose USD prices are stored (e.g. --quote-asset {quote})")
    if req.quote_asset is not None and quote == "USD":
        raise MbtError(f"--quote-asset {req.quote_asset}: feed \"{feed.description}\" is already quoted in USD")
    if state is not None:
        if state.asset != asset:
            raise MbtError(f"--asset {asset}: this feed is stored as asset {state.asset} (stream {state.stream}); "
                           f"use --asset {state.asset} or another database")
        if (state.quote_asset or None) != (req.quote_asset or None):
            raise MbtError(f"--quote-asset {req.quote_asset}: this feed is stored with quote asset "
                           f"{state.quote_asset} (stream {state.stream})")
        if state.all_rounds != req.all_rounds:
            raise MbtError(f"--all-rounds: this feed is stored {'with' if state.all_rounds else 'without'} "
                           f"--all-rounds (stream {state.stream}); keep the same setting")
    return asset, req.quote_asset


def _quote_series(rpc: RpcStore | None, req: IngestRequest, state: StreamState | None) -> tuple[str | None, Any]:
    if req.quote_asset is None:
        return None, None
    if rpc is None:
        raise MbtError(f"--quote-asset {req.quote_asset}: the database does not exist, so it has no "
                       f"{req.quote_asset} USD prices; load them first")
    sources = rpc.quote_sources(req.quote_asset)
    source = req.quote_source or (state.quote_source if state else None)
    if source is None:
        if not sources:
            raise MbtError(f"--quote-asset {req.quote_asset}: no {req.quote_asset} prices in the database; load "
                           f"its USD prices first (e.g. mbt ingest rpc --feed <{req.quote_asset} / USD proxy>)")
        if len(sources) > 1:
            raise MbtError(f"--quote-asset {req.quote_asset}: prices from several sources ({', '.join(sources)}); "
                           f"choose one with --quote-source")
        source = sources[0]
    elif source not in sources:
        raise MbtError(f"--quote-source {source}: no {req.quote_asset} prices from that source "
                       f"(stored sources: {', '.join(sources) or 'none'})")
    return source, rpc.quote_series(req.quote_asset, source)


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


def _units(lo: int, hi: int, grid: int, cuts: list[int], direction: str,
           phases_at: Callable[[int], tuple[int, ...]]) -> list[Unit]:
    if lo > hi:
        return []
    bounds = {lo} | set(range((lo // grid + 1) * grid, hi + 1, grid)) | {c for c in cuts if lo < c <= hi}
    starts = sorted(bounds)
    units = [Unit(s, (starts[i + 1] - 1) if i + 1 < len(starts) else hi, phases_at(s), direction)
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
        Redacted endpoint list, for the plan and the ``rpc_feeds`` row.

    Returns
    -------
    Plan
    """
    chain_id = _chain_id(client)
    head = int(client.call("eth_blockNumber", []), 16)
    target = head - req.confirmations
    if req.to_block is not None:
        target = min(target, req.to_block)
    stream = f"{chain_id}:{req.feed}"
    state = rpc.stream_state(SOURCE, stream) if rpc is not None else None
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
        raise MbtError(f"--from-block: required for a feed not ingested yet (stream {stream})")
    if req.from_block is not None and last is not None and req.from_block > last + 1:
        raise MbtError(f"--from-block {req.from_block}: the feed is stored up to block {last:,}; starting later "
                       f"would leave a gap (use --from-block ≤ {last + 1:,}, or omit it to resume)")
    if req.from_block is not None and req.to_block is not None and req.from_block > req.to_block:
        raise MbtError(f"--from-block {req.from_block} is after --to-block {req.to_block}")

    up_lo = (last + 1) if last is not None else req.from_block
    down = (req.from_block, first - 1) if (first is not None and req.from_block is not None
                                           and req.from_block < first) else None
    if down is not None and req.to_block is not None and req.to_block < down[1]:
        # The stored range must stay one interval: a backfill always reaches the stored first block.
        raise MbtError(f"--to-block {req.to_block}: the feed is stored from block {first:,}; a backfill from "
                       f"{req.from_block:,} must reach {down[1]:,} (omit --to-block or raise it)")
    if target < 0:
        raise MbtError(f"--confirmations {req.confirmations}: the chain has only {head + 1} blocks")
    probe = max(target, min(last or 0, head))   # phases as of the newest block we store or stored
    feed = cl.fetch_feed(client, req.feed, probe)
    asset, quote_asset = _resolve_asset(req, feed, state)
    quote_source, quote = _quote_series(rpc, req, state)

    stored = rpc.phases(stream) if (rpc is not None and state is not None) else {}
    phases: dict[int, tuple[str, int, int | None]] = {}
    for ph in feed.phases:
        old = stored.get(ph.phase)
        keep = old is not None and old[0] == ph.aggregator and old[2] is not None and (
            rollback is None or old[2] <= rollback[0])
        phases[ph.phase] = (ph.aggregator, ph.decimals, old[2] if keep else None)
    if not req.all_rounds:
        missing = [p for p, (_, _, act) in phases.items() if act is None]
        if missing:
            # Phases switch in order, so a known earlier switch bounds the search from below.
            lower = max((act for p, (_, _, act) in phases.items() if act is not None and p < min(missing)),
                        default=0)
            found = cl.find_activations(client, req.feed, missing, lower, probe)
            for p, block in found.items():
                agg, dec, _ = phases[p]
                phases[p] = (agg, dec, block)

    activations = sorted((act, p) for p, (_, _, act) in phases.items() if act is not None)

    def phases_at(block: int) -> tuple[int, ...]:
        if req.all_rounds:
            return tuple(sorted(phases))
        active = [p for act, p in activations if act <= block]
        return (max(active),) if active else ()

    cuts = [] if req.all_rounds else [act for act, _ in activations]
    units = _units(up_lo, target, req.blocks_per_request, cuts, "up", phases_at) if up_lo is not None else []
    if down is not None:
        units = _units(down[0], down[1], req.blocks_per_request, cuts, "down", phases_at) + units
    if up_lo is not None and up_lo > target and state is None:
        notes.append(f"nothing to ingest: --from-block {up_lo:,} is above the confirmed target {target:,}")
    if quote is not None and units:
        start = min(u.lo for u in units)
        header = BlockCache(client).get([start])[start]
        if header is None:
            raise MbtError(f"block {start}: the node has no header for it")
        ts_us, _ = quote
        if len(ts_us) == 0 or ts_us[0] > header.timestamp * 1_000_000:
            first_quote = ("none stored" if len(ts_us) == 0 else
                           datetime.fromtimestamp(ts_us[0] / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            raise MbtError(f"--quote-asset {quote_asset}: no {quote_asset} USD price at or before block {start:,} "
                           f"({datetime.fromtimestamp(header.timestamp, UTC):%Y-%m-%dT%H:%M:%SZ}); the "
                           f"first stored is {first_quote}: load earlier {quote_asset} prices first")
    return Plan(chain_id, stream, head, target, endpoints, feed, asset, quote_asset, quote_source, phases, state,
                rollback, units, req, quote, notes)


# -- one chunk --------------------------------------------------------------------------------------
class _ChunkReader:
    """Fetch and decode chunks; remembers aggregators' latest rounds at chunk edges between chunks."""

    def __init__(self, client: Client, plan: Plan, fetcher: LogFetcher, blocks: BlockCache) -> None:
        self.client = client
        self.plan = plan
        self.fetcher = fetcher
        self.blocks = blocks
        self.latest: dict[tuple[str, int], int] = {}
        self.topics = [[TOPICS[e] for e in PRICE_EVENTS]]

    def _edges(self, unit: Unit, aggregators: list[str]) -> tuple[Header, Header | None]:
        # One batch: header of the chunk's last block (its hash is the checkpoint), the header before the
        # chunk (to notice a reorg between chunks), and the latest round of each aggregator at both edges.
        calls = [header_request(unit.hi)] + ([header_request(unit.lo - 1)] if unit.lo > 0 else [])
        wanted = [(a, b) for a in aggregators for b in (unit.lo - 1, unit.hi)
                  if b >= 0 and (a, b) not in self.latest]
        calls += [cl.latest_round_call(a, b) for a, b in wanted]
        answers = self.client.batch(calls)
        for answer in answers[:2 if unit.lo > 0 else 1]:
            if isinstance(answer, RpcError):
                raise MbtError(f"eth_getBlockByNumber: {answer.message}")
        hi_header = map_header(answers[0])
        before = map_header(answers[1]) if unit.lo > 0 else None
        if hi_header is None:
            raise MbtError(f"block {unit.hi}: the node has no header for it (is the endpoint behind?)")
        for (a, b), raw in zip(wanted, answers[len(calls) - len(wanted):]):
            self.latest[(a, b)] = cl.map_latest_round(cl.historical(raw, f"latestRoundData() of {a}", b))
        for a in aggregators:
            self.latest.setdefault((a, -1), 0)
        return hi_header, before

    def read(self, unit: Unit, previous_hash: str | None) -> tuple[Chunk, int]:
        """Fetch and decode one chunk; returns it and how many rounds came from getRoundData.

        ``previous_hash``: the hash committed for block ``unit.lo - 1`` in this run (None if unknown).
        """
        plan = self.plan
        aggs = {p: plan.phases[p][0] for p in unit.phases}
        hi_header, before = self._edges(unit, list(aggs.values()))
        if previous_hash is not None and before is not None and before.hash != previous_hash:
            raise MbtError(f"the chain reorganised at block {unit.lo - 1:,} during this run; run the same "
                           f"command again to repair and resume")
        logs = self.fetcher.fetch(sorted(set(aggs.values())), self.topics, unit.lo, unit.hi) if aggs else []
        phase_of = {a: p for p, a in aggs.items()}
        try:
            batch = log_batch(logs)
            rounds = assemble_rounds(decode_logs(batch), phase_of)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise MbtError(f"eth_getLogs {unit.lo}..{unit.hi}: a log does not decode as a Chainlink event "
                           f"({type(exc).__name__}: {exc})") from None
        outside = [b for b in batch.column("block").tolist() if not unit.lo <= b <= unit.hi]
        if outside or any(log.get("removed") for log in logs):
            raise MbtError(f"eth_getLogs {unit.lo}..{unit.hi}: the node returned a log outside the range or "
                           f"marked removed (block {outside[0] if outside else '?'}); retry later")
        walked_frames = []
        walked = 0
        for p, agg in aggs.items():
            before_r, after_r = self.latest[(agg, unit.lo - 1)], self.latest[(agg, unit.hi)]
            seen = set(rounds.loc[rounds["phase"] == p, "agg_round"].tolist())
            outside = sorted(r for r in seen if not before_r < r <= after_r)
            if outside:
                raise MbtError(f"aggregator {agg}: logs of blocks {unit.lo}..{unit.hi} name round {outside[0]}, but "
                               f"its latest round went from {before_r} to {after_r} there")
            missing = sorted(set(range(before_r + 1, after_r + 1)) - seen)
            if missing:
                data = cl.walk_rounds(self.client, agg, missing, unit.hi)
                where = cl.locate_round_blocks(self.client, agg, missing, unit.lo, unit.hi, before_r)
                walked_frames.append(pd.DataFrame({
                    "phase": np.full(len(missing), p, np.int64), "agg_round": np.array(missing, np.int64),
                    "answer": pd.Series([data[r][0] for r in missing], dtype=object),
                    "updated_at": np.array([data[r][1] for r in missing], np.int64),
                    "block": np.array([where[r] for r in missing], np.int64),
                    "log_index": pd.array([None] * len(missing), dtype="Int64"),
                    "origin": pd.Series([GET_ROUND_DATA] * len(missing), dtype=object)}))
                walked += len(missing)
        fetched: list[Header] = [hi_header]
        need = sorted(set(rounds.loc[rounds["updated_at"] < 0, "block"].tolist()))
        if need:
            # OCR's updatedAt is the block timestamp: take it from the logs when the node sends it,
            # else from headers (batched, cached); either way the header is stored for re-decoding.
            for header in log_headers(logs):
                self.blocks.remember(header)
            got = self.blocks.get(need)
            absent = [n for n, h in got.items() if h is None]
            if absent:
                raise MbtError(f"block {absent[0]}: the node has no header for it")
            fetched += [h for h in got.values() if h is not None]
            rounds = fill_timestamps(rounds, {n: h.timestamp for n, h in got.items() if h is not None})
        if walked_frames:
            rounds = pd.concat([rounds.astype({"log_index": "Int64"})] + walked_frames, ignore_index=True)
            rounds = rounds.sort_values(["phase", "agg_round"], kind="stable").reset_index(drop=True)
        rounds, prices = price_rounds(rounds, plan.phases, plan.asset, plan.quote)
        chunk = Chunk(unit.lo, unit.hi, hi_header.hash, batch, rounds, prices,
                      sorted({h.number: h for h in fetched}.values(), key=lambda h: h.number))
        return chunk, walked


def price_rounds(rounds: pd.DataFrame, phases: dict[int, tuple[str, int, int | None]], asset: str,
                 quote: tuple[np.ndarray, np.ndarray] | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scale answers by each phase's decimals and convert to USD: (rounds with ``price``, prices frame).

    Parameters
    ----------
    rounds : DataFrame
        Assembled rounds (``answer`` as Python ints, ``updated_at`` unix seconds).
    phases : dict
        phase → (aggregator, decimals, activation).
    asset : str
        ``prices.asset``.
    quote : (ts_us, price) arrays or None
        USD prices of the quote asset (as-of lookup at or before each round's ``updated_at``); None when the
        feed is quoted in USD.

    Returns
    -------
    (DataFrame, DataFrame)
        Rounds with a ``price`` column (quote units), and prices rows (``asset, phase, agg_round,
        updated_at, price_usd, block``) for rounds whose USD price is > 0 and finite.
    """
    rounds = rounds.copy()
    price = np.empty(len(rounds), dtype=np.float64)
    phase_arr = rounds["phase"].to_numpy(np.int64)
    answers = rounds["answer"].tolist()
    for p in np.unique(phase_arr).tolist():
        idx = np.flatnonzero(phase_arr == p)
        price[idx] = scale_answers([answers[i] for i in idx], phases[p][1])
    rounds["price"] = price
    usd = price.copy()
    if quote is not None and len(rounds):
        ts_us, px = quote
        at = np.searchsorted(ts_us, rounds["updated_at"].to_numpy(np.int64) * 1_000_000, side="right") - 1
        if (at < 0).any():
            first = int(rounds["updated_at"].to_numpy()[at < 0][0])
            raise MbtError(f"--quote-asset: no quote price at or before "
                           f"{datetime.fromtimestamp(first, UTC):%Y-%m-%dT%H:%M:%SZ}")
        usd = price * px[at]
    keep = np.isfinite(usd) & (usd > 0)
    prices = pd.DataFrame({"asset": asset, "phase": phase_arr[keep],
                           "agg_round": rounds["agg_round"].to_numpy(np.int64)[keep],
                           "updated_at": rounds["updated_at"].to_numpy(np.int64)[keep],
                           "price_usd": usd[keep], "block": rounds["block"].to_numpy(np.int64)[keep]})
    return rounds, prices


# -- the run ----------------------------------------------------------------------------------------
def run_ingest(plan: Plan, client: Any, rpc: RpcStore,
               progress: Callable[[int, int], None] | None = None) -> RunReport:
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
    state = plan.state
    if plan.rollback is not None and state is not None:
        block, block_hash = plan.rollback
        rpc.rollback_to(source=SOURCE, stream=plan.stream, asset=plan.asset, chain_id=plan.chain_id,
                        block=block, block_hash=block_hash)
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
        chunk, walked = reader.read(unit, previous_up_hash if unit.direction == "up" else None)
        if unit.direction == "up":
            last, last_hash = unit.hi, chunk.hi_hash
            previous_up_hash = chunk.hi_hash
            first = unit.lo if first is None else min(first, unit.lo)
        else:
            first = unit.lo
        assert last is not None and last_hash is not None
        feed_row = {"stream": plan.stream, "source": SOURCE, "chain_id": plan.chain_id, "feed": plan.feed.proxy,
                    "description": plan.feed.description, "asset": plan.asset, "quote_asset": plan.quote_asset,
                    "quote_source": plan.quote_source, "all_rounds": req.all_rounds, "first_block": first,
                    "endpoint": plan.endpoints}
        # The feed row and phases go in with the run's first chunk (they only change between runs), and
        # the feed row again whenever a backfill chunk moves first_block.
        first_of_run = report.chunks == 0
        rpc.commit_chunk(chunk, source=SOURCE, stream=plan.stream,
                         feed=feed_row if first_of_run or unit.direction == "down" else {},
                         phases=plan.phases if first_of_run else {}, last_block=last,
                         last_block_hash=last_hash, chain_id=plan.chain_id, overwrite=req.overwrite)
        report.chunks += 1
        report.blocks += unit.hi - unit.lo + 1
        report.logs += len(chunk.raw_logs)
        report.rounds += len(chunk.rounds)
        report.walked += walked
        report.prices += len(chunk.prices)
        report.skipped_nonpositive += len(chunk.rounds) - len(chunk.prices)
        done += unit.hi - unit.lo + 1
        if progress:
            progress(done, total)
    report.splits = fetcher.splits
    report.seconds = time.perf_counter() - t0
    return report


# -- re-decoding ------------------------------------------------------------------------------------
def find_stream(rpc: RpcStore, feed: str) -> StreamState:
    """The stored stream of ``feed`` (the only one, whatever its chain)."""
    rows = rpc.con.execute("SELECT stream FROM rpc_feeds WHERE source = ? AND feed = ? ORDER BY stream",
                           [SOURCE, feed]).fetchall() if rpc.store.table_exists("rpc_feeds") else []
    if not rows:
        raise MbtError(f"--redecode: feed {feed} has not been ingested into this database")
    if len(rows) > 1:
        raise MbtError(f"--redecode: feed {feed} is stored for several chains ({', '.join(r[0] for r in rows)})")
    state = rpc.stream_state(SOURCE, rows[0][0])
    assert state is not None
    return state


def redecode(rpc: RpcStore, feed: str, overwrite: bool = False) -> RunReport:
    """Rebuild a stream's rounds and prices from its stored raw logs (no node needed), in one transaction."""
    t0 = time.perf_counter()
    state = find_stream(rpc, feed)
    phases = rpc.phases(state.stream)
    logs = rpc.raw_logs(state.stream)
    phase_of = {agg: p for p, (agg, _, _) in phases.items()}
    try:
        rounds = assemble_rounds(decode_logs(logs), phase_of)
    except (ValueError, KeyError, IndexError) as exc:
        raise MbtError(f"--redecode: a stored log does not decode as a Chainlink event ({exc})") from None
    if not state.all_rounds and len(rounds):
        starts = {p: (act if act is not None else NO_ACTIVATION) for p, (_, _, act) in phases.items()}
        ends = {p: min([a for q, a in starts.items() if q > p] + [NO_ACTIVATION]) for p in starts}
        block = rounds["block"].to_numpy()
        lo = rounds["phase"].map(starts).to_numpy()
        hi = rounds["phase"].map(ends).to_numpy()
        rounds = rounds[(block >= lo) & (block < hi)].reset_index(drop=True)
    need = sorted(set(rounds.loc[rounds["updated_at"] < 0, "block"].tolist()))
    if need:
        stored = {h.number: h.timestamp for h in rpc.headers(state.chain_id, need)}
        missing = [b for b in need if b not in stored]
        if missing:
            raise MbtError(f"--redecode: block {missing[0]} has no stored header (timestamp)")
        rounds = fill_timestamps(rounds, stored)
    walked = rpc.walked_rounds(state.stream)
    if len(walked):
        rounds = pd.concat([rounds.astype({"log_index": "Int64"}) if len(rounds) else empty_rounds(), walked],
                           ignore_index=True).sort_values(["phase", "agg_round"], kind="stable").reset_index(drop=True)
    quote = rpc.quote_series(state.quote_asset, state.quote_source) if state.quote_asset else None
    if quote is not None and len(quote[0]) == 0:
        raise MbtError(f"--redecode: no {state.quote_asset} prices from {state.quote_source} in the database")
    rounds, prices = price_rounds(rounds, phases, state.asset, quote)
    rpc.replace_decoded(stream=state.stream, asset=state.asset, rounds=rounds, prices=prices, overwrite=overwrite)
    report = RunReport(logs=len(logs), rounds=len(rounds), walked=len(walked), prices=len(prices),
                       skipped_nonpositive=len(rounds) - len(prices))
    report.seconds = time.perf_counter() - t0
    return report
