"""The Chainlink price-feed source of ``mbt ingest rpc --source chainlink`` (docs/rpc.md).

Declares what the generic driver needs — the name, the events (``AnswerUpdated`` and both
``NewTransmission`` shapes, PROTOCOLS §7), the options (``--feed`` and friends), how rounds and prices
are stored (``sql/rpc_chainlink_*.sql``) — and the Chainlink logic on top of it:

- :meth:`ChainlinkSource.prepare`: read the proxy's phases at the newest block (``adapters.rpc.chainlink``),
  resolve the asset and the quote conversion, and unless ``--all-rounds`` find the block at which the
  proxy switched to each phase, so only rounds a consumer of the proxy could see are stored;
- per chunk (:meth:`ChainlinkPlan.read`): decode the phase aggregator's logs, compare the rounds seen with
  the aggregator's latest round at both chunk edges, recover rounds no log shows with ``getRoundData``
  (and the block each landed in), take NewTransmission-only timestamps from block headers;
- :func:`to_frames`, the pure mapping raw logs → frames (``rounds`` and ``prices``), which is also what
  ``--redecode`` runs over the stored raw logs.

An aggregator without a round yet (before the first transmission, e.g. ``--from-block`` before the feed
started) counts as 0 rounds, whether it answers zeros (OCR) or reverts "No data present" (Flux).
Heavy imports (web3, eth-abi, pandas) happen inside the functions: the CLI imports this module to build
its options.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mbt_errors import MbtError

from .base import (
    ChunkFrames,
    ChunkInput,
    Frames,
    LogSource,
    PrepareContext,
    SourceOption,
    SourcePlan,
    SourceTables,
    StreamState,
    Unit,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from ..chain import LogBatch
    from ..chainlink import Feed
    from .base import Lookup

NAME = "chainlink"
NO_ACTIVATION = 1 << 62   # "never" as a block number (a later phase that does not exist yet)
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")

Phases = dict[int, tuple[str, int, "int | None"]]   # phase → (aggregator, decimals, activation block)


# -- the pure mapping ------------------------------------------------------------------------------
def visible_rounds(rounds: pd.DataFrame, phases: Phases) -> pd.DataFrame:
    """Rounds recorded while their phase was the proxy's (from its switch block to the next switch)."""
    if not len(rounds):
        return rounds
    starts = {p: (act if act is not None else NO_ACTIVATION) for p, (_, _, act) in phases.items()}
    ends = {p: min([a for q, a in starts.items() if q > p] + [NO_ACTIVATION]) for p in starts}
    block = rounds["block"].to_numpy()
    lo = rounds["phase"].map(starts).to_numpy()
    hi = rounds["phase"].map(ends).to_numpy()
    return rounds[(block >= lo) & (block < hi)].reset_index(drop=True)


def timestamps_needed(rounds: pd.DataFrame) -> list[int]:
    """Blocks whose timestamp some round needs (rounds known only from NewTransmission)."""
    return sorted(set(rounds.loc[rounds["updated_at"] < 0, "block"].tolist()))


def complete_rounds(rounds: pd.DataFrame, timestamps: Mapping[int, int],
                    recovered: pd.DataFrame | None = None) -> pd.DataFrame:
    """Fill NewTransmission timestamps from ``timestamps`` and add the rounds recovered by ``getRoundData``."""
    import pandas as pd

    from ..chainlink_logs import empty_rounds, fill_timestamps

    rounds = fill_timestamps(rounds, timestamps)
    if recovered is not None and len(recovered):
        base = rounds.astype({"log_index": "Int64"}) if len(rounds) else empty_rounds()
        rounds = pd.concat([base, recovered], ignore_index=True)
        rounds = rounds.sort_values(["phase", "agg_round"], kind="stable").reset_index(drop=True)
    return rounds


def price_rounds(rounds: pd.DataFrame, phases: Phases, asset: str,
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
    import numpy as np
    import pandas as pd

    from ..chainlink_logs import scale_answers

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


def to_frames(logs: LogBatch, phases: Phases, *, asset: str, timestamps: Mapping[int, int] | None = None,
              recovered: pd.DataFrame | None = None, quote: tuple[np.ndarray, np.ndarray] | None = None,
              all_rounds: bool = True) -> Frames:
    """Raw aggregator logs → the frames Chainlink stores (pure: no network, no database).

    Parameters
    ----------
    logs : LogBatch
        The logs, as fetched or as stored in ``raw_logs``.
    phases : dict
        phase → (aggregator, decimals, activation block or None).
    asset : str
        ``prices.asset``.
    timestamps : mapping, optional
        block → unix seconds, for rounds known only from NewTransmission (KeyError if one is missing).
    recovered : DataFrame, optional
        Rounds no log shows, recovered with ``getRoundData`` (columns of ``assemble_rounds``).
    quote : (ts_us, price) arrays, optional
        USD prices of the quote asset; None for a feed quoted in USD.
    all_rounds : bool
        Keep every round of every phase aggregator; else only those the proxy served.

    Returns
    -------
    dict
        ``rounds`` (one per phase and aggregator round, with ``price``) and ``prices`` (rounds priced > 0).

    Raises
    ------
    ValueError, KeyError, IndexError
        A log does not decode as a Chainlink event.
    """
    from ..chainlink_logs import assemble_rounds, decode_logs

    phase_of = {agg: p for p, (agg, _, _) in phases.items()}
    rounds = assemble_rounds(decode_logs(logs), phase_of)
    if not all_rounds:
        rounds = visible_rounds(rounds, phases)
    rounds = complete_rounds(rounds, timestamps or {}, recovered)
    rounds, prices = price_rounds(rounds, phases, asset, quote)
    return {"rounds": rounds, "prices": prices}


def rounds_table(rounds: pd.DataFrame) -> pa.Table:
    """``rounds`` as staged for ``sql/rpc_chainlink_insert_rounds.sql`` (answer as exact decimal text)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    return pa.table({
        "phase": pa.array(rounds["phase"].to_numpy(np.int64)),
        "agg_round": pa.array(rounds["agg_round"].to_numpy(np.int64)),
        "answer": pa.array([str(a) for a in rounds["answer"].tolist()], pa.string()),
        "price": pa.array(rounds["price"].to_numpy(np.float64)),
        "updated_at": pa.array(rounds["updated_at"].to_numpy(np.int64)),
        "block": pa.array(rounds["block"].to_numpy(np.int64)),
        "log_index": pa.array(pd.array(rounds["log_index"], dtype="Int64").to_numpy(dtype=object, na_value=None),
                              pa.int64()),
        "origin": pa.array([str(o) for o in rounds["origin"].tolist()], pa.string()),
    })


def prices_table(prices: pd.DataFrame) -> pa.Table:
    """``prices`` as staged for ``sql/rpc_chainlink_insert_prices.sql``."""
    import numpy as np
    import pyarrow as pa

    return pa.table({
        "asset": pa.array([str(a) for a in prices["asset"].tolist()], pa.string()),
        "phase": pa.array(prices["phase"].to_numpy(np.int64)),
        "agg_round": pa.array(prices["agg_round"].to_numpy(np.int64)),
        "updated_at": pa.array(prices["updated_at"].to_numpy(np.int64)),
        "price_usd": pa.array(prices["price_usd"].to_numpy(np.float64)),
        "block": pa.array(prices["block"].to_numpy(np.int64)),
    })


def _recovered_frame(phase: int, rounds: list[int], data: Mapping[int, tuple[int, int]],
                     where: Mapping[int, int]) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    from ..chainlink_logs import GET_ROUND_DATA

    return pd.DataFrame({
        "phase": np.full(len(rounds), phase, np.int64), "agg_round": np.array(rounds, np.int64),
        "answer": pd.Series([data[r][0] for r in rounds], dtype=object),
        "updated_at": np.array([data[r][1] for r in rounds], np.int64),
        "block": np.array([where[r] for r in rounds], np.int64),
        "log_index": pd.array([None] * len(rounds), dtype="Int64"),
        "origin": pd.Series([GET_ROUND_DATA] * len(rounds), dtype=object)})


# -- one run -------------------------------------------------------------------------------------
class ChainlinkPlan(SourcePlan):
    """A Chainlink run: the feed, its phases (with switch blocks), the asset and the quote conversion."""

    def __init__(self, feed: Feed, asset: str, quote_asset: str | None, quote_source: str | None,
                 quote: tuple[np.ndarray, np.ndarray] | None, phases: Phases, all_rounds: bool) -> None:
        self.feed = feed
        self.asset = asset
        self.quote_asset = quote_asset
        self.quote_source = quote_source
        self.quote = quote
        self.phases = phases
        self.all_rounds = all_rounds
        self.notes = []
        self.latest: dict[tuple[str, int], int] = {}
        self.label = f"{asset} {feed.checksum[:10]}…"
        self.subject = asset
        self.stream_row = {"feed": feed.proxy, "description": feed.description, "asset": asset,
                           "quote_asset": quote_asset, "quote_source": quote_source, "all_rounds": all_rounds}
        self._activations = sorted((act, p) for p, (_, _, act) in phases.items() if act is not None)
        self.cuts = [] if all_rounds else [act for act, _ in self._activations]

    # -- planning ---------------------------------------------------------------------------------
    def tracks_at(self, block: int) -> tuple[int, ...]:
        if self.all_rounds:
            return tuple(sorted(self.phases))
        active = [p for act, p in self._activations if act <= block]
        return (max(active),) if active else ()

    def describe(self, stream: str) -> list[str]:
        quote = f" × {self.quote_asset} USD ({self.quote_source})" if self.quote_asset else ""
        rounds = ("every round of every phase aggregator" if self.all_rounds
                  else "rounds the proxy served (each phase from its switch block)")
        lines = [
            (f"  feed          {self.feed.checksum} \"{self.feed.description}\" (decimals {self.feed.decimals}) → "
             f"asset {self.asset}{quote}, stream {stream}"),
            f"  rounds        {rounds}",
        ]
        for p, (agg, dec, act) in sorted(self.phases.items()):
            when = (f"active from block {act:,}" if act is not None and act < NO_ACTIVATION
                    else "activation not searched")
            lines.append(f"  phase {p:<7} {agg} (decimals {dec}), {when}")
        return lines

    def check_start(self, client: Any, block: int) -> None:
        if self.quote is None:
            return
        from ..chain import BlockCache

        header = BlockCache(client).get([block])[block]
        if header is None:
            raise MbtError(f"block {block}: the node has no header for it")
        ts_us, _ = self.quote
        if len(ts_us) == 0 or ts_us[0] > header.timestamp * 1_000_000:
            first_quote = ("none stored" if len(ts_us) == 0 else
                           datetime.fromtimestamp(ts_us[0] / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            raise MbtError(f"--quote-asset {self.quote_asset}: no {self.quote_asset} USD price at or before block "
                           f"{block:,} ({datetime.fromtimestamp(header.timestamp, UTC):%Y-%m-%dT%H:%M:%SZ}); the "
                           f"first stored is {first_quote}: load earlier {self.quote_asset} prices first")

    def run_rows(self) -> list[dict[str, Any]]:
        return [{"phase": p, "aggregator": agg, "decimals": dec, "activated_block": act}
                for p, (agg, dec, act) in self.phases.items()]

    # -- one chunk -----------------------------------------------------------------------------------
    def _aggregators(self, unit: Unit) -> dict[int, str]:
        return {p: self.phases[p][0] for p in unit.tracks}

    def edge_calls(self, unit: Unit) -> list[tuple[str, list[Any]]]:
        # Each aggregator's latest round at both edges of the chunk (remembered between chunks).
        from ..chainlink import latest_round_call

        self._wanted = [(a, b) for a in self._aggregators(unit).values() for b in (unit.lo - 1, unit.hi)
                        if b >= 0 and (a, b) not in self.latest]
        return [latest_round_call(a, b) for a, b in self._wanted]

    def take_edges(self, unit: Unit, answers: list[Any]) -> None:
        from ..chainlink import latest_round_at

        for (a, b), raw in zip(self._wanted, answers):
            self.latest[(a, b)] = latest_round_at(raw, a, b)
        for a in self._aggregators(unit).values():
            self.latest.setdefault((a, -1), 0)

    def addresses(self, unit: Unit) -> list[str]:
        return sorted(set(self._aggregators(unit).values()))

    def read(self, chunk: ChunkInput) -> ChunkFrames:
        import pandas as pd

        from ..chain import log_headers
        from ..chainlink import locate_round_blocks, walk_rounds
        from ..chainlink_logs import assemble_rounds, decode_logs

        unit = chunk.unit
        aggs = self._aggregators(unit)
        phase_of = {a: p for p, a in aggs.items()}
        try:
            rounds = assemble_rounds(decode_logs(chunk.batch), phase_of)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise MbtError(f"eth_getLogs {unit.lo}..{unit.hi}: a log does not decode as a Chainlink event "
                           f"({type(exc).__name__}: {exc})") from None
        recovered = []
        for p, agg in aggs.items():
            before_r, after_r = self.latest[(agg, unit.lo - 1)], self.latest[(agg, unit.hi)]
            seen = set(rounds.loc[rounds["phase"] == p, "agg_round"].tolist())
            outside = sorted(r for r in seen if not before_r < r <= after_r)
            if outside:
                raise MbtError(f"aggregator {agg}: logs of blocks {unit.lo}..{unit.hi} name round {outside[0]}, but "
                               f"its latest round went from {before_r} to {after_r} there")
            missing = sorted(set(range(before_r + 1, after_r + 1)) - seen)
            if missing:
                data = walk_rounds(chunk.client, agg, missing, unit.hi)
                where = locate_round_blocks(chunk.client, agg, missing, unit.lo, unit.hi, before_r)
                recovered.append(_recovered_frame(p, missing, data, where))
        headers = []
        timestamps: dict[int, int] = {}
        need = timestamps_needed(rounds)
        if need:
            # OCR's updatedAt is the block timestamp: take it from the logs when the node sends it,
            # else from headers (batched, cached); either way the header is stored for re-decoding.
            for header in log_headers(chunk.logs):
                chunk.blocks.remember(header)
            got = chunk.blocks.get(need)
            absent = [n for n, h in got.items() if h is None]
            if absent:
                raise MbtError(f"block {absent[0]}: the node has no header for it")
            headers = [h for h in got.values() if h is not None]
            timestamps = {h.number: h.timestamp for h in headers}
        walked = pd.concat(recovered, ignore_index=True) if recovered else None
        rounds = complete_rounds(rounds, timestamps, walked)
        rounds, prices = price_rounds(rounds, self.phases, self.asset, self.quote)
        counts = {"rounds": len(rounds), "walked": 0 if walked is None else len(walked), "prices": len(prices),
                  "skipped_nonpositive": len(rounds) - len(prices)}
        return ChunkFrames({"rounds": rounds, "prices": prices}, headers, counts)


# -- the source ------------------------------------------------------------------------------------
class ChainlinkSource(LogSource):
    """Chainlink price feeds: a proxy (``EACAggregatorProxy``) and every phase aggregator behind it."""

    name = NAME
    title = "Chainlink"
    noun = "feed"
    description = "a Chainlink price feed (its proxy and every phase aggregator)"
    options = (
        SourceOption("--feed", "feed", "The feed's proxy address (EACAggregatorProxy), 0x + 40 hex digits.",
                     metavar="ADDRESS", required="the feed's proxy address"),
        SourceOption("--asset", "asset", "prices.asset to store under (default: the base of the feed's "
                     "description(), e.g. USDC for \"USDC / USD\").", metavar="SYM"),
        SourceOption("--quote-asset", "quote_asset", "For a feed not quoted in USD (e.g. stETH / ETH): the asset "
                     "whose USD prices in the database convert it (latest price at or before each round).",
                     metavar="SYM"),
        SourceOption("--quote-source", "quote_source", "prices.source of the quote asset's prices, when several "
                     "are stored.", metavar="NAME"),
        SourceOption("--all-rounds", "all_rounds", "Store every round of every phase aggregator, not only those "
                     "transmitted while the proxy pointed to it.", is_flag=True),
    )
    tables = SourceTables(
        insert=("rpc_chainlink_insert_rounds", "rpc_chainlink_insert_prices"),
        clear_chunk="rpc_chainlink_clear_chunk",
        rollback="rpc_chainlink_rollback",
        clear_decoded="rpc_chainlink_clear_decoded",
        conflicts="rpc_chainlink_price_conflicts",
        run_rows="rpc_chainlink_upsert_phase",
    )

    def events(self) -> dict[str, dict[str, Any]]:
        from ..chainlink_logs import EVENT_ABIS, PRICE_EVENTS

        return {k: EVENT_ABIS[k] for k in PRICE_EVENTS}

    def topics(self) -> list[Any]:
        from ..chainlink_logs import PRICE_EVENTS, TOPICS

        return [[TOPICS[e] for e in PRICE_EVENTS]]

    def validate(self, options: Mapping[str, Any]) -> dict[str, Any]:
        out = super().validate(options)
        feed = out["feed"]
        if not _ADDRESS.match(feed):
            raise MbtError(f"--feed {feed!r}: expected 0x followed by 40 hex digits")
        for flag, key in (("--asset", "asset"), ("--quote-asset", "quote_asset"), ("--quote-source", "quote_source")):
            if out.get(key) is not None and not out[key].strip():
                raise MbtError(f"{flag}: must not be blank")
        out["feed"] = feed.lower()
        out["all_rounds"] = bool(out.get("all_rounds"))
        return out

    def stream_key(self, options: Mapping[str, Any]) -> str:
        return options["feed"]

    # -- planning -----------------------------------------------------------------------------------
    def prepare(self, ctx: PrepareContext) -> ChainlinkPlan:
        from ..chainlink import fetch_feed, find_activations

        opts = ctx.options
        feed = fetch_feed(ctx.client, opts["feed"], ctx.probe)
        asset, quote_asset = _resolve_asset(opts, feed, ctx.state)
        quote_source, quote = _quote_series(ctx.lookup, opts, ctx.state)
        stored = _stored_phases(ctx.lookup, ctx.stream) if (ctx.lookup is not None and ctx.state is not None) else {}
        phases: Phases = {}
        for ph in feed.phases:
            old = stored.get(ph.phase)
            keep = old is not None and old[0] == ph.aggregator and old[2] is not None and (
                ctx.rollback is None or old[2] <= ctx.rollback[0])
            phases[ph.phase] = (ph.aggregator, ph.decimals, old[2] if keep else None)
        if not opts["all_rounds"]:
            missing = [p for p, (_, _, act) in phases.items() if act is None]
            if missing:
                # Phases switch in order, so a known earlier switch bounds the search from below.
                lower = max((act for p, (_, _, act) in phases.items() if act is not None and p < min(missing)),
                            default=0)
                found = find_activations(ctx.client, opts["feed"], missing, lower, ctx.probe)
                for p, block in found.items():
                    agg, dec, _ = phases[p]
                    phases[p] = (agg, dec, block)
        return ChainlinkPlan(feed, asset, quote_asset, quote_source, quote, phases, opts["all_rounds"])

    # -- storing --------------------------------------------------------------------------------------
    def stage(self, frames: Frames) -> dict[str, pa.Table]:
        return {"_rpc_rounds": rounds_table(frames["rounds"]), "_rpc_prices": prices_table(frames["prices"])}

    def conflict_message(self, row: tuple) -> str:
        asset, ts, round_id, stored, new, stored_block, new_block = row
        what = (f"price_usd {stored!r} stored, {new!r} from the chain" if stored != new
                else f"block {stored_block} stored, {new_block} from the chain")
        return (f"prices: asset {asset} round {round_id} at {ts:%Y-%m-%dT%H:%M:%SZ} conflicts with the stored row "
                f"({what}); use --overwrite to replace it, or --asset to store this feed under another symbol")

    # -- re-decoding ------------------------------------------------------------------------------------
    def redecode(self, lookup: Lookup, state: StreamState, logs: LogBatch) -> ChunkFrames:
        from ..chainlink_logs import assemble_rounds, decode_logs

        settings = state.settings
        phases = _stored_phases(lookup, state.stream)
        phase_of = {agg: p for p, (agg, _, _) in phases.items()}
        try:
            rounds = assemble_rounds(decode_logs(logs), phase_of)
        except (ValueError, KeyError, IndexError) as exc:
            raise MbtError(f"--redecode: a stored log does not decode as a Chainlink event ({exc})") from None
        if not settings["all_rounds"]:
            rounds = visible_rounds(rounds, phases)
        need = timestamps_needed(rounds)
        stored: dict[int, int] = {}
        if need:
            stored = {h.number: h.timestamp for h in lookup.headers(state.chain_id, need)}
            missing = [b for b in need if b not in stored]
            if missing:
                raise MbtError(f"--redecode: block {missing[0]} has no stored header (timestamp)")
        walked = _walked_rounds(lookup, state.stream)
        quote = (_price_series(lookup, settings["quote_asset"], settings["quote_source"])
                 if settings["quote_asset"] else None)
        if quote is not None and len(quote[0]) == 0:
            raise MbtError(f"--redecode: no {settings['quote_asset']} prices from {settings['quote_source']} in the "
                           f"database")
        rounds = complete_rounds(rounds, stored, walked)
        rounds, prices = price_rounds(rounds, phases, settings["asset"], quote)
        counts = {"rounds": len(rounds), "walked": len(walked), "prices": len(prices),
                  "skipped_nonpositive": len(rounds) - len(prices)}
        return ChunkFrames({"rounds": rounds, "prices": prices}, [], counts)

    # -- reporting --------------------------------------------------------------------------------------
    def summary(self, plan: SourcePlan, counts: Mapping[str, int], logs: int) -> str:
        return (f"{counts.get('rounds', 0):,} rounds ({counts.get('walked', 0):,} via getRoundData), {logs:,} logs, "
                f"{counts.get('prices', 0):,} prices stored")

    def redecode_summary(self, counts: Mapping[str, int], logs: int) -> str:
        """The line of a re-decode (followed by its time)."""
        return (f"re-decoded {logs:,} stored logs → {counts.get('rounds', 0):,} rounds, "
                f"{counts.get('prices', 0):,} prices")

    def warnings(self, counts: Mapping[str, int]) -> list[str]:
        skipped = counts.get("skipped_nonpositive", 0)
        if not skipped:
            return []
        return [f"warning: {skipped:,} round(s) with a price <= 0 kept in chainlink_rounds but not stored as prices"]


# -- stored data and options ------------------------------------------------------------------------
def _stored_phases(lookup: Lookup, stream: str) -> Phases:
    rows = lookup.rows("rpc_chainlink_phases", stream=stream)
    return {int(p): (a, int(d), None if b is None else int(b)) for p, a, d, b in rows}


def _walked_rounds(lookup: Lookup, stream: str) -> pd.DataFrame:
    """Rounds of ``stream`` recovered with getRoundData (kept through a re-decode: no log gives them back)."""
    import numpy as np
    import pandas as pd

    rows = lookup.rows("rpc_chainlink_walked_rounds", stream=stream)
    return pd.DataFrame({
        "phase": np.array([r[0] for r in rows], np.int64), "agg_round": np.array([r[1] for r in rows], np.int64),
        "answer": pd.Series([int(r[2]) for r in rows], dtype=object),
        "updated_at": np.array([r[3] for r in rows], np.int64), "block": np.array([r[4] for r in rows], np.int64),
        "log_index": pd.array([None] * len(rows), dtype="Int64"),
        "origin": pd.Series(["getRoundData"] * len(rows), dtype=object)})


def _price_series(lookup: Lookup, asset: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    """USD prices of ``asset`` from ``source``: (unix microseconds ascending, price) arrays."""
    import numpy as np

    rows = lookup.rows("rpc_quote_prices", asset=asset, source=source)
    return np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.float64)


def _resolve_asset(opts: Mapping[str, Any], feed: Feed, state: StreamState | None) -> tuple[str, str | None]:
    from ..chainlink import parse_description

    base, quote = parse_description(feed.description)
    asset = opts.get("asset") or base
    quote_asset = opts.get("quote_asset")
    if not asset:
        raise MbtError(f"--asset: the feed's description {feed.description!r} does not name a base asset "
                       f"(\"BASE / QUOTE\"); pass --asset SYMBOL")
    if quote_asset is None and quote is not None and quote != "USD":
        raise MbtError(f"--quote-asset: feed \"{feed.description}\" is quoted in {quote}, not USD; pass --quote-asset "
                       f"with the symbol whose USD prices are stored (e.g. --quote-asset {quote})")
    if quote_asset is not None and quote == "USD":
        raise MbtError(f"--quote-asset {quote_asset}: feed \"{feed.description}\" is already quoted in USD")
    if state is not None:
        stored = state.settings
        if stored["asset"] != asset:
            raise MbtError(f"--asset {asset}: this feed is stored as asset {stored['asset']} (stream {state.stream}); "
                           f"use --asset {stored['asset']} or another database")
        if (stored["quote_asset"] or None) != (quote_asset or None):
            raise MbtError(f"--quote-asset {quote_asset}: this feed is stored with quote asset "
                           f"{stored['quote_asset']} (stream {state.stream})")
        if bool(stored["all_rounds"]) != opts["all_rounds"]:
            raise MbtError(f"--all-rounds: this feed is stored {'with' if stored['all_rounds'] else 'without'} "
                           f"--all-rounds (stream {state.stream}); keep the same setting")
    return asset, quote_asset


def _quote_series(lookup: Lookup | None, opts: Mapping[str, Any], state: StreamState | None
                  ) -> tuple[str | None, tuple[np.ndarray, np.ndarray] | None]:
    quote_asset = opts.get("quote_asset")
    if quote_asset is None:
        return None, None
    if lookup is None:
        raise MbtError(f"--quote-asset {quote_asset}: the database does not exist, so it has no "
                       f"{quote_asset} USD prices; load them first")
    sources = [r[0] for r in lookup.rows("rpc_price_sources", asset=quote_asset)]
    source = opts.get("quote_source") or (state.settings["quote_source"] if state else None)
    if source is None:
        if not sources:
            raise MbtError(f"--quote-asset {quote_asset}: no {quote_asset} prices in the database; load "
                           f"its USD prices first (e.g. mbt ingest rpc --feed <{quote_asset} / USD proxy>)")
        if len(sources) > 1:
            raise MbtError(f"--quote-asset {quote_asset}: prices from several sources ({', '.join(sources)}); "
                           f"choose one with --quote-source")
        source = sources[0]
    elif source not in sources:
        raise MbtError(f"--quote-source {source}: no {quote_asset} prices from that source "
                       f"(stored sources: {', '.join(sources) or 'none'})")
    return source, _price_series(lookup, quote_asset, source)


SOURCE = ChainlinkSource()
