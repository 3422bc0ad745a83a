"""A real Ethereum node for the RPC adapter tests: anvil from npm, plus a tiny JSON-RPC client.

``ensure_anvil()`` runs ``npm ci`` once when the pinned binary is missing (so a fresh checkout needs only
the README's test command); ``Anvil`` starts the node on a free port in its own process group and kills
the group on ``stop()``. ``Node`` is a deliberately small client built on ``requests`` and ``eth_abi`` —
independent of the code under test — that deploys the contracts in ``tests/contracts/artifacts.json``
and mines one block per transaction at a chosen timestamp (``--no-mining`` + ``evm_mine``), which is how
the tests lay down an exact, realistic history. ``tests/adapters/contracts`` adds a FluxAggregator-style
aggregator (it reverts "No data present" before its first round), compiled the same way.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import requests
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector

ROOT = Path(__file__).resolve().parents[2]
ANVIL_BIN = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
ARTIFACTS = ROOT / "tests" / "contracts" / "artifacts.json"
# Contracts only these tests use (a FluxAggregator-style feed), compiled the same way.
ADAPTER_ARTIFACTS = ROOT / "tests" / "adapters" / "contracts" / "artifacts.json"


def ensure_anvil() -> Path:
    """Path of the anvil binary, installing the npm devDependencies first when it is missing."""
    if not ANVIL_BIN.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if not ANVIL_BIN.exists():
        raise RuntimeError(f"npm ci did not install {ANVIL_BIN}")
    return ANVIL_BIN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Anvil:
    """One anvil process (``--no-mining``: blocks are mined explicitly with ``evm_mine``)."""

    def __init__(self, genesis_timestamp: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(ensure_anvil()), "--host", "127.0.0.1", "--port", str(self.port), "--silent", "--no-mining",
             "--timestamp", str(genesis_timestamp), "--chain-id", "31337"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber",
                                              "params": []}, timeout=1).raise_for_status()
                return
            except requests.RequestException:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("anvil did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@cache
def artifacts() -> dict[str, Any]:
    return {**json.loads(ARTIFACTS.read_text(encoding="utf-8"))["contracts"],
            **json.loads(ADAPTER_ARTIFACTS.read_text(encoding="utf-8"))["contracts"]}


def selector_call(signature: str, types: list[str], args: list[Any]) -> str:
    return "0x" + (function_signature_to_4byte_selector(signature) + encode(types, args)).hex()


@dataclass
class Round:
    """One round as the test wrote it: what the node must give back."""

    phase: int
    aggregator: str
    agg_round: int
    answer: int
    timestamp: int
    block: int
    mask: int

    @property
    def round_id(self) -> int:
        return (self.phase << 64) | self.agg_round


class Node:
    """Minimal JSON-RPC client for building a deterministic chain history on anvil."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self._ids = 0
        self.sender = self.call("eth_accounts")[0]
        self.sync()

    def sync(self) -> None:
        """Re-read the nonce and head (after an ``evm_revert``)."""
        self.nonce = int(self.call("eth_getTransactionCount", [self.sender, "latest"]), 16)
        self.mined = self.head()

    def call(self, method: str, params: list | None = None) -> Any:
        self._ids += 1
        reply = self.session.post(self.url, json={"jsonrpc": "2.0", "id": self._ids, "method": method,
                                                  "params": params or []}, timeout=30).json()
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def head(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def block(self, number: int) -> dict[str, Any]:
        return self.call("eth_getBlockByNumber", [hex(number), False])

    def send(self, to: str | None, data: str, timestamp: int, gas: int = 3_000_000) -> tuple[int, str]:
        """Send one transaction and mine it alone in a block at ``timestamp``; returns (block, tx hash)."""
        tx = {"from": self.sender, "data": data, "gas": hex(gas), "nonce": hex(self.nonce),
              "maxFeePerGas": hex(10**10), "maxPriorityFeePerGas": hex(1)}
        if to is not None:
            tx["to"] = to
        tx_hash = self.call("eth_sendTransaction", [tx])
        self.nonce += 1
        self.mine(timestamp)
        return self.mined, tx_hash

    def mine(self, timestamp: int) -> int:
        """Mine one block at ``timestamp`` (unix s); returns its number (tracked, not asked: ~2 ms saved)."""
        self.call("evm_mine", [timestamp])
        self.mined += 1
        return self.mined

    def deploy(self, name: str, types: list[str], args: list[Any], timestamp: int) -> str:
        code = artifacts()[name]["bytecode"] + encode(types, args).hex()
        _, tx_hash = self.send(None, code, timestamp, gas=5_000_000)
        receipt = self.call("eth_getTransactionReceipt", [tx_hash])
        assert receipt["status"] == "0x1", f"deploying {name} failed"
        return receipt["contractAddress"]

    def eth_call(self, to: str, signature: str, types: list[str], args: list[Any], out: list[str],
                 block: int | str = "latest") -> tuple:
        result = self.call("eth_call", [{"to": to, "data": selector_call(signature, types, args)},
                                        hex(block) if isinstance(block, int) else block])
        return decode(out, bytes.fromhex(result[2:]))


ROUND_DATA = ["uint80", "int256", "uint256", "uint256", "uint80"]


class FeedBuilder:
    """Deploy a proxy with phase aggregators and transmit rounds, one block each, recording them."""

    def __init__(self, node: Node, decimals: int, description: str) -> None:
        self.node = node
        self.decimals = decimals
        self.description = description
        self.proxy: str | None = None
        self.phases: list[str] = []          # aggregator of phase i + 1
        self.activations: list[int] = []     # block at which phase i + 1 became the proxy's phase
        self.next_round: dict[str, int] = {}
        self.rounds: list[Round] = []

    def new_aggregator(self, timestamp: int) -> str:
        agg = self.node.deploy("TestAggregator", ["uint8", "string"], [self.decimals, self.description], timestamp)
        self.next_round[agg] = 1
        return agg

    def deploy_proxy(self, aggregator: str, timestamp: int) -> str:
        self.proxy = self.node.deploy("TestAggregatorProxy", ["address"], [aggregator], timestamp)
        self.phases.append(aggregator)
        self.activations.append(self.node.mined)
        return self.proxy

    def confirm(self, aggregator: str, timestamp: int) -> None:
        block, _ = self.node.send(self.proxy, selector_call("confirmAggregator(address)", ["address"], [aggregator]),
                                  timestamp)
        self.phases.append(aggregator)
        self.activations.append(block)

    def transmit(self, aggregator: str, answer: int, timestamp: int, mask: int) -> Round:
        data = selector_call("transmit(int192,uint8)", ["int192", "uint8"], [answer, mask])
        block, _ = self.node.send(aggregator, data, timestamp, gas=500_000)
        agg_round = self.next_round[aggregator]
        self.next_round[aggregator] += 1
        phase = self.phases.index(aggregator) + 1 if aggregator in self.phases else 0
        rnd = Round(phase, aggregator, agg_round, answer, timestamp, block, mask)
        self.rounds.append(rnd)
        return rnd

    def transmit_batch(self, aggregator: str, answers: list[int], timestamp: int, mask: int) -> int:
        data = selector_call("transmitBatch(int192[],uint8)", ["int192[]", "uint8"], [answers, mask])
        block, _ = self.node.send(aggregator, data, timestamp, gas=30_000_000)
        phase = self.phases.index(aggregator) + 1
        for answer in answers:
            self.rounds.append(Round(phase, aggregator, self.next_round[aggregator], answer, timestamp, block, mask))
            self.next_round[aggregator] += 1
        return block

    def finalize_phases(self) -> None:
        """Fix each round's phase now that every aggregator has one (rounds sent before a confirm)."""
        for rnd in self.rounds:
            rnd.phase = self.phases.index(rnd.aggregator) + 1

    def visible_rounds(self) -> list[Round]:
        """Rounds a consumer of the proxy saw: transmitted while their aggregator was the current phase."""
        bounds = self.activations + [1 << 62]
        return [r for r in self.rounds if bounds[r.phase - 1] <= r.block < bounds[r.phase]]


# -- fault injection ----------------------------------------------------------------------------------
class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 in front of a node that misbehaves on purpose.

    Accepts any path (so URLs can carry fake API keys in path, query and userinfo) and forwards the body
    to ``upstream``. Per request number (1-based, over all requests) ``schedule`` may name a fault:

    - ``"429"`` / ``"429:N"``: HTTP 429 with ``Retry-After: N`` (default 0);
    - ``"502"``, ``"503"``: that status; ``"401"``: unauthorized;
    - ``"timeout"``: answer only after ``hang`` seconds (longer than the client's timeout);
    - ``"truncated"``: 200 with the JSON body cut in half (Content-Length of the cut body);
    - ``"cut"``: 200 announcing the full length but closing after half of it;
    - ``"malformed"``: 200 with an HTML page; ``"reset"``: close the connection without answering;
    - ``"rpc-rate"``: a JSON-RPC rate-limit error object; ``"echo"``: a JSON-RPC error that quotes the
      request path (API key included) — the client must scrub it.

    Rules applied to every forwarded ``eth_getLogs``: ``max_range`` (more blocks → -32005 "block range too
    large") and ``max_results`` (more logs → -32005 "query returned more than N results");
    ``strip_block_timestamp`` removes the ``blockTimestamp`` field older nodes do not send;
    ``drop_addresses`` drops those contracts' logs (a provider that lost logs). ``hold_at``: request number
    at which the proxy blocks (``held`` is set) until ``release`` — the SIGKILL tests kill the client then.
    ``always``: a fault for every request (a dead endpoint). ``lag``: pretend to be that many blocks
    behind (a lower ``eth_blockNumber``, no headers above it) — a lagging fail-over node.
    """

    def __init__(self, upstream: str, schedule: dict[int, str] | None = None, *, max_range: int | None = None,
                 max_results: int | None = None, strip_block_timestamp: bool = False,
                 drop_addresses: set[str] | None = None, hang: float = 2.0, hold_at: int | None = None,
                 always: str | None = None, delay: float = 0.0, lag: int = 0) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.upstream = upstream
        self.schedule = dict(schedule or {})
        self.max_range = max_range
        self.max_results = max_results
        self.strip_block_timestamp = strip_block_timestamp
        self.drop_addresses = {a.lower() for a in (drop_addresses or set())}
        self.hang = hang
        self.hold_at = hold_at
        self.always = always
        self.delay = delay
        self.lag = lag
        self.held = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.count = 0
        self.log: list[dict[str, Any]] = []    # one entry per request: n, time, path, methods, fault
        self.session = requests.Session()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                proxy.handle(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def faults(self) -> list[dict[str, Any]]:
        return [e for e in self.log if e["fault"]]

    # -- one request ----------------------------------------------------------------------------
    def handle(self, handler: Any, body: bytes) -> None:
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        methods = ([r.get("method") for r in request] if isinstance(request, list)
                   else [request.get("method")] if isinstance(request, dict) else [])
        with self.lock:
            self.count += 1
            n = self.count
            fault = self.always or self.schedule.get(n)
            entry = {"n": n, "time": time.monotonic(), "path": handler.path, "methods": methods, "fault": fault}
            self.log.append(entry)
        if self.hold_at is not None and n >= self.hold_at:
            self.held.set()
            self.release.wait(60)
        if self.delay:
            time.sleep(self.delay)
        if fault:
            self._fault(handler, fault, request)
            return
        reply, refusal = self._forward(request, body)
        if refusal is not None:
            entry["fault"] = "rule"
        self._send(handler, 200, json.dumps(refusal if refusal is not None else reply).encode())

    def _forward(self, request: Any, body: bytes) -> tuple[Any, Any]:
        single = isinstance(request, dict)
        items = [request] if single else request
        for item in items:
            if item.get("method") == "eth_getLogs" and self.max_range is not None:
                f = item["params"][0]
                if int(f["toBlock"], 16) - int(f["fromBlock"], 16) + 1 > self.max_range:
                    return None, {"jsonrpc": "2.0", "id": item["id"], "error": {
                        "code": -32005, "message": f"block range too large, limited to {self.max_range} blocks"}}
        reply = self.session.post(self.upstream, data=body, headers={"Content-Type": "application/json"},
                                  timeout=60).json()
        replies = [reply] if single else reply
        if self.lag:
            head = None
            for item, answer in zip(items, replies):
                if item.get("method") == "eth_blockNumber":
                    answer["result"] = hex(int(answer["result"], 16) - self.lag)
            for item, answer in zip(items, replies):
                if item.get("method") == "eth_getBlockByNumber" and answer.get("result"):
                    head = head or int(self.session.post(self.upstream, json={"jsonrpc": "2.0", "id": 0,
                                       "method": "eth_blockNumber", "params": []}).json()["result"], 16)
                    if int(answer["result"]["number"], 16) > head - self.lag:
                        answer["result"] = None
        for item, answer in zip(items, replies):
            if item.get("method") != "eth_getLogs" or "result" not in answer:
                continue
            logs = [log for log in answer["result"] if log["address"].lower() not in self.drop_addresses]
            if self.strip_block_timestamp:
                for log in logs:
                    log.pop("blockTimestamp", None)
            answer["result"] = logs
            if self.max_results is not None and len(logs) > self.max_results:
                return None, {"jsonrpc": "2.0", "id": item["id"], "error": {
                    "code": -32005, "message": f"query returned more than {self.max_results} results"}}
        return reply, None

    def _send(self, handler: Any, status: int, payload: bytes, headers: dict[str, str] | None = None,
              length: int | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(payload) if length is None else length))
        handler.end_headers()
        handler.wfile.write(payload)
        handler.wfile.flush()

    def _fault(self, handler: Any, fault: str, request: Any) -> None:
        rid = request.get("id") if isinstance(request, dict) else None
        if fault.startswith("429"):
            after = fault.split(":", 1)[1] if ":" in fault else "0"
            self._send(handler, 429, b'{"error":"too many requests"}', {"Retry-After": after})
        elif fault in ("502", "503", "401"):
            self._send(handler, int(fault), b"<html>bad gateway</html>")
        elif fault == "timeout":
            time.sleep(self.hang)
            handler.close_connection = True
        elif fault in ("truncated", "cut"):
            full = json.dumps({"jsonrpc": "2.0", "id": rid, "result": "0x" + "ab" * 200}).encode()
            half = full[: len(full) // 2]
            if fault == "truncated":
                self._send(handler, 200, half)
            else:
                self._send(handler, 200, half, length=len(full))
                handler.close_connection = True
                handler.connection.shutdown(socket.SHUT_RDWR)
        elif fault == "malformed":
            self._send(handler, 200, b"<html><body>502 upstream error</body></html>")
        elif fault == "reset":
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
        elif fault == "rpc-rate":
            self._send(handler, 200, json.dumps({"jsonrpc": "2.0", "id": rid, "error": {
                "code": -32005, "message": "daily request count exceeded, request rate limited",
                "data": {"backoff_seconds": 0.05}}}).encode())
        elif fault == "echo":
            self._send(handler, 200, json.dumps({"jsonrpc": "2.0", "id": rid, "error": {
                "code": -32000, "message": f"invalid project id in {handler.path}"}}).encode())
        else:
            raise ValueError(fault)


# -- driving mbt and reading what it stored -------------------------------------------------------------
RPC_TABLES = {
    # table: (columns compared, order) — volatile bookkeeping (updated_at, endpoint) left out.
    "prices": ("asset, source, timestamp, round_id, price_usd, block", "asset, timestamp, round_id"),
    "chainlink_rounds": ("stream, phase, agg_round, round_id, answer, price, updated_at, block, log_index, origin",
                         "stream, phase, agg_round"),
    "raw_logs": ("*", "stream, block, log_index"),
    "rpc_blocks": ("*", "chain_id, number"),
    "rpc_checkpoints": ("*", "stream, block"),
    "rpc_phases": ("*", "stream, phase"),
    "rpc_feeds": (("stream, source, chain_id, feed, description, asset, quote_asset, quote_source, all_rounds, "
                   "first_block"), "stream"),
    "ingest_state": ("source, stream, last_block, last_block_hash", "source, stream"),
}


def kill_when_held(cmd: list[str], proxy: "FaultProxy") -> None:
    """Start ``cmd`` (a child process group), SIGKILL it once ``proxy`` holds its ``hold_at`` request, and close
    the proxy: the run dies mid-request, wherever that request falls in its work."""
    try:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            assert proxy.held.wait(60), "the run never reached the kill point"
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    finally:
        proxy.close()


def run_mbt(args: list[str], env: dict[str, str] | None = None) -> Any:
    """``mbt ingest rpc --source chainlink ARGS`` in-process (click's CliRunner); returns the Result."""
    from click.testing import CliRunner

    from backtest.cli.main import cli

    return CliRunner().invoke(cli, ["ingest", "rpc", "--source", "chainlink", *args], env=env)


def snapshot(db: Path | str, tables: dict[str, tuple[str, str]] = RPC_TABLES) -> dict[str, list[tuple]]:
    """Every row of the RPC tables (values that must not depend on how a run went)."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return {t: con.execute(f"SELECT {cols} FROM {t} ORDER BY {order}").fetchall()
                for t, (cols, order) in tables.items()}
    finally:
        con.close()
