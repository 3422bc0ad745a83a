"""Aave v3 (and v2) logs → rows: a pure function of the raw logs and the market's token map.

PROTOCOLS §1.8–§1.10. Four kinds of rows come out of a chunk of logs, none depending on an earlier chunk:

- **token events** (``aave_token_events``): every ``Mint``, ``Burn`` and ``BalanceTransfer`` of the market's
  aTokens and variable-debt tokens, with the raw integers the token emitted (``value``,
  ``balanceIncrease``, ``index``); which token is which comes from the emitting address (Mint and Burn
  share topic0 between the two kinds).
- **reserve updates** (``aave_reserve_updates``): ``ReserveDataUpdated`` — rates and indices, with the
  block's timestamp (the reserve's ``lastUpdateTimestamp``).
- **pool events** (``aave_pool_events``): supply, withdraw, borrow, repay, collateral switched on/off,
  e-mode set, deficits; and liquidations (``aave_liquidations``).
- **configuration events** (``aave_config_events``): the PoolConfigurator's parameter changes.

Turning token events into scaled balances needs the running balance (``backtest.onchain.aave``); it is done
over the stored rows, so the rows stay a pure, chunk-local function of the logs (``--redecode``).
All integers are Python ints (uint256 never goes through a float).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from functools import cache


@cache
def topic(signature: str) -> bytes:
    from eth_hash.auto import keccak

    return keccak(signature.encode())


#: event name → signature, per version (v2's Pool events and token events have other shapes)
POOL_V3 = {
    "Supply": "Supply(address,address,address,uint256,uint16)",
    "Withdraw": "Withdraw(address,address,address,uint256)",
    "Borrow": "Borrow(address,address,address,uint256,uint8,uint256,uint16)",
    "Repay": "Repay(address,address,address,uint256,bool)",
    "LiquidationCall": "LiquidationCall(address,address,address,uint256,uint256,address,bool)",
    "ReserveDataUpdated": "ReserveDataUpdated(address,uint256,uint256,uint256,uint256,uint256)",
    "ReserveUsedAsCollateralEnabled": "ReserveUsedAsCollateralEnabled(address,address)",
    "ReserveUsedAsCollateralDisabled": "ReserveUsedAsCollateralDisabled(address,address)",
    "UserEModeSet": "UserEModeSet(address,uint8)",
    "DeficitCreated": "DeficitCreated(address,address,uint256)",
    "DeficitCovered": "DeficitCovered(address,address,uint256)",
}
POOL_V2 = {
    "Deposit": "Deposit(address,address,address,uint256,uint16)",
    "Withdraw": "Withdraw(address,address,address,uint256)",
    "Borrow": "Borrow(address,address,address,uint256,uint256,uint256,uint16)",
    "Repay": "Repay(address,address,address,uint256)",
    "LiquidationCall": "LiquidationCall(address,address,address,uint256,uint256,address,bool)",
    "ReserveDataUpdated": "ReserveDataUpdated(address,uint256,uint256,uint256,uint256,uint256)",
    "ReserveUsedAsCollateralEnabled": "ReserveUsedAsCollateralEnabled(address,address)",
    "ReserveUsedAsCollateralDisabled": "ReserveUsedAsCollateralDisabled(address,address)",
}
TOKEN_V3 = {
    "Mint": "Mint(address,address,uint256,uint256,uint256)",
    "Burn": "Burn(address,address,uint256,uint256,uint256)",
    "BalanceTransfer": "BalanceTransfer(address,address,uint256,uint256)",
}
TOKEN_V2 = {
    "Mint": "Mint(address,uint256,uint256)",                         # aToken: from, value, index
    "DebtMint": "Mint(address,address,uint256,uint256)",             # variable debt: from, onBehalfOf, value, index
    "Burn": "Burn(address,address,uint256,uint256)",                 # aToken: from, target, value, index
    "DebtBurn": "Burn(address,uint256,uint256)",                     # variable debt: user, amount, index
    "BalanceTransfer": "BalanceTransfer(address,address,uint256,uint256)",
}
CONFIG = {
    "ReserveInitialized": "ReserveInitialized(address,address,address,address,address)",
    "CollateralConfigurationChanged": "CollateralConfigurationChanged(address,uint256,uint256,uint256)",
    "ReserveFactorChanged": "ReserveFactorChanged(address,uint256,uint256)",
    "LiquidationProtocolFeeChanged": "LiquidationProtocolFeeChanged(address,uint256,uint256)",
    "EModeCategoryAdded": "EModeCategoryAdded(uint8,uint256,uint256,uint256,address,string)",
    "AssetCollateralInEModeChanged": "AssetCollateralInEModeChanged(address,uint8,bool)",
    "AssetBorrowableInEModeChanged": "AssetBorrowableInEModeChanged(address,uint8,bool)",
}


ORACLE = {
    "AssetSourceUpdated": "AssetSourceUpdated(address,address)",
}


def events(version: str) -> dict[str, str]:
    """Every event the source asks ``eth_getLogs`` for, name → signature (v3 names for v3, v2's for v2)."""
    if version == "v2":
        return {**POOL_V2, **TOKEN_V2, **CONFIG, **ORACLE}
    return {**POOL_V3, **TOKEN_V3, **CONFIG, **ORACLE}


def topic0s(version: str) -> list[str]:
    return sorted({"0x" + topic(sig).hex() for sig in events(version).values()})


@dataclass(frozen=True)
class Token:
    """One aToken or variable-debt token of the market."""

    address: str
    reserve: str
    side: str          # "collateral" (aToken) or "debt" (variable-debt token)


@dataclass
class Decoded:
    """Rows of one batch of logs, as lists of dicts (the source stages them as Arrow tables)."""

    token_events: list[dict[str, Any]] = field(default_factory=list)
    reserve_updates: list[dict[str, Any]] = field(default_factory=list)
    pool_events: list[dict[str, Any]] = field(default_factory=list)
    liquidations: list[dict[str, Any]] = field(default_factory=list)
    config_events: list[dict[str, Any]] = field(default_factory=list)
    oracle_prices: list[dict[str, Any]] = field(default_factory=list)   # filled by the source (views, not logs)
    skipped: int = 0   # logs of other contracts or other events (none when the filter was the source's)


@cache
def _names(version: str) -> dict[str, str]:
    return {"0x" + topic(sig).hex(): name for name, sig in events(version).items()}


def _addr(word: str) -> str:
    """The address in a 32-byte hex word (a topic, or a slice of data), lower case."""
    return "0x" + word[-40:].lower()


def _words(data: str) -> list[int]:
    """The 32-byte words of ``0x``-prefixed hex data as ints."""
    end = len(data) - (len(data) - 2) % 64
    return [int(data[i:i + 64], 16) for i in range(2, end, 64)]


def _word(data: str, k: int) -> str:
    """Word ``k`` of hex data, as 64 hex digits."""
    return data[2 + 64 * k:2 + 64 * (k + 1)]


def _string(data: str, offset: int) -> str:
    at = 2 + 2 * offset
    n = int(data[at:at + 64], 16)
    return bytes.fromhex(data[at + 64:at + 64 + 2 * n]).decode("utf-8", "replace")


def decode(logs: list[dict[str, Any]], *, version: str, pool: str, configurator: str | None,
           tokens: Mapping[str, Token], timestamps: Mapping[int, int], oracle: str | None = None) -> Decoded:
    """Rows of ``logs``, shaped as ``eth_getLogs`` returns them (``blockNumber``, ``logIndex``,
    ``transactionHash``, ``address``, ``topics``, ``data``: ``0x`` hex strings, any case).

    ``tokens`` maps lower-case token addresses to what they are; ``timestamps`` gives the block timestamp of
    every block with a ``ReserveDataUpdated``. Raises ``ValueError`` naming the log when one is malformed.
    """
    v2 = version == "v2"
    names = _names(version)
    out = Decoded()
    pool = pool.lower()
    configurator = configurator.lower() if configurator else None
    oracle = oracle.lower() if oracle else None
    for log in logs:
        try:
            _one(log, names, v2, pool, configurator, oracle, tokens, timestamps, out)
        except (IndexError, KeyError, ValueError) as exc:
            raise ValueError(f"log {log['blockNumber']}:{log['logIndex']} of {log['address']} does not decode as an "
                             f"Aave {version} event ({type(exc).__name__}: {exc})") from None
    return out


def _one(log, names, v2, pool, configurator, oracle, tokens, timestamps, out: Decoded) -> None:
    topics = log["topics"]
    if not topics:
        out.skipped += 1
        return
    name = names.get(topics[0].lower())
    address = log["address"].lower()
    block = int(log["blockNumber"], 16)
    where = {"block": block, "log_index": int(log["logIndex"], 16), "tx_hash": log["transactionHash"].lower()}
    data = log["data"]
    w = _words(data)
    token = tokens.get(address)
    if token is not None and name in ("Mint", "Burn", "BalanceTransfer", "DebtMint", "DebtBurn"):
        row = {**where, "token": address, "reserve": token.reserve, "side": token.side}
        if name == "BalanceTransfer":
            row.update(kind="transfer", account=_addr(topics[1]), other=_addr(topics[2]), value=w[0],
                       balance_increase=0, idx=w[1])
        elif not v2 and name == "Mint":
            row.update(kind="mint", account=_addr(topics[2]), other=_addr(topics[1]), value=w[0],
                       balance_increase=w[1], idx=w[2])
        elif not v2 and name == "Burn":
            row.update(kind="burn", account=_addr(topics[1]), other=_addr(topics[2]), value=w[0],
                       balance_increase=w[1], idx=w[2])
        elif name == "Mint":      # v2 aToken: Mint(from indexed, value, index)
            row.update(kind="mint", account=_addr(topics[1]), other=_addr(topics[1]), value=w[0],
                       balance_increase=0, idx=w[1])
        elif name == "DebtMint":  # v2 debt: Mint(from indexed, onBehalfOf indexed, value, index)
            row.update(kind="mint", account=_addr(topics[2]), other=_addr(topics[1]), value=w[0],
                       balance_increase=0, idx=w[1])
        elif name == "Burn":      # v2 aToken: Burn(from indexed, target indexed, value, index)
            row.update(kind="burn", account=_addr(topics[1]), other=_addr(topics[2]), value=w[0],
                       balance_increase=0, idx=w[1])
        else:                     # v2 debt: Burn(user indexed, amount, index)
            row.update(kind="burn", account=_addr(topics[1]), other=_addr(topics[1]), value=w[0],
                       balance_increase=0, idx=w[1])
        if (token.side == "collateral") != (name in ("Mint", "Burn", "BalanceTransfer")) and v2:
            out.skipped += 1  # a v2 debt-token shape from an aToken or the reverse: not a balance event
            return
        out.token_events.append(row)
        return
    if address == pool and name is not None:
        if name == "ReserveDataUpdated":
            out.reserve_updates.append({**where, "reserve": _addr(topics[1]), "liquidity_rate": w[0],
                                        "stable_rate": w[1], "variable_rate": w[2], "liquidity_index": w[3],
                                        "variable_index": w[4], "ts": int(timestamps[block]),
                                        "origin": "ReserveDataUpdated"})
            return
        if name == "LiquidationCall":
            out.liquidations.append({**where, "collateral_asset": _addr(topics[1]), "debt_asset": _addr(topics[2]),
                                     "user": _addr(topics[3]), "debt_to_cover": w[0], "collateral_amount": w[1],
                                     "liquidator": _addr(_word(data, 2)),
                                     "receive_atoken": bool(w[3])})
            return
        row = {**where, "event": name, "reserve": None, "user": None, "other": None, "amount": None,
               "flag": None, "category": None}
        if name in ("Supply", "Deposit"):
            row.update(reserve=_addr(topics[1]), user=_addr(topics[2]), other=_addr(_word(data, 0)), amount=w[1])
        elif name == "Withdraw":
            row.update(reserve=_addr(topics[1]), user=_addr(topics[2]), other=_addr(topics[3]), amount=w[0])
        elif name == "Borrow":
            row.update(reserve=_addr(topics[1]), user=_addr(topics[2]), other=_addr(_word(data, 0)), amount=w[1],
                       category=w[2])
        elif name == "Repay":
            row.update(reserve=_addr(topics[1]), user=_addr(topics[2]), other=_addr(topics[3]), amount=w[0],
                       flag=bool(w[1]) if len(w) > 1 else None)
        elif name in ("ReserveUsedAsCollateralEnabled", "ReserveUsedAsCollateralDisabled"):
            row.update(reserve=_addr(topics[1]), user=_addr(topics[2]),
                       flag=name.endswith("Enabled"))
        elif name == "UserEModeSet":
            row.update(user=_addr(topics[1]), category=w[0])
        elif name == "DeficitCreated":
            row.update(user=_addr(topics[1]), reserve=_addr(topics[2]), amount=w[0])
        elif name == "DeficitCovered":
            row.update(reserve=_addr(topics[1]), other=_addr(_word(data, 0)), amount=w[1])
        out.pool_events.append(row)
        return
    if oracle is not None and address == oracle and name == "AssetSourceUpdated":
        out.config_events.append({**where, "event": name, "asset": _addr(topics[1]), "category": None, "v1": None,
                                  "v2": None, "v3": None, "flag": None, "label": None, "address": _addr(topics[2])})
        return
    if configurator is not None and address == configurator and name in CONFIG:
        row = {**where, "event": name, "asset": None, "category": None, "v1": None, "v2": None, "v3": None,
               "flag": None, "label": None, "address": None}
        if name == "ReserveInitialized":
            row.update(asset=_addr(topics[1]), address=_addr(topics[2]), label=_addr(_word(data, 1)))
        elif name == "CollateralConfigurationChanged":
            row.update(asset=_addr(topics[1]), v1=w[0], v2=w[1], v3=w[2])
        elif name in ("ReserveFactorChanged", "LiquidationProtocolFeeChanged"):
            row.update(asset=_addr(topics[1]), v1=w[0], v2=w[1])
        elif name == "EModeCategoryAdded":
            row.update(category=int(topics[1], 16), v1=w[0], v2=w[1], v3=w[2],
                       address=_addr(_word(data, 3)), label=_string(data, w[4]))
        else:  # Asset{Collateral,Borrowable}InEModeChanged(asset indexed, categoryId, flag)
            row.update(asset=_addr(topics[1]), category=w[0], flag=bool(w[1]))
        out.config_events.append(row)
        return
    out.skipped += 1
