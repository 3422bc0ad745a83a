"""An Aave market rebuilt from its stored logs: exact scaled balances, reserve indices, flags, positions.

Input: the rows ``mbt ingest rpc --source aave-v3|aave-v2`` stored (``sql/schema_aave.sql``). Everything
here is integer arithmetic on Python ints with the version's rounding (PROTOCOLS §1.8–§1.10,
``backtest.protocols.aave``):

- **Scaled balances** per (token, account) from the tokens' own events, in chain order. From 3.5 on (one-way
  rounding) the scaled amount ``a`` of a ``Mint`` is the unique one with ``B(S+a) − B(S) = value −
  balanceIncrease`` (``B(x)`` = ``floor(x·index/RAY)`` for aTokens, ``ceil`` for debt tokens; negative: a
  burn smaller than the accrued interest), of a ``Burn`` the one with ``B(S) − B(S−a) = value +
  balanceIncrease``; before 3.5 and in v2 it is ``rayDiv(amount, index)``. ``BalanceTransfer`` moves
  ``value`` scaled units (v3) or ``rayDiv(value, index)`` (v2).
- **Reserve state** from ``ReserveDataUpdated``, plus the update the Pool makes without that event: a
  liquidation with ``receiveAToken`` runs ``updateState`` on the collateral reserve (new indices, new
  ``lastUpdateTimestamp``, rates unchanged) — applied here from the previous state.
- **Balances at a block** = scaled × the index at that block's timestamp, extrapolated with the protocol's
  linear (supply) and compounded (debt) formulas: ``aToken.balanceOf`` / ``variableDebtToken.balanceOf``.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..errors import MbtError
from ..protocols.aave.fixedpoint import RAY, a_token_balance, ray_div, ray_mul, v_token_balance
from ..protocols.aave.interest import compounded_interest, linear_interest
from ..protocols.aave.versions import Rules, resolve


@dataclass(frozen=True)
class ReserveState:
    block: int
    ts: int
    liquidity_rate: int
    variable_rate: int
    liquidity_index: int
    variable_index: int
    origin: str


@dataclass(frozen=True)
class Reserve:
    reserve: str
    symbol: str
    decimals: int
    a_token: str
    debt_token: str
    reserve_id: int


def income_at(state: ReserveState, ts: int) -> int:
    """``getReserveNormalizedIncome`` at ``ts``: ``rayMul(1 + rate·dt/year, liquidityIndex)``."""
    dt = ts - state.ts
    if dt <= 0 or state.liquidity_rate == 0:
        return state.liquidity_index
    return ray_mul(linear_interest(state.liquidity_rate, dt), state.liquidity_index)


def debt_index_at(state: ReserveState, ts: int, version: str) -> int:
    """``getReserveNormalizedVariableDebt`` at ``ts``: ``rayMul(compounded interest, variableBorrowIndex)``."""
    dt = ts - state.ts
    if dt <= 0 or state.variable_rate == 0:
        return state.variable_index
    return ray_mul(compounded_interest(state.variable_rate, dt, version=version), state.variable_index)


def _solve(scaled: int, target: int, index: int, up: bool, debt: bool) -> int:
    """The scaled amount ``a`` ≥ 0 with ``B(S+a) − B(S) = target`` (``up``) or ``B(S) − B(S−a) = target``."""
    def B(x: int) -> int:
        return -((-x * index) // RAY) if debt else x * index // RAY

    def first_at_least(y: int) -> int:  # smallest x with B(x) ≥ y (B strictly increasing: index ≥ RAY)
        if debt:  # ceil(x·I/R) ≥ y  ⟺  x·I > (y−1)·R
            return ((y - 1) * RAY) // index + 1 if y > 0 else 0
        return -((-y * RAY) // index) if y > 0 else 0

    b0 = B(scaled)
    want = b0 + target if up else b0 - target
    x = first_at_least(want)
    if B(x) != want or x < 0:
        raise ValueError(f"no scaled amount gives {target} at index {index} from scaled balance {scaled}")
    return x - scaled if up else scaled - x


@dataclass
class Market:
    """The decoded rows of one stream, replayed into histories that answer "what at block N"."""

    stream: str
    version: str
    pool: str
    reserves: dict[str, Reserve]
    #: (side, reserve, account) → blocks and scaled balances after each change (parallel lists)
    scaled: dict[tuple[str, str, str], tuple[list[int], list[int]]] = field(default_factory=dict)
    #: reserve → blocks and states (parallel lists)
    states: dict[str, tuple[list[int], list[ReserveState]]] = field(default_factory=dict)
    #: (account, reserve) → blocks and "used as collateral" flags
    collateral_flag: dict[tuple[str, str], tuple[list[int], list[bool]]] = field(default_factory=dict)
    #: account → blocks and e-mode categories
    emode: dict[str, tuple[list[int], list[int]]] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)

    @property
    def rules(self) -> Rules:
        return resolve(self.version)

    # -- at a block ----------------------------------------------------------------------------
    def state_at(self, reserve: str, block: int) -> ReserveState | None:
        blocks, states = self.states.get(reserve, ([], []))
        i = bisect.bisect_right(blocks, block) - 1
        return states[i] if i >= 0 else None

    def scaled_at(self, side: str, reserve: str, account: str, block: int) -> int:
        blocks, values = self.scaled.get((side, reserve, account), ([], []))
        i = bisect.bisect_right(blocks, block) - 1
        return values[i] if i >= 0 else 0

    def balance_at(self, side: str, reserve: str, account: str, block: int, ts: int) -> int:
        """``balanceOf`` of the reserve's aToken (``collateral``) or variable-debt token (``debt``) at ``block``."""
        s = self.scaled_at(side, reserve, account, block)
        if s == 0:
            return 0
        state = self.state_at(reserve, block)
        if state is None:
            raise MbtError(f"reserve {reserve}: no ReserveDataUpdated at or before block {block}")
        if side == "collateral":
            return a_token_balance(s, income_at(state, ts), self.rules)
        return v_token_balance(s, debt_index_at(state, ts, self.version), self.rules)

    def collateral_enabled_at(self, account: str, reserve: str, block: int) -> bool:
        blocks, flags = self.collateral_flag.get((account, reserve), ([], []))
        i = bisect.bisect_right(blocks, block) - 1
        return flags[i] if i >= 0 else False

    def emode_at(self, account: str, block: int) -> int:
        blocks, cats = self.emode.get(account, ([], []))
        i = bisect.bisect_right(blocks, block) - 1
        return cats[i] if i >= 0 else 0

    def accounts(self) -> list[str]:
        return sorted({acct for (_, _, acct) in self.scaled})

    def positions_at(self, block: int, ts: int) -> list[dict[str, Any]]:
        """One row per (account, reserve) with a non-zero balance at ``block`` (raw integers)."""
        out = []
        by_account: dict[str, set[str]] = defaultdict(set)
        for (side, reserve, account), (blocks, values) in self.scaled.items():
            i = bisect.bisect_right(blocks, block) - 1
            if i >= 0 and values[i] != 0:
                by_account[account].add(reserve)
        for account in sorted(by_account):
            for reserve in sorted(by_account[account], key=lambda r: self.reserves[r].reserve_id):
                c = self.balance_at("collateral", reserve, account, block, ts)
                d = self.balance_at("debt", reserve, account, block, ts)
                if c == 0 and d == 0:
                    continue
                info = self.reserves[reserve]
                out.append({"account": account, "asset": info.symbol, "reserve": reserve, "decimals": info.decimals,
                            "collateral_raw": c, "debt_raw": d,
                            "collateral_enabled": self.collateral_enabled_at(account, reserve, block),
                            "emode": self.emode_at(account, block), "market": self.pool})
        return out


def build_market(stream: str, version: str, pool: str, reserves: list[Reserve], token_events: list[tuple],
                 updates: list[tuple], liquidations: list[tuple], pool_events: list[tuple],
                 timestamps: dict[int, int]) -> Market:
    """Replay the stored rows (each list in chain order) into a :class:`Market`.

    token_events : (block, log_index, token, reserve, side, kind, account, other, value, balance_increase, idx)
    updates : (block, log_index, reserve, liquidity_rate, variable_rate, liquidity_index, variable_index, ts)
    liquidations : (block, log_index, user, collateral_asset, debt_asset, receive_atoken)
    pool_events : (block, log_index, event, reserve, user, flag, category)
    timestamps : block → unix seconds (for the blocks of liquidations with receiveAToken)
    """
    rules = resolve(version)
    m = Market(stream, version, pool, {r.reserve: r for r in reserves})
    merged: list[tuple] = [(e[0], e[1], 0, e) for e in token_events]
    merged += [(u[0], u[1], 1, u) for u in updates]
    merged += [(q[0], q[1], 2, q) for q in liquidations]
    merged += [(p[0], p[1], 3, p) for p in pool_events]
    merged.sort(key=lambda x: (x[0], x[1]))
    current: dict[tuple[str, str, str], int] = defaultdict(int)
    debt_total: dict[str, int] = defaultdict(int)
    last_state: dict[str, ReserveState] = {}

    def put_state(reserve: str, state: ReserveState) -> None:
        last_state[reserve] = state
        blocks, states = m.states.setdefault(reserve, ([], []))
        if blocks and blocks[-1] == state.block:
            states[-1] = state
        else:
            blocks.append(state.block)
            states.append(state)

    def put_scaled(key: tuple[str, str, str], block: int, value: int) -> None:
        if value < 0:
            raise MbtError(f"{key[1]} {key[0]} of {key[2]}: the scaled balance would go below zero at block {block}")
        current[key] = value
        blocks, values = m.scaled.setdefault(key, ([], []))
        if blocks and blocks[-1] == block:
            values[-1] = value
        else:
            blocks.append(block)
            values.append(value)

    for block, _, kind, row in merged:
        if kind == 0:
            _, _, _, reserve, side, what, account, other, value, bi, idx = row
            key = (side, reserve, account)
            s = current[key]
            debt = side == "debt"
            if what == "transfer":
                amount = value if not rules.v2 else ray_div(value, idx)
                to = (side, reserve, other)
                put_scaled(key, block, s - amount)
                put_scaled(to, block, current[to] + amount)
                continue
            try:
                if rules.v2:
                    delta = ray_div(value, idx) if what == "mint" else -ray_div(value, idx)
                elif rules.directional:
                    if what == "mint":
                        target = value - bi
                        delta = _solve(s, target, idx, True, debt) if target >= 0 else -_solve(s, -target, idx, False, debt)
                    else:
                        delta = -_solve(s, value + bi, idx, False, debt)
                else:
                    if what == "mint":
                        target = value - bi
                        delta = ray_div(target, idx) if target >= 0 else -ray_div(-target, idx)
                    else:
                        delta = -ray_div(value + bi, idx)
            except ValueError as exc:
                raise MbtError(f"block {block}: {side} token of {reserve} for {account}: {exc}") from None
            if debt:
                debt_total[reserve] += delta
            put_scaled(key, block, s + delta)
        elif kind == 1:
            _, _, reserve, lr, vr, li, vi, ts = row
            put_state(reserve, ReserveState(block, int(ts), lr, vr, li, vi, "ReserveDataUpdated"))
        elif kind == 2:
            _, _, user, coll, debt_asset, receive = row
            prev = last_state.get(coll)
            ts = timestamps.get(block)
            if receive and prev is not None and ts is not None and prev.ts < ts:
                # updateState on the collateral reserve without a ReserveDataUpdated (rates unchanged)
                li = income_at(prev, ts)
                vi = debt_index_at(prev, ts, version) if debt_total[coll] > 0 else prev.variable_index
                put_state(coll, ReserveState(block, ts, prev.liquidity_rate, prev.variable_rate, li, vi, "updateState"))
        else:
            _, _, event, reserve, user, flag, category = row
            if event in ("ReserveUsedAsCollateralEnabled", "ReserveUsedAsCollateralDisabled"):
                blocks, flags = m.collateral_flag.setdefault((user, reserve), ([], []))
                if blocks and blocks[-1] == block:
                    flags[-1] = bool(flag)
                else:
                    blocks.append(block)
                    flags.append(bool(flag))
            elif event == "UserEModeSet":
                blocks, cats = m.emode.setdefault(user, ([], []))
                if blocks and blocks[-1] == block:
                    cats[-1] = int(category)
                else:
                    blocks.append(block)
                    cats.append(int(category))
    return m


def load_market(store, stream: str) -> Market:
    """The :class:`Market` of ``stream`` from the store (the rows the ingest stored)."""
    row = store.rows("onchain_market", stream=stream)
    if not row:
        raise MbtError(f"no Aave market {stream} in this database (ingest it with mbt ingest rpc --source aave-v3)")
    version, pool, _ = row[0]
    reserves = [Reserve(*r) for r in store.rows("onchain_reserves", stream=stream)]
    tokens = store.rows("onchain_token_events", stream=stream)
    updates = store.rows("onchain_reserve_updates", stream=stream)
    liqs = store.rows("onchain_liquidation_rows", stream=stream)
    pool_events = store.rows("onchain_flag_events", stream=stream)
    chain_id = int(stream.split(":", 1)[0])
    blocks = sorted({q[0] for q in liqs if q[5]})
    timestamps = dict(store.rows("onchain_block_times", chain_id=chain_id, blocks=blocks)) if blocks else {}
    return build_market(stream, version, pool, reserves, tokens, updates, liqs, pool_events, timestamps)
