"""Chainlink price feeds over JSON-RPC (PROTOCOLS §7): request builders, fetches, pure mappings.

A feed is read through its proxy (``EACAggregatorProxy``): ``phaseId()`` says how many aggregators it has
pointed to, ``phaseAggregators(i)`` names each, and proxy round id = ``(phase << 64) | aggregator round``.
Prices are events of the phase aggregators (the proxy emits none); ``adapters.rpc.chainlink_logs`` turns
those logs into rounds. This module holds what is read with ``eth_call``:

- request builders (``*_call``) — ``(method, params)`` pairs, encoded with web3's contract ABI machinery;
- fetches through an injected client (``fetch_feed``, ``find_activations``, ``latest_rounds``,
  ``walk_rounds``, ``locate_round_blocks``), batched where it saves round trips;
- pure mappings of call results (``map_*``), decoded with eth-abi.

Every historical read names its block, so the answers do not move while an ingest runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi import decode, encode
from eth_utils import to_checksum_address
from web3 import Web3

from mbt_errors import MbtError

from .chain import Client
from .transport import RpcError

_ROUND_OUTPUTS = [
    {"name": "roundId", "type": "uint80"}, {"name": "answer", "type": "int256"},
    {"name": "startedAt", "type": "uint256"}, {"name": "updatedAt", "type": "uint256"},
    {"name": "answeredInRound", "type": "uint80"},
]


def _view(name: str, inputs: list[dict[str, str]], outputs: list[dict[str, str]]) -> dict[str, Any]:
    return {"type": "function", "name": name, "stateMutability": "view", "inputs": inputs, "outputs": outputs}


#: The view functions mbt calls, as in EACAggregatorProxy / AggregatorV2V3Interface on mainnet.
FEED_ABI: list[dict[str, Any]] = [
    _view("phaseId", [], [{"name": "", "type": "uint16"}]),
    _view("phaseAggregators", [{"name": "", "type": "uint16"}], [{"name": "", "type": "address"}]),
    _view("aggregator", [], [{"name": "", "type": "address"}]),
    _view("decimals", [], [{"name": "", "type": "uint8"}]),
    _view("description", [], [{"name": "", "type": "string"}]),
    _view("latestRoundData", [], _ROUND_OUTPUTS),
    _view("getRoundData", [{"name": "_roundId", "type": "uint80"}], _ROUND_OUTPUTS),
]

PHASE_OFFSET = 64


@cache
def _function(name: str) -> tuple[str, tuple[str, ...]]:
    # Selector and input types from the ABI through web3's contract machinery (a provider-less Web3,
    # never connected); the arguments are then encoded with eth-abi, ~50x faster than encode_abi per call.
    contract = Web3().eth.contract(abi=FEED_ABI)
    fn = contract.get_function_by_name(name)
    selector = contract.encode_abi(name, [0] * len(fn.abi["inputs"]))[:10]
    return selector, tuple(i["type"] for i in fn.abi["inputs"])


@cache
def _output_types(name: str) -> tuple[str, ...]:
    fn = next(f for f in FEED_ABI if f["name"] == name)
    return tuple(o["type"] for o in fn["outputs"])


def proxy_round_id(phase: int, agg_round: int) -> int:
    """Proxy round id ``(phase << 64) | aggregator round`` (PROTOCOLS §7)."""
    return (phase << PHASE_OFFSET) | agg_round


# -- request builders ------------------------------------------------------------------------------
def eth_call(to: str, function: str, args: Sequence[Any], block: int) -> tuple[str, list[Any]]:
    """``eth_call`` of view ``function(args)`` on ``to`` at ``block``."""
    selector, types = _function(function)
    data = selector + encode(list(types), list(args)).hex()
    return "eth_call", [{"to": to, "data": data}, hex(block)]


def phase_id_call(proxy: str, block: int) -> tuple[str, list[Any]]:
    """``phaseId()`` of a proxy at ``block``: how many aggregators it has pointed to (uint16)."""
    return eth_call(proxy, "phaseId", [], block)


def phase_aggregator_call(proxy: str, phase: int, block: int) -> tuple[str, list[Any]]:
    """``phaseAggregators(phase)`` of a proxy at ``block``: that phase's aggregator address."""
    return eth_call(proxy, "phaseAggregators", [phase], block)


def decimals_call(address: str, block: int) -> tuple[str, list[Any]]:
    """``decimals()`` of a proxy or aggregator at ``block``: answers are scaled by 10^decimals."""
    return eth_call(address, "decimals", [], block)


def description_call(address: str, block: int) -> tuple[str, list[Any]]:
    """``description()`` at ``block``, e.g. "USDC / USD"."""
    return eth_call(address, "description", [], block)


def latest_round_call(aggregator: str, block: int) -> tuple[str, list[Any]]:
    """``latestRoundData()`` of an aggregator at ``block`` (its round count then: the completeness check)."""
    return eth_call(aggregator, "latestRoundData", [], block)


def round_data_call(aggregator: str, agg_round: int, block: int) -> tuple[str, list[Any]]:
    """``getRoundData(agg_round)`` of an aggregator at ``block`` (aggregator round id, not the proxy's)."""
    return eth_call(aggregator, "getRoundData", [agg_round], block)


# -- pure mappings ---------------------------------------------------------------------------------
def map_result(function: str, result: Any) -> tuple | None:
    """Decode an ``eth_call`` result of ``function``; None for empty return data (no contract there).

    Raises
    ------
    ValueError
        The return data does not decode as the function's outputs.
    """
    if not isinstance(result, str) or not result.startswith("0x"):
        raise ValueError(f"{function}: eth_call returned {result!r}")
    if result == "0x":
        return None
    return decode(list(_output_types(function)), bytes.fromhex(result[2:]))


def map_latest_round(result: Any) -> int:
    """Aggregator round of a ``latestRoundData()`` result (0 before the aggregator existed or had rounds)."""
    decoded = map_result("latestRoundData", result)
    return 0 if decoded is None else int(decoded[0])


def map_round_data(result: Any) -> tuple[int, int, int] | None:
    """(answer, updatedAt unix seconds, answeredInRound) of a ``getRoundData`` result; None if empty."""
    decoded = map_result("getRoundData", result)
    if decoded is None:
        return None
    _, answer, _, updated_at, answered_in = decoded
    return int(answer), int(updated_at), int(answered_in)


def parse_description(description: str) -> tuple[str | None, str | None]:
    """("USDC", "USD") from "USDC / USD"; (None, None) when the text is not "BASE / QUOTE"."""
    parts = [p.strip() for p in description.split("/")]
    if len(parts) != 2 or not all(parts):
        return None, None
    return parts[0], parts[1]


# -- feed discovery --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Phase:
    """One phase of a proxy: its aggregator and that aggregator's decimals."""

    phase: int
    aggregator: str       # lower-case 0x address
    decimals: int


@dataclass(frozen=True)
class Feed:
    """What a proxy says about itself at a block."""

    proxy: str            # lower-case 0x address
    description: str
    decimals: int
    phases: tuple[Phase, ...]

    @property
    def checksum(self) -> str:
        """The proxy address with its EIP-55 checksum (for display)."""
        return to_checksum_address(self.proxy)


def _expect(answer: Any, what: str) -> Any:
    if isinstance(answer, RpcError):
        raise MbtError(f"{what}: {answer.message}")
    return answer


def fetch_feed(client: Client, proxy: str, block: int) -> Feed:
    """Read a proxy's phases, aggregators, decimals and description at ``block`` (two batches).

    Raises
    ------
    MbtError
        No contract at ``proxy``, or it does not answer like a Chainlink proxy.
    """
    first = client.batch([phase_id_call(proxy, block), decimals_call(proxy, block), description_call(proxy, block)])
    where = f"--feed {proxy} at block {block}"
    if isinstance(first[0], RpcError):
        raise MbtError(f"{where}: phaseId() failed ({first[0].message}); is this a Chainlink proxy?")
    try:
        phase_id = map_result("phaseId", first[0])
    except ValueError:
        phase_id = None
    if phase_id is None:
        raise MbtError(f"{where}: no contract there, or it has no phaseId(); give the feed's proxy address")
    decimals = map_result("decimals", _expect(first[1], f"{where}: decimals()"))
    description = map_result("description", _expect(first[2], f"{where}: description()"))
    count = int(phase_id[0])
    if count < 1 or decimals is None or description is None:
        raise MbtError(f"{where}: not a Chainlink proxy (phaseId {count})")
    addresses = client.batch([phase_aggregator_call(proxy, p, block) for p in range(1, count + 1)])
    aggs = []
    for p, raw in enumerate(addresses, start=1):
        decoded = map_result("phaseAggregators", _expect(raw, f"{where}: phaseAggregators({p})"))
        aggs.append(str(decoded[0]).lower() if decoded else "0x" + "00" * 20)
    agg_decimals = client.batch([decimals_call(a, block) for a in aggs])
    phases = []
    for p, (agg, raw) in enumerate(zip(aggs, agg_decimals), start=1):
        dec = None if isinstance(raw, RpcError) else map_result("decimals", raw)
        phases.append(Phase(p, agg, int(dec[0]) if dec else int(decimals[0])))
    return Feed(proxy.lower(), str(description[0]), int(decimals[0]), tuple(phases))


def historical(answer: Any, what: str, block: int) -> Any:
    """``answer`` of a call at a past block, or MbtError (with an archive-node hint when state is missing)."""
    if isinstance(answer, RpcError):
        hint = ("; mbt needs historical state (an archive node) for eth_call at past blocks"
                if _looks_like_missing_state(answer.message) else "")
        raise MbtError(f"{what} at block {block}: {answer.message}{hint}")
    return answer


def _looks_like_missing_state(message: str) -> bool:
    text = message.lower()
    return any(s in text for s in ("missing trie node", "header not found", "state", "pruned", "not available",
                                   "historical", "archive"))


_ERROR_SELECTOR = "08c379a0"   # Error(string), the encoding of require(cond, "reason")
_NO_DATA = "no data present"   # FluxAggregator / AggregatorProxy V3_NO_DATA_ERROR


def revert_reason(error: RpcError) -> str | None:
    """The ``require`` reason of a reverted ``eth_call``, from the error's data or its message, if any."""
    data = error.data.get("data") if isinstance(error.data, dict) else error.data
    if isinstance(data, str) and data[2:10].lower() == _ERROR_SELECTOR:
        try:
            return str(decode(["string"], bytes.fromhex(data[10:]))[0])
        except Exception:  # noqa: BLE001 - malformed revert data: fall back to the message
            pass
    text = error.message or ""
    marker = "execution reverted"
    if marker in text.lower():
        reason = text[text.lower().index(marker) + len(marker):].lstrip(" :")
        return reason or None
    return None


def is_no_data(answer: Any) -> bool:
    """True for a ``latestRoundData()`` that reverted with "No data present": the aggregator has no round yet.

    FluxAggregator-style aggregators (and proxies in front of them) revert instead of returning zeros
    before their first round; for ingestion that means "no rounds yet", not an error.
    """
    if not isinstance(answer, RpcError):
        return False
    reason = revert_reason(answer)
    return _NO_DATA in (reason or answer.message or "").lower()


def latest_round_at(answer: Any, aggregator: str, block: int) -> int:
    """Aggregator round of a historical ``latestRoundData()`` answer: 0 before any round (zeros, empty
    return data, or a "No data present" revert), else its round; MbtError for other errors."""
    if is_no_data(answer):
        return 0
    return map_latest_round(historical(answer, f"latestRoundData() of {aggregator}", block))


def find_activations(client: Client, proxy: str, phases: Sequence[int], lo: int, hi: int,
                     probes: int = 16) -> dict[int, int]:
    """First block at which the proxy's ``phaseId()`` reached each of ``phases`` (k-ary search).

    Parameters
    ----------
    client : Client
        The transport.
    proxy : str
        Proxy address.
    phases : sequence of int
        Phases whose activation block is wanted; each must be active at ``hi``.
    lo, hi : int
        Search window (blocks): every activation wanted is known to lie in ``lo..hi``.
    probes : int
        Historical ``eth_call``s per phase per batch; the window shrinks by ``probes + 1`` per batch.

    Returns
    -------
    dict
        phase → activation block.
    """
    # Invariant per phase: phaseId(left) < phase (or left = lo - 1) and phaseId(right) >= phase.
    windows = {p: [lo - 1, hi] for p in phases}
    known: dict[int, int] = {}
    while any(right - left > 1 for left, right in windows.values()):
        points: set[int] = set()
        for left, right in windows.values():
            if right - left > 1:
                step = max(1, (right - left) // (probes + 1))
                points.update(range(left + step, right, step))
        points -= known.keys()
        ordered = sorted(points)
        answers = client.batch([phase_id_call(proxy, b) for b in ordered])
        for b, raw in zip(ordered, answers):
            decoded = map_result("phaseId", historical(raw, "phaseId()", b))
            known[b] = 0 if decoded is None else int(decoded[0])
        for p, (left, right) in windows.items():
            inside = [b for b in known if left < b < right]
            windows[p] = [max((b for b in inside if known[b] < p), default=left),
                          min((b for b in inside if known[b] >= p), default=right)]
    return {p: right for p, (_, right) in windows.items()}


def latest_rounds(client: Client, aggregators: Sequence[str], block: int) -> list[int]:
    """Each aggregator's latest round at ``block`` (0 where it did not exist or had no round yet)."""
    answers = client.batch([latest_round_call(a, block) for a in aggregators])
    return [latest_round_at(raw, a, block) for a, raw in zip(aggregators, answers)]


def walk_rounds(client: Client, aggregator: str, rounds: Sequence[int], block: int) -> dict[int, tuple[int, int]]:
    """``getRoundData`` of ``rounds`` on ``aggregator`` at ``block``: round → (answer, updatedAt)."""
    answers = client.batch([round_data_call(aggregator, r, block) for r in rounds])
    out: dict[int, tuple[int, int]] = {}
    for r, raw in zip(rounds, answers):
        data = map_round_data(historical(raw, f"getRoundData({r}) of {aggregator}", block))
        if data is None or data[1] == 0:
            raise MbtError(f"getRoundData({r}) of {aggregator} at block {block}: no data, although "
                           f"latestRoundData() counts it")
        out[r] = (data[0], data[1])
    return out


def locate_round_blocks(client: Client, aggregator: str, rounds: Sequence[int], lo: int, hi: int,
                        latest_before: int, probes: int = 16) -> dict[int, int]:
    """Block in which each of ``rounds`` was recorded, by k-ary search on historical ``latestRoundData``.

    Used for rounds recovered with ``getRoundData`` (no log to say where they landed). Every round is
    known to lie in blocks ``lo..hi``; ``latest_before`` is the aggregator's latest round at ``lo - 1``.

    Returns
    -------
    dict
        round → smallest block ``b`` in ``lo..hi`` with ``latestRound(b) >= round``.
    """
    known: dict[int, int] = {lo - 1: latest_before}
    windows = {r: [lo - 1, hi] for r in rounds}
    while any(rt - lf > 1 for lf, rt in windows.values()):
        points: set[int] = set()
        for lf, rt in windows.values():
            if rt - lf > 1:
                step = max(1, (rt - lf) // (probes + 1))
                points.update(range(lf + step, rt, step))
        ordered = sorted(points - known.keys())
        for b, value in zip(ordered, latest_rounds_at(client, aggregator, ordered)):
            known[b] = value
        for r, (lf, rt) in windows.items():
            inside = [b for b in known if lf < b < rt]
            windows[r] = [max((b for b in inside if known[b] < r), default=lf),
                          min((b for b in inside if known[b] >= r), default=rt)]
    return {r: rt for r, (_, rt) in windows.items()}


def latest_rounds_at(client: Client, aggregator: str, blocks: Sequence[int]) -> list[int]:
    """One aggregator's latest round at each of ``blocks``."""
    answers = client.batch([latest_round_call(aggregator, b) for b in blocks])
    return [latest_round_at(raw, aggregator, b) for b, raw in zip(blocks, answers)]
