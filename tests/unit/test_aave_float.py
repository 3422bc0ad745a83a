"""Float reference of Aave liquidations (``backtest.protocols.aave_float``) held to the exact integer layer.

Property tests draw random one-collateral accounts with one or two debts and compare the float call with
:func:`backtest.protocols.aave.liquidation_call` of the same version. Bounds: the collateral balance is at
least 1e15 raw units and worth at least $100,000, the debt balance at least 1e11 raw units, the HF above
0.05, and the liquidator offers at least a quarter of the debt; so the debt repaid is ≥ ~1e10 raw units,
the collateral seized ≥ ~1e13 and the protocol fee ≥ ~1e10, and the one or two units that each of the
contracts' floors and half-ups can move are below 1e-9 relative. Draws whose exact values sit within 1e-8
of a threshold (HF 1.0 / 0.95, $2,000, $1,000, half of the total debt, "bonus collateral > balance") are
skipped: there rounding may legitimately pick the other branch.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

from backtest.protocols.aave import AaveRevert, Market, Reserve, UserPosition, account_data, liquidation_call, resolve
from backtest.protocols.aave_float import (
    DUST_REDUCE,
    DUST_REVERT,
    RULE_V2,
    RULE_V3_HF,
    RULE_V33,
    RULE_V34,
    account_totals_float,
    close_factor_rule,
    health_factor_float,
    liquidation_call_float,
    max_debt_to_cover_float,
)

TOL = 1e-9
MARGIN = 1e-8
MIN_RAW_COLLATERAL = 10**15
MIN_RAW_DEBT = 10**11


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b)) if a or b else 0.0


# --- worked example and unit cases ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "price", "expected"),
    [
        ("v3.3", 1650, (7_000.0, 4.454545454545454545, 0.021212121212121212)),
        ("v3.3", 1500, (14_000.0, 9.8, 0.046666666666666667)),
        ("v3.3", 1300, (12_380.952380952381, 10.0, 0.047619047619047619)),
        ("v3.2", 1500, (14_000.0, 9.8, 0.046666666666666667)),
        ("v2", 1500, (7_000.0, 4.9, 0.0)),
    ],
)
def test_worked_example_in_float(version: str, price: float, expected: tuple[float, float, float]) -> None:
    fee = 0.0 if version == "v2" else 0.10
    weighted, _, debt = account_totals_float([10.0], [price], [0.83], [14_000.0], [1.0])
    hf = health_factor_float(weighted, debt)
    out = liquidation_call_float(version, 14_000.0, 1.0, 10.0, price, 0.05, fee, hf, debt)
    assert all(rel(a, b) < 1e-12 for a, b in zip(out, expected, strict=True)), out


def test_rule_codes_and_health_factor() -> None:
    assert close_factor_rule("v2") == RULE_V2 and close_factor_rule("v3.1") == RULE_V3_HF
    assert close_factor_rule("v3.3") == RULE_V33 and close_factor_rule("v3") == RULE_V34
    assert close_factor_rule(RULE_V34) == RULE_V34
    with pytest.raises(ValueError):
        close_factor_rule("v4")
    with pytest.raises(ValueError):
        close_factor_rule(7)
    assert health_factor_float(1.0, 0.0) == math.inf
    assert account_totals_float([1.0, 5.0], [10.0, 1.0], [0.8, 0.0], [2.0], [4.0]) == (8.0, 10.0, 8.0)


def test_close_factor_rules() -> None:
    # v3.3+: 50 % of the total debt only for big legs above HF 0.95 when the reserve is over half of it.
    assert max_debt_to_cover_float(RULE_V34, 0.97, 6_000.0, 10_000.0, 8_000.0, 1.0) == 5_000.0
    assert max_debt_to_cover_float(RULE_V34, 0.97, 4_000.0, 10_000.0, 8_000.0, 1.0) == 4_000.0
    assert max_debt_to_cover_float(RULE_V34, 0.95, 6_000.0, 10_000.0, 8_000.0, 1.0) == 6_000.0
    assert max_debt_to_cover_float(RULE_V34, 0.97, 6_000.0, 10_000.0, 1_999.0, 1.0) == 6_000.0
    assert max_debt_to_cover_float(RULE_V3_HF, 0.97, 6_000.0, 10_000.0, 8_000.0, 1.0) == 3_000.0
    assert max_debt_to_cover_float(RULE_V3_HF, 0.95, 6_000.0, 10_000.0, 8_000.0, 1.0) == 6_000.0
    assert max_debt_to_cover_float(RULE_V2, 0.5, 6_000.0, 10_000.0, 8_000.0, 1.0) == 3_000.0


def test_dust_modes() -> None:
    # 2.8 WETH at $2,000 vs 2,500 USDC + 2,000 DAI: the 3.3+ cap ($2,250) would leave $250 of USDC.
    hf = 5_600.0 * 0.8 / 4_500.0
    args = (2_500.0, 1.0, 2.8, 2_000.0, 0.05, 0.1, hf, 4_500.0)
    assert liquidation_call_float(RULE_V34, *args, dust=DUST_REVERT) == (0.0, 0.0, 0.0)
    repaid, seized, fee = liquidation_call_float(RULE_V34, *args, dust=DUST_REDUCE)
    assert repaid == pytest.approx(1_500.0) and seized == pytest.approx(1_500.0 * 1.05 / 2_000.0)
    assert fee == pytest.approx(seized * 0.05 / 1.05 * 0.1)
    # $1,100 of collateral: at most $100 of it may go, i.e. 100/1.05 of debt.
    small = (2_500.0, 1.0, 0.55, 2_000.0, 0.05, 0.0, 0.97, 4_500.0)
    assert liquidation_call_float(RULE_V34, *small, debt_to_cover=500.0, dust=DUST_REDUCE)[0] == pytest.approx(
        100.0 / 1.05)
    # Less than $1,000 of collateral: shrinking cannot help (only taking all of it would; pass inf for that).
    tiny = (2_500.0, 1.0, 0.49, 2_000.0, 0.05, 0.0, 0.97, 4_500.0)
    assert liquidation_call_float(RULE_V34, *tiny, debt_to_cover=100.0, dust=DUST_REDUCE) == (0.0, 0.0, 0.0)
    assert liquidation_call_float(RULE_V34, *tiny)[1] == 0.49
    # ≤3.2 has no dust rule.
    assert liquidation_call_float(RULE_V3_HF, *args)[0] == 1_250.0


# --- property: float vs integer -------------------------------------------------------------------------------

VERSIONS = ["v2", "v3.0", "v3.2", "v3.3", "v3.4", "v3.5", "v3.7"]


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    def token(decimals: int) -> tuple[int, float]:
        # 6-decimal tokens are stablecoins, so that a MIN_RAW_* balance stays a plausible position.
        return decimals, draw(st.floats(0.9, 1.1)) if decimals == 6 else 10 ** draw(st.floats(-1.5, 4.7))

    dc, pc = token(draw(st.sampled_from([8, 18])))
    dd, pd = token(draw(st.sampled_from([6, 18])))
    c_raw = max(int(10 ** draw(st.floats(5.0, 10.0)) / pc * 10**dc), MIN_RAW_COLLATERAL)
    lt = draw(st.integers(5_000, 9_000))
    hf = draw(st.one_of(st.floats(0.2, 0.999), st.floats(0.92, 0.999)))  # weight the uncapped, 0.95 region
    share = draw(st.sampled_from([1.0, draw(st.floats(0.3, 0.95))]))
    total_debt = c_raw / 10**dc * pc * lt / 10_000 / hf  # raising a raw amount to MIN_RAW only lowers the HF
    return {
        "version": draw(st.sampled_from(VERSIONS)),
        "dc": dc, "pc": round(pc * 1e8), "dd": dd, "pd": round(pd * 1e8),
        "c_raw": c_raw,
        "d_raw": max(int(share * total_debt / pd * 10**dd), MIN_RAW_DEBT),
        "k_raw": int((1 - share) * total_debt * 1e18) if share < 1.0 else 0,
        "lt": lt,
        "lb": draw(st.integers(10_100, 11_500)),
        "fee": draw(st.sampled_from([0, 1_000, 2_000, 5_000])),
        "cover": draw(st.sampled_from([None, draw(st.floats(0.25, 1.0)), draw(st.floats(0.99, 0.99999))])),
    }


def _build(s: dict) -> tuple[Market, UserPosition]:
    fee = 0 if s["version"] == "v2" else s["fee"]
    market = Market(
        {
            "C": Reserve(s["dc"], s["pc"], s["lt"], s["lb"], liquidation_protocol_fee_bps=fee, reserve_id=0),
            "D": Reserve(s["dd"], s["pd"], 8_000, 10_500, reserve_id=1),
            "K": Reserve(18, 10**8, 8_000, 10_500, reserve_id=2),
        }
    )
    debt = {"D": s["d_raw"], **({"K": s["k_raw"]} if s["k_raw"] else {})}
    return market, UserPosition.from_balances(market, {"C": s["c_raw"]}, debt, version=s["version"])


def _float_inputs(s: dict) -> dict:
    c, pc = s["c_raw"] / 10 ** s["dc"], s["pc"] / 1e8
    d, pd = s["d_raw"] / 10 ** s["dd"], s["pd"] / 1e8
    k = s["k_raw"] / 1e18
    weighted, _, debt_usd = account_totals_float([c], [pc], [s["lt"] / 1e4], [d, k], [pd, 1.0])
    return {
        "c": c, "pc": pc, "d": d, "pd": pd, "debt_usd": debt_usd,
        "hf": health_factor_float(weighted, debt_usd),
        "bonus": s["lb"] / 1e4 - 1.0,
        "fee": 0.0 if s["version"] == "v2" else s["fee"] / 1e4,
        "cover": math.inf if s["cover"] is None else s["cover"] * d,
    }


def _away(value: float, threshold: float) -> bool:
    return abs(value / threshold - 1.0) > MARGIN


def _assume_no_near_tie(s: dict, f: dict) -> None:
    """Skip draws whose exact values sit on a branch threshold (rounding may legitimately flip them)."""
    rule = close_factor_rule(s["version"])
    assume(_away(f["hf"], 1.0) and _away(f["hf"], 0.95))
    coll_usd, debt_j_usd = f["c"] * f["pc"], f["d"] * f["pd"]
    assume(_away(coll_usd, 2_000.0) and _away(debt_j_usd, 2_000.0) and _away(debt_j_usd, 0.5 * f["debt_usd"]))
    cap = max_debt_to_cover_float(rule, f["hf"], f["d"], f["debt_usd"], coll_usd, f["pd"])
    repay = min(f["cover"], cap)
    assume(_away(repay * f["pd"] * (1 + f["bonus"]) / f["pc"], f["c"]))
    assume(repay == f["d"] or _away(repay, f["d"]))
    repaid, seized, fee = liquidation_call_float(rule, f["d"], f["pd"], f["c"], f["pc"], f["bonus"], 0.0,
                                                 f["hf"], f["debt_usd"], f["cover"])
    del fee
    if rule in (RULE_V33, RULE_V34) and repaid:
        assume(_away((f["d"] - repaid) * f["pd"], 1_000.0))
        share = f["bonus"] / (1 + f["bonus"]) * f["fee"]
        for left in (f["c"] - seized, f["c"] - seized * (1 - share)):
            assume(left <= 0 or _away(left * f["pc"], 1_000.0))


@settings(max_examples=400, deadline=None)
@given(s=scenarios())
def test_float_matches_integer_layer(s: dict) -> None:
    f = _float_inputs(s)
    assume(f["hf"] > 0.05)
    _assume_no_near_tie(s, f)
    market, user = _build(s)
    version = s["version"]
    exact_hf = account_data(market, user, version=version).health_factor
    assert rel(exact_hf / 1e18, f["hf"]) <= TOL

    cover = 2**256 - 1 if s["cover"] is None else int(s["cover"] * s["d_raw"])
    f_cover = math.inf if s["cover"] is None else cover / 10 ** s["dd"]
    got = liquidation_call_float(version, f["d"], f["pd"], f["c"], f["pc"], f["bonus"], f["fee"], f["hf"],
                                 f["debt_usd"], f_cover)
    try:
        out = liquidation_call(market, user, collateral_asset="C", debt_asset="D", debt_to_cover=cover,
                               version=version)
    except AaveRevert as err:
        assert err.reason == "MUST_NOT_LEAVE_DUST" and resolve(version).position_close_factor
        assert got == (0.0, 0.0, 0.0)
        event("dust revert")
        # The float "reduce" mode proposes a call the contract accepts (kept 1e-6 inside the $1,000 limits).
        reduced = liquidation_call_float(version, f["d"], f["pd"], f["c"], f["pc"], f["bonus"], f["fee"],
                                         f["hf"], f["debt_usd"], f_cover, dust=DUST_REDUCE)
        if reduced[0] > 0:
            smaller = int(reduced[0] * (1 - 1e-6) * 10 ** s["dd"])
            liquidation_call(market, user, collateral_asset="C", debt_asset="D", debt_to_cover=smaller,
                             version=version)
        return
    repaid, seized, fee = got
    event("collateral capped" if out.user.scaled_collateral["C"] == 0 else "close factor or offer")
    event(f"deficit {bool(out.deficit)}")
    assert rel(out.debt_repaid, repaid * 10 ** s["dd"]) <= TOL
    assert rel(out.collateral_seized, seized * 10 ** s["dc"]) <= TOL
    if f["fee"]:
        assert rel(out.protocol_fee, fee * 10 ** s["dc"]) <= TOL
    else:
        assert out.protocol_fee == 0 and fee == 0.0
