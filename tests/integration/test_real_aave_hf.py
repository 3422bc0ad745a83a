"""Health factors rebuilt from real Aave v2 account snapshots agree with the recorded on-chain values.

Real data: ``shared/data/aave_v2_user_snapshots_bhemen`` (5 accounts) and the subgraph reserve config; the
tests skip when it is absent. Acceptance (issue): median relative error ≤ 3 % and ≥ 85 % of rows within
10 % over all rows of all files. The last test builds a tiny folder of its own and always runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backtest.errors import InputError
from backtest.validation.aave_snapshots import (
    CONFIG_FILE,
    MAIN_POOL,
    REASONS,
    SNAPSHOT_DIR,
    TOKENS_FILE,
    beyond,
    liquidation_thresholds,
    load_reserve_config,
    load_snapshot_file,
    load_tokens,
    reconstruct_folder,
    summarize,
)
from tests.realdata import require

AMM_POOL = "0xacc030ef66f9dfeae9cbb0cd1b25654b82cfa8d5"
ACCOUNTS = (
    "0x09f1b4C0A59494F2C695924BcC4b9Ce698F22233",
    "0x2e9b1763686A1657814991e9395b9d298E9Ec321",
    "0x4cBA0E5365B79bDDb9681bA81B279742675d3f6a",
    "0x5e932E419a8ed1Bd8d1b09AeF786d7bb2b9f9a09",
    "0xFB69153ae2eFaF8b672627b25Be1E81C37aB21C7",
)


@pytest.fixture(scope="module")
def shared() -> Path:
    require(SNAPSHOT_DIR)
    require(CONFIG_FILE)
    return require(".")


@pytest.fixture(scope="module")
def rows(shared: Path) -> pd.DataFrame:
    return reconstruct_folder(shared)


@pytest.mark.realdata
def test_acceptance_over_all_rows_of_all_files(rows: pd.DataFrame) -> None:
    assert {f"{a}_details_v2.csv" for a in ACCOUNTS} <= set(rows["file"])
    overall = summarize(rows).loc["all"]
    assert overall["n"] == overall["rows"] - overall["excluded"] > 0
    assert overall["median_rel_error"] <= 0.03
    assert overall["within_10"] >= 0.85


@pytest.mark.realdata
def test_every_row_beyond_10_percent_has_a_known_reason(rows: pd.DataFrame) -> None:
    assert (beyond(rows, 0.10)["reason"] != "unexplained").all()
    far = beyond(rows, 0.20)
    assert set(far["reason"]) <= set(REASONS)
    # The first snapshot of each history lacks the debt columns and the last one is taken after the
    # final liquidation: one of each per account.
    per_file = far.groupby("file")["reason"]
    for reason in ("debt_missing_in_file", "totals_after_liquidation"):
        assert (per_file.apply(lambda r, reason=reason: (r == reason).sum()) == 1).all()


@pytest.mark.realdata
def test_hand_computed_row(rows: pd.DataFrame) -> None:
    # 0x2e9b… at block 11952478: WETH 0.8000030936268364 @ $1541.6667424242669 (LT 0.85) and
    # LINK 61.44374189203748 @ $26.59847063412008 (LT 0.75) against USDT 1000.689118 @ $1.0031481189268403
    # and USDC 911.611531 @ $0.9963958395885838; recorded HF 1.17.
    collateral = 0.8000030936268364 * 1541.6667424242669 * 0.85 + 61.44374189203748 * 26.59847063412008 * 0.75
    debt = 1000.689118 * 1.0031481189268403 + 911.611531 * 0.9963958395885838
    row = rows[(rows["file"] == f"{ACCOUNTS[1]}_details_v2.csv") & (rows["block"] == 11952478)].iloc[0]
    assert row["hf_recorded"] == 1.17
    assert row["hf_reconstructed"] == pytest.approx(collateral / debt, rel=1e-12)
    assert row["hf_reconstructed"] == pytest.approx(1.189264108, rel=1e-9)
    assert row["rel_error"] == pytest.approx(collateral / debt / 1.17 - 1, rel=1e-9)  # 1.65 %


@pytest.mark.realdata
def test_units_and_main_pool_thresholds(shared: Path) -> None:
    tokens = load_tokens(shared / TOKENS_FILE)
    config = load_reserve_config(shared / CONFIG_FILE)
    snap = load_snapshot_file(shared / SNAPSHOT_DIR / f"{ACCOUNTS[1]}_details_v2.csv", tokens)
    assert snap.assets == ("USDT", "WETH", "LINK", "USDC", "GUSD")
    assert snap.block[1] == 11952478
    assert snap.debt[1, 0] == 1000.689118  # 1000689118 raw, 6 decimals
    assert snap.collateral[1, 2] == pytest.approx(61.44374189203748, rel=1e-15)  # 18 decimals
    assert snap.prices[1, 1] == 1541.6667424242669
    assert snap.total_debt_eth[1] == pytest.approx(1.254264634552695, rel=1e-15)

    lt, missing = liquidation_thresholds(("WETH", "USDT", "LINK", "GUSD", "UST"), tokens, config)
    np.testing.assert_array_equal(lt, [0.85, 0.0, 0.75, 0.0, 0.0])
    assert missing == ("UST",)
    amm, _ = liquidation_thresholds(("WETH",), tokens, config, pool=AMM_POOL)
    assert amm[0] == 0.825
    old, _ = liquidation_thresholds(("WETH", "LINK"), tokens, config, pool=MAIN_POOL, overrides={"WETH": 0.825})
    np.testing.assert_array_equal(old, [0.825, 0.75])


def _write_fixture_folder(root: Path, usdc_price: str) -> Path:
    (root / SNAPSHOT_DIR).mkdir(parents=True)
    (root / CONFIG_FILE).parent.mkdir(parents=True)
    (root / TOKENS_FILE).write_text(
        "symbol,address,decimals\n"
        "USDC,0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48,6\n"
        "DAI,0x6B175474E89094C44Da98b954EedeAC495271d0F,18\n"
    )
    (root / CONFIG_FILE).write_text(
        "decimals,id,pool,reserveLiquidationThreshold,symbol\n"
        f"6,0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48{MAIN_POOL},{MAIN_POOL},8500.0,USDC\n"
        f"18,0x6b175474e89094c44da98b954eedeac495271d0f{MAIN_POOL},{MAIN_POOL},8000.0,DAI\n"
    )
    (root / SNAPSHOT_DIR / "0xabc_details_v2.csv").write_text(
        "block,timestamp,user,totalCollateral,totalDebt,healthFactor,USDC_collateral,DAI_debt,"
        "USDC_USD_price,DAI_USD_price\n"
        f"1,100,0xabc,1e18,5e17,1.70,1000000000.0,5e20,{usdc_price},1.0\n"
        f"2,200,0xabc,1e18,0.0,1.157920892373162e+59,1000000000.0,0.0,{usdc_price},1.0\n"
    )
    return root


def test_rows_without_onchain_debt_are_excluded(tmp_path: Path) -> None:
    rows = reconstruct_folder(_write_fixture_folder(tmp_path, "1.0"))
    assert rows["hf_reconstructed"].tolist() == [1000 * 0.85 / 500, np.inf]
    assert rows["compared"].tolist() == [True, False]
    summary = summarize(rows).loc["all"]
    assert (summary["rows"], summary["excluded"], summary["n"]) == (2, 1, 1)
    assert summary["median_rel_error"] == pytest.approx(0.0, abs=1e-12)


def test_non_positive_price_fails_fast(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"0xabc_details_v2\.csv:2:USDC_USD_price:"):
        reconstruct_folder(_write_fixture_folder(tmp_path, "0.0"))
