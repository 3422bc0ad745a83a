"""FTX week (2022-11-05 → 11-15) on Compound III's own hourly oracle prices: one seeded USDC-market book replayed
under Comet's absorb-and-sell and under Aave v3's partial liquidations (issue 13; docs/validation.md).

Prices are real (``../shared/data/compound_v3_oracle_hourly_bhemen``: ``Comet.getPrice`` on the Compound III
markets, ~hourly; WETH 1,646 → 1,081 → 1,243); USDC is held at 1. The book is generated (seeded): 2,000
borrowers of USDC against one or two of WETH, LINK, UNI, COMP, sized to a health factor between 1.02 and 3
under Comet's liquidate collateral factors at the first price. ``-s`` prints the comparison table.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from backtest.cli import commands  # noqa: F401  (registers the verbs)
from backtest.cli.main import cli
from backtest.outputs.metrics import COUNT_METRICS, METRICS

from ..realdata import require

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
START, END = 1_667_606_400, 1_668_470_400  # 2022-11-05T00:00Z, 2022-11-15T00:00Z
ASSETS = ("WETH", "LINK", "UNI", "COMP")
# borrow collateral factor / liquidate collateral factor / liquidation factor: cUSDCv3-like (WETH's are PROTOCOLS
# §2.6's); Aave v3 Ethereum-like ltv / threshold / bonus for the same assets (illustrative, not read on-chain)
COMET = {"WETH": (0.825, 0.895, 0.95), "LINK": (0.79, 0.85, 0.93), "UNI": (0.75, 0.81, 0.93),
         "COMP": (0.65, 0.70, 0.93)}
AAVE = {"WETH": (0.805, 0.83, 0.05), "LINK": (0.53, 0.68, 0.07), "UNI": (0.65, 0.77, 0.10),
        "COMP": (0.65, 0.70, 0.075)}


def _config(engine_book: str) -> str:
    lines = [f'[run]\nname = "ftx-week-{engine_book}"\nstart = "2022-11-05T00:00:00Z"\nend = "2022-11-15T00:00:00Z"\n'
             'step = "1h"\n', '[market]\nliquidation = "aave"\ngas_usd = 5.0\n',
             '[[rules]]\nname = "comet"\n[rules.market]\nliquidation = "comet"\nbase = "USDC"\n'
             'store_front_price_factor = 0.6\nreserves = 2000000.0\ntarget_reserves = 5000000.0\n']
    for sym, (bcf, lcf, lf) in COMET.items():
        lines.append(f"[rules.assets.{sym}]\nborrow_collateral_factor = {bcf}\nliquidate_collateral_factor = {lcf}\n"
                     f"liquidation_factor = {lf}\n")
    lines.append("[rules.assets.USDC]\nborrow_collateral_factor = 0.0\nliquidate_collateral_factor = 0.0\n"
                 "liquidation_factor = 0.0\n")
    lines.append('[[rules]]\nname = "aave-v3"\n[rules.market]\nliquidation = "aave-v3"\nversion = "v3.3"\n')
    for sym, (ltv, lt, lb) in AAVE.items():
        lines.append(f"[rules.assets.{sym}]\nltv = {ltv}\nliquidation_threshold = {lt}\nliquidation_bonus = {lb}\n")
    lines.append("[rules.assets.USDC]\nltv = 0.77\nliquidation_threshold = 0.80\nliquidation_bonus = 0.045\n")
    return "\n".join(lines)


def _inputs(folder: Path, n_accounts: int) -> tuple[str, dict]:
    data = require("compound_v3_oracle_hourly_bhemen")
    rows, first = ["timestamp,asset,price_usd"], {}
    for sym in ASSETS:
        with gzip.open(data / f"{sym}_usd.csv.gz", "rt") as fh:
            for r in csv.DictReader(fh):
                ts = int(r["timestamp"])
                if r["USD_price"] and START - 2 * 86_400 <= ts <= END:
                    rows.append(f"{ts},{sym},{r['USD_price']}")
                    if ts <= START:
                        first[sym] = float(r["USD_price"])
    rows += [f"{START - 2 * 86_400},USDC,1"]
    (folder / "prices.csv").write_text("\n".join(rows) + "\n")
    rng = np.random.default_rng(20221108)
    pos = ["account,asset,collateral,debt"]
    for a in range(n_accounts):
        held = rng.choice(ASSETS, size=int(rng.integers(1, 3)), replace=False)
        usd = rng.lognormal(9.5, 1.4) * rng.dirichlet(np.ones(len(held)))
        weighted = 0.0
        for sym, value in zip(held, usd):
            pos.append(f"acct{a:05d},{sym},{float(value / first[sym])!r},0")
            weighted += value * COMET[sym][1]
        pos.append(f"acct{a:05d},USDC,0,{float(weighted / rng.uniform(1.02, 3.0))!r}")
    (folder / "positions.csv").write_text("\n".join(pos) + "\n")
    db = str(folder / "ftx.duckdb")
    r = CliRunner().invoke(cli, ["ingest", "csv", "--prices", str(folder / "prices.csv"), "--positions",
                                 str(folder / "positions.csv"), "--db", db])
    assert r.exit_code == 0, r.stderr
    return db, first


def _run(db: str, folder: Path, *extra: str) -> dict:
    (folder / "run.toml").write_text(_config(folder.name))
    r = CliRunner().invoke(cli, ["run", str(folder / "run.toml"), "--db", db, "--json", *extra])
    assert r.exit_code == 0, r.stderr
    return {row["rule"]: row for row in json.loads(r.stdout)["results"]}


def test_ftx_week_comet_vs_aave_v3(tmp_path):
    db, first = _inputs(tmp_path, 2_000)
    assert 1_600 < first["WETH"] < 1_700
    res = _run(db, tmp_path)
    comet, aave = res["comet"], res["aave-v3"]
    print("\nFTX week, 2,000 seeded USDC borrowers, Compound III oracle prices (hourly grid):")
    for m in METRICS:
        print(f"  {m:<32} comet {comet[m]!s:>22}   aave-v3 {aave[m]!s:>22}")
    assert comet["liquidations"] > 0 and aave["liquidations"] > 0
    # absorb is all-or-nothing: Comet extinguishes whole debts; Aave v3.3 repays at most half per call above
    # HF 0.95, so on the same path Comet clears more debt per liquidated account
    assert comet["liquidated_debt_usd"] > aave["liquidated_debt_usd"]
    # the user's penalty at absorb is (1 − LF) of all seized collateral: ≥ 5 % of the debt extinguished
    assert comet["liquidation_penalty_usd"] >= 0.05 * comet["liquidated_debt_usd"] * 0.95
    assert comet["protocol_reserves_usd"] is not None and aave["protocol_reserves_usd"] is None
    assert comet["bad_debt_usd"] >= 0 and aave["bad_debt_usd"] >= 0


def test_ftx_week_fast_equals_reference(tmp_path):
    db, _ = _inputs(tmp_path, 150)
    fast, ref = _run(db, tmp_path), _run(db, tmp_path, "--engine", "reference")
    for rule in fast:
        for m in METRICS:
            f, r = fast[rule][m], ref[rule][m]
            if m in COUNT_METRICS or f is None or r is None:
                assert f == r, (rule, m)
            else:
                assert math.isclose(f, r, rel_tol=1e-12, abs_tol=1e-9), (rule, m)
