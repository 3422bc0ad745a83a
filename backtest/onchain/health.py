"""An account of an ingested Aave market valued as ``Pool.getUserAccountData`` values it, from the rebuilt
balances, the live parameters and the stored oracle prices (``backtest.protocols.aave.account``)."""

from __future__ import annotations

from ..errors import MbtError
from ..protocols.aave.account import AccountData, EModeCategory, Market as IntMarket, Reserve, UserPosition, account_data
from .aave import Market, debt_index_at, income_at
from .params import LiveParams


def oracle_prices_at(store, market: Market, block: int) -> dict[str, int]:
    """The last stored ``getAssetPrice`` of every reserve at or before ``block`` (raw base units)."""
    return {r: int(p) for r, p in store.rows("onchain_oracle_prices_at", stream=market.stream, block=block)}


def integer_market(market: Market, live: LiveParams, prices: dict[str, int], block: int, ts: int) -> IntMarket:
    reserves = {}
    for r, info in market.reserves.items():
        p = live.reserves[r]
        state = market.state_at(r, block)
        if state is None:
            continue
        price = prices.get(r)
        if price is None:
            raise MbtError(f"block {block}: no oracle price of {info.symbol} stored at or before it (--prices oracle)")
        reserves[info.symbol] = Reserve(info.decimals, price, p.liquidation_threshold, p.liquidation_bonus, p.ltv,
                                        p.protocol_fee, income_at(state, ts), debt_index_at(state, ts, market.version),
                                        info.reserve_id)
    ids = {r: info.reserve_id for r, info in market.reserves.items()}
    cats = {cid: EModeCategory(c.ltv, c.liquidation_threshold, c.liquidation_bonus,
                               collateral_bitmap=sum(1 << ids[a] for a in c.collateral if a in ids),
                               borrowable_bitmap=sum(1 << ids[a] for a in c.borrowable if a in ids))
            for cid, c in live.categories.items()}
    return IntMarket(reserves, cats)


def account_at(market: Market, imarket: IntMarket, account: str, block: int) -> AccountData:
    sym = {r: info.symbol for r, info in market.reserves.items()}
    coll = {sym[r]: market.scaled_at("collateral", r, account, block) for r in market.reserves if sym[r] in imarket.reserves}
    debt = {sym[r]: market.scaled_at("debt", r, account, block) for r in market.reserves if sym[r] in imarket.reserves}
    enabled = frozenset(sym[r] for r in market.reserves if market.collateral_enabled_at(account, r, block))
    user = UserPosition({k: v for k, v in coll.items() if v}, {k: v for k, v in debt.items() if v}, enabled,
                        market.emode_at(account, block))
    return account_data(imarket, user, version=market.version)
