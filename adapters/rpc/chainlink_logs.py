"""Chainlink aggregator logs → rounds, in bulk (pure; no network, no database).

Aggregators announce a round with ``AnswerUpdated(int256 indexed current, uint256 indexed roundId,
uint256 updatedAt)`` (Flux and OCR) and/or ``NewTransmission`` (OCR1 and OCR2 shapes; round id indexed,
``answer`` the first data word). PROTOCOLS §7 gives the topics. Decoding is columnar: the logs are one
Arrow batch (``adapters.rpc.chain.log_batch``, hex already converted to bytes), the 32-byte words wanted
(a topic, or a head word of ``data``) are gathered from its buffers with numpy and viewed as four
big-endian 64-bit limbs per word, and the values that fit in 64 bits (all realistic answers, rounds and
timestamps) come out vectorised; the rare word that does not is decoded by eth-abi with its exact ABI
type, which also rejects bad padding. Where a field sits (which topic, which data word) is read from the
event ABI, not typed in by hand. Per-log web3 event processing gives the same result ~20× slower
(``bench/rpc_decode.py``; the tests hold the two equal).

``assemble_rounds`` then picks one record per (phase, aggregator round): the last ``AnswerUpdated`` when
there is one (Flux aggregators re-announce a round as more oracles answer; the last is final and carries
``updatedAt``), else the last ``NewTransmission``, whose ``updatedAt`` is its block's timestamp (OCR sets
both from ``block.timestamp``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from eth_abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils import event_abi_to_log_topic

from .chain import LogBatch, log_batch, words

ANSWER_UPDATED = "AnswerUpdated"
NEW_TRANSMISSION = "NewTransmission"
GET_ROUND_DATA = "getRoundData"   # origin of rounds recovered by eth_call, not from a log


def _event(name: str, inputs: list[tuple[str, str, bool]]) -> dict[str, Any]:
    return {"type": "event", "name": name, "anonymous": False,
            "inputs": [{"name": n, "type": t, "indexed": i} for n, t, i in inputs]}


#: Production event ABIs (PROTOCOLS §7).
EVENT_ABIS: dict[str, dict[str, Any]] = {
    "AnswerUpdated": _event("AnswerUpdated", [("current", "int256", True), ("roundId", "uint256", True),
                                              ("updatedAt", "uint256", False)]),
    "NewTransmissionOCR1": _event("NewTransmission", [
        ("aggregatorRoundId", "uint32", True), ("answer", "int192", False), ("transmitter", "address", False),
        ("observations", "int192[]", False), ("observers", "bytes", False), ("rawReportContext", "bytes32", False)]),
    "NewTransmissionOCR2": _event("NewTransmission", [
        ("aggregatorRoundId", "uint32", True), ("answer", "int192", False), ("transmitter", "address", False),
        ("observationsTimestamp", "uint32", False), ("observations", "int192[]", False), ("observers", "bytes", False),
        ("juelsPerFeeCoin", "int192", False), ("configDigest", "bytes32", False), ("epochAndRound", "uint40", False)]),
    "NewRound": _event("NewRound", [("roundId", "uint256", True), ("startedBy", "address", True),
                                    ("startedAt", "uint256", False)]),
}

#: topic0 of each event (keccak of the canonical signature).
TOPICS: dict[str, str] = {k: "0x" + event_abi_to_log_topic(v).hex() for k, v in EVENT_ABIS.items()}

#: The events that carry a price, i.e. the topic0 filter of ``eth_getLogs``.
PRICE_EVENTS = ("AnswerUpdated", "NewTransmissionOCR1", "NewTransmissionOCR2")


@dataclass(frozen=True)
class _Field:
    where: str     # "topic" or "data"
    index: int     # topic number (1-3) or head word of data (0-based)
    abi_type: str


@cache
def _field(event: str, name: str) -> _Field:
    topic = 0
    word = 0
    for arg in EVENT_ABIS[event]["inputs"]:
        if arg["indexed"]:
            topic += 1
            if arg["name"] == name:
                return _Field("topic", topic, arg["type"])
        else:
            if arg["name"] == name:
                return _Field("data", word, arg["type"])
            word += 1   # every head word before ours is one 32-byte slot (static or an offset)
    raise KeyError(f"{event}.{name}")


# (event key, round field, answer field, updatedAt field or None)
_LAYOUT = {
    "AnswerUpdated": ("roundId", "current", "updatedAt"),
    "NewTransmissionOCR1": ("aggregatorRoundId", "answer", None),
    "NewTransmissionOCR2": ("aggregatorRoundId", "answer", None),
}

_TWO63 = np.uint64(1 << 63)
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def decode_words(words: np.ndarray | Sequence[str], abi_type: str) -> list[int]:
    """Decode many 32-byte ABI words of one integer type.

    Parameters
    ----------
    words : ndarray of shape (n, 32), uint8, or sequence of str
        The words as bytes, or as hex text (64 digits each, no ``0x``).
    abi_type : str
        ``uintN`` or ``intN``.

    Returns
    -------
    list of int
        The values (Python ints: exact for any width).

    Raises
    ------
    ValueError
        A word is not a valid encoding of ``abi_type`` (bad padding or sign extension, or not 32 bytes).
    """
    if not isinstance(words, np.ndarray):
        joined = "".join(words)
        if len(joined) != 64 * len(words):
            raise ValueError(f"{abi_type}: a word is not 32 bytes")
        words = np.frombuffer(bytes.fromhex(joined), dtype=np.uint8).reshape(len(words), 32)
    n = len(words)
    if n == 0:
        return []
    limbs = np.ascontiguousarray(words).view(">u8").reshape(n, 4).astype(np.uint64)
    high, low = limbs[:, :3], limbs[:, 3]
    if abi_type.startswith("int"):
        positive = (high == 0).all(axis=1) & (low < _TWO63)
        negative = (high == _ALL_ONES).all(axis=1) & (low >= _TWO63)
        fast = positive | negative
    else:
        fast = (high == 0).all(axis=1) & (low < _TWO63)
    signed_view = low.view(np.int64)
    values: list[int] = signed_view.tolist()
    bits = int(re.sub(r"^u?int", "", abi_type))
    bad = ~fast
    if bits < 64:
        # Narrow types (uint32 round ids, uint40...) must also be in range; eth-abi rejects what is not.
        lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if abi_type.startswith("int") else (0, 1 << bits)
        bad |= (signed_view < lo) | (signed_view >= hi)
    for i in np.flatnonzero(bad).tolist():
        try:
            values[i] = decode([abi_type], words[i].tobytes())[0]
        except DecodingError as exc:
            raise ValueError(f"{abi_type} word 0x{words[i].tobytes().hex()}: {exc}") from None
    return values


_TOPIC_BYTES = {k: np.frombuffer(bytes.fromhex(TOPICS[k][2:]), dtype=np.uint8) for k in _LAYOUT}
_NO_TOPIC = pa.scalar(b"\0" * 32, pa.binary(32))


def _hex_addresses(array: pa.Array) -> np.ndarray:
    # Few distinct aggregators per batch: hex-encode each distinct address once.
    raw = np.frombuffer(array.buffers()[1], dtype=np.uint8)[array.offset * 20:(array.offset + len(array)) * 20]
    keys = np.ascontiguousarray(raw.reshape(len(array), 20)).view(np.dtype((np.void, 20))).ravel()
    unique, inverse = np.unique(keys, return_inverse=True)
    names = np.array(["0x" + u.tobytes().hex() for u in unique], dtype=object)
    return names[inverse.ravel()]


def decode_logs(logs: Sequence[Mapping[str, Any]] | LogBatch) -> pd.DataFrame:
    """Decode the price events of many logs at once.

    Parameters
    ----------
    logs : sequence of dict, or LogBatch
        ``eth_getLogs`` results (hex strings as the node returns them), or their batch
        (``adapters.rpc.chain.log_batch``). Logs of other events are skipped.

    Returns
    -------
    DataFrame
        One row per price event: ``address`` (lower-case), ``block``, ``log_index``, ``event``
        (``AnswerUpdated`` | ``NewTransmission``), ``agg_round``, ``answer`` (Python int, object column),
        ``updated_at`` (unix seconds; -1 when it must come from the block's timestamp), ``block_timestamp``
        (unix seconds from the log's ``blockTimestamp`` field; -1 when the node does not send it).

    Raises
    ------
    ValueError
        A log is malformed (missing topics, short data, invalid word encoding).
    """
    batch = logs if isinstance(logs, LogBatch) else log_batch(logs)
    if len(batch) == 0:
        return empty_decoded()
    table = batch.table
    topic0 = words(pc.fill_null(table.column("topic0").combine_chunks(), _NO_TOPIC))
    blocks, indexes = batch.column("block"), batch.column("log_index")
    parts = []
    for key, (round_name, answer_name, updated_name) in _LAYOUT.items():
        rows = np.flatnonzero((topic0 == _TOPIC_BYTES[key]).all(axis=1))
        if len(rows) == 0:
            continue
        take = pa.array(rows)
        columns: dict[str, Any] = {}
        for column, name in (("agg_round", round_name), ("answer", answer_name), ("updated_at", updated_name)):
            if name is None:
                columns[column] = np.full(len(rows), -1, dtype=np.int64)
                continue
            f = _field(key, name)
            source = table.column(f"topic{f.index}" if f.where == "topic" else "data").take(take)
            values = decode_words(words(source, 0 if f.where == "topic" else 32 * f.index), f.abi_type)
            if column == "answer":
                columns[column] = pd.array(values, dtype=object)
                continue
            try:
                columns[column] = np.asarray(values, dtype=np.int64)
            except OverflowError:
                raise ValueError(f"{key}.{name}: a value does not fit 63 bits") from None
        parts.append(pd.DataFrame({
            "address": _hex_addresses(table.column("address").take(take).combine_chunks()),
            "block": blocks[rows],
            "log_index": indexes[rows],
            "event": ANSWER_UPDATED if key == "AnswerUpdated" else NEW_TRANSMISSION,
            "agg_round": columns["agg_round"],
            "answer": columns["answer"],
            "updated_at": columns["updated_at"],
            "block_timestamp": batch.block_timestamp[rows],
        }))
    if not parts:
        return empty_decoded()
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def empty_decoded() -> pd.DataFrame:
    """The zero-row frame of :func:`decode_logs`."""
    return pd.DataFrame({"address": pd.Series([], dtype=object), "block": np.array([], np.int64),
                         "log_index": np.array([], np.int64), "event": pd.Series([], dtype=object),
                         "agg_round": np.array([], np.int64), "answer": pd.Series([], dtype=object),
                         "updated_at": np.array([], np.int64), "block_timestamp": np.array([], np.int64)})


ROUND_COLUMNS = ("phase", "agg_round", "answer", "updated_at", "block", "log_index", "origin")


def assemble_rounds(decoded: pd.DataFrame, phase_of: Mapping[str, int]) -> pd.DataFrame:
    """One row per (phase, aggregator round) from decoded logs.

    Parameters
    ----------
    decoded : DataFrame
        Output of :func:`decode_logs`.
    phase_of : mapping
        Lower-case aggregator address → phase; logs of other addresses are dropped.

    Returns
    -------
    DataFrame
        Columns ``phase, agg_round, answer, updated_at, block, log_index, origin``, sorted by
        (phase, agg_round). ``updated_at`` is -1 for rounds known only from ``NewTransmission``: OCR's
        updatedAt is the block's timestamp, filled in by ``fill_timestamps`` from stored or fetched headers
        (kept in ``rpc_blocks``, so re-decoding needs no node).
    """
    if decoded.empty:
        return empty_rounds()
    address = decoded["address"].to_numpy(dtype=object)
    phase = np.fromiter((phase_of.get(a, -1) for a in address), np.int64, len(address))
    keep = np.flatnonzero(phase >= 0)
    if len(keep) == 0:
        return empty_rounds()
    phase = phase[keep]
    agg_round = decoded["agg_round"].to_numpy(np.int64)[keep]
    block = decoded["block"].to_numpy(np.int64)[keep]
    log_index = decoded["log_index"].to_numpy(np.int64)[keep]
    is_au = (decoded["event"].to_numpy(dtype=object)[keep] == ANSWER_UPDATED)
    # Sort by (phase, round, AnswerUpdated last, block, log index); the last row of each round wins.
    order = np.lexsort((log_index, block, is_au, agg_round, phase))
    ph, rd = phase[order], agg_round[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = (ph[1:] != ph[:-1]) | (rd[1:] != rd[:-1])
    pick = keep[order[last]]
    answers = decoded["answer"].to_numpy(dtype=object)
    return pd.DataFrame({
        "phase": ph[last], "agg_round": rd[last],
        "answer": pd.array(answers[pick], dtype=object),
        "updated_at": decoded["updated_at"].to_numpy(np.int64)[pick],
        "block": block[order[last]], "log_index": log_index[order[last]],
        "origin": pd.array(np.where(is_au[order[last]], ANSWER_UPDATED, NEW_TRANSMISSION).astype(object),
                           dtype=object),
    })


def empty_rounds() -> pd.DataFrame:
    """The zero-row frame of :func:`assemble_rounds`."""
    return pd.DataFrame({"phase": np.array([], np.int64), "agg_round": np.array([], np.int64),
                         "answer": pd.Series([], dtype=object), "updated_at": np.array([], np.int64),
                         "block": np.array([], np.int64), "log_index": pd.array([], dtype="Int64"),
                         "origin": pd.Series([], dtype=object)})


def fill_timestamps(rounds: pd.DataFrame, timestamps: Mapping[int, int]) -> pd.DataFrame:
    """Fill ``updated_at`` = -1 from ``timestamps`` (block → unix seconds); raises KeyError if one is missing."""
    need = rounds["updated_at"].to_numpy() < 0
    if need.any():
        rounds = rounds.copy()
        rounds.loc[need, "updated_at"] = [timestamps[b] for b in rounds.loc[need, "block"].tolist()]
    return rounds


def scale_answers(answers: Sequence[int], decimals: int) -> np.ndarray:
    """``answer / 10**decimals`` as float64, correctly rounded (as Python's exact int / int).

    Values with ``|answer| < 2**53`` and ``decimals <= 22`` are exact in float64, so one IEEE division is
    already the correctly rounded quotient; larger ones (e.g. 18-decimal feeds) use Python's exact
    integer true division.
    """
    n = len(answers)
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    scale = 10 ** decimals
    small = [abs(a) < (1 << 53) for a in answers]
    if decimals <= 22 and all(small):
        return np.asarray(answers, dtype=np.float64) / float(scale)
    for i, a in enumerate(answers):
        out[i] = (float(a) / float(scale)) if (small[i] and decimals <= 22) else a / scale
    return out
