"""Benchmark of the Aave source: decode + store throughput on the recorded real Aave v3.7 logs, the ledger
rebuild, and ``mbt ingest rpc --source aave-v3`` end to end against the replay node.

1. Takes the 726 market logs of ``../shared/chain/aave-v3-recorded`` (Pool, configurator, aTokens and
   debt tokens: what the source asks for) and replays them ``--repeat`` times at shifted block numbers, in
   chunks of ``--chunk-logs`` logs, through what one ingest chunk does on one core: ``log_batch`` (columns)
   → ``aave_logs.decode`` (straight from the JSON logs) → Arrow staging → ``RpcStore.commit_chunk`` (raw logs, the five
   decoded tables, indices, checkpoint, ingest state in one DuckDB transaction, ``SET threads = 1``).
   Reported: logs/s (issue #9 asks ≥ 50,000 on one core).
2. The ledger: ``load_market`` over the grown database (scaled balances from every token event).
3. End to end: ``mbt ingest rpc --source aave-v3 --prices oracle`` in-process against
   ``replay_rpc.py`` serving the recording (the real HTTP path).

    python bench/aave_decode.py                  # defaults; --help for the knobs

Figures only; nothing here asserts on time. Needs ../shared/chain (exits 0 with a note when absent).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gzip  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RECORDING = REPO.parent / "shared" / "chain" / "aave-v3-recorded"
REPLAY = REPO.parent / "shared" / "chain" / "replay_rpc.py"


def _shift(log: dict, offset: int, copy: int, tokens: set[str]) -> dict:
    """The log ``offset`` blocks later; in copy k the accounts of token events are other addresses (XOR k),
    so every copy is a consistent history of its own (balances start from zero)."""
    out = dict(log)
    out["blockNumber"] = hex(int(log["blockNumber"], 16) + offset)
    if copy and log["address"].lower() in tokens:
        topics = list(log["topics"])
        for i in (1, 2):
            if i < len(topics) and int(topics[i], 16) != 0:
                topics[i] = "0x" + format(int(topics[i], 16) ^ (copy << 100), "064x")
        out["topics"] = topics
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=100, help="copies of the recorded logs (default 100 = 72,600 logs)")
    ap.add_argument("--chunk-logs", type=int, default=20000, help="logs per committed chunk (Aave v3 Ethereum: 2,000 blocks, the default --blocks-per-request, hold ~10-30k)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs of step 1 (median reported)")
    args = ap.parse_args()
    if not (RECORDING / "manifest.json").exists():
        print(f"{RECORDING} is absent: nothing to measure")
        return


    from adapters.rpc.chain import log_batch
    from adapters.rpc.sources.aave import AAVE_V3, decode_logs
    from adapters.rpc.aave_logs import Token
    from backtest.ingest.rpc_store import Chunk, RpcStore
    from backtest.onchain.aave import load_market
    from backtest.store import Store

    manifest = json.loads((RECORDING / "manifest.json").read_text())
    pool = manifest["addresses"]["Pool"]
    configurator = manifest["addresses"]["PoolConfigurator"]
    tokens = {}
    reserves = []
    for i, r in enumerate(manifest["reserves"]):
        tokens[r["aToken"]] = Token(r["aToken"], r["underlying"], "collateral")
        tokens[r["variableDebtToken"]] = Token(r["variableDebtToken"], r["underlying"], "debt")
        reserves.append({"reserve": r["underlying"], "symbol": r["symbol"], "decimals": r["decimals"],
                         "a_token": r["aToken"], "debt_token": r["variableDebtToken"], "reserve_id": i})
    from adapters.rpc.aave_logs import topic0s

    wanted = {pool, configurator, *tokens}
    topics = set(topic0s("v3"))   # what the source's eth_getLogs filter asks for
    with gzip.open(RECORDING / "logs.jsonl.gz", "rt") as f:
        logs = [lg for lg in map(json.loads, f) if lg["address"].lower() in wanted and lg["topics"]
                and lg["topics"][0].lower() in topics]
    span = int(logs[-1]["blockNumber"], 16) + 1
    all_logs = [_shift(lg, k * span, k, set(tokens)) for k in range(args.repeat) for lg in logs]
    n = len(all_logs)
    print(f"# reproduce: python bench/aave_decode.py --repeat {args.repeat} --chunk-logs {args.chunk_logs} "
          f"--runs {args.runs}")
    print(f"{len(logs)} recorded market logs × {args.repeat} = {n:,} logs, chunks of {args.chunk_logs:,}")
    market = {"version": "v3.7", "pool": pool, "addresses_provider": None, "configurator": configurator,
              "oracle": None}
    rates = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(str(Path(tmp) / "bench.duckdb"))
            store.con.execute("SET threads = 1")
            rpc = RpcStore(store)
            stream_row = {"stream": "31337:" + pool, "source": "aave-v3", "chain_id": 31337, "feed": pool,
                          "description": "bench", "asset": "aave-v3", "quote_asset": None, "quote_source": None,
                          "all_rounds": False, "first_block": 0, "endpoint": "bench"}
            t_decode = t_store = 0.0
            t0 = time.perf_counter()
            cuts = [0]   # chunks end at block boundaries (a chunk stores whole blocks, as the driver's do)
            while cuts[-1] < n:
                j = min(cuts[-1] + args.chunk_logs, n)
                while 0 < j < n and all_logs[j]["blockNumber"] == all_logs[j - 1]["blockNumber"]:
                    j += 1
                cuts.append(j)
            for i, j in zip(cuts[:-1], cuts[1:]):
                part = all_logs[i:j]
                a = time.perf_counter()
                batch = log_batch(part)
                blocks = batch.column("block").tolist()
                ts = {b: 1_700_000_000 + 12 * b for b in set(blocks)}
                decoded = decode_logs(part, "v3.7", pool, configurator, tokens, ts, "bench")
                lo, hi = blocks[0], blocks[-1]
                chunk = Chunk(lo, hi, "0x" + f"{hi:064x}", batch, decoded, [])
                b = time.perf_counter()
                rpc.commit_chunk(chunk, source=AAVE_V3, stream="31337:" + pool,
                                 stream_row=stream_row if i == 0 else {},
                                 run_rows=[{**market, **r} for r in reserves] if i == 0 else [],
                                 last_block=hi, last_block_hash="0x" + f"{hi:064x}", chain_id=31337, overwrite=False)
                t_decode += b - a
                t_store += time.perf_counter() - b
            total = time.perf_counter() - t0
            rates.append(n / total)
            print(f"run {run + 1}: {total:.2f} s → {n / total:,.0f} logs/s (decode {t_decode:.2f} s = "
                  f"{n / t_decode:,.0f} logs/s, store {t_store:.2f} s)")
            if run == args.runs - 1:
                a = time.perf_counter()
                mk = load_market(store, "31337:" + pool)
                t_ledger = time.perf_counter() - a
                events = store.con.execute("SELECT count(*) FROM aave_token_events").fetchone()[0]
                print(f"ledger: load_market over {events:,} token events in {t_ledger:.2f} s "
                      f"({events / t_ledger:,.0f} events/s; {len(mk.scaled):,} balances)")
            store.close()
    print(f"decode + store, one core, median of {args.runs}: **{statistics.median(rates):,.0f} logs/s** "
          f"(target ≥ 50,000)")

    spec = importlib.util.spec_from_file_location("mbt_replay_rpc", REPLAY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    node = module.ReplayNode(str(RECORDING))
    node.start()
    try:
        from click.testing import CliRunner

        from backtest.cli.main import cli

        with tempfile.TemporaryDirectory() as tmp:
            a = time.perf_counter()
            result = CliRunner().invoke(cli, ["ingest", "rpc", "--source", "aave-v3", "--pool", pool, "--from-block",
                                              "0", "--confirmations", "0", "--prices", "oracle", "--rpc-url", node.url,
                                              "--db", str(Path(tmp) / "e2e.duckdb")])
            took = time.perf_counter() - a
        assert result.exit_code == 0, result.output
        print(f"end to end against the replay node: {took:.2f} s for 458 blocks, 726 logs, --prices oracle")
        for line in result.stderr.splitlines()[:3]:
            print("  | " + line)
    finally:
        node.stop()


if __name__ == "__main__":
    main()
