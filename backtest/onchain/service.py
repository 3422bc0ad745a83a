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


def find_stream(con, market: str | None) -> str:
    """The Aave stream of ``market`` (a Pool address), or the only one stored."""
    if not _has(con, "aave_markets"):
        raise MbtError("no Aave market in this database: ingest one with `mbt ingest rpc --source aave-v3 --pool ADDRESS`")
    rows = [r[0] for r in con.execute("SELECT stream FROM aave_markets ORDER BY stream").fetchall()]
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


def _has(con, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchone()[0])


def coverage(con, stream: str) -> tuple[int, int]:
    row = con.execute("SELECT f.first_block, s.last_block FROM rpc_feeds f JOIN ingest_state s "
                      "ON s.stream = f.stream AND s.source = f.source WHERE f.stream = ?", [stream]).fetchone()
    if row is None:
        raise MbtError(f"{stream}: no ingest state stored")
    return int(row[0]), int(row[1])


def _header_ts(con, chain_id: int, block: int) -> int | None:
    row = con.execute("SELECT epoch(timestamp)::BIGINT FROM rpc_blocks WHERE chain_id = ? AND number = ?",
                      [chain_id, block]).fetchone()
    return None if row is None else int(row[0])


def at_block(con, stream: str, block: int, rpc_urls: tuple[str, ...] = ()) -> Where:
    """``block`` in the stored coverage, with its timestamp (stored header, else asked of ``rpc_urls``)."""
    first, last = coverage(con, stream)
    if not first <= block <= last:
        raise MbtError(f"--at-block {block}: outside the ingested range {first:,}..{last:,} of {stream}")
    chain_id = int(stream.split(":", 1)[0])
    ts = _header_ts(con, chain_id, block)
    if ts is None and rpc_urls:
        ts = fetch_timestamp(rpc_urls, block)
    if ts is None:
        raise MbtError(f"--at-block {block}: its timestamp is not stored (headers are kept for blocks with market "
                       f"logs); pass --rpc-url to read it, or use --at TIMESTAMP")
    return Where(block, ts)


def at_instant(con, stream: str, ts: int) -> Where:
    """The state at unix second ``ts``: events of blocks up to then, interest accrued to ``ts`` exactly."""
    first, last = coverage(con, stream)
    chain_id = int(stream.split(":", 1)[0])
    row = con.execute("SELECT max(number) FROM rpc_blocks WHERE chain_id = ? AND number BETWEEN ? AND ? "
                      "AND epoch(timestamp) <= ?", [chain_id, first, last, ts]).fetchone()
    last_ts = _header_ts(con, chain_id, last)
    if row is None or row[0] is None:
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


def save_snapshot(con, market: Market, where: Where, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Make ``rows`` the database's positions snapshot and the decoded ledger after the block its events
    (one transaction); indices of the market's reserves are rewritten with the updates the Pool made
    without an event. Returns counts."""
    events = ledger_after(con, market, where.block)
    indices = index_rows(market)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM positions")
        for r in rows:
            # collateral switched off does not back debt: it is kept as collateral 0 for the engines
            coll = float(Decimal(r["collateral"])) if r["collateral_enabled"] else 0.0
            con.execute("INSERT INTO positions (account, asset, market, emode, collateral, debt) VALUES (?, ?, ?, ?, ?, ?)",
                        [r["account"], r["asset"], r["market"], f"emode-{r['emode']}" if r["emode"] else None, coll,
                         float(Decimal(r["debt"]))])
        con.execute("DELETE FROM events WHERE market = ?", [market.pool])
        seq = con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        for n, e in enumerate(events, start=1):
            con.execute("INSERT INTO events (timestamp, account, asset, action, amount, block, log_index, tx_hash, "
                        "market, seq) VALUES (to_timestamp(?), ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [e["ts"], e["account"], e["asset"], e["action"], e["amount"], e["block"], e["log_index"],
                         e["tx_hash"], market.pool, seq + n])
        symbols = {info.reserve: info.symbol for info in market.reserves.values()}
        for reserve, ts, li, vi in indices:
            con.execute("INSERT OR REPLACE INTO indices (asset, timestamp, liquidity_index, variable_borrow_index) "
                        "VALUES (?, to_timestamp(?), ?, ?)", [symbols[reserve], ts, li / 1e27, vi / 1e27])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return {"positions": len(rows), "events": len(events), "indices": len(indices)}


def index_rows(market: Market) -> list[tuple[str, int, int, int]]:
    out = []
    for reserve, (_, states) in market.states.items():
        last_by_ts: dict[int, Any] = {}
        for s in states:
            last_by_ts[s.ts] = s
        out += [(reserve, ts, s.liquidity_index, s.variable_index) for ts, s in sorted(last_by_ts.items())]
    return out


def ledger_after(con, market: Market, block: int) -> list[dict[str, Any]]:
    """The market's user actions after ``block`` as DESIGN §2 events (token units; liquidations left out).

    Supply/Deposit → supply, Withdraw → withdraw, Borrow → borrow, Repay → repay (with aTokens: a withdraw
    of the same amount too); an aToken transfer → a withdraw of the sender and a supply of the receiver.
    """
    stream = market.stream
    chain_id = int(stream.split(":", 1)[0])
    info = market.reserves
    rows = con.execute(
        'SELECT e.block, e.log_index, e.tx_hash, e.event, e.reserve, e."user", e.amount, e.flag, '
        "epoch(b.timestamp)::BIGINT FROM aave_pool_events e LEFT JOIN rpc_blocks b ON b.chain_id = ? AND b.number = e.block "
        "WHERE e.stream = ? AND e.block > ? AND e.event IN ('Supply', 'Deposit', 'Withdraw', 'Borrow', 'Repay') "
        "ORDER BY e.block, e.log_index", [chain_id, stream, block]).fetchall()
    liquidated = {(b, t) for b, t in con.execute(
        "SELECT block, tx_hash FROM aave_liquidations WHERE stream = ? AND block > ?", [stream, block]).fetchall()}
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
    transfers = con.execute(
        "SELECT t.block, t.log_index, t.tx_hash, t.reserve, t.account, t.other, t.value, t.idx, "
        "epoch(b.timestamp)::BIGINT FROM aave_token_events t LEFT JOIN rpc_blocks b ON b.chain_id = ? AND b.number = t.block "
        "WHERE t.stream = ? AND t.block > ? AND t.kind = 'transfer' AND t.side = 'collateral' "
        "ORDER BY t.block, t.log_index", [chain_id, stream, block]).fetchall()
    from ..protocols.aave.fixedpoint import ray_mul

    for b, li, tx, reserve, sender, receiver, value, idx, ts in transfers:
        if (b, tx) in liquidated:
            continue  # seized aTokens (receiveAToken) and the protocol fee: part of an on-chain liquidation
        amount = ray_mul(int(value), int(idx)) if not market.rules.v2 else int(value)
        add(b, li, tx, ts, sender, reserve, "withdraw", amount)
        add(b, li, tx, ts, receiver, reserve, "supply", amount)
    out.sort(key=lambda e: (e["block"], e["log_index"], e["action"] == "supply"))
    return out


def load(con, market: str | None) -> Market:
    return load_market(con, find_stream(con, market))


__all__ = ["Where", "at_block", "at_instant", "coverage", "find_stream", "income_at", "debt_index_at", "load",
           "position_rows", "save_snapshot", "units"]
