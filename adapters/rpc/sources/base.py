"""What a log-ingest source declares and what the generic driver hands it (no network, no database here).

A *source* is one module in this package (``chainlink`` is the first) exposing a :class:`LogSource`: its
name (the ``--source`` value), the events it reads (ABIs and the ``eth_getLogs`` topic filter), the CLI
options it needs, how its frames are stored (:class:`SourceTables`: ``sql/`` file names), and the pure
mapping raw logs → frames. The driver (``backtest.ingest.driver``) does everything else — chain and head,
confirmations, resume, chunk grid, reorg repair, raw-log store, checkpoints, ``ingest_state``.

Per run, :meth:`LogSource.prepare` reads what the source needs through the two injected readers — the
node (:class:`~adapters.rpc.chain.Client`) and the stored data (:class:`Lookup`) — and returns a
:class:`SourcePlan`, which the driver asks, chunk by chunk, which contracts to read and what the chunk's
logs mean. Sources raise ``mbt_errors.MbtError`` for anything the user can fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the chain helpers import pyarrow and numpy; declarations stay cheap to import
    import pandas as pd
    import pyarrow as pa

    from ..chain import BlockCache, Client, Header, LogBatch

#: What a source decodes a chunk (or a whole stream) into: frame name → rows.
Frames = dict[str, "pd.DataFrame"]


@dataclass(frozen=True)
class SourceOption:
    """One CLI option of a source, turned into a click option by ``mbt ingest rpc``.

    Parameters
    ----------
    flag : str
        The option, e.g. ``--feed``.
    dest : str
        Its key in the options mapping the source receives, e.g. ``feed``.
    help : str
        Help text.
    metavar : str, optional
        The value's name in ``--help`` (e.g. ``ADDRESS``).
    is_flag : bool
        A boolean switch instead of a value.
    required : str, optional
        Set when a run needs the option: what it is, for the error ``--feed: required (<this>)``.
    """

    flag: str
    dest: str
    help: str
    metavar: str | None = None
    is_flag: bool = False
    required: str | None = None


@dataclass(frozen=True)
class SourceTables:
    """How the store keeps a source's frames: names of ``sql/`` files (statements with ``$name`` parameters).

    The staged tables a source's :meth:`LogSource.stage` returns are registered under their names while
    these run; every file may hold several statements. Parameters: ``$stream``, ``$lo``/``$hi`` (chunk),
    ``$block`` (rollback) and the stream row's columns (e.g. ``$asset``).
    """

    insert: tuple[str, ...]       # after the chunk's raw logs: insert the staged frames
    clear_chunk: str              # delete the stream's rows of blocks $lo..$hi (a chunk stored twice stays once)
    rollback: str                 # delete the stream's rows above $block (reorg repair)
    clear_decoded: str            # delete the stream's decoded rows before a re-decode
    conflicts: str | None = None  # the first staged row that conflicts with a stored one (or no row)
    run_rows: str | None = None   # upsert one of the rows a plan writes with a run's first chunk


class Lookup(Protocol):
    """Stored data a source may read (``backtest.ingest.rpc_store.RpcStore`` implements it)."""

    def rows(self, query: str, **params: Any) -> list[tuple]:
        """Rows of the query in ``sql/<query>.sql`` with these parameters."""
        ...

    def headers(self, chain_id: int, numbers: Sequence[int]) -> list[Header]:
        """Stored block headers of ``numbers`` (those that are stored)."""
        ...


@dataclass(frozen=True)
class StreamState:
    """What is stored for a stream: coverage ``first_block..last_block`` and the stream row's settings."""

    stream: str
    first_block: int
    last_block: int
    last_block_hash: str
    chain_id: int
    settings: Mapping[str, Any] = field(default_factory=dict)   # the source's columns of rpc_feeds


@dataclass(frozen=True)
class Unit:
    """One chunk: blocks ``lo..hi``, what the source tracks in it (e.g. phases), and its direction."""

    lo: int
    hi: int
    tracks: tuple[Any, ...]
    direction: str                   # "up" (extends last_block) or "down" (extends first_block)


@dataclass(frozen=True)
class PrepareContext:
    """What :meth:`LogSource.prepare` gets: the request and everything the driver already knows."""

    client: Client
    lookup: Lookup | None            # None when the database does not exist yet
    options: Mapping[str, Any]       # the source's validated options
    chain_id: int
    stream: str
    state: StreamState | None
    rollback: tuple[int, str] | None # reorg: the driver will roll back to (block, hash)
    probe: int                       # the newest block stored or to be stored (read the contracts there)
    target: int                      # the confirmed target block


@dataclass
class ChunkInput:
    """One fetched chunk, as the driver hands it to :meth:`SourcePlan.read`."""

    unit: Unit
    logs: list[dict[str, Any]]       # eth_getLogs results (for fields the batch drops, e.g. blockTimestamp)
    batch: LogBatch                  # the same logs as columns (what raw_logs stores)
    client: Client
    blocks: BlockCache


@dataclass
class ChunkFrames:
    """What a chunk adds besides its raw logs: the frames, headers to keep, counters for the report."""

    frames: Frames
    headers: list[Header] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


class SourcePlan:
    """One run of a source, decided by :meth:`LogSource.prepare` (reads the node; writes nothing)."""

    #: The source's columns of the stream row (``rpc_feeds``): written with the run's first chunk.
    stream_row: dict[str, Any]
    #: Short label of the stream for the progress bar.
    label: str = ""
    #: What the stream is about in the summary line (e.g. the asset).
    subject: str = ""
    #: Blocks at which chunks must be cut (e.g. phase switches), so a chunk tracks one thing.
    cuts: list[int]
    #: One-line notes shown before the run and in the plan.
    notes: list[str]

    def tracks_at(self, block: int) -> tuple[Any, ...]:
        """What a chunk starting at ``block`` collects (e.g. the active phase)."""
        return ()

    def describe(self, stream: str) -> list[str]:
        """The source's lines of the ``--dry-run`` plan (after the chain line)."""
        return []

    def check_start(self, client: Client, block: int) -> None:
        """Called before any chunk with the lowest block to ingest (raise MbtError if it cannot start)."""

    def run_rows(self) -> list[dict[str, Any]]:
        """Rows written with the run's first chunk through ``SourceTables.run_rows`` (e.g. phases)."""
        return []

    def edge_calls(self, unit: Unit) -> list[tuple[str, list[Any]]]:
        """Extra calls for the batch the driver sends per chunk (with the edge headers)."""
        return []

    def take_edges(self, unit: Unit, answers: list[Any]) -> None:
        """The answers to :meth:`edge_calls` (an ``RpcError`` for a call that failed)."""

    def addresses(self, unit: Unit) -> list[str]:
        """Contracts whose logs the chunk needs (none: no ``eth_getLogs``)."""
        return []

    def read(self, chunk: ChunkInput) -> ChunkFrames:
        """The chunk's frames (decoding its logs; may call the node for what logs do not say)."""
        raise NotImplementedError


class LogSource:
    """A log-ingest source: declarations plus the hooks the driver calls. Subclass it in a source module."""

    #: ``--source`` value and ``ingest_state.source``.
    name: str = ""
    #: Name in messages ("a log does not decode as a Chainlink event").
    title: str = ""
    #: What one stream is, in messages ("the feed is stored up to block ...").
    noun: str = "stream"
    #: One line for ``mbt ingest rpc --help``.
    description: str = ""
    #: The CLI options the source needs (besides the driver's --from-block, --rpc-url, ...).
    options: tuple[SourceOption, ...] = ()
    #: How its frames are stored.
    tables: SourceTables

    def events(self) -> dict[str, dict[str, Any]]:
        """The event ABIs the source decodes, by name."""
        raise NotImplementedError

    def topics(self) -> list[Any]:
        """The ``eth_getLogs`` topics filter (default: any of the events as topic0)."""
        from eth_utils import event_abi_to_log_topic

        return [["0x" + event_abi_to_log_topic(abi).hex() for abi in self.events().values()]]

    def validate(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Check and normalise the source's options (raise MbtError naming the option)."""
        from mbt_errors import MbtError

        for opt in self.options:
            if opt.required and not options.get(opt.dest):
                raise MbtError(f"{opt.flag}: required ({opt.required})")
        return dict(options)

    def stream_key(self, options: Mapping[str, Any]) -> str:
        """The stream's key on any chain (``rpc_feeds.feed``; ``--redecode`` finds the stream by it)."""
        raise NotImplementedError

    def stream(self, chain_id: int, options: Mapping[str, Any]) -> str:
        """The stream name (``ingest_state.stream``): one key on one chain."""
        return f"{chain_id}:{self.stream_key(options)}"

    def prepare(self, ctx: PrepareContext) -> SourcePlan:
        """Decide the run (reads the node and stored data; writes nothing)."""
        raise NotImplementedError

    def stage(self, frames: Frames) -> dict[str, pa.Table]:
        """Frames as the Arrow tables the ``SourceTables`` statements read (staged table name → table)."""
        raise NotImplementedError

    def conflict_message(self, row: tuple) -> str:
        """The one-line error for the first row of ``SourceTables.conflicts``."""
        return "a stored row conflicts with the chain's; use --overwrite to replace it"

    def redecode(self, lookup: Lookup, state: StreamState, logs: LogBatch) -> ChunkFrames:
        """Rebuild the stream's frames from its stored raw logs and other stored data (no node)."""
        raise NotImplementedError

    def summary(self, plan: SourcePlan, counts: Mapping[str, int], logs: int) -> str:
        """What the run stored, for the summary line (e.g. "529 rounds ..., 720 logs, 529 prices stored")."""
        return f"{logs:,} logs stored"

    def redecode_summary(self, counts: Mapping[str, int], logs: int) -> str:
        """The line of a re-decode (the driver appends its time)."""
        return f"re-decoded {logs:,} stored logs"

    def warnings(self, counts: Mapping[str, int]) -> list[str]:
        """Warnings after a run (one line each)."""
        return []
