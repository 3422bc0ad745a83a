"""``mbt ingest rpc`` against a real node (anvil), through the real HTTP path.

The session chain (conftest) holds a USDC / USD proxy with three phase aggregators (Flux-style
AnswerUpdated, OCR1, OCR2 NewTransmission-only; silent stretches that only getRoundData recovers) and
≈ 600 real rounds. Every test compares what mbt stored with what the contracts hold, or with the
uninterrupted reference run: exact equality, table by table.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from .anvil import (
    ROOT,
    ROUND_DATA,
    Anvil,
    FaultProxy,
    FeedBuilder,
    Node,
    free_port,
    kill_when_held,
    run_mbt,
    snapshot,
)
from .conftest import FLUX, OCR1_ALL, OCR2, Chain, eth_usd_rows

pytestmark = pytest.mark.slow


def _prices(db: Path) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT asset, source, epoch(timestamp)::BIGINT, round_id::VARCHAR, price_usd, block "
                           "FROM prices ORDER BY timestamp, round_id").fetchall()
    finally:
        con.close()


def _data(db: Path) -> dict[str, list[tuple]]:
    """The data tables; a run split at other blocks also leaves extra checkpoints (and their headers)."""
    return {k: v for k, v in snapshot(db).items() if k not in ("rpc_checkpoints", "rpc_blocks")}


def _expected(builder: FeedBuilder, asset: str, rounds=None) -> list[tuple]:
    rows = [(asset, "chainlink", r.timestamp, str(r.round_id), r.answer / 10**builder.decimals, r.block)
            for r in (builder.visible_rounds() if rounds is None else rounds)]
    return sorted(rows, key=lambda r: (r[2], int(r[3])))


def _ingest(chain: Chain, db: Path, *extra: str, url: str | None = None, feed: str | None = None):
    return run_mbt(["--feed", feed or chain.usdc.proxy, "--rpc-url", url or chain.url, "--db", str(db), *extra])


# -- exactness ---------------------------------------------------------------------------------------
def test_stored_prices_equal_the_contract_rounds(chain: Chain, reference_db: Path) -> None:
    usdc = chain.usdc
    stored = _prices(reference_db)
    assert stored == _expected(usdc, "USDC")
    assert len(stored) >= 500 and len({r[5] for r in stored}) >= 500
    # Each stored round is what the proxy itself returns for that round id, read back independently.
    for asset, _, ts, round_id, price, _ in stored:
        rid, answer, _, updated_at, answered = chain.node.eth_call(usdc.proxy, "getRoundData(uint80)", ["uint80"],
                                                                    [int(round_id)], ROUND_DATA)
        assert (rid, updated_at, answer / 10**8, answered) == (int(round_id), ts, price, rid)
    con = duckdb.connect(str(reference_db), read_only=True)
    origins = dict(con.execute("SELECT origin, count(*) FROM chainlink_rounds GROUP BY 1").fetchall())
    phases = con.execute("SELECT phase, aggregator, activated_block FROM rpc_phases ORDER BY phase").fetchall()
    state = con.execute("SELECT last_block, last_block_hash FROM ingest_state").fetchall()
    con.close()
    # All three ways a round reaches mbt were exercised: AnswerUpdated, NewTransmission-only, getRoundData.
    assert set(origins) == {"AnswerUpdated", "NewTransmission", "getRoundData"}
    silent = [r for r in usdc.visible_rounds() if r.mask == 0]
    assert origins["getRoundData"] == len(silent) and {r.phase for r in silent} == {1, 3}
    assert phases == [(i + 1, a, b) for i, (a, b) in enumerate(zip(usdc.phases, usdc.activations))]
    assert state == [(chain.head, chain.node.block(chain.head)["hash"])]


def test_all_rounds_stores_every_round_of_every_phase(chain: Chain, tmp_path: Path) -> None:
    db = tmp_path / "all.duckdb"
    result = _ingest(chain, db, "--from-block", "0", "--confirmations", "0", "--all-rounds",
                     "--blocks-per-request", "500")
    assert result.exit_code == 0, result.output
    assert _prices(db) == _expected(chain.usdc, "USDC", chain.usdc.rounds)


def test_redecode_needs_no_node_and_changes_nothing(chain: Chain, reference_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "copy.duckdb"
    shutil.copy(reference_db, db)
    before = snapshot(db)
    result = run_mbt(["--feed", chain.usdc.proxy, "--redecode", "--db", str(db)], env={"ETH_RPC_URL": ""})
    assert result.exit_code == 0, result.output
    assert snapshot(db) == before


# -- faults ------------------------------------------------------------------------------------------
FAULTS = {2: "429", 4: "502", 6: "timeout", 9: "truncated", 11: "429:1", 13: "malformed", 15: "reset",
          18: "cut", 21: "503", 24: "rpc-rate", 30: "timeout", 33: "429"}


def test_faulty_provider_yields_the_same_tables(chain: Chain, reference_db: Path, tmp_path: Path) -> None:
    proxy = FaultProxy(chain.url, FAULTS, max_range=40, max_results=25, strip_block_timestamp=True, hang=1.5)
    try:
        db = tmp_path / "faults.duckdb"
        result = _ingest(chain, db, "--from-block", "0", "--confirmations", "0", "--blocks-per-request", "64",
                         "--timeout", "1", url=proxy.url + "/v3/0123456789abcdef")
        assert result.exit_code == 0, result.output
        assert snapshot(db) == snapshot(reference_db)
        injected = [e for e in proxy.log if e["fault"] and e["fault"] != "rule"]
        assert [e["fault"] for e in injected] == list(FAULTS.values())
        refused = [e for e in proxy.log if e["fault"] == "rule"]
        assert refused, "the range / result-size limits were never hit"
        # mbt's transport retried each fault: the next request repeats the failed one's calls, and the
        # one after "Retry-After: 1" came at least a second later. (That web3's own retry layer is off is
        # shown by test_every_endpoint_failing_is_one_line_exit_2: --retries 2 means exactly 3 requests.)
        for e in injected:
            assert proxy.log[e["n"]]["methods"] == e["methods"], e
        n_429_1 = next(e["n"] for e in proxy.log if e["fault"] == "429:1")
        assert proxy.log[n_429_1]["time"] - proxy.log[n_429_1 - 1]["time"] >= 1.0
    finally:
        proxy.close()


def test_logs_a_provider_lost_are_recovered_with_get_round_data(chain: Chain, reference_db: Path,
                                                                 tmp_path: Path) -> None:
    lossy = FaultProxy(chain.url, drop_addresses={chain.usdc.phases[1]})   # every phase-2 log missing
    try:
        db = tmp_path / "lossy.duckdb"
        result = _ingest(chain, db, "--from-block", "0", "--confirmations", "0", "--blocks-per-request", "64",
                         url=lossy.url)
        assert result.exit_code == 0, result.output
    finally:
        lossy.close()
    assert snapshot(db)["prices"] == snapshot(reference_db)["prices"]
    con = duckdb.connect(str(db), read_only=True)
    origins = dict(con.execute("SELECT origin, count(*) FROM chainlink_rounds WHERE phase = 2 GROUP BY 1").fetchall())
    con.close()
    assert set(origins) == {"getRoundData"}


def test_fail_over_to_the_next_endpoint(chain: Chain, reference_db: Path, tmp_path: Path) -> None:
    dead = FaultProxy(chain.url, always="503")
    try:
        db = tmp_path / "failover.duckdb"
        result = run_mbt(["--feed", chain.usdc.proxy, "--from-block", "0", "--confirmations", "0",
                          "--blocks-per-request", "64", "--db", str(db),
                          "--rpc-url", dead.url, "--rpc-url", chain.url])
        assert result.exit_code == 0, result.output
        assert snapshot(db) == snapshot(reference_db)
        assert 1 <= len(dead.log) <= 3   # tried, then left alone while healthy
    finally:
        dead.close()


def test_every_endpoint_failing_is_one_line_exit_2(chain: Chain, tmp_path: Path) -> None:
    dead = FaultProxy(chain.url, always="502")
    try:
        db = tmp_path / "dead.duckdb"
        result = run_mbt(["--feed", chain.usdc.proxy, "--from-block", "0", "--db", str(db), "--retries", "2",
                          "--rpc-url", dead.url + "/v2/KEYKEYKEYKEY"])
        assert result.exit_code == 2
        assert len(result.stderr.strip().splitlines()) == 1 and "KEYKEYKEYKEY" not in result.stderr
        assert len(dead.log) == 3   # 1 try + 2 retries, all by mbt's layer
    finally:
        dead.close()


# -- resume ------------------------------------------------------------------------------------------
MBT = [sys.executable, "-c", "from backtest.cli.main import main; main()"]   # the `mbt` entry point


def _cmd(chain: Chain, db: Path, url: str) -> list[str]:
    return [*MBT, "ingest", "rpc", "--source", "chainlink", "--feed",
            chain.usdc.proxy, "--from-block", "0", "--confirmations", "0", "--blocks-per-request", "64",
            "--rpc-url", url, "--db", str(db)]


@pytest.mark.parametrize("kill_at", [3, 29])   # before the first commit; after several
def test_sigkill_mid_run_then_resume_gives_identical_tables(chain: Chain, reference_db: Path, tmp_path: Path,
                                                            kill_at: int) -> None:
    db = tmp_path / "killed.duckdb"
    proxy = FaultProxy(chain.url, hold_at=kill_at)
    kill_when_held(_cmd(chain, db, proxy.url), proxy)
    done = subprocess.run(_cmd(chain, db, chain.url), cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert snapshot(db) == snapshot(reference_db)


def test_sigkill_at_random_moments_then_resume(chain: Chain, reference_db: Path, tmp_path: Path) -> None:
    # Kills a few milliseconds after the n-th request reaches the node: sometimes while waiting for an
    # answer, sometimes while decoding or inside a commit. Each run resumes the previous one's leftovers.
    import random

    rng = random.Random(5)
    db = tmp_path / "killed.duckdb"
    proxy = FaultProxy(chain.url)
    try:
        for after in (5, 16, 27):
            start = proxy.count
            proc = subprocess.Popen(_cmd(chain, db, proxy.url), cwd=ROOT, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            deadline = time.monotonic() + 60
            while proxy.count < start + after and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.001)
            time.sleep(rng.uniform(0.0, 0.03))
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    finally:
        proxy.close()
    done = subprocess.run(_cmd(chain, db, chain.url), cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert snapshot(db) == snapshot(reference_db)


def test_backfill_and_resume_give_identical_tables(chain: Chain, reference_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "pieces.duckdb"
    middle = chain.usdc.activations[1] + 100
    steps = [("--from-block", str(middle), "--to-block", str(middle + 150)),   # a middle piece
             ("--to-block", str(middle + 300)),                                # resume upwards
             ("--from-block", "0"),                                            # backfill down to 0 and finish
             ()]                                                               # nothing left: a no-op
    for extra in steps:
        result = _ingest(chain, db, "--confirmations", "0", "--blocks-per-request", "64", *extra)
        assert result.exit_code == 0, result.output
    assert _data(db) == _data(reference_db)


def test_from_block_beyond_stored_range_is_refused(chain: Chain, tmp_path: Path) -> None:
    db = tmp_path / "gap.duckdb"
    assert _ingest(chain, db, "--from-block", "0", "--to-block", "100", "--confirmations", "0").exit_code == 0
    before = snapshot(db)
    result = _ingest(chain, db, "--from-block", "300", "--confirmations", "0")
    assert result.exit_code == 2 and "--from-block 300" in result.stderr
    assert snapshot(db) == before


# -- confirmations and reorgs ------------------------------------------------------------------------
def test_confirmations_hold_back_the_tail(chain: Chain, reference_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "conf.duckdb"
    depth = 100   # deeper than the STETH feed and the empty blocks on top: some USDC rounds are held back
    result = _ingest(chain, db, "--from-block", "0", "--confirmations", str(depth), "--blocks-per-request", "64")
    assert result.exit_code == 0, result.output
    safe = chain.head - depth
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT last_block FROM ingest_state").fetchall() == [(safe,)]
    assert con.execute("SELECT max(block) FROM prices").fetchone()[0] <= safe
    assert con.execute("SELECT max(block) FROM raw_logs").fetchone()[0] <= safe
    con.close()
    assert _prices(db) == [r for r in _expected(chain.usdc, "USDC") if r[5] <= safe]
    assert any(r.block > safe for r in chain.usdc.visible_rounds())
    # Later, with the tail confirmed, the run completes to the same tables as the reference.
    result = _ingest(chain, db, "--confirmations", "0", "--blocks-per-request", "64")
    assert result.exit_code == 0, result.output
    assert _data(db) == _data(reference_db)


def test_reorg_is_detected_and_repaired(tmp_path: Path) -> None:
    anvil = Anvil(1_700_000_000)
    try:
        node = Node(anvil.url)
        feed = FeedBuilder(node, 8, "ETH / USD")
        t = 1_700_000_100
        agg = feed.new_aggregator(t)
        feed.deploy_proxy(agg, t + 12)
        t += 24
        for i in range(40):
            feed.transmit(agg, 2_000_00000000 + i * 1_000_000, t, OCR1_ALL)
            t += 12
        fork = node.call("evm_snapshot")
        fork_block, kept = node.head(), len(feed.rounds)
        for i in range(20):   # the tail mbt will see first
            feed.transmit(agg, 2_100_00000000 + i * 1_000_000, t, OCR1_ALL)
            t += 12
        db = tmp_path / "reorg.duckdb"
        args = ["--feed", feed.proxy, "--rpc-url", anvil.url, "--db", str(db), "--confirmations", "0",
                "--blocks-per-request", "8"]
        assert run_mbt([*args, "--from-block", "0"]).exit_code == 0
        assert _prices(db) == _expected(feed, "ETH")
        old_tail = {r.block for r in feed.rounds[kept:]}
        # Reorg: back to the fork, then a different (longer) tail: other values, other timestamps.
        assert node.call("evm_revert", [fork]) is True
        node.sync()
        feed.rounds = feed.rounds[:kept]
        feed.next_round[agg] = kept + 1
        t += 7
        for i in range(25):
            feed.transmit(agg, 1_900_00000000 - i * 1_000_000, t, OCR2 if i % 2 else FLUX)
            t += 13
        result = run_mbt(args)
        assert result.exit_code == 0, result.output
        assert _prices(db) == _expected(feed, "ETH")
        con = duckdb.connect(str(db), read_only=True)
        state = con.execute("SELECT last_block, last_block_hash FROM ingest_state").fetchone()
        assert state == (node.head(), node.block(node.head())["hash"])
        hashes = dict(con.execute("SELECT block, '0x' || lower(hex(block_hash)) FROM raw_logs").fetchall())
        con.close()
        assert all(node.block(b)["hash"] == h for b, h in hashes.items() if b > fork_block - 2)
        assert old_tail & set(hashes)   # the same heights exist again, with the new chain's hashes
    finally:
        anvil.stop()


def test_a_lagging_endpoint_is_not_a_reorg(chain: Chain, reference_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "lag.duckdb"
    shutil.copy(reference_db, db)
    lagging = FaultProxy(chain.url, lag=50)
    try:
        result = _ingest(chain, db, "--confirmations", "0", url=lagging.url)
        assert result.exit_code == 0, result.output
    finally:
        lagging.close()
    assert snapshot(db) == snapshot(reference_db)


def test_max_rps_spaces_requests(chain: Chain, tmp_path: Path) -> None:
    proxy = FaultProxy(chain.url)
    try:
        result = _ingest(chain, tmp_path / "rps.duckdb", "--from-block", "0", "--to-block", "200", "--max-rps", "8",
                         "--blocks-per-request", "20", url=proxy.url)
        assert result.exit_code == 0, result.output
    finally:
        proxy.close()
    times = [e["time"] for e in proxy.log]
    assert len(times) > 16
    # A burst of up to 8, then at most 8 per second.
    assert times[-1] - times[0] >= (len(times) - 8) / 8 * 0.95


# -- quote assets ------------------------------------------------------------------------------------
def _load_eth_prices(db: Path, tmp_path: Path, start: int) -> list[tuple[int, float]]:
    from click.testing import CliRunner

    from backtest.cli.main import cli

    rows = [(t, p) for t, p in eth_usd_rows() if t >= start - 86_400 * 3][:3_000]
    path = tmp_path / "eth.csv"
    path.write_text("timestamp,asset,price_usd,source\n" + "".join(f"{t},ETH,{p!r},coingecko\n" for t, p in rows))
    result = CliRunner().invoke(cli, ["ingest", "csv", "--prices", str(path), "--db", str(db)])
    assert result.exit_code == 0, result.output
    return rows


def test_quote_asset_converts_at_the_latest_quote_price(chain: Chain, tmp_path: Path) -> None:
    db = tmp_path / "steth.duckdb"
    steth = chain.steth
    args = ["--feed", steth.proxy, "--rpc-url", chain.url, "--db", str(db), "--confirmations", "0",
            "--from-block", str(steth.activations[0])]
    result = run_mbt(args)   # quoted in ETH, no --quote-asset
    assert result.exit_code == 2 and "--quote-asset" in result.stderr
    result = run_mbt([*args, "--quote-asset", "ETH"])   # no ETH prices yet
    assert result.exit_code == 2 and "ETH" in result.stderr
    assert not db.exists() or snapshot(db)["prices"] == []
    eth = _load_eth_prices(db, tmp_path, steth.rounds[0].timestamp)
    result = run_mbt([*args, "--quote-asset", "ETH"])
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(db), read_only=True)
    stored = con.execute("SELECT epoch(timestamp)::BIGINT, round_id::VARCHAR, price_usd FROM prices "
                         "WHERE asset = 'STETH' ORDER BY timestamp").fetchall()
    con.close()
    expected = []
    for r in steth.visible_rounds():
        quote = max((t, p) for t, p in eth if t <= r.timestamp)[1]
        expected.append((r.timestamp, str(r.round_id), (r.answer / 10**18) * quote))
    assert stored == expected


# -- plan, errors, secrets ---------------------------------------------------------------------------
def test_dry_run_prints_the_plan_and_writes_nothing(chain: Chain, tmp_path: Path) -> None:
    db = tmp_path / "never.duckdb"
    result = _ingest(chain, db, "--from-block", "0", "--dry-run")
    assert result.exit_code == 0, result.output
    assert not db.exists()
    for phase, agg in enumerate(chain.usdc.phases, start=1):
        assert agg in result.stdout
    assert f"target block {chain.head - 12:,}" in result.stdout


@pytest.mark.parametrize("args, flag", [
    (["--feed", "0x1234"], "--feed"),
    (["--feed", "0x" + "11" * 20, "--from-block", "0"], "--feed"),       # no contract there
    (["--from-block", "0", "--to-block", "soon"], "--to-block"),
    ([], "--from-block"),                                                # a new feed needs a start
])
def test_bad_input_is_one_line_exit_2(chain: Chain, tmp_path: Path, args: list[str], flag: str) -> None:
    db = tmp_path / "bad.duckdb"
    full = (["--feed", chain.usdc.proxy] if "--feed" not in args else []) + args
    result = run_mbt([*full, "--rpc-url", chain.url, "--db", str(db)])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and flag in result.stderr


def test_an_aggregator_is_not_a_feed(chain: Chain, tmp_path: Path) -> None:
    result = run_mbt(["--feed", chain.usdc.phases[0], "--from-block", "0", "--rpc-url", chain.url,
                      "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code == 2 and "--feed" in result.stderr


SECRETS = ("s3cr3tK3yInPath0123", "qu3ryK3y4567890", "alice", "pa55word")


def _leaks(text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        return [s for s in SECRETS if s.encode() in text]
    return [s for s in SECRETS if s in text]


def test_secrets_never_leak(chain: Chain, tmp_path: Path) -> None:
    proxy = FaultProxy(chain.url, {1: "echo", 3: "429", 7: "502", 12: "timeout"}, hang=1.2)
    try:
        url = f"http://{SECRETS[2]}:{SECRETS[3]}@127.0.0.1:{proxy.port}/v3/{SECRETS[0]}?apikey={SECRETS[1]}"
        db = tmp_path / "secret.duckdb"
        common = ["--feed", chain.usdc.proxy, "--db", str(db), "--blocks-per-request", "100", "--timeout", "1"]
        base = [*MBT, "ingest", "rpc", "--source", "chainlink", *common]
        env = {**os.environ, "ETH_RPC_URL": url}
        outputs: list[tuple[str | bytes, str | bytes]] = []
        # Real processes for the runs: everything they print, warnings and tracebacks included.
        failed = subprocess.run([*base, "--from-block", "0", "--rpc-url", url], capture_output=True, env=env,
                                check=False)
        assert failed.returncode == 2   # the provider's error quotes the key: mbt must scrub it
        ok = subprocess.run([*base, "--from-block", "0", "--debug"], capture_output=True, env=env,  # $ETH_RPC_URL
                            check=False)
        assert ok.returncode == 0, ok.stderr
        refused = url.replace(str(proxy.port), str(free_port()))
        traced = subprocess.run([*base, "--from-block", "0", "--rpc-url", refused, "--retries", "1", "--debug"],
                                capture_output=True, env=env, check=False)   # a traceback, on purpose
        assert traced.returncode == 1 and b"Traceback" in traced.stderr
        outputs += [(failed.stdout, failed.stderr), (ok.stdout, ok.stderr), (traced.stdout, traced.stderr)]
        for args in (["--dry-run"], ["--help"], ["--from-block", "0", "--rpc-url", refused, "--retries", "1"],
                     ["--from-block", "0", "--rpc-url", "ftp://" + refused.split("://", 1)[1]]):
            result = run_mbt([*common, *args], env={"ETH_RPC_URL": url})
            outputs.append((result.stdout, result.stderr))
        for stdout, stderr in outputs:
            assert not _leaks(stdout) and not _leaks(stderr), (stdout, stderr)
        assert any(e["path"].endswith(SECRETS[1]) for e in proxy.log)   # the key did reach the server
        con = duckdb.connect(str(db), read_only=True)
        text_columns = con.execute("SELECT table_name, column_name FROM information_schema.columns "
                                   "WHERE data_type = 'VARCHAR'").fetchall()
        for table, column in text_columns:
            values = con.execute(f'SELECT DISTINCT "{column}" FROM "{table}"').fetchall()
            assert not _leaks(json.dumps([v[0] for v in values])), (table, column)
        endpoints = con.execute("SELECT DISTINCT endpoint FROM rpc_feeds").fetchall()
        con.close()
        assert endpoints == [(f"http://127.0.0.1:{proxy.port}",)]
        assert not _leaks(db.read_bytes())
        wal = Path(str(db) + ".wal")
        assert not wal.exists() or not _leaks(wal.read_bytes())
    finally:
        proxy.close()


@pytest.mark.parametrize("folder", ["tests/contracts", "tests/adapters/contracts"])
def test_compiled_artifacts_are_reproducible(tmp_path: Path, folder: str) -> None:
    from .anvil import ensure_anvil

    ensure_anvil()   # npm ci brings solc too
    out = tmp_path / "artifacts.json"
    subprocess.run(["node", str(ROOT / folder / "compile.mjs"), "--out", str(out)], check=True,
                   capture_output=True)
    assert json.loads(out.read_text()) == json.loads((ROOT / folder / "artifacts.json").read_text())
    assert json.loads(out.read_text())["settings"] == {"optimizer": {"enabled": True, "runs": 200},
                                                       "evmVersion": "shanghai"}
