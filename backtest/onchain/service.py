"""What ``mbt positions`` and ``mbt params`` do with the database: find the market, place a block or an
instant in its stored history, print and save positions (docs/onchain.md)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..errors import MbtError
from .aave import Market, income_at, debt_index_at, load_market


@dataclass(frozen=True)
class Where:
    """A point of the market's history: the last block whose events apply, and the instant interest runs to."""

    block: int
    ts: int


def find_stream(store, market: str | None) -> str:
    """The Aave stream of ``market`` (a Pool address), or the only one stored."""
    if not store.table_exists("aave_markets"):
        raise MbtError("no Aave market in this database: ingest one with `mbt ingest rpc --source aave-v3 --pool ADDRESS`")
    rows = [r[0] for r in store.rows("onchain_streams")]
    if market is not None:
        want = market.lower()
        hits = [s for s in rows if s.split(":", 1)[1] == want or s == want]
        if not hits:
            raise MbtError(f"--market {market}: not ingested here (stored: {', '.join(r.split(':', 1)[1] for r in rows) or 'none'})")
        if len(hits) > 1:
            raise MbtError(f"--market {market}: stored for several chains ({', '.join(hits)}); give CHAIN_ID:ADDRESS")
        return hits[0]
    if not rows:
        raise MbtError("no Aave market in this database: ingest one with `mbt ingest rpc --source aave-v3 --pool ADDRESS`")
    if len(rows) > 1:
        raise MbtError(f"several Aave markets are stored ({', '.join(rows)}); choose one with --market ADDRESS")
    return rows[0]


def coverage(store, stream: str) -> tuple[int, int]:
    row = store.rows("onchain_coverage", stream=stream)
    if not row:
        raise MbtError(f"{stream}: no ingest state stored")
    return int(row[0][0]), int(row[0][1])


def header_ts(store, chain_id: int, block: int) -> int | None:
    row = store.rows("onchain_block_times", chain_id=chain_id, blocks=[block])
    return None if not row else int(row[0][1])


def at_block(store, stream: str, block: int, rpc_urls: tuple[str, ...] = ()) -> Where:
    """``block`` in the stored coverage, with its timestamp (stored header, else asked of ``rpc_urls``)."""
    first, last = coverage(store, stream)
    if not first <= block <= last:
        raise MbtError(f"--at-block {block}: outside the ingested range {first:,}..{last:,} of {stream}")
    chain_id = int(stream.split(":", 1)[0])
    ts = header_ts(store, chain_id, block)
    if ts is None and rpc_urls:
        ts = fetch_timestamp(rpc_urls, block)
    if ts is None:
        raise MbtError(f"--at-block {block}: its timestamp is not stored (headers are kept for blocks with market "
                       f"logs); pass --rpc-url to read it, or use --at TIMESTAMP")
    return Where(block, ts)


def at_instant(store, stream: str, ts: int) -> Where:
    """The state at unix second ``ts``: events of blocks up to then, interest accrued to ``ts`` exactly."""
    first, last = coverage(store, stream)
    chain_id = int(stream.split(":", 1)[0])
    row = store.rows("onchain_last_block_at", chain_id=chain_id, lo=first, hi=last, ts=ts)[0]
    last_ts = header_ts(store, chain_id, last)
    if row[0] is None:
        raise MbtError(f"--at: before the first stored block of {stream} (block {first:,})")
    if last_ts is not None and ts > last_ts:
        raise MbtError(f"--at: after the last ingested block {last:,} of {stream}; ingest further first")
    return Where(int(row[0]), ts)


def fetch_timestamp(rpc_urls: tuple[str, ...], block: int) -> int:
    from adapters.rpc.chain import header_request, map_header
    from adapters.rpc.transport import RpcError, Transport

    transport = Transport(list(rpc_urls))
    try:
        method, params = header_request(block)
        answer = transport.batch([(method, params)])[0]
    finally:
        close = getattr(transport, "close", None)
        if close:
            close()
    header = None if isinstance(answer, RpcError) else map_header(answer)
    if header is None:
        raise MbtError(f"block {block}: the node has no header for it")
    return header.timestamp


def units(raw: int, decimals: int) -> str:
    """An exact decimal text of ``raw / 10**decimals`` (no float on the way)."""
    if raw == 0:
        return "0"
    d = Decimal(raw).scaleb(-decimals)
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def position_rows(market: Market, where: Where) -> list[dict[str, Any]]:
    rows = []
    for r in market.positions_at(where.block, where.ts):
        rows.append({"account": r["account"], "asset": r["asset"],
                     "collateral": units(r["collateral_raw"], r["decimals"]),
                     "debt": units(r["debt_raw"], r["decimals"]),
                     "collateral_raw": str(r["collateral_raw"]), "debt_raw": str(r["debt_raw"]),
                     "collateral_enabled": r["collateral_enabled"], "emode": r["emode"], "market": r["market"]})
    return rows


POSITION_COLUMNS = ("account", "asset", "collateral", "debt", "collateral_raw", "debt_raw", "collateral_enabled",
                    "emode", "market")


def save_snapshot(store, market: Market, where: Where, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Make ``rows`` the database's positions snapshot and the decoded ledger after the block its events
    (one transaction); indices of the market's reserves are rewritten with the updates the Pool made
    without an event. Returns counts."""
    events = ledger_after(store, market, where.block)
    indices = index_rows(market)
    symbols = {info.reserve: info.symbol for info in market.reserves.values()}
    # collateral switched off backs no debt: it is stored as 0 for the engines
    positions = [(r["account"], r["asset"], r["market"], f"emode-{r['emode']}" if r["emode"] else None,
                  float(Decimal(r["collateral"])) if r["collateral_enabled"] else 0.0, float(Decimal(r["debt"])))
                 for r in rows]
    store.replace_onchain_book(
        market.pool, positions,
        [(e["ts"], e["account"], e["asset"], e["action"], e["amount"], e["block"], e["log_index"], e["tx_hash"])
         for e in events],
        [(symbols[reserve], ts, li / 1e27, vi / 1e27) for reserve, ts, li, vi in indices])
    return {"positions": len(rows), "events": len(events), "indices": len(indices)}


def index_rows(market: Market) -> list[tuple[str, int, int, int]]:
    out = []
    for reserve, (_, states) in market.states.items():
        last_by_ts: dict[int, Any] = {}
        for s in states:
            last_by_ts[s.ts] = s
        out += [(reserve, ts, s.liquidity_index, s.variable_index) for ts, s in sorted(last_by_ts.items())]
    return out


def ledger_after(store, market: Market, block: int) -> list[dict[str, Any]]:
    """The market's user actions after ``block`` as DESIGN §2 events (token units; liquidations left out).

    Supply/Deposit → supply, Withdraw → withdraw, Borrow → borrow, Repay → repay (with aTokens: a withdraw
    of the same amount too); an aToken transfer → a withdraw of the sender and a supply of the receiver.
    """
    stream = market.stream
    chain_id = int(stream.split(":", 1)[0])
    info = market.reserves
    rows = store.rows("onchain_actions_after", chain_id=chain_id, stream=stream, block=block)
    liquidated = {(b, t) for b, t in store.rows("onchain_liquidation_txs_after", stream=stream, block=block)}
    out = []

    def add(b, li, tx, ts, account, reserve, action, raw):
        r = info.get(reserve)
        if r is None or ts is None:
            return
        out.append({"ts": ts, "account": account, "asset": r.symbol, "action": action,
                    "amount": float(Decimal(raw).scaleb(-r.decimals)), "block": b, "log_index": li, "tx_hash": tx})

    for b, li, tx, event, reserve, user, amount, flag, ts in rows:
        action = {"Supply": "supply", "Deposit": "supply", "Withdraw": "withdraw", "Borrow": "borrow",
                  "Repay": "repay"}[event]
        add(b, li, tx, ts, user, reserve, action, int(amount))
        if event == "Repay" and flag:
            add(b, li, tx, ts, user, reserve, "withdraw", int(amount))
    transfers = store.rows("onchain_transfers_after", chain_id=chain_id, stream=stream, block=block)
    from ..protocols.aave.fixedpoint import ray_mul

    for b, li, tx, reserve, sender, receiver, value, idx, ts in transfers:
        if (b, tx) in liquidated:
            continue  # seized aTokens (receiveAToken) and the protocol fee: part of an on-chain liquidation
        amount = ray_mul(int(value), int(idx)) if not market.rules.v2 else int(value)
        add(b, li, tx, ts, sender, reserve, "withdraw", amount)
        add(b, li, tx, ts, receiver, reserve, "supply", amount)
    out.sort(key=lambda e: (e["block"], e["log_index"], e["action"] == "supply"))
    return out


def load(store, market: str | None) -> Market:
    return load_market(store, find_stream(store, market))


__all__ = ["Where", "at_block", "at_instant", "coverage", "find_stream", "income_at", "debt_index_at", "load",
           "position_rows", "save_snapshot", "units"]
