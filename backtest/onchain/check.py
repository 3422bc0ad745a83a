"""``mbt positions --check-block N``: the reconstruction beside what the contracts answer at N.

Asks the node ``balanceOf`` of every aToken and variable-debt token for every account the logs name, and
``getUserEMode`` of each account; prints the largest differences. Views are used only here, for checking.
"""

from __future__ import annotations

from .aave import Market
from .service import Where


def _balance_call(token: str, account: str, block: int):
    return "eth_call", [{"to": token, "data": "0x70a08231" + account[2:].rjust(64, "0")}, hex(block)]


def _emode_call(pool: str, account: str, block: int):
    return "eth_call", [{"to": pool, "data": "0xeddf1b79" + account[2:].rjust(64, "0")}, hex(block)]


def check_positions(market: Market, where: Where, rpc_urls: tuple[str, ...], batch: int = 200) -> tuple[str, bool]:
    """(report text, whether any raw balance or e-mode differs)."""
    from adapters.rpc.transport import RpcError, Transport

    from ..errors import MbtError

    accounts = market.accounts()
    wanted = []
    for account in accounts:
        for r in market.reserves.values():
            wanted.append(("collateral", r, account, r.a_token))
            wanted.append(("debt", r, account, r.debt_token))
    transport = Transport(list(rpc_urls))
    answers = []
    calls = [_balance_call(tok, acct, where.block) for _, _, acct, tok in wanted]
    calls += [_emode_call(market.pool, acct, where.block) for acct in accounts]
    for i in range(0, len(calls), batch):
        answers += transport.batch(calls[i:i + batch])
    diffs = []
    same = 0
    for (side, r, account, _), raw in zip(wanted, answers):
        if isinstance(raw, RpcError):
            raise MbtError(f"--check-block {where.block}: balanceOf on {r.symbol} failed ({raw.message})")
        chain = int(raw, 16)
        ours = market.balance_at(side, r.reserve, account, where.block, where.ts)
        if chain == ours:
            same += 1
        else:
            diffs.append((abs(chain - ours), account, r.symbol, side, chain, ours))
    emode_diffs = []
    for account, raw in zip(accounts, answers[len(wanted):]):
        if isinstance(raw, RpcError):
            continue
        chain = int(raw, 16)
        ours = market.emode_at(account, where.block)
        if chain != ours:
            emode_diffs.append((account, chain, ours))
    diffs.sort(reverse=True)
    lines = [f"block {where.block:,}: {same:,} of {len(wanted):,} raw token balances equal the chain's "
             f"({len(accounts):,} accounts × {len(market.reserves)} reserves × 2 tokens); "
             f"e-mode equal for {len(accounts) - len(emode_diffs):,} of {len(accounts):,} accounts"]
    for d, account, sym, side, chain, ours in diffs[:10]:
        lines.append(f"  {account} {sym} {side}: chain {chain}, rebuilt {ours} (off by {d})")
    for account, chain, ours in emode_diffs[:10]:
        lines.append(f"  {account} e-mode: chain {chain}, rebuilt {ours}")
    return "\n".join(lines), bool(diffs or emode_diffs)
