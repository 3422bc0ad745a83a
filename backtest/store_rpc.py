"""DuckDB reads and writes of ``mbt ingest rpc``, through a ``Store``'s connection (the one DuckDB layer).

Tables are in ``sql/schema_rpc.sql`` (and ``prices`` / ``ingest_state`` in ``sql/schema.sql``); every
statement is an ``sql/rpc_*.sql`` file with bound parameters. The unit of writing is a *chunk*: its raw
logs, rounds, prices, block headers and checkpoint go in with the stream's ``ingest_state`` row in one
transaction (:meth:`RpcStore.commit_chunk`), so whatever instant a run is killed at, the database holds
whole chunks only and the next run resumes right after the last one. A reorg repair
(:meth:`RpcStore.rollback_to`) and a re-decode (:meth:`RpcStore.replace_decoded`) are single transactions too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from adapters.rpc.chain import Header, LogBatch

from .errors import MbtError
from .store import Store, sql_text

_PARAM = re.compile(r"\$([A-Za-z_]\w*)")


@dataclass(frozen=True)
class StreamState:
    """What is stored for a stream: coverage ``first_block..last_block`` and the feed's settings."""

    stream: str
    first_block: int
    last_block: int
    last_block_hash: str
    asset: str
    quote_asset: str | None
    quote_source: str | None
    all_rounds: bool
    description: str
    chain_id: int


@dataclass
class Chunk:
    """Everything one chunk of blocks adds, committed together.

    ``rounds``: phase, agg_round, answer (int), price, updated_at (unix s), block, log_index, origin.
    ``prices``: asset, phase, agg_round, updated_at (unix s), price_usd, block.
    """

    lo: int
    hi: int
    hi_hash: str
    raw_logs: LogBatch
    rounds: pd.DataFrame
    prices: pd.DataFrame
    headers: list[Header] = field(default_factory=list)


def _rounds_table(rounds: pd.DataFrame) -> pa.Table:
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


def _prices_table(prices: pd.DataFrame) -> pa.Table:
    return pa.table({
        "asset": pa.array([str(a) for a in prices["asset"].tolist()], pa.string()),
        "phase": pa.array(prices["phase"].to_numpy(np.int64)),
        "agg_round": pa.array(prices["agg_round"].to_numpy(np.int64)),
        "updated_at": pa.array(prices["updated_at"].to_numpy(np.int64)),
        "price_usd": pa.array(prices["price_usd"].to_numpy(np.float64)),
        "block": pa.array(prices["block"].to_numpy(np.int64)),
    })


class RpcStore:
    """RPC-ingestion reads and writes on an open :class:`~backtest.store.Store`.

    Parameters
    ----------
    store : Store
        An open, writable store (read-only is enough for the ``read`` methods).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.con = store.con

    # -- statements ---------------------------------------------------------------------------
    def _run(self, name: str, **params: Any) -> Any:
        """Run every statement of ``sql/<name>.sql`` with the parameters it names; returns the last cursor."""
        cursor = None
        for statement in (s.strip() for s in sql_text(name).split(";\n")):
            body = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--")).strip()
            if not body:
                continue
            wanted = {p: params[p] for p in _PARAM.findall(body)}
            cursor = self.con.execute(body.rstrip(";"), wanted)
        return cursor

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
    def _staged(self, **tables: pa.Table) -> Iterator[None]:
        for name, table in tables.items():
            self.con.register(name, table)
        try:
            yield
        finally:
            for name in tables:
                self.con.unregister(name)

    # -- reads --------------------------------------------------------------------------------
    def stream_state(self, source: str, stream: str) -> StreamState | None:
        """The stored coverage and settings of ``stream``, or None if nothing is stored for it."""
        if not self.store.table_exists("rpc_feeds"):
            return None
        row = self.con.execute(
            "SELECT f.first_block, s.last_block, s.last_block_hash, f.asset, f.quote_asset, f.quote_source, "
            "f.all_rounds, f.description, f.chain_id FROM rpc_feeds f JOIN ingest_state s "
            "ON s.source = f.source AND s.stream = f.stream WHERE f.source = ? AND f.stream = ?",
            [source, stream]).fetchall()
        if not row:
            return None
        row = row[0]
        return StreamState(stream, int(row[0]), int(row[1]), str(row[2]), row[3], row[4], row[5], bool(row[6]),
                           row[7], int(row[8]))

    def phases(self, stream: str) -> dict[int, tuple[str, int, int | None]]:
        """Stored phases: phase → (aggregator, decimals, activation block or None)."""
        rows = self.con.execute("SELECT phase, aggregator, decimals, activated_block FROM rpc_phases "
                                "WHERE stream = ? ORDER BY phase", [stream]).fetchall()
        return {int(p): (a, int(d), None if b is None else int(b)) for p, a, d, b in rows}

    def checkpoints_below(self, stream: str, block: int, limit: int) -> list[tuple[int, str]]:
        """Up to ``limit`` checkpoints at or below ``block``, highest first: (block, hash)."""
        rows = self.con.execute("SELECT block, block_hash FROM rpc_checkpoints WHERE stream = ? AND block <= ? "
                                "ORDER BY block DESC LIMIT ?", [stream, block, limit]).fetchall()
        return [(int(b), str(h)) for b, h in rows]

    def headers(self, chain_id: int, numbers: Sequence[int]) -> list[Header]:
        """Stored headers of ``numbers`` (those that are stored)."""
        if not numbers:
            return []
        self.con.execute("SELECT 1").fetchall()   # complete any open result: register() refuses otherwise
        self.con.register("_rpc_numbers", pa.table({"number": pa.array(list(numbers), pa.int64())}))
        try:
            rows = self.con.execute(
                "SELECT b.number, b.hash, epoch(b.timestamp)::BIGINT FROM rpc_blocks b JOIN _rpc_numbers n "
                "ON b.number = n.number WHERE b.chain_id = ?", [chain_id]).fetchall()
        finally:
            self.con.unregister("_rpc_numbers")
        return [Header(int(n), str(h), int(t)) for n, h, t in rows]

    def quote_sources(self, asset: str) -> list[str]:
        """Distinct ``prices.source`` values stored for ``asset``."""
        return [r[0] for r in self.con.execute("SELECT DISTINCT source FROM prices WHERE asset = ? ORDER BY 1",
                                               [asset]).fetchall()]

    def quote_series(self, asset: str, source: str) -> tuple[np.ndarray, np.ndarray]:
        """USD prices of ``asset`` from ``source``: (unix microseconds ascending, price) arrays."""
        rows = self._run("rpc_quote_prices", asset=asset, source=source).fetchall()
        ts = np.array([r[0] for r in rows], dtype=np.int64)
        px = np.array([r[1] for r in rows], dtype=np.float64)
        return ts, px

    def raw_logs(self, stream: str) -> LogBatch:
        """Stored logs of ``stream`` in chain order (for re-decoding)."""
        table = self.con.sql(
            "SELECT block, log_index, block_hash, tx_hash, tx_index, address, topic0, topic1, topic2, topic3, data "
            "FROM raw_logs WHERE stream = ? ORDER BY block, log_index", params=[stream]).to_arrow_table()
        return LogBatch.from_table(table)

    def walked_rounds(self, stream: str) -> pd.DataFrame:
        """Rounds of ``stream`` recovered with getRoundData (kept through a re-decode)."""
        rows = self.con.execute(
            "SELECT phase, agg_round, answer, epoch(updated_at)::BIGINT, block FROM chainlink_rounds "
            "WHERE stream = ? AND origin = 'getRoundData' ORDER BY phase, agg_round", [stream]).fetchall()
        return pd.DataFrame({
            "phase": np.array([r[0] for r in rows], np.int64), "agg_round": np.array([r[1] for r in rows], np.int64),
            "answer": pd.Series([int(r[2]) for r in rows], dtype=object),
            "updated_at": np.array([r[3] for r in rows], np.int64), "block": np.array([r[4] for r in rows], np.int64),
            "log_index": pd.array([None] * len(rows), dtype="Int64"),
            "origin": pd.Series(["getRoundData"] * len(rows), dtype=object)})

    # -- writes -------------------------------------------------------------------------------
    def commit_chunk(self, chunk: Chunk, *, source: str, stream: str, feed: dict[str, Any],
                     phases: dict[int, tuple[str, int, int | None]], last_block: int, last_block_hash: str,
                     chain_id: int, overwrite: bool) -> None:
        """Store one chunk and move the stream's state, in one transaction.

        Parameters
        ----------
        chunk : Chunk
            The chunk's data.
        source, stream : str
            ``ingest_state`` key.
        feed : dict
            The ``rpc_feeds`` row (``first_block`` already covering this chunk), or empty when the stored
            row is still right (each DuckDB statement costs ~1 ms, so unchanged rows are not rewritten).
        phases : dict
            phase → (aggregator, decimals, activation block or None) to upsert (may be empty).
        last_block, last_block_hash : int, str
            The stream's ``ingest_state`` after this chunk (unchanged for a backfill chunk).
        chain_id : int
            Chain of the stream (for ``rpc_blocks``).
        overwrite : bool
            Replace stored prices whose key matches but whose value differs (else that is an error).

        Raises
        ------
        MbtError
            A price conflicts with a stored one (and not ``overwrite``); nothing of the chunk is stored.
        """
        raw = chunk.raw_logs.table
        rounds = _rounds_table(chunk.rounds)
        prices = _prices_table(chunk.prices)
        headers = pa.table({"number": pa.array([h.number for h in chunk.headers], pa.int64()),
                            "hash": pa.array([h.hash for h in chunk.headers], pa.string()),
                            "timestamp": pa.array([h.timestamp for h in chunk.headers], pa.int64())})
        # BEGIN first: it also completes any result still open on the connection, which register() needs.
        with self._transaction(), \
                self._staged(_rpc_raw_logs=raw, _rpc_rounds=rounds, _rpc_prices=prices, _rpc_blocks=headers):
            if not overwrite:
                self._check_conflicts()
            if feed:
                self._run("rpc_upsert_feed", **feed)
            for phase, (aggregator, decimals, activated) in phases.items():
                self._run("rpc_upsert_phase", stream=stream, phase=phase, aggregator=aggregator, decimals=decimals,
                          activated_block=activated)
            self._run("rpc_clear_chunk", stream=stream, lo=chunk.lo, hi=chunk.hi)
            self._run("rpc_insert_raw_logs", stream=stream)
            self._run("rpc_insert_rounds", stream=stream)
            self._run("rpc_insert_prices")
            self._run("rpc_insert_blocks", chain_id=chain_id)
            self._run("rpc_insert_checkpoint", stream=stream, block=chunk.hi, block_hash=chunk.hi_hash)
            self._run("rpc_upsert_state", source=source, stream=stream, last_block=last_block,
                      last_block_hash=last_block_hash)

    def _check_conflicts(self) -> None:
        rows = self._run("rpc_price_conflicts").fetchall()
        if rows:
            asset, ts, round_id, stored, new, stored_block, new_block = rows[0]
            what = (f"price_usd {stored!r} stored, {new!r} from the chain" if stored != new
                    else f"block {stored_block} stored, {new_block} from the chain")
            raise MbtError(f"prices: asset {asset} round {round_id} at {ts:%Y-%m-%dT%H:%M:%SZ} conflicts with the "
                           f"stored row ({what}); use --overwrite to replace it, or --asset to store this feed "
                           f"under another symbol")

    def rollback_to(self, *, source: str, stream: str, asset: str, chain_id: int, block: int, block_hash: str) -> None:
        """Delete everything ``stream`` stored above ``block`` and set its state to ``block`` (one transaction)."""
        with self._transaction():
            self._run("rpc_rollback", source=source, stream=stream, asset=asset, chain_id=chain_id, block=block,
                      block_hash=block_hash)

    def replace_decoded(self, *, stream: str, asset: str, rounds: pd.DataFrame, prices: pd.DataFrame,
                        overwrite: bool) -> None:
        """Swap all of a stream's rounds and prices for freshly decoded ones (one transaction).

        ``rounds`` must include the rounds recovered with getRoundData (``walked_rounds``), as they are
        replaced too.
        """
        with self._transaction(), self._staged(_rpc_rounds=_rounds_table(rounds), _rpc_prices=_prices_table(prices)):
            self._run("rpc_clear_decoded", stream=stream, asset=asset)
            if not overwrite:
                self._check_conflicts()
            self._run("rpc_insert_rounds", stream=stream)
            self._run("rpc_insert_prices")
