"""Pure parts of the RPC adapter, without a node: redaction, error classes, retries, decoding, searches.

The transport is exercised over real HTTP against a scripted local server (each test states exactly what
the server answers), with an injected clock and sleep so backoff and Retry-After are checked without
waiting.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from eth_abi import decode, encode
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from adapters.rpc import chainlink as cl
from adapters.rpc.chain import BlockCache, LogFetcher
from adapters.rpc.chainlink_logs import (
    EVENT_ABIS,
    TOPICS,
    assemble_rounds,
    decode_logs,
    decode_words,
    scale_answers,
)
from adapters.rpc.redact import Redactor, redact_url
from adapters.rpc.transport import (
    RangeTooLarge,
    RateLimiter,
    RpcError,
    Transport,
    TransportError,
    classify_error,
    retry_after_seconds,
    suggested_span,
)
from backtest.errors import MbtError
from backtest.ingest.driver import chunk_units

# -- redaction ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url, shown", [
    ("https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef", "https://mainnet.infura.io"),
    ("https://eth-mainnet.g.alchemy.com/v2/AbCdEf?x=1#frag", "https://eth-mainnet.g.alchemy.com"),
    ("http://user:pass@127.0.0.1:8545/", "http://127.0.0.1:8545"),
    ("HTTPS://Node.Example.com:443/key", "https://node.example.com:443"),
    ("http://[::1]:8545/rpc", "http://[::1]:8545"),
    ("not a url", "<invalid URL>"),
    ("http://host:99999/", "<invalid URL>"),
])
def test_redact_url_keeps_only_scheme_host_port(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redactor_scrubs_every_secret_fragment_but_not_the_host() -> None:
    url = "https://alice:pa55word@eth-mainnet.example.com/v2/K3yK3yK3yK3y?apikey=Q7Q7Q7Q7Q7Q7"
    text = (f"failed {url}; echo: invalid key K3yK3yK3yK3y / q7q7q7q7q7q7 for alice:pa55word "
            f"at eth-mainnet.example.com, path /v2/K3yK3yK3yK3y")
    scrubbed = Redactor([url]).scrub(text)
    for secret in ("K3yK3yK3yK3y", "q7q7q7q7q7q7", "Q7Q7Q7Q7Q7Q7", "pa55word"):
        assert secret.lower() not in scrubbed.lower()
    assert "eth-mainnet.example.com" in scrubbed


# -- provider errors ---------------------------------------------------------------------------------
ALCHEMY = ("Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit "
           "on the response size, or you can request any block range with a cap of 10K logs in the response. Based "
           "on your parameters, this block range should work: [0x10, 0x7cf]")


@pytest.mark.parametrize("code, message, kind", [
    (-32005, "query returned more than 10000 results", "range"),
    (-32602, ALCHEMY, "range"),
    (-32600, "block range too large", "range"),
    (-32000, "exceed maximum block range: 1000", "range"),
    (-32005, "query exceeds max block range 100000", "range"),
    (-32005, "daily request count exceeded, request rate limited", "retry"),
    (429, "Your app has exceeded its compute units per second capacity", "retry"),
    (-32603, "internal error", "retry"),
    (3, "execution reverted: No data present", "fatal"),
    (-32602, "invalid argument 0: hex string without 0x prefix", "fatal"),
    (-32000, "missing trie node 8b1f (path )", "fatal"),
])
def test_classify_provider_errors(code: int, message: str, kind: str) -> None:
    assert classify_error(code, message) == kind


def test_suggested_span_and_retry_after() -> None:
    assert suggested_span(ALCHEMY) == 0x7CF - 0x10 + 1
    assert suggested_span("block range too large") is None
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_rate_limiter_spaces_requests() -> None:
    clock = FakeClock()
    limiter = RateLimiter(5.0, clock.now, clock.sleep)
    for _ in range(15):
        limiter.acquire()
    # A burst of 5, then one every 0.2 s.
    assert clock.t - 1000.0 == pytest.approx(2.0)


# -- transport over HTTP -----------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


Reply = tuple[int, dict[str, str], bytes]


class Scripted:
    """A local HTTP server whose n-th request (1-based) is answered by ``script(n, request) -> Reply``."""

    def __init__(self, script: Callable[[int, Any], Reply]) -> None:
        self.requests: list[Any] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                scripted.requests.append(body)
                status, headers, payload = script(len(scripted.requests), body)
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def ok(request: Any, result: Any = "0x1") -> Reply:
    if isinstance(request, list):
        return 200, {}, json.dumps([{"jsonrpc": "2.0", "id": r["id"], "result": result} for r in request]).encode()
    return 200, {}, json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}).encode()


def rpc_error(request: Any, code: int, message: str) -> Reply:
    error = {"code": code, "message": message}
    return 200, {}, json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": error}).encode()


@pytest.fixture
def serve():
    servers: list[Scripted] = []

    def start(script: Callable[[int, Any], Reply]) -> Scripted:
        servers.append(Scripted(script))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def transport(urls: list[str], clock: FakeClock, **kw: Any) -> Transport:
    return Transport(urls, timeout=5, sleep=clock.sleep, clock=clock.now, **kw)


def test_429_waits_for_retry_after_then_succeeds(serve) -> None:
    server = serve(lambda n, r: (429, {"Retry-After": "2"}, b"slow down") if n == 1 else ok(r))
    clock = FakeClock()
    t = transport([server.url], clock)
    assert t.call("eth_blockNumber", []) == "0x1"
    assert len(server.requests) == 2 and t.stats.retries == 1 and t.stats.http_requests == 2
    assert sum(clock.sleeps) >= 2.0        # Retry-After honoured (backoff alone would be < 0.25 s)
    t.close()


@pytest.mark.parametrize("first", [
    (502, {}, b"<html>bad gateway</html>"),
    (503, {}, b""),
    (200, {}, b'{"jsonrpc": "2.0", "id": 1, "res'),          # truncated
    (200, {}, b"<html>oops</html>"),                          # not JSON
    (200, {}, b'{"jsonrpc": "2.0"}'),                         # JSON, not JSON-RPC
])
def test_transient_failures_are_retried_once_each(serve, first: Reply) -> None:
    server = serve(lambda n, r: first if n == 1 else ok(r))
    clock = FakeClock()
    t = transport([server.url], clock)
    assert t.call("eth_chainId", []) == "0x1"
    assert len(server.requests) == 2 and t.stats.retries == 1
    t.close()


def test_rate_limit_error_object_is_retried(serve) -> None:
    server = serve(lambda n, r: rpc_error(r, -32005, "request rate exceeded") if n < 3 else ok(r))
    clock = FakeClock()
    t = transport([server.url], clock)
    assert t.call("eth_chainId", []) == "0x1"
    assert len(server.requests) == 3
    # Exponential backoff with full jitter: each wait is below base·2^k.
    assert all(w <= 0.25 * 2 ** k for k, w in enumerate(clock.sleeps))
    t.close()


def test_revert_is_not_retried_and_range_errors_name_a_span(serve) -> None:
    server = serve(lambda n, r: rpc_error(r, 3, "execution reverted") if r["method"] == "eth_call"
                   else rpc_error(r, -32602, ALCHEMY))
    clock = FakeClock()
    t = transport([server.url], clock)
    with pytest.raises(RpcError) as info:
        t.call("eth_call", [{}, "latest"])
    assert not isinstance(info.value, RangeTooLarge) and len(server.requests) == 1
    with pytest.raises(RangeTooLarge) as info:
        t.call("eth_getLogs", [{}])
    assert info.value.suggested == 0x7CF - 0x10 + 1 and len(server.requests) == 2
    t.close()


def test_giving_up_names_only_the_redacted_endpoint(serve) -> None:
    server = serve(lambda n, r: (500, {}, b"internal error " + server.url.encode()))
    clock = FakeClock()
    secret_url = server.url + "/v3/SECRET0123456789?key=ALSOSECRET99"
    t = transport([secret_url], clock, retries=3)
    with pytest.raises(TransportError) as info:
        t.call("eth_chainId", [])
    assert len(server.requests) == 4
    assert "SECRET" not in str(info.value) and server.url in str(info.value)
    assert isinstance(info.value, MbtError)
    t.close()


def test_fail_over_skips_a_dead_endpoint_and_stays_on_the_healthy_one(serve) -> None:
    dead = serve(lambda n, r: (401, {}, b"unauthorized"))
    good = serve(lambda n, r: ok(r))
    clock = FakeClock()
    t = transport([dead.url, good.url], clock)
    for _ in range(5):
        assert t.call("eth_blockNumber", []) == "0x1"
    assert len(dead.requests) == 1 and len(good.requests) == 5 and t.stats.failovers == 1
    t.close()


def test_fail_over_on_5xx_without_waiting(serve) -> None:
    flaky = serve(lambda n, r: (503, {}, b"") if n == 1 else ok(r, "0xa"))
    spare = serve(lambda n, r: ok(r, "0xb"))
    clock = FakeClock()
    t = transport([flaky.url, spare.url], clock)
    assert t.call("eth_blockNumber", []) == "0xb"   # the spare answers while the first cools down
    assert t.stats.failovers == 1 and clock.sleeps == []
    t.close()


def test_batches_are_matched_by_id_and_missing_items_retried(serve) -> None:
    def script(n: int, request: Any) -> Reply:
        if not isinstance(request, list):
            return ok(request, hex(100 + int(request["params"][0], 16)))
        items = [{"jsonrpc": "2.0", "id": r["id"], "result": hex(100 + int(r["params"][0], 16))} for r in request]
        items.reverse()                                    # out of order
        if n == 1:
            items = items[1:]                              # and one missing
        return 200, {}, json.dumps(items).encode()

    server = serve(script)
    clock = FakeClock()
    t = transport([server.url], clock, batch_size=4)
    calls = [("eth_getBalance", [hex(i)]) for i in range(10)]
    assert t.batch(calls) == [hex(100 + i) for i in range(10)]
    t.close()


def test_batch_refused_falls_back_to_single_calls(serve) -> None:
    def script(n: int, request: Any) -> Reply:
        if isinstance(request, list):
            error = {"code": -32600, "message": "batch requests are not supported"}
            return 200, {}, json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
        return ok(request, request["params"][0])

    server = serve(script)
    t = transport([server.url], FakeClock())
    assert t.batch([("eth_x", [str(i)]) for i in range(3)]) == ["0", "1", "2"]
    assert t.batch([("eth_x", [str(i)]) for i in range(3)]) == ["0", "1", "2"]
    assert sum(isinstance(r, list) for r in server.requests) == 1   # asked once, then remembered
    t.close()


def test_batch_returns_per_call_errors(serve) -> None:
    def script(n: int, request: Any) -> Reply:
        reverted = {"code": 3, "message": "execution reverted"}
        return 200, {}, json.dumps([
            {"jsonrpc": "2.0", "id": r["id"], "error": reverted} if r["params"][0] == "bad"
            else {"jsonrpc": "2.0", "id": r["id"], "result": "fine"} for r in request]).encode()

    server = serve(script)
    t = transport([server.url], FakeClock())
    out = t.batch([("eth_call", ["good"]), ("eth_call", ["bad"]), ("eth_call", ["good"])])
    assert out[0] == out[2] == "fine" and isinstance(out[1], RpcError)
    t.close()


# -- log decoding ------------------------------------------------------------------------------------
def _word(t: str, v: Any) -> str:
    return "0x" + encode([t], [v]).hex()


def _log(topics: list[str], data: bytes, block: int, index: int, address: str = "0x" + "ab" * 20) -> dict:
    return {"address": address, "topics": topics, "data": "0x" + data.hex(), "blockNumber": hex(block),
            "logIndex": hex(index), "transactionIndex": "0x0", "transactionHash": "0x" + "11" * 32,
            "blockHash": "0x" + "22" * 32, "removed": False}


def answer_updated(answer: int, rnd: int, updated: int, block: int = 1, index: int = 0, **kw: Any) -> dict:
    return _log([TOPICS["AnswerUpdated"], _word("int256", answer), _word("uint256", rnd)],
                encode(["uint256"], [updated]), block, index, **kw)


def ocr1(answer: int, rnd: int, block: int = 1, index: int = 0, **kw: Any) -> dict:
    data = encode(["int192", "address", "int192[]", "bytes", "bytes32"],
                  [answer, "0x" + "cd" * 20, [answer, answer], b"\x01\x02", b"\x07" * 32])
    return _log([TOPICS["NewTransmissionOCR1"], _word("uint32", rnd)], data, block, index, **kw)


def ocr2(answer: int, rnd: int, block: int = 1, index: int = 0, **kw: Any) -> dict:
    data = encode(["int192", "address", "uint32", "int192[]", "bytes", "int192", "bytes32", "uint40"],
                  [answer, "0x" + "cd" * 20, 77, [answer], b"\x01", 10**16, b"\x05" * 32, 9])
    return _log([TOPICS["NewTransmissionOCR2"], _word("uint32", rnd)], data, block, index, **kw)


def test_topics_are_the_production_ones() -> None:
    # PROTOCOLS §7
    assert TOPICS["AnswerUpdated"] == "0x0559884fd3a460db3073b7fc896cc77986f16e378210ded43186175bf646fc5f"
    assert TOPICS["NewTransmissionOCR1"] == "0xf6a97944f31ea060dfde0566e4167c1a1082551e64b60ecb14d599a9d023d451"
    assert TOPICS["NewTransmissionOCR2"] == "0xc797025feeeaf2cd924c99e9205acb8ec04d5cad21c41ce637a38fb6dee6016a"
    assert TOPICS["NewRound"] == "0x0109fc6f55cf40689f02fbaad7af7fe7bbac8a3d2186600afc7d3e10cac60271"


INT192 = st.integers(-(2**191), 2**191 - 1)


@settings(max_examples=60)
@given(st.lists(st.tuples(st.sampled_from(["au", "ocr1", "ocr2"]), INT192, st.integers(0, 2**32 - 1),
                          st.integers(0, 2**40)), min_size=1, max_size=30))
def test_bulk_decoding_equals_web3_event_processing(items: list[tuple[str, int, int, int]]) -> None:
    makers = {"au": lambda a, r, u, i: answer_updated(a, r, u, index=i),
              "ocr1": lambda a, r, u, i: ocr1(a, r, index=i), "ocr2": lambda a, r, u, i: ocr2(a, r, index=i)}
    logs = [makers[k](a, r, u, i) for i, (k, a, r, u) in enumerate(items)]
    frame = decode_logs(logs).sort_values("log_index").reset_index(drop=True)
    w3 = Web3()
    events = {"au": w3.eth.contract(abi=[EVENT_ABIS["AnswerUpdated"]]).events.AnswerUpdated(),
              "ocr1": w3.eth.contract(abi=[EVENT_ABIS["NewTransmissionOCR1"]]).events.NewTransmission(),
              "ocr2": w3.eth.contract(abi=[EVENT_ABIS["NewTransmissionOCR2"]]).events.NewTransmission()}
    for i, (kind, _, _, _) in enumerate(items):
        args = events[kind].process_log(logs[i])["args"]
        row = frame.iloc[i]
        got = (row["answer"], row["agg_round"], row["updated_at"])
        if kind == "au":
            assert got == (args["current"], args["roundId"], args["updatedAt"])
        else:
            assert got == (args["answer"], args["aggregatorRoundId"], -1)


def test_word_decoding_rejects_bad_padding() -> None:
    good = encode(["int192"], [-5]).hex()
    assert decode_words([good], "int192") == [-5]
    bad = "00" + good[2:]            # sign extension broken
    with pytest.raises(ValueError):
        decode_words([bad], "int192")
    with pytest.raises(ValueError):
        decode_words(["00" * 31 + "01", "ff" * 32], "uint32")   # 2**256 - 1 is no uint32
    with pytest.raises(ValueError):
        decode_words(["00" * 16], "uint256")                    # short word


def test_assemble_prefers_the_last_answer_updated() -> None:
    agg, other = "0x" + "ab" * 20, "0x" + "ef" * 20
    logs = [ocr1(100, 1, block=5, index=0, address=agg), answer_updated(101, 1, 55, block=5, index=2, address=agg),
            answer_updated(102, 1, 56, block=6, index=0, address=agg),   # Flux re-announced round 1
            ocr2(200, 2, block=7, index=0, address=agg), answer_updated(300, 9, 99, block=7, index=1, address=other)]
    rounds = assemble_rounds(decode_logs(logs), {agg: 2})
    assert rounds[["phase", "agg_round", "answer", "updated_at", "block", "origin"]].values.tolist() == [
        [2, 1, 102, 56, 6, "AnswerUpdated"], [2, 2, 200, -1, 7, "NewTransmission"]]


@given(st.lists(st.integers(-(10**30), 10**30), min_size=1, max_size=40), st.sampled_from([0, 6, 8, 18, 24]))
def test_scaling_is_correctly_rounded(answers: list[int], decimals: int) -> None:
    assert scale_answers(answers, decimals).tolist() == [a / 10**decimals for a in answers]


# -- adaptive log ranges -----------------------------------------------------------------------------
class FakeLogs:
    """eth_getLogs over one log per block, refusing more than ``max_blocks`` blocks or ``max_logs`` logs."""

    def __init__(self, max_blocks: int | None = None, max_logs: int | None = None, suggest: bool = False) -> None:
        self.max_blocks, self.max_logs, self.suggest = max_blocks, max_logs, suggest
        self.ranges: list[tuple[int, int]] = []

    def call(self, method: str, params: list[Any]) -> Any:
        lo, hi = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
        self.ranges.append((lo, hi))
        if self.max_blocks and hi - lo + 1 > self.max_blocks:
            msg = (f"this block range should work: [{hex(lo)}, {hex(lo + self.max_blocks - 1)}]" if self.suggest
                   else "block range too large")
            raise RangeTooLarge(-32005, msg, suggested=self.max_blocks if self.suggest else None)
        if self.max_logs and hi - lo + 1 > self.max_logs:
            raise RangeTooLarge(-32005, f"query returned more than {self.max_logs} results")
        return [{"blockNumber": hex(b)} for b in range(lo, hi + 1)]

    def batch(self, calls: list) -> list:
        return [self.call(*c) for c in calls]


@pytest.mark.parametrize("limits", [{"max_blocks": 7}, {"max_logs": 5}, {"max_blocks": 13, "suggest": True}])
def test_log_fetcher_splits_and_grows_back(limits: dict) -> None:
    fake = FakeLogs(**limits)
    fetcher = LogFetcher(fake, span=50, grow_after=2)
    logs = fetcher.fetch(["0xa"], [], 100, 399)
    assert [int(x["blockNumber"], 16) for x in logs] == list(range(100, 400))
    assert fetcher.splits > 0
    grown = [hi - lo + 1 for lo, hi in fake.ranges]
    assert max(grown[len(grown) // 2:]) > min(grown)   # it tried larger spans again after shrinking
    if limits.get("suggest"):
        assert fake.ranges[1] == (100, 112)            # the provider's suggested span is used at once


def test_log_fetcher_single_block_too_large() -> None:
    with pytest.raises(MbtError, match="block 10 alone"):
        LogFetcher(FakeLogs(max_logs=0.5), span=4).fetch(["0xa"], [], 10, 12)   # type: ignore[arg-type]


# -- searches over history ---------------------------------------------------------------------------
class FakeFeed:
    """eth_call answers of a proxy whose phase switches at ``activations`` and an aggregator with rounds."""

    def __init__(self, activations: list[int], round_blocks: list[int]) -> None:
        self.activations, self.round_blocks = activations, round_blocks
        self.calls = 0

    def call(self, method: str, params: list[Any]) -> Any:
        return self.batch([(method, params)])[0]

    def batch(self, calls: list) -> list:
        out = []
        for _, (tx, block) in calls:
            self.calls += 1
            b = int(block, 16)
            if tx["data"].startswith(cl.phase_id_call("0x0", 0)[1][0]["data"][:10]):
                out.append("0x" + encode(["uint16"], [sum(a <= b for a in self.activations)]).hex())
            else:
                r = sum(x <= b for x in self.round_blocks)
                out.append("0x" + encode(["uint80", "int256", "uint256", "uint256", "uint80"], [r, 1, 2, 3, r]).hex())
        return out


@settings(max_examples=40)   # each example runs hundreds of fake eth_calls through eth-abi
@given(st.lists(st.integers(1, 5_000_000), min_size=1, max_size=4, unique=True))
def test_find_activations_matches_brute_force(activations: list[int]) -> None:
    activations.sort()
    fake = FakeFeed(activations, [])
    found = cl.find_activations(fake, "0xproxy", list(range(1, len(activations) + 1)), 0, 6_000_000)
    assert found == {p: a for p, a in enumerate(activations, start=1)}
    assert fake.calls < 100 * len(activations)   # ~6 batches of 16 probes per phase, not 6 million calls


@settings(max_examples=40)
@given(st.lists(st.integers(100, 400), min_size=1, max_size=30))
def test_locate_round_blocks_matches_brute_force(blocks: list[int]) -> None:
    blocks.sort()
    fake = FakeFeed([], blocks)
    rounds = list(range(1, len(blocks) + 1))
    assert cl.locate_round_blocks(fake, "0xagg", rounds, 100, 400, 0) == dict(zip(rounds, blocks))


def test_block_cache_asks_once() -> None:
    class Headers:
        calls = 0

        def batch(self, calls: list) -> list:
            Headers.calls += len(calls)
            return [{"number": c[1][0], "hash": "0x" + "aa" * 32, "timestamp": hex(1000 + int(c[1][0], 16))}
                    if int(c[1][0], 16) < 50 else None for c in calls]

    cache = BlockCache(Headers())
    assert cache.get([1, 2, 60])[2].timestamp == 1002 and cache.get([1, 2])[1].timestamp == 1001
    assert Headers.calls == 3 and cache.get([60])[60] is None


def test_units_sit_on_a_fixed_grid_and_split_at_phase_switches() -> None:
    units = chunk_units(95, 260, 50, [130], "up", lambda b: (1,) if b < 130 else (2,))
    assert [(u.lo, u.hi, u.tracks) for u in units] == [
        (95, 99, (1,)), (100, 129, (1,)), (130, 149, (2,)), (150, 199, (2,)), (200, 249, (2,)), (250, 260, (2,))]
    down = chunk_units(0, 120, 50, [], "down", lambda b: ())
    assert [(u.lo, u.hi) for u in down] == [(100, 120), (50, 99), (0, 49)]


def test_call_results_decode() -> None:
    assert cl.map_latest_round("0x") == 0
    data = "0x" + encode(["uint80", "int256", "uint256", "uint256", "uint80"], [7, -3, 5, 6, 7]).hex()
    assert cl.map_round_data(data) == (-3, 6, 7)
    assert cl.parse_description("USDC / USD") == ("USDC", "USD")
    assert cl.parse_description("Calculated stETH-USD") == (None, None)
    assert decode(["uint16"], bytes.fromhex(cl.phase_aggregator_call("0xp", 3, 1)[1][0]["data"][10:])) == (3,)


def test_frames_have_stable_types() -> None:
    frame = decode_logs([])
    assert list(frame.columns) == ["address", "block", "log_index", "event", "agg_round", "answer", "updated_at",
                                   "block_timestamp"]
    assert assemble_rounds(frame, {}).empty
    answers = decode_logs([answer_updated(-(2**200), 1, 1), answer_updated(7, 2, 1)])["answer"].tolist()
    assert answers == [-(2**200), 7] and all(type(a) is int for a in answers)   # exact Python ints


def test_no_data_revert_means_no_round_yet() -> None:
    # FluxAggregator reverts "No data present" before its first round: that is 0 rounds, not an error,
    # whether the reason comes in the message or only as Error(string) revert data.
    reason = "0x08c379a0" + encode(["string"], ["No data present"]).hex()
    assert cl.latest_round_at(RpcError(3, "execution reverted: No data present"), "0xagg", 5) == 0
    assert cl.latest_round_at(RpcError(3, "execution reverted", reason), "0xagg", 5) == 0
    assert cl.latest_round_at(RpcError(-32000, "execution reverted", {"data": reason}), "0xagg", 5) == 0
    assert cl.latest_round_at("0x", "0xagg", 5) == 0   # no contract there yet
    with pytest.raises(MbtError, match="only owner"):
        cl.latest_round_at(RpcError(3, "execution reverted: only owner"), "0xagg", 5)
    with pytest.raises(MbtError, match="archive node"):
        cl.latest_round_at(RpcError(-32000, "missing trie node 8b1f (path )"), "0xagg", 5)
