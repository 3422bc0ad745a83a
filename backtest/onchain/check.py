"""``mbt positions --check-block N``: the reconstruction beside what the contracts answer at N.

Asks the node ``balanceOf`` of every aToken and variable-debt token for every account the logs name, and
``getUserEMode`` of each account; prints the largest differences. Views are used only here, for checking.
"""

from __future__ import annotations

from .aave import Market
from .service import Where


def check_positions(market: Market, where: Where, rpc_urls: tuple[str, ...], batch: int = 200,
                    store=None) -> tuple[str, bool]:
    """(report text, whether any raw balance, e-mode or health factor differs).

    With ``store`` (the database) and an oracle, health factors are checked too: ``getUserAccountData`` against
    the integer layer on the rebuilt balances, the live parameters and ``getAssetPrice`` at N.
    """
    from adapters.rpc.sources.aave import call
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
    calls = [call(tok, "balanceOf(address)", (acct,), where.block) for _, _, acct, tok in wanted]
    calls += [call(market.pool, "getUserEMode(address)", (acct,), where.block) for acct in accounts]
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
    hf_lines, hf_same, hf_total = _health(market, where, transport, store, accounts, batch) if store is not None else ([], 0, 0)
    diffs.sort(reverse=True)
    lines = [f"block {where.block:,}: {same:,} of {len(wanted):,} raw token balances equal the chain's "
             f"({len(accounts):,} accounts × {len(market.reserves)} reserves × 2 tokens); "
             f"e-mode equal for {len(accounts) - len(emode_diffs):,} of {len(accounts):,} accounts"]
    for d, account, sym, side, chain, ours in diffs[:10]:
        lines.append(f"  {account} {sym} {side}: chain {chain}, rebuilt {ours} (off by {d})")
    for account, chain, ours in emode_diffs[:10]:
        lines.append(f"  {account} e-mode: chain {chain}, rebuilt {ours}")
    if hf_total:
        lines.append(f"getUserAccountData: collateral, debt, LT, LTV and health factor equal for {hf_same:,} of "
                     f"{hf_total:,} accounts")
        lines += hf_lines[:10]
    return "\n".join(lines), bool(diffs or emode_diffs or hf_same != hf_total)


def _health(market, where, transport, store, accounts, batch):
    from adapters.rpc.sources.aave import call
    from adapters.rpc.transport import RpcError

    from .health import account_at, integer_market
    from .params import live_params

    row = store.rows("onchain_market", stream=market.stream)
    if not row or row[0][2] is None or market.version == "v2":
        return [], 0, 0
    oracle = row[0][2]
    reserves = list(market.reserves)
    answers = transport.batch([call(oracle, "getAssetPrice(address)", (r,), where.block) for r in reserves])
    if any(isinstance(a, RpcError) for a in answers):
        return ["  (no oracle prices at that block: health factors not checked)"], 0, 0
    prices = {r: int(a, 16) for r, a in zip(reserves, answers)}
    imarket = integer_market(market, live_params(store, market, where.block), prices, where.block, where.ts)
    calls = [call(market.pool, "getUserAccountData(address)", (acct,), where.block) for acct in accounts]
    data = []
    for i in range(0, len(calls), batch):
        data += transport.batch(calls[i:i + batch])
    lines, same = [], 0
    for acct, raw in zip(accounts, data):
        if isinstance(raw, RpcError):
            lines.append(f"  {acct}: getUserAccountData failed ({raw.message})")
            continue
        w = [int(raw[2 + 64 * i:66 + 64 * i], 16) for i in range(6)]
        a = account_at(market, imarket, acct, where.block)
        ours = (a.total_collateral_base, a.total_debt_base, a.avg_liquidation_threshold_bps, a.avg_ltv_bps, a.health_factor)
        chain = (w[0], w[1], w[3], w[4], w[5])
        if ours == chain:
            same += 1
        else:
            lines.append(f"  {acct} account data: chain {chain}, rebuilt {ours}")
    return lines, same, len(accounts)
