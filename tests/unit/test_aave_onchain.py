"""The Aave log decoder and ledger on synthesized logs: v2's events and half-up rounding, v3.5+'s one-way
rounding solved exactly, and the receiveAToken ``updateState`` the Pool makes without an event."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.rpc.aave_logs import POOL_V2, POOL_V3, TOKEN_V2, TOKEN_V3, Token, decode, topic
from backtest.onchain.aave import Reserve, _solve, build_market

RAY = 10**27
YEAR = 365 * 86400
POOL = "0x" + "11" * 20
RES = "0x" + "aa" * 20
A_TOKEN = "0x" + "a1" * 20
D_TOKEN = "0x" + "d1" * 20
ALICE = "0x" + "0a" * 20
BOB = "0x" + "0b" * 20
TOKENS = {A_TOKEN: Token(A_TOKEN, RES, "collateral"), D_TOKEN: Token(D_TOKEN, RES, "debt")}


def w(*values: int) -> str:
    return "".join(format(v, "064x") for v in values)


def a(address: str) -> str:
    return "0x" + address[2:].rjust(64, "0")


def log(n: int, block: int, address: str, signature: str, topics: list[str], data: str) -> dict:
    return {"blockNumber": hex(block), "logIndex": hex(n), "transactionHash": "0x" + format(block, "064x"),
            "address": address, "topics": ["0x" + topic(signature).hex(), *topics], "data": "0x" + data}


def half_up_mul(x: int, y: int) -> int:
    return (x * y + RAY // 2) // RAY


def half_up_div(x: int, y: int) -> int:
    return (x * RAY + y // 2) // y


def rows(decoded):
    tok = [(e["block"], e["log_index"], e["token"], e["reserve"], e["side"], e["kind"], e["account"], e["other"],
            e["value"], e["balance_increase"], e["idx"]) for e in decoded.token_events]
    upd = [(u["block"], u["log_index"], u["reserve"], u["liquidity_rate"], u["variable_rate"], u["liquidity_index"],
            u["variable_index"], u["ts"]) for u in decoded.reserve_updates]
    liq = [(q["block"], q["log_index"], q["user"], q["collateral_asset"], q["debt_asset"], q["receive_atoken"])
           for q in decoded.liquidations]
    pool = [(p["block"], p["log_index"], p["event"], p["reserve"], p["user"], p["flag"], p["category"])
            for p in decoded.pool_events]
    return tok, upd, liq, pool


def test_v2_logs_give_half_up_scaled_balances_and_v2_compounding() -> None:
    li, vi = 1_020_000_000_000_000_000_000_000_000, 1_040_000_000_000_000_000_000_000_000
    lr, vr = 50_000_000_000_000_000_000_000_000, 100_000_000_000_000_000_000_000_000
    logs = [
        log(0, 10, POOL, POOL_V2["ReserveDataUpdated"], [a(RES)], w(lr, 0, vr, li, vi)),
        log(1, 10, A_TOKEN, TOKEN_V2["Mint"], [a(ALICE)], w(100 * 10**18, li)),
        log(2, 10, POOL, POOL_V2["Deposit"], [a(RES), a(ALICE), "0x" + "0" * 64], w(int(ALICE, 16), 100 * 10**18)),
        log(3, 10, POOL, POOL_V2["ReserveUsedAsCollateralEnabled"], [a(RES), a(ALICE)], ""),
        log(4, 11, D_TOKEN, TOKEN_V2["DebtMint"], [a(ALICE), a(ALICE)], w(50 * 10**18, vi)),
        log(5, 12, A_TOKEN, TOKEN_V2["BalanceTransfer"], [a(ALICE), a(BOB)], w(10 * 10**18, li)),
        log(6, 13, D_TOKEN, TOKEN_V2["DebtBurn"], [a(ALICE)], w(20 * 10**18, vi)),
    ]
    decoded = decode(logs, version="v2", pool=POOL, configurator=None, tokens=TOKENS, timestamps={10: 1_000})
    assert decoded.skipped == 0 and len(decoded.token_events) == 4
    assert [p["event"] for p in decoded.pool_events] == ["Deposit", "ReserveUsedAsCollateralEnabled"]
    m = build_market("1:" + POOL, "v2", POOL, [Reserve(RES, "X", 18, A_TOKEN, D_TOKEN, 0)], *rows(decoded), {})
    s_alice = half_up_div(100 * 10**18, li) - half_up_div(10 * 10**18, li)
    s_bob = half_up_div(10 * 10**18, li)
    s_debt = half_up_div(50 * 10**18, vi) - half_up_div(20 * 10**18, vi)
    assert m.scaled_at("collateral", RES, ALICE, 13) == s_alice
    assert m.scaled_at("collateral", RES, BOB, 13) == s_bob
    assert m.scaled_at("debt", RES, ALICE, 13) == s_debt
    assert m.scaled_at("debt", RES, ALICE, 10) == 0 and m.collateral_enabled_at(ALICE, RES, 10)
    # a day later: linear supply interest, v2's per-second binomial for debt, half-up rayMul
    t = 1_000 + 86_400
    income = half_up_mul(RAY + lr * 86_400 // YEAR, li)
    r = vr // YEAR
    n = 86_400
    comp = RAY + r * n + n * (n - 1) * half_up_mul(r, r) // 2 + n * (n - 1) * (n - 2) * half_up_mul(half_up_mul(r, r), r) // 6
    assert m.balance_at("collateral", RES, ALICE, 13, t) == half_up_mul(s_alice, income)
    assert m.balance_at("collateral", RES, BOB, 13, t) == half_up_mul(s_bob, income)
    assert m.balance_at("debt", RES, ALICE, 13, t) == half_up_mul(s_debt, half_up_mul(comp, vi))
    # exact numbers for the record (100 − 10 supplied at 1.02, held a day at 5 %/yr)
    assert m.balance_at("collateral", RES, ALICE, 13, 1_000) == 90 * 10**18


def test_v3_directional_mint_burn_and_receive_atoken_update_state() -> None:
    li0 = 1_010_000_000_000_000_000_000_000_123
    vi0 = 1_030_000_000_000_000_000_000_000_456
    lr, vr = 40_000_000_000_000_000_000_000_000, 80_000_000_000_000_000_000_000_000

    def floor_b(s, i):
        return s * i // RAY

    logs = [log(0, 5, POOL, POOL_V3["ReserveDataUpdated"], [a(RES)], w(lr, 0, vr, li0, vi0))]
    # alice supplies 1,000.000001 X: the contract took a scaled amount; the event says value and interest 0
    supplied = 1_000_000_001_000_000_000_000
    s = -((-supplied * RAY) // li0)   # smallest scaled amount whose floor-balance reaches `supplied`
    assert floor_b(s, li0) == supplied
    logs.append(log(1, 5, A_TOKEN, TOKEN_V3["Mint"], [a(ALICE), a(ALICE)], w(supplied, 0, li0)))
    # a liquidation with receiveAToken at block 6 (one hour later): the collateral reserve is updated
    # without ReserveDataUpdated; then alice's aTokens move to bob at the new index
    t6 = 10_000 + 3_600
    li1 = half_up_mul(RAY + lr * 3_600 // YEAR, li0)
    moved = s // 3
    logs.append(log(2, 6, A_TOKEN, TOKEN_V3["BalanceTransfer"], [a(ALICE), a(BOB)], w(moved, li1)))
    logs.append(log(3, 6, POOL, POOL_V3["LiquidationCall"], [a(RES), a(RES), a(ALICE)],
                    w(1, 2, int(BOB, 16), 1)))
    decoded = decode(logs, version="v3", pool=POOL, configurator=None, tokens=TOKENS, timestamps={5: 10_000, 6: t6})
    m = build_market("1:" + POOL, "v3.7", POOL, [Reserve(RES, "X", 18, A_TOKEN, D_TOKEN, 0)], *rows(decoded),
                     {6: t6})
    assert m.scaled_at("collateral", RES, ALICE, 5) == s
    assert m.scaled_at("collateral", RES, ALICE, 6) == s - moved and m.scaled_at("collateral", RES, BOB, 6) == moved
    state = m.state_at(RES, 6)
    assert (state.origin, state.ts, state.liquidity_index, state.liquidity_rate) == ("updateState", t6, li1, lr)
    assert state.variable_index == vi0          # no debt in the reserve: the borrow index stays
    assert m.balance_at("collateral", RES, BOB, 6, t6) == floor_b(moved, li1)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**30), st.integers(1, 10**26), st.integers(RAY, 3 * RAY), st.booleans())
def test_solved_scaled_amount_reproduces_the_emitted_amount(scaled: int, amount: int, index: int, debt: bool) -> None:
    def B(x):
        return -((-x * index) // RAY) if debt else x * index // RAY

    # mint: the contract adds some scaled a; the event's amount is B(S+a) − B(S); solving gives a back
    a_true = amount
    target = B(scaled + a_true) - B(scaled)
    assert _solve(scaled, target, index, True, debt) == a_true
    # burn of part of the balance
    total = scaled + a_true
    target = B(total) - B(total - a_true)
    assert _solve(total, target, index, False, debt) == a_true
