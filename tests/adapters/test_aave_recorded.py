"""``mbt ingest rpc --source aave-v3`` on the recorded history of the real Aave v3.7 contracts.

``../shared/chain/aave-v3-recorded`` holds what a node answered for a scripted history of the unmodified
contracts (every header, every log, the protocol's views at every block 170..457); ``replay_rpc.py`` serves
it over JSON-RPC. The recorded ``balanceOf``/``getUserAccountData``/``getConfiguration`` answers are ground
truth computed by the contracts: every test below holds the reconstruction to them exactly. Skipped when
``../shared`` is absent.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from .anvil import ROOT, FaultProxy, kill_when_held

RECORDING = ROOT.parent / "shared" / "chain" / "aave-v3-recorded"
REPLAY = ROOT.parent / "shared" / "chain" / "replay_rpc.py"
pytestmark = [
    pytest.mark.skipif(not (RECORDING / "manifest.json").exists() or not REPLAY.exists(),
                       reason="../shared/chain/aave-v3-recorded is absent"),
    # replay_rpc.py (shared, not ours) reads its manifest without closing the file
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]
MBT = [sys.executable, "-c", "from backtest.cli.main import main; main()"]
TABLES = {
    "aave_markets": "stream", "aave_reserves": "stream, reserve", "aave_token_events": "stream, block, log_index",
    "aave_reserve_updates": "stream, block, log_index", "aave_pool_events": "stream, block, log_index",
    "aave_liquidations": "stream, block, log_index", "aave_config_events": "stream, block, log_index",
    "aave_oracle_prices": "stream, block, reserve", "raw_logs": "stream, block, log_index",
    "prices": "asset, source, timestamp, round_id", "indices": "asset, timestamp",
    "ingest_state": "source, stream", "positions": "account, asset, market", "events": "seq",
}
ING = ["ingest", "rpc", "--source", "aave-v3", "--from-block", "0", "--confirmations", "0", "--prices", "oracle"]


class Recording:
    def __init__(self) -> None:
        self.manifest = json.loads((RECORDING / "manifest.json").read_text())
        with gzip.open(RECORDING / "calls.jsonl.gz", "rt") as f:
            self.calls = {(c["to"], c["data"]): c["runs"] for c in map(json.loads, f)}
        self.ts = {}
        with gzip.open(RECORDING / "blocks.jsonl.gz", "rt") as f:
            for line in f:
                b = json.loads(line)
                self.ts[int(b["number"], 16)] = int(b["timestamp"], 16)
        self.pool = self.manifest["addresses"]["Pool"]
        self.users = self.manifest["call_set"]["users"]
        self.reserves = self.manifest["reserves"]

    def answer(self, to: str, selector: str, *args: str | int, block: int) -> str | None:
        data = "0x" + selector + "".join((a[2:] if isinstance(a, str) else format(a, "x")).rjust(64, "0")
                                         for a in args)
        for lo, hi, result in self.calls[(to, data)]:
            if lo <= block <= hi:
                return result
        raise KeyError(block)

    def word(self, to: str, selector: str, *args: str | int, block: int, index: int = 0) -> int:
        raw = self.answer(to, selector, *args, block=block)
        return int(raw[2 + 64 * index:2 + 64 * (index + 1)], 16)


def _node():
    spec = importlib.util.spec_from_file_location("mbt_replay_rpc", REPLAY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    node = module.ReplayNode(str(RECORDING))
    node.start()
    return node


@pytest.fixture(scope="module")
def rec() -> Recording:
    return Recording()


@pytest.fixture(scope="module")
def node():
    n = _node()
    yield n
    n.stop()


def _mbt(args: list[str]):
    from click.testing import CliRunner

    from backtest.cli.main import cli

    return CliRunner().invoke(cli, args)


@pytest.fixture(scope="module")
def db(node, rec, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("aave") / "ref.duckdb"
    result = _mbt([*ING, "--pool", rec.pool, "--rpc-url", node.url, "--blocks-per-request", "60", "--db", str(path)])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def market(db):
    from backtest.onchain.service import load
    from backtest.store import Store

    store = Store(str(db), read_only=True)
    yield store, load(store, None)
    store.close()


def _snapshot(path: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        out = {}
        for table, order in TABLES.items():
            cols = "*" if table != "ingest_state" else "source, stream, last_block, last_block_hash"
            out[table] = con.execute(f"SELECT {cols} FROM {table} ORDER BY {order}").fetchall()
        return out
    finally:
        con.close()


# -- balances, to the wei -----------------------------------------------------------------------------
def test_every_token_balance_at_every_block_equals_balance_of(market, rec) -> None:
    _, mk = market
    same = nonzero = 0
    for r in rec.reserves:
        for side, token in (("collateral", r["aToken"]), ("debt", r["variableDebtToken"])):
            for user in rec.users:
                for block in range(170, 458):
                    want = rec.word(token, "70a08231", user, block=block)
                    got = mk.balance_at(side, r["underlying"], user, block, rec.ts[block])
                    assert got == want, (block, r["symbol"], side, user)
                    scaled = rec.word(token, "1da24f3e", user, block=block)
                    assert mk.scaled_at(side, r["underlying"], user, block) == scaled, (block, r["symbol"], side, user)
                    same += 1
                    nonzero += want != 0
    assert same == 5 * 2 * len(rec.users) * 288 and nonzero > 9000


def test_collateral_flags_borrowing_flags_and_emode_equal_the_pool_views(market, rec) -> None:
    _, mk = market
    checked = 0
    for user in rec.users:
        for block in range(170, 458):
            bits = rec.word(rec.pool, "4417a583", user, block=block)
            for r in rec.reserves:
                i = r["reserve_id"]
                assert mk.collateral_enabled_at(user, r["underlying"], block) == bool(bits >> (2 * i + 1) & 1)
                assert (mk.scaled_at("debt", r["underlying"], user, block) > 0) == bool(bits >> (2 * i) & 1)
            assert mk.emode_at(user, block) == rec.word(rec.pool, "eddf1b79", user, block=block)
            checked += 1
    assert checked == len(rec.users) * 288


def test_health_factor_and_totals_of_get_user_account_data_are_reproduced(market, rec) -> None:
    from backtest.onchain.health import account_at, integer_market, oracle_prices_at
    from backtest.onchain.params import live_params

    store, mk = market
    con = store.con
    blocks = [b for (b,) in con.execute("SELECT DISTINCT block FROM aave_oracle_prices ORDER BY 1").fetchall()]
    assert len(blocks) > 150
    indebted = 0
    for block in blocks:
        im = integer_market(mk, live_params(store, mk, block), oracle_prices_at(store, mk, block), block, rec.ts[block])
        for user in rec.users:
            raw = rec.answer(rec.pool, "bf92857c", user, block=block)
            w = [int(raw[2 + 64 * i:66 + 64 * i], 16) for i in range(6)]
            a = account_at(mk, im, user, block)
            assert (a.total_collateral_base, a.total_debt_base, a.avg_liquidation_threshold_bps, a.avg_ltv_bps,
                    a.health_factor) == (w[0], w[1], w[3], w[4], w[5]), (block, user)
            indebted += w[1] > 0
    assert indebted > 1000


def test_oracle_prices_equal_get_asset_price(market, rec) -> None:
    store, _ = market
    con = store.con
    oracle = rec.manifest["addresses"]["AaveOracle"]
    rows = con.execute("SELECT block, reserve, price_raw FROM aave_oracle_prices").fetchall()
    for block, reserve, price in rows:
        assert int(price) == rec.word(oracle, "b3596f07", reserve, block=block)
    usd = con.execute("SELECT count(*) FROM prices WHERE source = 'aave-oracle'").fetchone()[0]
    assert usd == len(rows) > 500


# -- parameters ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("block", [300, 351, 400, 457])   # before and after 349 (WBTC) and 352 (USDC factor)
def test_params_equal_get_configuration_and_emode_views(market, rec, block: int) -> None:
    from backtest.onchain.params import live_params

    store, mk = market
    live = live_params(store, mk, block)
    for r in rec.reserves:
        conf = rec.word(rec.pool, "c44b11f7", r["underlying"], block=block)
        p = live.reserves[r["underlying"]]
        assert (p.ltv, p.liquidation_threshold, p.liquidation_bonus) == (conf & 0xFFFF, conf >> 16 & 0xFFFF,
                                                                           conf >> 32 & 0xFFFF), r["symbol"]
        assert p.reserve_factor == conf >> 64 & 0xFFFF
        assert p.protocol_fee == conf >> 152 & 0xFFFF
    for cid in (1, 2):
        c = live.categories[cid]
        assert (c.ltv, c.liquidation_threshold, c.liquidation_bonus) == tuple(
            rec.word(rec.pool, "b286f467", cid, block=block, index=i) for i in range(3))
        bitmap = rec.word(rec.pool, "b0771dba", cid, block=block)
        ids = {r["underlying"]: r["reserve_id"] for r in rec.reserves}
        assert sum(1 << ids[a] for a in c.collateral) == bitmap
        assert sum(1 << ids[a] for a in c.borrowable) == rec.word(rec.pool, "903a2c71", cid, block=block)


def test_params_toml_changes_with_governance_and_loads_as_a_config(db, tmp_path) -> None:
    from backtest.config import load_config

    before = _mbt(["params", "--at-block", "300", "--db", str(db)])
    after = _mbt(["params", "--at-block", "350", "--db", str(db)])
    assert before.exit_code == 0 and after.exit_code == 0, before.output + after.output
    wbtc = lambda text: text.split("[rules.assets.WBTC]")[1].split("[")[0]  # noqa: E731
    assert "ltv = 0.73\nliquidation_threshold = 0.78\nliquidation_bonus = 0.065" in wbtc(before.stdout)
    assert "ltv = 0.7\nliquidation_threshold = 0.75\nliquidation_bonus = 0.075" in wbtc(after.stdout)
    path = tmp_path / "live.toml"
    path.write_text(after.stdout)
    cfg = load_config(path)
    rule = cfg.rules[0]
    assert rule.kind == "cross" and rule.setting("group_by") == "emode"
    assert list(rule.groups) == ["emode-1", "emode-2"] and rule.groups["emode-2"].assets == ("WETH", "WBTC")
    assert rule.market.liquidation == "aave-v3" and rule.market.version == "v3.7"


# -- liquidations, positions ------------------------------------------------------------------------------
def test_onchain_liquidations_are_exactly_the_historys(market, rec) -> None:
    store, _ = market
    con = store.con
    rows = con.execute('SELECT block, tx_hash, "user", receive_atoken, debt_to_cover FROM aave_liquidations '
                       "ORDER BY block").fetchall()
    txs = {t["block"]: t for t in rec.manifest["transactions"]}
    assert [r[0] for r in rows] == [260, 307, 362, 407, 414]
    assert [t["block"] for t in rec.manifest["transactions"]
            if t["fn"] == "liquidationCall" and t["status"] == 1] == [260, 307, 362, 407, 414]
    for block, tx, user, receive, _ in rows:
        assert txs[block]["tx"] == tx and txs[block]["status"] == 1 and txs[block]["fn"] == "liquidationCall"
        assert receive == (block == 307)
    assert con.execute("SELECT count(*) FROM aave_pool_events WHERE event = 'DeficitCreated'").fetchone()[0] == 1


def test_positions_cli_prints_exact_balances(db, rec) -> None:
    result = _mbt(["positions", "--at-block", "300", "--format", "csv", "--db", str(db)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "account,asset,collateral,debt,collateral_raw,debt_raw,collateral_enabled,emode,market"
    dev5 = [line for line in lines if line.startswith("0x9965507d1a55bcc2695c58ba16fb37d819b0a4dc,WETH,")]
    assert dev5 and dev5[0].split(",")[2:5] == ["32.230857271773363469", "0", "32230857271773363469"]
    as_json = json.loads(_mbt(["positions", "--at-block", "300", "--format", "json", "--db", str(db)]).stdout)
    assert len(as_json) == len(lines) - 1
    for row in as_json:  # every printed raw balance is the contracts' balanceOf
        r = next(x for x in rec.reserves if x["symbol"] == row["asset"])
        assert int(row["collateral_raw"]) == rec.word(r["aToken"], "70a08231", row["account"], block=300)
        assert int(row["debt_raw"]) == rec.word(r["variableDebtToken"], "70a08231", row["account"], block=300)


def test_positions_at_an_instant_accrues_interest_to_it(db, rec, market) -> None:
    _, mk = market
    ts = rec.ts[300] + 3600
    result = _mbt(["positions", "--at", str(ts), "--format", "json", "--db", str(db)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    weth = rec.reserves[0]
    later = [r for r in rows if r["asset"] == "WETH" and int(r["debt_raw"]) > 0]
    assert later
    for r in later:   # events up to block 300 (301 is later than ts? then its events are excluded)
        block = max(b for b, t in rec.ts.items() if t <= ts)
        assert int(r["debt_raw"]) == mk.balance_at("debt", weth["underlying"], r["account"], block, ts)
        assert int(r["debt_raw"]) >= mk.balance_at("debt", weth["underlying"], r["account"], block, rec.ts[block])


def test_positions_errors_are_one_line(db, tmp_path) -> None:
    import shutil

    copy = tmp_path / "save.duckdb"   # a --save that fails writes nothing
    shutil.copy(db, copy)
    snap = _snapshot(copy)
    for args, text in ((["--at-block", "9999", "--save"], "outside the ingested range"),
                       (["--at", "yesterday", "--save"], "--at: unparsable timestamp")):
        result = _mbt(["positions", *args, "--db", str(copy)])
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1 and text in result.stderr
    assert _snapshot(copy) == snap
    for args, text in ((["params", "--at-block", "9999"], "outside the ingested range"),
                       (["params", "--at-block", "300", "--end-block", "200"], "--end-block 200: before --at-block 300")):
        result = _mbt([*args, "--db", str(db)])
        assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1 and text in result.stderr
    for args, text in ((["--at-block", "9999"], "outside the ingested range"),
                       (["--at", "yesterday"], "--at: unparsable timestamp"),
                       (["--at-block", "5", "--at", "1"], "exactly one of"),
                       (["--at-block", "300", "--market", "0x" + "1" * 40], "not ingested here")):
        result = _mbt(["positions", *args, "--db", str(db)])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert text in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_check_block_compares_with_the_node(db, node) -> None:
    result = _mbt(["positions", "--check-block", "414", "--rpc-url", node.url, "--db", str(db)])
    assert result.exit_code == 0, result.output
    import re

    m = re.search(r"block 414: (\d+) of (\d+) raw token balances equal the chain's", result.stdout)
    assert m and m.group(1) == m.group(2) and int(m.group(2)) >= 100, result.stdout
    m = re.search(r"health factor equal for (\d+) of (\d+) accounts", result.stdout)
    assert m and m.group(1) == m.group(2), result.stdout


def test_check_block_exits_1_when_the_reconstruction_differs(db, node, tmp_path) -> None:
    import shutil

    bad = tmp_path / "tampered.duckdb"
    shutil.copy(db, bad)
    con = duckdb.connect(str(bad))
    # one wei more in one supply: that account's aToken balance is then off from the next block on
    con.execute("UPDATE aave_token_events SET value = value + 1 WHERE (block, log_index) = "
                "(SELECT (block, log_index) FROM aave_token_events WHERE kind = 'mint' AND side = 'collateral' "
                "ORDER BY block DESC LIMIT 1)")
    con.close()
    result = _mbt(["positions", "--check-block", "457", "--rpc-url", node.url, "--db", str(bad)])
    assert result.exit_code == 1, result.output
    assert "off by" in result.stdout


def test_price_sources_equal_get_source_of_asset(db, rec) -> None:
    result = _mbt(["params", "--at-block", "457", "--db", str(db)])
    oracle = rec.manifest["addresses"]["AaveOracle"]
    for r in rec.reserves:
        source = "0x" + format(rec.word(oracle, "92bf2be0", r["underlying"], block=457), "040x")
        assert f"--source chainlink --feed {source} --asset {r['symbol']}" in result.stdout


def test_rollback_then_resume_restores_the_same_rows(db, node, rec, tmp_path) -> None:
    import shutil

    from backtest.ingest.rpc_store import RpcStore
    from adapters.rpc.sources import get_source
    from backtest.store import Store

    copy = tmp_path / "rolled.duckdb"
    shutil.copy(db, copy)
    stream = "31337:" + rec.pool
    with Store(str(copy)) as store:
        h = store.con.execute("SELECT hash FROM rpc_blocks WHERE number = (SELECT max(number) FROM rpc_blocks "
                              "WHERE number <= 300)").fetchone()[0]
        block = store.con.execute("SELECT max(number) FROM rpc_blocks WHERE number <= 300").fetchone()[0]
        RpcStore(store).rollback_to(source=get_source("aave-v3"), stream=stream, chain_id=31337, block=block,
                                    block_hash=h, settings={})
        left = store.con.execute("SELECT max(block) FROM aave_token_events").fetchone()[0]
        assert left <= 300
    result = _mbt([*ING, "--pool", rec.pool, "--rpc-url", node.url, "--db", str(copy)])
    assert result.exit_code == 0, result.output
    assert _snapshot(copy) == _snapshot(db)


def test_saved_snapshot_replays_under_live_and_proposed_rules(db, tmp_path) -> None:
    import shutil

    work = tmp_path / "book.duckdb"
    shutil.copy(db, work)
    saved = _mbt(["positions", "--at-block", "240", "--save", "--db", str(work)])
    assert saved.exit_code == 0, saved.output
    con = duckdb.connect(str(work), read_only=True)
    n_pos, n_ev = con.execute("SELECT (SELECT count(*) FROM positions), (SELECT count(*) FROM events)").fetchone()
    actions = dict(con.execute("SELECT action, count(*) FROM events GROUP BY 1").fetchall())
    con.close()
    assert n_pos > 10 and n_ev > 50 and set(actions) <= {"supply", "withdraw", "borrow", "repay"}
    live = _mbt(["params", "--at-block", "240", "--db", str(work)]).stdout
    tighter = live + "\n".join(["", "[[rules]]", 'name = "weth-lt-0.70"', 'base = "live"', "[rules.assets.WETH]",
                                "ltv = 0.65", "liquidation_threshold = 0.70", ""])
    cfg = tmp_path / "proposal.toml"
    cfg.write_text(tighter.replace('[run]\n', '[run]\nprice_source = "aave-oracle"\n'))
    out = _mbt(["run", str(cfg), "--json", "--db", str(work)])
    assert out.exit_code == 0, out.output
    res = {r["rule"]: r for r in json.loads(out.stdout)["results"]}
    assert set(res) == {"live", "weth-lt-0.70"}
    # the live rules liquidate on the real book; a lower WETH threshold liquidates more, never less
    assert res["live"]["liquidations"] >= 1
    assert res["weth-lt-0.70"]["liquidated_debt_usd"] >= res["live"]["liquidated_debt_usd"]


# -- transport, resume, redecode ---------------------------------------------------------------------------
def test_faults_sigkill_and_resume_store_the_same_rows(db, node, rec, tmp_path) -> None:
    killed = tmp_path / "killed.duckdb"
    proxy = FaultProxy(node.url, {2: "429", 5: "502", 9: "truncated", 13: "reset"}, strip_block_timestamp=True,
                       hold_at=20)
    cmd = [*MBT, *ING, "--pool", rec.pool, "--blocks-per-request", "60", "--retries", "4", "--db", str(killed)]
    kill_when_held([*cmd, "--rpc-url", proxy.url], proxy)
    done = subprocess.run([*cmd, "--rpc-url", node.url], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert _snapshot(killed) == _snapshot(db)


def test_a_growing_chain_resumes_to_the_same_rows(db, rec, tmp_path) -> None:
    n = _node()
    try:
        grown = tmp_path / "grown.duckdb"
        n.head = 300
        first = _mbt([*ING, "--pool", rec.pool, "--rpc-url", n.url, "--db", str(grown)])
        assert first.exit_code == 0, first.output
        n.head = 457
        second = _mbt([*ING, "--pool", rec.pool, "--rpc-url", n.url, "--db", str(grown)])
        assert second.exit_code == 0, second.output
    finally:
        n.stop()
    a, b = _snapshot(grown), _snapshot(db)
    for table in TABLES:   # chunk edges differ; what is stored does not
        assert a[table] == b[table], table


def test_redecode_rebuilds_identical_rows_without_a_node(db, rec, tmp_path) -> None:
    import shutil

    copy = tmp_path / "re.duckdb"
    shutil.copy(db, copy)
    result = _mbt(["ingest", "rpc", "--source", "aave-v3", "--pool", rec.pool, "--redecode", "--db", str(copy)])
    assert result.exit_code == 0, result.output
    assert _snapshot(copy) == _snapshot(db)
