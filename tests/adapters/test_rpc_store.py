"""``backtest.ingest.rpc_store`` with the Chainlink source: one transaction per chunk, conflicts refused
whole, reorg rollback, re-decoding.

No node: chunks are built from hand-made rounds, as the driver would hand them over.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adapters.rpc.chain import Header, log_batch
from adapters.rpc.sources.chainlink import SOURCE, price_rounds
from backtest.errors import MbtError
from backtest.ingest.rpc_store import Chunk, RpcStore
from backtest.store import Store

STREAM = "1:0x" + "aa" * 20
AGG = "0x" + "bb" * 20
PHASES = {1: (AGG, 8, 10)}


def _rounds(items: list[tuple[int, int, int, int]]) -> pd.DataFrame:
    """(agg_round, answer, updated_at, block) → assembled rounds of phase 1."""
    return pd.DataFrame({
        "phase": np.ones(len(items), np.int64), "agg_round": np.array([i[0] for i in items], np.int64),
        "answer": pd.Series([i[1] for i in items], dtype=object),
        "updated_at": np.array([i[2] for i in items], np.int64), "block": np.array([i[3] for i in items], np.int64),
        "log_index": pd.array([0] * len(items), dtype="Int64"),
        "origin": pd.Series(["AnswerUpdated"] * len(items), dtype=object)})


def _log(block: int, index: int = 0) -> dict:
    return {"blockNumber": hex(block), "logIndex": hex(index), "blockHash": "0x" + f"{block:064x}",
            "transactionHash": "0x" + "cc" * 32, "transactionIndex": "0x0", "address": AGG,
            "topics": ["0x" + "dd" * 32], "data": "0x" + "ee" * 40}


def _commit(rpc: RpcStore, lo: int, hi: int, items: list[tuple[int, int, int, int]], overwrite: bool = False) -> None:
    rounds, prices = price_rounds(_rounds(items), PHASES, "USDC", None)
    logs = log_batch([_log(i[3]) for i in items])
    chunk = Chunk(lo, hi, f"0x{hi:064x}", logs, {"rounds": rounds, "prices": prices}, [Header(hi, f"0x{hi:064x}", hi)])
    feed = {"stream": STREAM, "source": "chainlink", "chain_id": 1, "feed": "0x" + "aa" * 20,
            "description": "USDC / USD", "asset": "USDC", "quote_asset": None, "quote_source": None,
            "all_rounds": False, "first_block": 10, "endpoint": "https://node.example"}
    phases = [{"phase": p, "aggregator": a, "decimals": d, "activated_block": b} for p, (a, d, b) in PHASES.items()]
    rpc.commit_chunk(chunk, source=SOURCE, stream=STREAM, stream_row=feed, run_rows=phases, last_block=hi,
                     last_block_hash=f"0x{hi:064x}", chain_id=1, overwrite=overwrite)


def _count(store: Store, table: str) -> int:
    return store.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


@pytest.fixture
def store(tmp_path: Path):
    with Store(str(tmp_path / "s.duckdb")) as s:
        yield s


def test_a_chunk_is_stored_with_its_state(store: Store) -> None:
    rpc = RpcStore(store)
    _commit(rpc, 10, 19, [(1, 100_000_000, 1_000, 12), (2, 99_990_000, 2_000, 15)])
    state = rpc.stream_state("chainlink", STREAM)
    assert (state.first_block, state.last_block, state.settings["asset"]) == (10, 19, "USDC")
    rows = store.con.execute("SELECT round_id::VARCHAR, price_usd, block FROM prices ORDER BY round_id").fetchall()
    assert rows == [(str((1 << 64) | 1), 1.0, 12), (str((1 << 64) | 2), 0.9999, 15)]
    assert _count(store, "raw_logs") == 2 and _count(store, "rpc_checkpoints") == 1


def test_a_conflicting_price_refuses_the_whole_chunk(store: Store) -> None:
    rpc = RpcStore(store)
    _commit(rpc, 10, 19, [(1, 100_000_000, 1_000, 12)])
    before = {t: _count(store, t) for t in ("prices", "raw_logs", "chainlink_rounds", "rpc_checkpoints")}
    with pytest.raises(MbtError, match="--overwrite"):
        # The same round id at the same time with another answer: a different feed stored as USDC.
        _commit(rpc, 20, 29, [(1, 123_000_000, 1_000, 12), (2, 1, 3_000, 25)])
    assert {t: _count(store, t) for t in before} == before
    assert rpc.stream_state("chainlink", STREAM).last_block == 19
    _commit(rpc, 20, 29, [(1, 123_000_000, 1_000, 12)], overwrite=True)
    assert store.con.execute("SELECT price_usd FROM prices").fetchall() == [(1.23,)]


def test_the_same_chunk_twice_changes_nothing(store: Store) -> None:
    rpc = RpcStore(store)
    items = [(1, 100_000_000, 1_000, 12), (2, 99_990_000, 2_000, 15)]
    _commit(rpc, 10, 19, items)
    tables = ("prices", "raw_logs", "chainlink_rounds", "rpc_blocks", "rpc_checkpoints")
    snap = {t: store.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}
    _commit(rpc, 10, 19, items)
    assert {t: store.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables} == snap


def test_raw_logs_round_trip_exactly(store: Store) -> None:
    rpc = RpcStore(store)
    _commit(rpc, 10, 19, [(1, 100_000_000, 1_000, 12), (2, 99_990_000, 2_000, 15)])
    back = rpc.raw_logs(STREAM)
    sent = log_batch([_log(12), _log(15)])
    assert back.table.equals(sent.table)


def test_rollback_removes_everything_above_the_fork(store: Store) -> None:
    rpc = RpcStore(store)
    _commit(rpc, 10, 19, [(1, 100_000_000, 1_000, 12)])
    _commit(rpc, 20, 29, [(2, 100_100_000, 2_000, 22), (3, 100_200_000, 3_000, 27)])
    rpc.rollback_to(source=SOURCE, stream=STREAM, chain_id=1, block=19, block_hash="0x19", settings={"asset": "USDC"})
    assert store.con.execute("SELECT block FROM prices").fetchall() == [(12,)]
    assert store.con.execute("SELECT block FROM raw_logs").fetchall() == [(12,)]
    assert store.con.execute("SELECT block FROM rpc_checkpoints").fetchall() == [(19,)]
    assert store.con.execute("SELECT number FROM rpc_blocks").fetchall() == [(19,)]
    assert rpc.stream_state("chainlink", STREAM).last_block == 19


def test_quote_series_takes_the_highest_round_at_a_timestamp(store: Store) -> None:
    frame = pd.DataFrame({"asset": ["ETH"] * 3, "source": ["csv"] * 3,
                          "timestamp": pd.to_datetime([100, 100, 200], unit="s", utc=True),
                          "round_id": [1, 2, 1], "price_usd": [1000.0, 1001.0, 1100.0],
                          "block": pd.array([None] * 3, dtype="Int64"), "_line": [2, 3, 4]})
    store.ingest({"prices": (frame, "eth.csv")})
    from adapters.rpc.sources.chainlink import _price_series

    ts, px = _price_series(RpcStore(store), "ETH", "csv")
    assert ts.tolist() == [100_000_000, 200_000_000] and px.tolist() == [1001.0, 1100.0]
    _, prices = price_rounds(_rounds([(1, 2 * 10**8, 150, 5), (2, 3 * 10**8, 250, 6)]), PHASES, "X", (ts, px))
    assert prices["price_usd"].tolist() == [2 * 1001.0, 3 * 1100.0]
    with pytest.raises(MbtError, match="no quote price"):
        price_rounds(_rounds([(1, 10**8, 50, 5)]), PHASES, "X", (ts, px))


def test_non_positive_answers_stay_out_of_prices() -> None:
    rounds, prices = price_rounds(_rounds([(1, 0, 10, 1), (2, -5, 11, 2), (3, 7, 12, 3)]), PHASES, "X", None)
    assert len(rounds) == 3 and prices["agg_round"].tolist() == [3]
