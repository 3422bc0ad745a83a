"""Benchmark of ``mbt ingest rpc``: decode + store throughput from recorded ``eth_getLogs`` responses, and
the end-to-end rate against a local node.

1. Starts anvil (``tests/adapters/anvil.py``; ``npm ci`` first if needed) and mines a Chainlink-shaped
   feed: a proxy and one OCR1 aggregator (``NewTransmission`` + ``NewRound`` + ``AnswerUpdated`` per
   round), ``--per-block`` rounds per block via ``transmitBatch`` — dense on purpose, so the figures are
   about mbt, not about waiting for blocks.
2. Records the node's raw ``eth_getLogs`` responses (HTTP bodies, bytes) for consecutive ranges of
   ``--chunk-blocks`` blocks, the two price events only (as mbt asks).
3. Decode + store, one core: for each recorded body, ``json.loads`` → bulk decode (``decode_logs``) →
   ``assemble_rounds`` → prices → ``RpcStore.commit_chunk`` (raw logs, rounds, prices, checkpoint,
   ingest_state in one DuckDB transaction, ``SET threads = 1``). The recording is replayed ``--repeat``
   times at shifted block numbers so the database grows as in a long run. Reported: logs/s (and, for
   scale, per-log web3 ``process_log`` on a sample).
4. End to end: ``mbt ingest rpc`` (in-process, the real HTTP path) over the whole chain.

    python bench/rpc_decode.py                    # defaults; --help for the knobs

Figures only; nothing here asserts on time.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import requests  # noqa: E402

from adapters.rpc.chain import log_batch, log_headers  # noqa: E402
from adapters.rpc.chainlink_logs import EVENT_ABIS, PRICE_EVENTS, TOPICS, assemble_rounds, decode_logs  # noqa: E402
from adapters.rpc.sources.chainlink import SOURCE, price_rounds  # noqa: E402
from backtest.store import Store  # noqa: E402
from backtest.ingest.rpc_store import Chunk, RpcStore  # noqa: E402
from tests.adapters.anvil import Anvil, FeedBuilder, Node, run_mbt  # noqa: E402

OCR1_ALL = 1 | 2 | 4


def build_chain(node: Node, blocks: int, per_block: int, seed: int) -> FeedBuilder:
    rng = np.random.default_rng(seed)
    feed = FeedBuilder(node, 8, "ETH / USD")
    t = 1_700_000_000
    agg = feed.new_aggregator(t)
    feed.deploy_proxy(agg, t + 12)
    price = 2_000.0
    for _ in range(blocks):
        t += 12
        steps = np.exp(np.cumsum(rng.normal(0, 0.002, per_block)))
        answers = [round(price * s * 1e8) for s in steps]
        price *= float(steps[-1])
        feed.transmit_batch(agg, answers, t, OCR1_ALL)
    return feed


def record(url: str, aggregator: str, first: int, last: int, chunk: int) -> list[tuple[int, int, bytes]]:
    session = requests.Session()
    out = []
    for lo in range(first, last + 1, chunk):
        hi = min(last, lo + chunk - 1)
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [{
            "fromBlock": hex(lo), "toBlock": hex(hi), "address": [aggregator],
            "topics": [[TOPICS[e] for e in PRICE_EVENTS]]}]}
        out.append((lo, hi, session.post(url, json=body, timeout=600).content))
    return out


def _shift(logs: list[dict], offset: int) -> None:
    for log in logs:
        log["blockNumber"] = hex(int(log["blockNumber"], 16) + offset)


def decode_and_store(recorded: list[tuple[int, int, bytes]], repeat: int, aggregator: str) -> dict[str, float]:
    phases = {1: (aggregator, 8, 0)}
    span = recorded[-1][1] + 1
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "bench.duckdb"))
        store.con.execute("SET threads = 1")
        rpc = RpcStore(store)
        feed = {"stream": "31337:bench", "source": "chainlink", "chain_id": 31337, "feed": "0xbench",
                "description": "ETH / USD", "asset": "ETH", "quote_asset": None, "quote_source": None,
                "all_rounds": False, "first_block": 0, "endpoint": "http://127.0.0.1"}
        n_logs = 0
        t_decode = 0.0
        t_json = 0.0
        t0 = time.perf_counter()
        c0 = time.process_time()
        for r in range(repeat):
            offset = r * span
            for lo, hi, body in recorded:
                d0 = time.perf_counter()
                logs = json.loads(body)["result"]
                t_json += time.perf_counter() - d0
                if offset:
                    _shift(logs, offset)
                batch = log_batch(logs)
                rounds = assemble_rounds(decode_logs(batch), {aggregator: 1})
                # Rounds that keep only NewTransmission would need header timestamps; here every round
                # has its AnswerUpdated, as OCR1 feeds do.
                rounds["agg_round"] += r * 10_000_000
                rounds, prices = price_rounds(rounds, phases, "ETH", None)
                t_decode += time.perf_counter() - d0
                chunk = Chunk(lo + offset, hi + offset, "0x" + f"{hi + offset:064x}", batch,
                              {"rounds": rounds, "prices": prices}, log_headers(logs)[:1])
                rows = [{"phase": p, "aggregator": a, "decimals": d, "activated_block": b}
                        for p, (a, d, b) in phases.items()] if n_logs == 0 else []
                rpc.commit_chunk(chunk, source=SOURCE, stream="31337:bench", stream_row=feed, run_rows=rows,
                                 last_block=hi + offset, last_block_hash="0x" + f"{hi + offset:064x}",
                                 chain_id=31337, overwrite=False)
                n_logs += len(logs)
        total = time.perf_counter() - t0
        cpu = time.process_time() - c0
        stored = store.con.execute("SELECT count(*) FROM raw_logs").fetchall()[0][0]
        store.close()
    assert stored == n_logs
    return {"logs": n_logs, "seconds": total, "logs_per_s": n_logs / total, "cpu_seconds": cpu,
            "logs_per_cpu_s": n_logs / cpu, "decode_seconds": t_decode, "decode_logs_per_s": n_logs / t_decode,
            "json_seconds": t_json, "without_json_logs_per_s": n_logs / (total - t_json)}


def web3_per_log(recorded: list[tuple[int, int, bytes]], sample: int = 5_000) -> float:
    from web3 import Web3

    w3 = Web3()
    events = {TOPICS["AnswerUpdated"]: w3.eth.contract(abi=[EVENT_ABIS["AnswerUpdated"]]).events.AnswerUpdated(),
              TOPICS["NewTransmissionOCR1"]: w3.eth.contract(
                  abi=[EVENT_ABIS["NewTransmissionOCR1"]]).events.NewTransmission()}
    logs = json.loads(recorded[0][2])["result"][:sample]
    t0 = time.perf_counter()
    for log in logs:
        events[log["topics"][0]].process_log(log)
    return len(logs) / (time.perf_counter() - t0)


def end_to_end(url: str, proxy: str, chunk: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "e2e.duckdb"
        t0 = time.perf_counter()
        result = run_mbt(["--feed", proxy, "--from-block", "0", "--rpc-url", url, "--confirmations", "0",
                          "--blocks-per-request", str(chunk), "--db", str(db)])
        seconds = time.perf_counter() - t0
        if result.exit_code != 0:
            raise SystemExit(result.output)
        store = Store(str(db), read_only=True)
        logs, rounds = store.con.execute(
            "SELECT (SELECT count(*) FROM raw_logs), (SELECT count(*) FROM prices)").fetchall()[0]
        store.close()
    return {"seconds": seconds, "logs": logs, "rounds": rounds, "logs_per_s": logs / seconds,
            "rounds_per_s": rounds / seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=400, help="blocks with rounds")
    ap.add_argument("--per-block", type=int, default=50, help="rounds per block (2 price logs each)")
    ap.add_argument("--chunk-blocks", type=int, default=100, help="blocks per recorded eth_getLogs / chunk")
    ap.add_argument("--repeat", type=int, default=3, help="replays of the recording for decode + store")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args()

    anvil = Anvil(1_699_999_000)
    try:
        node = Node(anvil.url)
        t0 = time.perf_counter()
        feed = build_chain(node, args.blocks, args.per_block, args.seed)
        mined = time.perf_counter() - t0
        aggregator = feed.phases[0]
        recorded = record(anvil.url, aggregator, 0, node.head(), args.chunk_blocks)
        per_response = sum(len(json.loads(b)["result"]) for _, _, b in recorded) / len(recorded)
        ds = decode_and_store(recorded, args.repeat, aggregator)
        w3 = web3_per_log(recorded)
        e2e = end_to_end(anvil.url, feed.proxy, args.chunk_blocks)
        head = node.head()
    finally:
        anvil.stop()
    out = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        "chain": {"blocks": head + 1, "rounds": len(feed.rounds), "price_logs": 2 * len(feed.rounds),
                  "mined_s": round(mined, 1)},
        "recorded": {"responses": len(recorded), "logs_per_response": round(per_response)},
        "decode_store": {k: round(v, 3) if isinstance(v, float) else v for k, v in ds.items()},
        "web3_process_log_per_s": round(w3),
        "end_to_end": {k: round(v, 3) if isinstance(v, float) else v for k, v in e2e.items()},
    }
    if args.json:
        print(json.dumps(out))
        return
    print(f"machine: {out['machine']}")
    print(f"chain: {out['chain']['blocks']:,} blocks, {out['chain']['rounds']:,} rounds, "
          f"{out['chain']['price_logs']:,} price logs (mined in {mined:.1f} s)")
    print(f"recorded: {len(recorded)} eth_getLogs responses, ~{per_response:,.0f} logs each")
    print(f"decode + store (one core, {ds['logs']:,} logs, from response bytes): {ds['logs_per_s']:,.0f} logs/s "
          f"wall ({ds['seconds']:.2f} s; {ds['logs_per_cpu_s']:,.0f} logs per CPU-second); of which json.loads "
          f"{ds['json_seconds']:.2f} s; from parsed responses {ds['without_json_logs_per_s']:,.0f} logs/s; "
          f"decode alone (json → prices) {ds['decode_logs_per_s']:,.0f} logs/s")
    print(f"per-log web3 process_log, for scale: {w3:,.0f} logs/s")
    print(f"end to end (mbt ingest rpc, local anvil, --blocks-per-request {args.chunk_blocks}): "
          f"{e2e['logs']:,} logs / {e2e['rounds']:,} rounds in {e2e['seconds']:.2f} s = "
          f"{e2e['logs_per_s']:,.0f} logs/s, {e2e['rounds_per_s']:,.0f} rounds/s")


if __name__ == "__main__":
    main()
