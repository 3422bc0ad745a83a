"""The Aave sources of ``mbt ingest rpc``: ``--source aave-v3`` and ``--source aave-v2`` with ``--pool ADDRESS``.

What the driver needs (name, events, options, tables) and the Aave logic on top of it:

- :meth:`AaveSource.prepare` finds the market from the Pool at the newest block — ``getReservesList``,
  ``getReserveData`` (aToken and variable-debt token of each reserve), ``ADDRESSES_PROVIDER`` →
  ``getPoolConfigurator`` / ``getPriceOracle``, each reserve's ``decimals``/``symbol``. Those are the only
  views it reads: balances come from logs.
- per chunk, the logs of the Pool, the PoolConfigurator and every aToken/debt token are decoded by the pure
  :func:`adapters.rpc.aave_logs.decode` into token events, reserve updates, pool events, liquidations and
  configuration events (``sql/schema_aave.sql``); ``--redecode`` runs the same function over the stored raw
  logs. Scaled balances are derived from the stored token events (``backtest.onchain.aave``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mbt_errors import MbtError

from .base import ChunkFrames, ChunkInput, LogSource, PrepareContext, SourceOption, SourcePlan, SourceTables, Unit

if TYPE_CHECKING:
    import pyarrow as pa

    from ..aave_logs import Decoded, Token
    from ..chain import LogBatch
    from .base import Lookup, StreamState

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
V3_VERSIONS = ("v3.0", "v3.1", "v3.2", "v3.3", "v3.4", "v3.5", "v3.6", "v3.7")

SEL = {
    "getReservesList()": "d1946dbc", "ADDRESSES_PROVIDER()": "0542975c", "getReserveData(address)": "35ea6a75",
    "getPoolConfigurator()": "631adfca", "getPriceOracle()": "fca513a8", "decimals()": "313ce567",
    "symbol()": "95d89b41", "getAssetPrice(address)": "b3596f07", "BASE_CURRENCY_UNIT()": "8c89b64f",
    "balanceOf(address)": "70a08231", "getUserEMode(address)": "eddf1b79", "getUserAccountData(address)": "bf92857c",
}


def call(to: str, fn: str, args: tuple[str, ...] = (), block: int | None = None) -> tuple[str, list[Any]]:
    """``eth_call`` of ``fn`` (address arguments only) at ``block``."""
    data = "0x" + SEL[fn] + "".join(a[2:].lower().rjust(64, "0") for a in args)
    return "eth_call", [{"to": to, "data": data}, hex(block) if block is not None else "latest"]


def _hex_words(raw: str) -> list[int]:
    body = raw[2:] if raw.startswith("0x") else raw
    return [int(body[i:i + 64], 16) for i in range(0, len(body) - len(body) % 64, 64)]


def _address_word(value: int) -> str:
    return "0x" + value.to_bytes(32, "big")[-20:].hex()


def _abi_string(raw: str) -> str:
    data = bytes.fromhex(raw[2:])
    if len(data) == 32:  # bytes32 symbols (old tokens)
        return data.rstrip(b"\0").decode("utf-8", "replace")
    offset = int.from_bytes(data[:32], "big")
    n = int.from_bytes(data[offset:offset + 32], "big")
    return data[offset + 32:offset + 32 + n].decode("utf-8", "replace")


def _answer(raw: Any, what: str) -> str:
    from ..transport import RpcError

    if isinstance(raw, RpcError) or raw is None:
        message = getattr(raw, "message", "no answer")
        raise MbtError(f"{what}: {message}")
    if not isinstance(raw, str) or raw in ("0x", ""):
        raise MbtError(f"{what}: empty answer (no contract there at that block?)")
    return raw


# -- the frames ------------------------------------------------------------------------------------------
def _schemas() -> dict[str, pa.Schema]:
    import pyarrow as pa

    s, i, b, d = pa.string(), pa.int64(), pa.bool_(), pa.decimal128(38, 0)
    where = [("block", i), ("log_index", i), ("tx_hash", s)]
    return {
        "token_events": pa.schema(where + [("token", s), ("reserve", s), ("side", s), ("kind", s), ("account", s),
                                           ("other", s), ("value", d), ("balance_increase", d), ("idx", d)]),
        "reserve_updates": pa.schema(where + [("reserve", s), ("liquidity_rate", d), ("stable_rate", d),
                                              ("variable_rate", d), ("liquidity_index", d), ("variable_index", d),
                                              ("ts", i), ("origin", s)]),
        "pool_events": pa.schema(where + [("event", s), ("reserve", s), ("user", s), ("other", s), ("amount", d),
                                          ("flag", b), ("category", i)]),
        "liquidations": pa.schema(where + [("user", s), ("collateral_asset", s), ("debt_asset", s),
                                           ("debt_to_cover", d), ("collateral_amount", d), ("liquidator", s),
                                           ("receive_atoken", b)]),
        "config_events": pa.schema(where + [("event", s), ("asset", s), ("category", i), ("v1", d), ("v2", d),
                                            ("v3", d), ("flag", b), ("label", s), ("address", s)]),
        "oracle_prices": pa.schema([("block", i), ("reserve", s), ("symbol", s), ("price_raw", d), ("unit", d),
                                    ("price_usd", pa.float64()), ("ts", i)]),
    }


DECIMAL_MAX = 10**38 - 1   # staged as DECIMAL(38,0) (16x faster to build than text), stored as HUGEINT


BIG = {"value", "balance_increase", "idx", "liquidity_rate", "stable_rate", "variable_rate", "liquidity_index",
       "variable_index", "amount", "debt_to_cover", "collateral_amount", "v1", "v2", "v3", "price_raw", "unit"}


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows as an Arrow table, column by column (big integers as DECIMAL(38,0); SQL casts them to HUGEINT)."""
    import pyarrow as pa

    columns = []
    for f in schema:
        name = f.name
        values = [row[name] for row in rows]
        if name in BIG:
            present = [v for v in values if v is not None]
            if present and max(present) > DECIMAL_MAX:
                top = max(present)
                row = next(r for r in rows if r[name] == top)
                raise MbtError(f"log {row['block']}:{row['log_index']}: {name} = {top} has more than 38 digits")
        columns.append(pa.array(values, f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def stage_tables(decoded: Decoded) -> dict[str, pa.Table]:
    schemas = _schemas()
    return {f"_aave_{name}": _table(getattr(decoded, name, []), schema) for name, schema in schemas.items()}


def batch_logs(batch: LogBatch) -> list[dict[str, Any]]:
    """The logs of a stored batch in ``eth_getLogs`` shape (what :func:`adapters.rpc.aave_logs.decode` reads)."""
    t = batch.table
    blocks = [hex(b) for b in t.column("block").to_pylist()]
    indexes = [hex(i) for i in t.column("log_index").to_pylist()]
    hashes = ["0x" + h.hex() for h in t.column("tx_hash").to_pylist()]
    seen: dict[bytes, str] = {}
    addresses = [seen.get(a) or seen.setdefault(a, "0x" + a.hex()) for a in t.column("address").to_pylist()]
    tops = [["0x" + x.hex() if x is not None else None for x in t.column(f"topic{k}").to_pylist()] for k in range(4)]
    data = ["0x" + x.hex() for x in t.column("data").to_pylist()]
    logs = []
    for n, (t0, t1, t2, t3) in enumerate(zip(*tops)):
        topics = [x for x in (t0, t1, t2, t3) if x is not None]
        logs.append({"blockNumber": blocks[n], "logIndex": indexes[n], "transactionHash": hashes[n],
                     "address": addresses[n], "topics": topics, "data": data[n]})
    return logs


def _timestamp_blocks(logs: list[dict[str, Any]], pool: str) -> list[int]:
    from ..aave_logs import POOL_V3, topic

    rdu = "0x" + topic(POOL_V3["ReserveDataUpdated"]).hex()
    return sorted({int(lg["blockNumber"], 16) for lg in logs
                   if lg["address"].lower() == pool and lg["topics"] and lg["topics"][0].lower() == rdu})


# -- one run ------------------------------------------------------------------------------------------
class AavePlan(SourcePlan):
    """An Aave run: the Pool, its configurator and oracle, and every reserve's tokens."""

    def __init__(self, version: str, pool: str, provider: str | None, configurator: str | None,
                 oracle: str | None, reserves: list[dict[str, Any]], market: str, prices: str = "none",
                 price_every: int = 0, base_unit: int | None = None) -> None:
        from ..aave_logs import Token

        self.version = version
        self.pool = pool
        self.provider = provider
        self.configurator = configurator
        self.oracle = oracle
        self.reserves = reserves
        self.prices = prices
        self.price_every = price_every
        self.base_unit = base_unit
        self.tokens: dict[str, Token] = {}
        for r in reserves:
            self.tokens[r["a_token"]] = Token(r["a_token"], r["reserve"], "collateral")
            self.tokens[r["debt_token"]] = Token(r["debt_token"], r["reserve"], "debt")
        self.label = f"{market} {pool[:10]}…"
        self.subject = market
        self.cuts = []
        self.notes = []
        self.stream_row = {"feed": pool, "description": f"Aave {version} Pool", "asset": market,
                           "quote_asset": None, "quote_source": None, "all_rounds": False}

    def describe(self, stream: str) -> list[str]:
        lines = [f"  pool          {self.pool} (Aave {self.version}), stream {stream}",
                 f"  configurator  {self.configurator or '?'}; oracle {self.oracle or '?'}"]
        if self.prices == "oracle":
            every = f" and every {self.price_every:,} blocks" if self.price_every else ""
            lines.append(f"  prices        AaveOracle.getAssetPrice of every reserve at each block with a Pool event"
                         f"{every} (source aave-oracle, base unit {self.base_unit})")
        for r in self.reserves:
            lines.append(f"  reserve {r['reserve_id']:<5} {r['symbol']:<8} {r['reserve']} (decimals {r['decimals']}): "
                         f"aToken {r['a_token']}, variable debt {r['debt_token']}")
        return lines

    def run_rows(self) -> list[dict[str, Any]]:
        market = {"version": self.version, "pool": self.pool, "addresses_provider": self.provider,
                  "configurator": self.configurator, "oracle": self.oracle}
        return [{**market, **r} for r in self.reserves]

    def addresses(self, unit: Unit) -> list[str]:
        out = {self.pool, *self.tokens}
        if self.configurator:
            out.add(self.configurator)
        if self.oracle:
            out.add(self.oracle)
        return sorted(out)

    def read(self, chunk: ChunkInput) -> ChunkFrames:
        from ..chain import log_headers

        logs = chunk.logs
        for header in log_headers(chunk.logs):
            chunk.blocks.remember(header)
        # every block with a log keeps its header: balances at those blocks need their timestamps
        sampled = self._price_blocks(chunk.unit, logs) if self.prices == "oracle" else []
        blocks = sorted(set(chunk.batch.column("block").tolist()) | set(sampled))
        got = chunk.blocks.get(blocks)
        absent = [n for n, h in got.items() if h is None]
        if absent:
            raise MbtError(f"block {absent[0]}: the node has no header for it")
        headers = [h for h in got.values() if h is not None]
        ts = {h.number: h.timestamp for h in headers}
        decoded = decode_logs(logs, self.version, self.pool, self.configurator, self.tokens, ts,
                              f"eth_getLogs {chunk.unit.lo}..{chunk.unit.hi}", self.oracle)
        counts = _counts(decoded)
        if sampled:
            decoded.oracle_prices, failed = self._oracle_prices(chunk.client, sampled, ts)
            counts["oracle_prices"] = len(decoded.oracle_prices)
            counts["oracle_failed"] = failed
        return ChunkFrames(decoded, headers, counts)

    def _price_blocks(self, unit: Unit, logs: list[dict[str, Any]]) -> list[int]:
        out = {int(lg["blockNumber"], 16) for lg in logs if lg["address"].lower() == self.pool}
        if self.price_every:
            first = -(-unit.lo // self.price_every) * self.price_every
            out.update(range(first, unit.hi + 1, self.price_every))
        return sorted(out)

    def _oracle_prices(self, client: Any, blocks: list[int], ts: Mapping[int, int]) -> tuple[list[dict[str, Any]], int]:
        """getAssetPrice of every reserve at each of ``blocks`` (calls that fail, e.g. before the oracle
        existed, are counted and skipped)."""
        from ..transport import RpcError

        assert self.oracle is not None and self.base_unit
        calls = [call(self.oracle, "getAssetPrice(address)", (r["reserve"],), b) for b in blocks for r in self.reserves]
        answers: list[Any] = []
        for i in range(0, len(calls), 500):
            answers += client.batch(calls[i:i + 500])
        rows, failed = [], 0
        n = len(self.reserves)
        for j, b in enumerate(blocks):
            for k, r in enumerate(self.reserves):
                raw = answers[j * n + k]
                if isinstance(raw, RpcError) or not isinstance(raw, str) or len(raw) < 66:
                    failed += 1
                    continue
                price = int(raw[2:66], 16)
                if price <= 0:
                    failed += 1
                    continue
                rows.append({"block": b, "reserve": r["reserve"], "symbol": r["symbol"], "price_raw": price,
                             "unit": self.base_unit, "price_usd": price / self.base_unit, "ts": int(ts[b])})
        return rows, failed


def decode_logs(logs, version, pool, configurator, tokens, timestamps, where, oracle=None) -> Decoded:
    from ..aave_logs import decode

    try:
        return decode(logs, version="v2" if version == "v2" else "v3", pool=pool, configurator=configurator,
                      tokens=tokens, timestamps=timestamps, oracle=oracle)
    except ValueError as exc:
        raise MbtError(f"{where}: {exc}") from None


def _counts(decoded: Decoded) -> dict[str, int]:
    return {"token_events": len(decoded.token_events), "reserve_updates": len(decoded.reserve_updates),
            "pool_events": len(decoded.pool_events), "liquidations": len(decoded.liquidations),
            "config_events": len(decoded.config_events), "skipped": decoded.skipped}


# -- the source ------------------------------------------------------------------------------------------
class AaveSource(LogSource):
    """An Aave Pool (v3 or v2): every reserve's aToken and variable-debt token, the Pool and its configurator."""

    noun = "pool"
    tables = SourceTables(
        insert=("rpc_aave_insert",),
        clear_chunk="rpc_aave_clear_chunk",
        rollback="rpc_aave_rollback",
        clear_decoded="rpc_aave_clear_decoded",
        run_rows="rpc_aave_upsert_reserve",
    )

    def __init__(self, name: str, family: str) -> None:
        self.name = name
        self.family = family            # "v3" | "v2"
        self.title = f"Aave {family}"
        self.description = (f"an Aave {family} market (its Pool, PoolConfigurator, every aToken and variable-debt "
                            f"token): positions, indices, parameters, liquidations")
        self.options = (
            SourceOption("--pool", "pool", "The market's Pool (v3) or LendingPool (v2) address.",
                         metavar="ADDRESS", required="the market's Pool address"),
            SourceOption("--aave-version", "aave_version", "Protocol version for rounding and interest math "
                         "(aave-v3: v3.0 … v3.7, default v3.7; aave-v2: v2).", metavar="VER"),
            SourceOption("--market", "market", "A name for the market (default: aave-v3 / aave-v2).",
                         metavar="NAME"),
            SourceOption("--prices", "prices", "oracle: also store AaveOracle.getAssetPrice of every reserve at each "
                         "block with a Pool event (prices source aave-oracle); none (default): no prices.",
                         metavar="oracle|none"),
            SourceOption("--price-every", "price_every", "With --prices oracle: also sample every N blocks.",
                         metavar="N"),
        )

    def events(self) -> dict[str, dict[str, Any]]:
        from ..aave_logs import events

        return {name: {"signature": sig} for name, sig in events(self.family).items()}

    def topics(self) -> list[Any]:
        from ..aave_logs import topic0s

        return [topic0s(self.family)]

    def validate(self, options: Mapping[str, Any]) -> dict[str, Any]:
        out = super().validate(options)
        pool = out["pool"]
        if not _ADDRESS.match(pool):
            raise MbtError(f"--pool {pool!r}: expected 0x followed by 40 hex digits")
        out["pool"] = pool.lower()
        version = out.get("aave_version") or ("v2" if self.family == "v2" else "v3.7")
        allowed = ("v2",) if self.family == "v2" else V3_VERSIONS
        if version not in allowed:
            raise MbtError(f"--aave-version {version!r}: expected one of {', '.join(allowed)} for --source {self.name}")
        out["aave_version"] = version
        market = out.get("market")
        if market is not None and not market.strip():
            raise MbtError("--market: must not be blank")
        out["market"] = market or self.name
        prices = out.get("prices") or "none"
        if prices not in ("none", "oracle"):
            raise MbtError(f"--prices {prices!r}: expected oracle or none")
        out["prices"] = prices
        every = out.get("price_every")
        try:
            every = int(every) if every not in (None, "") else 0
        except ValueError:
            raise MbtError(f"--price-every {out.get('price_every')!r}: expected a whole number of blocks") from None
        if every < 0 or (every and prices != "oracle"):
            raise MbtError("--price-every: a positive number of blocks, with --prices oracle")
        out["price_every"] = every
        return out

    def stream_key(self, options: Mapping[str, Any]) -> str:
        return options["pool"]

    def prepare(self, ctx: PrepareContext) -> AavePlan:
        opts = ctx.options
        pool, block = opts["pool"], ctx.probe
        where = f"--pool {pool} at block {block}"
        first = ctx.client.batch([call(pool, "getReservesList()", (), block), call(pool, "ADDRESSES_PROVIDER()", (), block)])
        raw = _answer(first[0], f"{where}: getReservesList()")
        try:
            w = _hex_words(raw)
            reserves = [_address_word(x) for x in w[2:2 + w[1]]]
        except (ValueError, IndexError):
            raise MbtError(f"{where}: getReservesList() did not answer an address list; is this an Aave Pool?") from None
        provider = configurator = oracle = None
        try:
            provider = _address_word(_hex_words(_answer(first[1], "ADDRESSES_PROVIDER()"))[0])
        except (MbtError, IndexError):
            provider = None
        calls = []
        if provider is not None:
            calls += [call(provider, "getPoolConfigurator()", (), block), call(provider, "getPriceOracle()", (), block)]
        for r in reserves:
            calls += [call(pool, "getReserveData(address)", (r,), block), call(r, "decimals()", (), block),
                      call(r, "symbol()", (), block)]
        answers = ctx.client.batch(calls) if calls else []
        if provider is not None:
            configurator = _address_word(_hex_words(_answer(answers[0], f"{where}: getPoolConfigurator()"))[0])
            oracle = _address_word(_hex_words(_answer(answers[1], f"{where}: getPriceOracle()"))[0])
            answers = answers[2:]
        a_word, d_word = (7, 9) if self.family == "v2" else (8, 10)
        rows = []
        for n, r in enumerate(reserves):
            data, dec, sym = answers[3 * n:3 * n + 3]
            words = _hex_words(_answer(data, f"{where}: getReserveData({r})"))
            rows.append({"reserve": r, "reserve_id": n, "a_token": _address_word(words[a_word]),
                         "debt_token": _address_word(words[d_word]),
                         "decimals": _hex_words(_answer(dec, f"{where}: {r}.decimals()"))[0],
                         "symbol": _abi_string(_answer(sym, f"{where}: {r}.symbol()"))})
        if not rows:
            raise MbtError(f"{where}: the Pool lists no reserves")
        base_unit = None
        if opts["prices"] == "oracle":
            if oracle is None:
                raise MbtError(f"--prices oracle: {where}: no price oracle found through ADDRESSES_PROVIDER()")
            if self.family == "v2":
                raise MbtError("--prices oracle: a v2 oracle quotes in ETH; load USD prices another way "
                               "(e.g. --source chainlink)")
            unit = ctx.client.batch([call(oracle, "BASE_CURRENCY_UNIT()", (), block)])[0]
            base_unit = _hex_words(_answer(unit, f"--prices oracle: {oracle}.BASE_CURRENCY_UNIT()"))[0]
        return AavePlan(opts["aave_version"], pool, provider, configurator, oracle, rows, opts["market"],
                        opts["prices"], opts["price_every"], base_unit)

    def stage(self, frames: Any) -> dict[str, pa.Table]:
        return stage_tables(frames)

    def redecode(self, lookup: Lookup, state: StreamState, logs: LogBatch) -> ChunkFrames:
        from ..aave_logs import Token

        market = lookup.rows("rpc_aave_market", stream=state.stream)
        if not market:
            raise MbtError(f"--redecode: no Aave market row stored for {state.stream}")
        version, pool, _, configurator, oracle = market[0]
        tokens: dict[str, Token] = {}
        for reserve, _, _, a_token, debt_token, _ in lookup.rows("rpc_aave_reserves", stream=state.stream):
            tokens[a_token] = Token(a_token, reserve, "collateral")
            tokens[debt_token] = Token(debt_token, reserve, "debt")
        rows = batch_logs(logs)
        need = _timestamp_blocks(rows, pool)
        stored = {h.number: h.timestamp for h in lookup.headers(state.chain_id, need)} if need else {}
        missing = [b for b in need if b not in stored]
        if missing:
            raise MbtError(f"--redecode: block {missing[0]} has no stored header (timestamp)")
        decoded = decode_logs(rows, version, pool, configurator, tokens, stored, "--redecode", oracle)
        return ChunkFrames(decoded, [], _counts(decoded))

    def summary(self, plan: SourcePlan, counts: Mapping[str, int], logs: int) -> str:
        prices = f", {counts.get('oracle_prices', 0):,} oracle prices" if "oracle_prices" in counts else ""
        return (f"{logs:,} logs: {counts.get('token_events', 0):,} token events, "
                f"{counts.get('reserve_updates', 0):,} reserve updates, {counts.get('pool_events', 0):,} pool events, "
                f"{counts.get('liquidations', 0):,} liquidations, {counts.get('config_events', 0):,} parameter changes"
                f"{prices} stored")

    def warnings(self, counts: Mapping[str, int]) -> list[str]:
        failed = counts.get("oracle_failed", 0)
        if not failed:
            return []
        return [f"warning: {failed:,} getAssetPrice call(s) failed or answered <= 0 (e.g. before the oracle existed); "
                f"those prices are not stored"]

    def redecode_summary(self, counts: Mapping[str, int], logs: int) -> str:
        return (f"re-decoded {logs:,} stored logs → {counts.get('token_events', 0):,} token events, "
                f"{counts.get('liquidations', 0):,} liquidations")


AAVE_V3 = AaveSource("aave-v3", "v3")
AAVE_V2 = AaveSource("aave-v2", "v2")
