"""A feed whose aggregator has no round yet (FluxAggregator-style "No data present" revert), on a real node.

FluxAggregator's ``latestRoundData()`` reverts "No data present" before its first round (OCR aggregators
answer zeros). Ingesting from a block before the first round must treat that as "no rounds yet": the run
succeeds, and once rounds exist it stores exactly them — also a round that left no log, found by the
block search over historical ``latestRoundData`` that starts below the first round.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from .anvil import Anvil, Node, run_mbt, selector_call, snapshot

pytestmark = pytest.mark.slow

DECIMALS = 8


def _prices(db: Path) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT asset, source, epoch(timestamp)::BIGINT, round_id::VARCHAR, price_usd, block "
                           "FROM prices ORDER BY timestamp, round_id").fetchall()
    finally:
        con.close()


def test_ingest_from_before_the_first_round_stores_exactly_the_rounds(tmp_path: Path) -> None:
    anvil = Anvil(1_700_000_000)
    try:
        node = Node(anvil.url)
        t = 1_700_000_100
        agg = node.deploy("TestFluxAggregator", ["uint8", "string"], [DECIMALS, "ETH / USD"], t)
        proxy = node.deploy("TestAggregatorProxy", ["address"], [agg], t + 12)
        t += 12
        for _ in range(20):   # blocks in which the feed exists but has no round
            t += 12
            node.mine(t)
        before_first = node.mined
        # The call that used to fail: latestRoundData() of the aggregator reverts here.
        reply = node.session.post(anvil.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [
            {"to": agg, "data": selector_call("latestRoundData()", [], [])}, hex(before_first)]}).json()
        assert "No data present" in str(reply.get("error")), reply

        db = tmp_path / "flux.duckdb"
        args = ["--feed", proxy, "--rpc-url", anvil.url, "--db", str(db), "--confirmations", "0",
                "--blocks-per-request", "8"]
        result = run_mbt([*args, "--from-block", "0"])   # nothing to store yet, and no error
        assert result.exit_code == 0, result.output
        assert _prices(db) == []

        expected = []
        for i in range(30):
            t += 12
            answer = 2_000_00000000 + i * 1_500_000
            with_events = i % 7 != 0   # rounds 1, 8, 15, ... leave no log: only getRoundData has them
            block, _ = node.send(agg, selector_call("submit(int256,bool)", ["int256", "bool"], [answer, with_events]),
                                 t, gas=500_000)
            expected.append(("ETH", "chainlink", t, str((1 << 64) | (i + 1)), answer / 10**DECIMALS, block))
        for _ in range(3):
            t += 12
            node.mine(t)

        result = run_mbt(args)   # resume: the stored range ends before the first round
        assert result.exit_code == 0, result.output
        assert _prices(db) == expected

        fresh = tmp_path / "fresh.duckdb"   # in one go, from a block before the first round
        result = run_mbt(["--feed", proxy, "--rpc-url", anvil.url, "--db", str(fresh), "--confirmations", "0",
                          "--blocks-per-request", "8", "--from-block", "0"])
        assert result.exit_code == 0, result.output
        assert _prices(fresh) == expected
        con = duckdb.connect(str(fresh), read_only=True)
        origins = dict(con.execute("SELECT origin, count(*) FROM chainlink_rounds GROUP BY 1").fetchall())
        con.close()
        assert origins == {"AnswerUpdated": 25, "getRoundData": 5}
        tables = ("prices", "chainlink_rounds", "raw_logs", "rpc_phases", "ingest_state")
        assert {k: v for k, v in snapshot(fresh).items() if k in tables} == \
            {k: v for k, v in snapshot(db).items() if k in tables}
    finally:
        anvil.stop()
