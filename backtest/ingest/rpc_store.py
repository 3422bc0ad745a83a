"""DuckDB reads and writes of the log-ingest driver, through a ``Store``'s connection (the one DuckDB layer).

Tables are in ``sql/schema_rpc.sql`` (and ``prices`` / ``ingest_state`` in ``sql/schema.sql``); every
statement is an ``sql/rpc_*.sql`` file with bound parameters: the driver's own (raw logs, headers,
checkpoints, the stream row, ``ingest_state``, rollback) and each source's (named by its
``SourceTables``). The unit of writing is a *chunk*: its raw logs, the source's frames, block headers and
checkpoint go in with the stream's ``ingest_state`` row in one transaction (:meth:`RpcStore.commit_chunk`),
so whatever instant a run is killed at, the database holds whole chunks only and the next run resumes
right after the last one. A reorg repair (:meth:`RpcStore.rollback_to`) and a re-decode
(:meth:`RpcStore.replace_decoded`) are single transactions too. ``RpcStore`` is also the ``Lookup`` a
source reads stored data through.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from adapters.rpc.chain import Header, LogBatch
from adapters.rpc.sources.base import Frames, LogSource, StreamState

from ..errors import MbtError
from ..store import Store, sql_text

_PARAM = re.compile(r"\$([A-Za-z_]\w*)")
_SETTINGS = ("feed", "description", "asset", "quote_asset", "quote_source", "all_rounds")


@dataclass
class Chunk:
    """Everything one chunk of blocks adds, committed together: raw logs, the source's frames, headers."""

    lo: int
    hi: int
    hi_hash: str
    raw_logs: LogBatch
    frames: Frames
    headers: list[Header] = field(default_factory=list)


class RpcStore:
    """Log-ingestion reads and writes on an open :class:`~backtest.store.Store`.

    Parameters
    ----------
    store : Store
        An open, writable store (read-only is enough for the read methods).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.con = store.con

    # -- statements ---------------------------------------------------------------------------
    @staticmethod
    def _statements(name: str, params: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        # Every statement of sql/<name>.sql (comments dropped) with the parameters it names.
        for statement in (s.strip() for s in sql_text(name).split(";\n")):
            body = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--")).strip()
            if body:
                yield body.rstrip(";"), {p: params[p] for p in _PARAM.findall(body)}

    def _run(self, name: str, **params: Any) -> Any:
        """Run every statement of ``sql/<name>.sql`` with the parameters it names; returns the last cursor."""
        cursor = None
        for body, wanted in self._statements(name, params):
            cursor = self.con.execute(body, wanted)
        return cursor

    def _arrow(self, name: str, **params: Any) -> pa.Table:
        """The result of the one query in ``sql/<name>.sql`` as an Arrow table."""
        (body, wanted), = self._statements(name, params)
        return self.con.sql(body, params=wanted).to_arrow_table()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    @contextmanager
    def _staged(self, tables: Mapping[str, pa.Table]) -> Iterator[None]:
        for name, table in tables.items():
            self.con.register(name, table)
        try:
            yield
        finally:
            for name in tables:
                self.con.unregister(name)

    # -- reads (also the sources' Lookup) -------------------------------------------------------
    def rows(self, query: str, **params: Any) -> list[tuple]:
        """Rows of ``sql/<query>.sql`` (an ``rpc_*`` query) with these parameters."""
        if not query.startswith("rpc_"):
            raise ValueError(f"{query}: sources read only rpc_* queries")
        return self._run(query, **params).fetchall()

    def stream_state(self, source: str, stream: str) -> StreamState | None:
        """The stored coverage and settings of ``stream``, or None if nothing is stored for it."""
        if not self.store.table_exists("rpc_feeds"):
            return None
        row = self._run("rpc_stream_state", source=source, stream=stream).fetchall()
        if not row:
            return None
        first, last, last_hash, chain_id, *settings = row[0]
        values = dict(zip(_SETTINGS, settings))
        values["all_rounds"] = bool(values["all_rounds"])
        return StreamState(stream, int(first), int(last), str(last_hash), int(chain_id), values)

    def find_streams(self, source: str, key: str) -> list[str]:
        """Streams of ``source`` whose key (``rpc_feeds.feed``) is ``key``, on any chain."""
        if not self.store.table_exists("rpc_feeds"):
            return []
        return [r[0] for r in self._run("rpc_find_streams", source=source, key=key).fetchall()]

    def checkpoints_below(self, stream: str, block: int, limit: int) -> list[tuple[int, str]]:
        """Up to ``limit`` checkpoints at or below ``block``, highest first: (block, hash)."""
        rows = self._run("rpc_checkpoints_below", stream=stream, block=block, limit=limit).fetchall()
        return [(int(b), str(h)) for b, h in rows]

    def headers(self, chain_id: int, numbers: Sequence[int]) -> list[Header]:
        """Stored headers of ``numbers`` (those that are stored)."""
        if not numbers:
            return []
        self.con.execute("SELECT 1").fetchall()   # complete any open result: register() refuses otherwise
        with self._staged({"_rpc_numbers": pa.table({"number": pa.array(list(numbers), pa.int64())})}):
            rows = self._run("rpc_headers", chain_id=chain_id).fetchall()
        return [Header(int(n), str(h), int(t)) for n, h, t in rows]

    def raw_logs(self, stream: str) -> LogBatch:
        """Stored logs of ``stream`` in chain order (for re-decoding)."""
        table = self._arrow("rpc_raw_logs", stream=stream)
        return LogBatch.from_table(table)

    # -- writes -------------------------------------------------------------------------------
    def commit_chunk(self, chunk: Chunk, *, source: LogSource, stream: str, stream_row: Mapping[str, Any],
                     run_rows: Sequence[Mapping[str, Any]], last_block: int, last_block_hash: str, chain_id: int,
                     overwrite: bool) -> None:
        """Store one chunk and move the stream's state, in one transaction.

        Parameters
        ----------
        chunk : Chunk
            The chunk's data.
        source : LogSource
            Whose frames these are (its ``tables`` name the statements; ``name`` is ``ingest_state.source``).
        stream : str
            ``ingest_state`` key.
        stream_row : mapping
            The ``rpc_feeds`` row (``first_block`` already covering this chunk), or empty when the stored
            row is still right (each DuckDB statement costs ~1 ms, so unchanged rows are not rewritten).
        run_rows : sequence of mapping
            Rows of the source's ``run_rows`` statement to upsert (e.g. phases; may be empty).
        last_block, last_block_hash : int, str
            The stream's ``ingest_state`` after this chunk (unchanged for a backfill chunk).
        chain_id : int
            Chain of the stream (for ``rpc_blocks``).
        overwrite : bool
            Replace stored rows whose key matches but whose values differ (else that is an error).

        Raises
        ------
        MbtError
            A row conflicts with a stored one (and not ``overwrite``); nothing of the chunk is stored.
        """
        tables = source.tables
        headers = pa.table({"number": pa.array([h.number for h in chunk.headers], pa.int64()),
                            "hash": pa.array([h.hash for h in chunk.headers], pa.string()),
                            "timestamp": pa.array([h.timestamp for h in chunk.headers], pa.int64())})
        staged = {"_rpc_raw_logs": chunk.raw_logs.table, "_rpc_blocks": headers, **source.stage(chunk.frames)}
        # BEGIN first: it also completes any result still open on the connection, which register() needs.
        with self._transaction(), self._staged(staged):
            if not overwrite:
                self._check_conflicts(source)
            if stream_row:
                self._run("rpc_upsert_feed", **stream_row)
            for row in run_rows:
                assert tables.run_rows is not None
                self._run(tables.run_rows, stream=stream, **row)
            self._run("rpc_clear_chunk", stream=stream, lo=chunk.lo, hi=chunk.hi)
            self._run(tables.clear_chunk, stream=stream, lo=chunk.lo, hi=chunk.hi)
            self._run("rpc_insert_raw_logs", stream=stream)
            for name in tables.insert:
                self._run(name, stream=stream)
            self._run("rpc_insert_blocks", chain_id=chain_id)
            self._run("rpc_insert_checkpoint", stream=stream, block=chunk.hi, block_hash=chunk.hi_hash)
            self._run("rpc_upsert_state", source=source.name, stream=stream, last_block=last_block,
                      last_block_hash=last_block_hash)

    def _check_conflicts(self, source: LogSource) -> None:
        if source.tables.conflicts is None:
            return
        rows = self._run(source.tables.conflicts).fetchall()
        if rows:
            raise MbtError(source.conflict_message(rows[0]))

    def rollback_to(self, *, source: LogSource, stream: str, chain_id: int, block: int, block_hash: str,
                    settings: Mapping[str, Any]) -> None:
        """Delete everything ``stream`` stored above ``block`` and set its state to ``block`` (one transaction).

        ``settings``: the stream row's source columns (e.g. ``asset``), for the source's rollback statements.
        """
        params = {**settings, "source": source.name, "stream": stream, "chain_id": chain_id, "block": block,
                  "block_hash": block_hash}
        with self._transaction():
            self._run(source.tables.rollback, **params)
            self._run("rpc_rollback", **params)

    def replace_decoded(self, *, source: LogSource, stream: str, frames: Frames, settings: Mapping[str, Any],
                        overwrite: bool) -> None:
        """Swap all of a stream's decoded rows for freshly decoded ones (one transaction).

        ``frames`` must include whatever the source keeps across a re-decode (Chainlink: the rounds
        recovered with getRoundData), as the stored rows are all replaced.
        """
        with self._transaction(), self._staged(source.stage(frames)):
            self._run(source.tables.clear_decoded, **{**settings, "stream": stream})
            if not overwrite:
                self._check_conflicts(source)
            for name in source.tables.insert:
                self._run(name, stream=stream)
