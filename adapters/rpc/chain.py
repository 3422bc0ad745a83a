"""Chain reads every RPC source needs: adaptive ``eth_getLogs`` ranges, block headers, logs as columns.

``LogFetcher`` reads the logs of a block range in as few requests as the provider allows: it starts
with ``span`` blocks per request, halves the span (or takes the provider's suggestion) whenever the
provider refuses a range or a result size (:class:`~adapters.rpc.transport.RangeTooLarge`), and doubles it
again after a few successes, never above its maximum. ``BlockCache`` fetches block headers (number, hash,
timestamp) in JSON-RPC batches and remembers them, so a timestamp is asked for at most once per run (the
orchestration persists them too). Both talk to the node only through an injected ``Transport``.
``log_batch`` turns a response's logs into one Arrow table (hex converted in bulk), the form that both
decoding and the ``raw_logs`` table use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from mbt_errors import MbtError

from .transport import RangeTooLarge, RpcError


class Client(Protocol):
    """What the chain readers need from a transport (``adapters.rpc.transport.Transport`` fits)."""

    def call(self, method: str, params: list[Any]) -> Any: ...

    def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]: ...


def logs_request(addresses: Sequence[str], topics: Sequence[Any], lo: int, hi: int) -> tuple[str, list[Any]]:
    """The ``eth_getLogs`` call for blocks ``lo..hi`` (inclusive) of ``addresses`` matching ``topics``."""
    return "eth_getLogs", [{"fromBlock": hex(lo), "toBlock": hex(hi), "address": list(addresses),
                            "topics": list(topics)}]


def header_request(number: int) -> tuple[str, list[Any]]:
    """The ``eth_getBlockByNumber`` call for one header (no transactions)."""
    return "eth_getBlockByNumber", [hex(number), False]


@dataclass(frozen=True)
class Header:
    """A block header's fields mbt uses."""

    number: int
    hash: str
    timestamp: int   # unix seconds


def map_header(raw: dict[str, Any] | None) -> Header | None:
    """Pure mapping of an ``eth_getBlockByNumber`` result (None for a block the node does not have)."""
    if not raw:
        return None
    return Header(int(raw["number"], 16), raw["hash"].lower(), int(raw["timestamp"], 16))


#: Arrow schema of a batch of logs (also the layout of the ``raw_logs`` table, minus its ``stream``):
#: numbers as integers, hex fields as the bytes they spell.
LOG_SCHEMA = pa.schema([
    ("block", pa.int64()), ("log_index", pa.int64()), ("block_hash", pa.binary(32)), ("tx_hash", pa.binary(32)),
    ("tx_index", pa.int64()), ("address", pa.binary(20)), ("topic0", pa.binary(32)), ("topic1", pa.binary(32)),
    ("topic2", pa.binary(32)), ("topic3", pa.binary(32)), ("data", pa.binary()),
])


_BLANK_TOPIC = "00" * 32   # an absent topic slot: zero bytes, marked null


def _fixed(hex_digits: list[str], size: int, valid: np.ndarray | None = None) -> pa.Array:
    # Many hex values (without 0x) of one byte size → one fixed-size binary array through a single
    # bytes.fromhex over their concatenation (value by value costs more than everything else done with
    # a log; a numpy lookup-table decoder measured slower still).
    if set(map(len, hex_digits)) - {2 * size}:
        raise ValueError(f"a hex value is not {size} bytes")
    raw = bytes.fromhex("".join(hex_digits))
    bitmap = None if valid is None or valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(size), len(hex_digits), [bitmap, pa.py_buffer(raw)])


def _variable(values: list[str]) -> pa.Array:
    lengths = np.fromiter(map(len, values), np.int64, len(values))
    if ((lengths < 2) | (lengths % 2 == 1)).any():
        raise ValueError("a data field is not 0x followed by whole bytes")   # else bytes would shift
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum((lengths - 2) // 2, out=offsets[1:])
    raw = bytes.fromhex("".join([v[2:] for v in values]))
    return pa.BinaryArray.from_buffers(pa.binary(), len(values), [None, pa.py_buffer(offsets.tobytes()),
                                                                  pa.py_buffer(raw)])


def _topic_columns(topics: list[list[str]], counts: np.ndarray) -> list[pa.Array]:
    out = []
    for k in range(4):
        valid = counts > k
        if valid.all():
            out.append(_fixed([t[k][2:] for t in topics], 32))
        else:
            out.append(_fixed([t[k][2:] if len(t) > k else _BLANK_TOPIC for t in topics], 32, valid))
    return out


@dataclass
class LogBatch:
    """Logs as columns: an Arrow table (``LOG_SCHEMA``) plus each log's ``blockTimestamp`` (or -1).

    Built once per chunk (:func:`log_batch`); decoding reads 32-byte words straight out of its buffers
    and the store writes the same table, so no field is converted twice.
    """

    table: pa.Table
    block_timestamp: np.ndarray     # unix seconds; -1 where the node sent no blockTimestamp

    def __len__(self) -> int:
        return self.table.num_rows

    def column(self, name: str) -> np.ndarray:
        """An integer column as a numpy array."""
        return self.table.column(name).to_numpy()

    @classmethod
    def from_table(cls, table: pa.Table) -> LogBatch:
        """A batch from stored rows (variable-size BLOBs are cast back to their fixed sizes)."""
        cast = pa.table([table.column(f.name).cast(f.type) for f in LOG_SCHEMA], schema=LOG_SCHEMA)
        return cls(cast, np.full(cast.num_rows, -1, dtype=np.int64))


def log_batch(logs: Sequence[dict[str, Any]]) -> LogBatch:
    """Columnar form of ``eth_getLogs`` results (pure).

    Raises
    ------
    KeyError, ValueError
        A log lacks a field, or a number or hex field is malformed.
    """
    topics = [log["topics"] for log in logs]
    counts = np.fromiter(map(len, topics), np.int64, len(topics))
    if len(counts) and counts.max() > 4:
        raise ValueError("a log has more than 4 topics")
    columns = [
        pa.array([int(log["blockNumber"], 16) for log in logs], pa.int64()),
        pa.array([int(log["logIndex"], 16) for log in logs], pa.int64()),
        _fixed([log["blockHash"][2:] for log in logs], 32),
        _fixed([log["transactionHash"][2:] for log in logs], 32),
        pa.array([int(log["transactionIndex"], 16) for log in logs], pa.int64()),
        _fixed([log["address"][2:] for log in logs], 20),
        *_topic_columns(topics, counts),
        _variable([log["data"] for log in logs]),
    ]
    stamps = np.fromiter((int(x, 16) if x else -1 for x in (log.get("blockTimestamp") for log in logs)),
                         np.int64, len(logs))
    return LogBatch(pa.table(columns, schema=LOG_SCHEMA), stamps)


def words(array: pa.Array, byte_offset: int = 0) -> np.ndarray:
    """The 32-byte word at ``byte_offset`` of every value of a binary column, as an (n, 32) uint8 array.

    Raises
    ------
    ValueError
        A value is null or shorter than ``byte_offset + 32`` bytes.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    n = len(array)
    if array.null_count:
        raise ValueError("a log lacks a topic or data word it should have")
    if pa.types.is_fixed_size_binary(array.type):
        size = array.type.byte_width
        if byte_offset + 32 > size:
            raise ValueError(f"a {size}-byte field has no word at byte {byte_offset}")
        buf = np.frombuffer(array.buffers()[1], dtype=np.uint8)[array.offset * size:(array.offset + n) * size]
        return np.ascontiguousarray(buf.reshape(n, size)[:, byte_offset:byte_offset + 32])
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)[array.offset:array.offset + n + 1]
    if ((offsets[1:] - offsets[:-1]) < byte_offset + 32).any():
        raise ValueError(f"a log's data is shorter than {byte_offset + 32} bytes")
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)
    return data[offsets[:-1, None] + byte_offset + np.arange(32)]


def log_headers(logs: Sequence[dict[str, Any]]) -> list[Header]:
    """Headers implied by logs that carry ``blockTimestamp`` (recent nodes add it; older ones do not)."""
    seen: dict[int, Header] = {}
    for log in logs:
        ts = log.get("blockTimestamp")
        if ts:
            number = int(log["blockNumber"], 16)
            if number not in seen:
                seen[number] = Header(number, log["blockHash"].lower(), int(ts, 16))
    return list(seen.values())


class LogFetcher:
    """Fetch the logs of a block range, adapting the request span to what the provider accepts.

    Parameters
    ----------
    client : Client
        The transport.
    span : int
        Blocks per ``eth_getLogs`` request at the start, and the most it grows back to.
    grow_after : int
        Consecutive successes before the span doubles again.
    on_split : callable, optional
        Called with (lo, hi, new_span) whenever a range is refused (progress reporting).
    """

    def __init__(self, client: Client, span: int, grow_after: int = 3,
                 on_split: Callable[[int, int, int], None] | None = None) -> None:
        if span < 1:
            raise ValueError("span must be >= 1")
        self.client = client
        self.max_span = span
        self.span = span
        self.grow_after = grow_after
        self.on_split = on_split
        self.successes = 0
        self.splits = 0
        self.requests = 0

    def fetch(self, addresses: Sequence[str], topics: Sequence[Any], lo: int, hi: int) -> list[dict[str, Any]]:
        """All logs of ``addresses`` matching ``topics`` in blocks ``lo..hi`` (inclusive), in chain order.

        Raises
        ------
        MbtError
            A single block holds more logs than the provider will return in one response.
        """
        out: list[dict[str, Any]] = []
        cur = lo
        while cur <= hi:
            end = min(hi, cur + self.span - 1)
            self.requests += 1
            try:
                logs = self.client.call(*logs_request(addresses, topics, cur, end))
            except RangeTooLarge as exc:
                if end == cur:
                    raise MbtError(f"eth_getLogs: block {cur} alone exceeds the provider's limit "
                                   f"({exc.message}); use an endpoint with a higher log limit") from None
                width = end - cur + 1
                new = exc.suggested if exc.suggested and exc.suggested < width else max(1, width // 2)
                self.span = new
                self.successes = 0
                self.splits += 1
                if self.on_split:
                    self.on_split(cur, end, new)
                continue
            if not isinstance(logs, list):
                raise MbtError(f"eth_getLogs: the node returned {type(logs).__name__}, not a list of logs")
            out.extend(logs)
            cur = end + 1
            self.successes += 1
            if self.successes >= self.grow_after and self.span < self.max_span:
                self.span = min(self.max_span, self.span * 2)
                self.successes = 0
        return out


class BlockCache:
    """Block headers by number, fetched in batches and kept for the run.

    Parameters
    ----------
    client : Client
        The transport.
    known : iterable of Header, optional
        Headers already stored (e.g. read back from the database).
    """

    def __init__(self, client: Client | None, known: Sequence[Header] = ()) -> None:
        self.client = client
        self.headers: dict[int, Header] = {h.number: h for h in known}
        self.fetched = 0

    def remember(self, header: Header) -> None:
        """Cache a header learnt elsewhere (e.g. from a log's ``blockTimestamp``)."""
        self.headers[header.number] = header

    def forget_above(self, block: int) -> None:
        """Drop cached headers above ``block`` (after a reorg)."""
        self.headers = {n: h for n, h in self.headers.items() if n <= block}

    def get(self, numbers: Sequence[int], refresh: bool = False) -> dict[int, Header | None]:
        """Headers of ``numbers`` (None for a block the node does not have yet).

        Parameters
        ----------
        numbers : sequence of int
            Block numbers.
        refresh : bool
            Ask the node even for cached blocks (reorg checks compare the node's current hashes).
        """
        wanted = sorted({n for n in numbers if refresh or n not in self.headers})
        if wanted:
            if self.client is None:
                raise MbtError(f"block {wanted[0]}: header not stored and no RPC endpoint to ask")
            replies = self.client.batch([header_request(n) for n in wanted])
            for n, raw in zip(wanted, replies):
                if isinstance(raw, RpcError):
                    raise MbtError(f"eth_getBlockByNumber {n}: {raw.message}")
                header = map_header(raw)
                self.fetched += 1
                if header is None:
                    self.headers.pop(n, None)
                else:
                    self.headers[n] = header
        return {n: self.headers.get(n) for n in numbers}
