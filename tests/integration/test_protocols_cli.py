"""Aave v3, Compound v3 (Comet), Morpho Blue and Compound v2 side by side in one `mbt run` on one book and
path (issue 13): every model's rows, fast == reference, the Comet metrics, one-line config errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from backtest.outputs.metrics import COUNT_METRICS, METRICS, MODEL_METRICS

from .test_portfolio_cli import HEADER, _error, db, mbt  # noqa: F401  (the fixture and the small book)

RULES = """
[[rules]]
name = "aave-v3"
[rules.market]
liquidation = "aave-v3"
version = "v3.3"
[rules.assets.WETH]
ltv = 0.805
liquidation_threshold = 0.83
liquidation_bonus = 0.05
[rules.assets.USDC]
ltv = 0.77
liquidation_threshold = 0.80
liquidation_bonus = 0.045
[rules.assets.DAI]
ltv = 0.77
liquidation_threshold = 0.80
liquidation_bonus = 0.04

[[rules]]
name = "comet"
[rules.market]
liquidation = "comet"
base = "USDC"
reserves = 10000.0
target_reserves = 1000000.0
[rules.assets.WETH]
borrow_collateral_factor = 0.825
liquidate_collateral_factor = 0.895
liquidation_factor = 0.95
[rules.assets.USDC]
borrow_collateral_factor = 0.88
liquidate_collateral_factor = 0.90
liquidation_factor = 0.95
[rules.assets.DAI]
borrow_collateral_factor = 0.88
liquidate_collateral_factor = 0.90
liquidation_factor = 0.95

[[rules]]
name = "morpho"
kind = "isolated"
[rules.market]
liquidation = "morpho-blue"
[[rules.markets]]
id = "weth-usdc"
loan = "USDC"
collateral = "WETH"
lltv = 0.86
[[rules.markets]]
id = "dai-usdc"
loan = "USDC"
collateral = "DAI"
lltv = 0.945
[[rules.markets]]
id = "usdc-dai"
loan = "DAI"
collateral = "USDC"
lltv = 0.945

[[rules]]
name = "compound-v2"
[rules.market]
liquidation = "compound-v2"
close_factor = 0.5
[rules.assets.WETH]
ltv = 0.825
liquidation_threshold = 0.825
liquidation_bonus = 0.08
[rules.assets.USDC]
ltv = 0.855
liquidation_threshold = 0.855
liquidation_bonus = 0.08
[rules.assets.DAI]
ltv = 0.835
liquidation_threshold = 0.835
liquidation_bonus = 0.08
"""


def _run(db: str, *extra: str) -> dict:
    path = Path(db).with_name("protocols.toml")
    path.write_text(HEADER + RULES)
    r = mbt("run", str(path), "--db", db, "--json", *extra)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def test_four_protocols_side_by_side_fast_equals_reference(db):  # noqa: F811
    fast, ref = _run(db), _run(db, "--engine", "reference")
    assert [r["rule"] for r in fast["results"]] == ["aave-v3", "comet", "morpho", "compound-v2"]
    for f, r in zip(fast["results"], ref["results"]):
        for key in METRICS:
            if key in COUNT_METRICS or f[key] is None or r[key] is None:
                assert f[key] == r[key], (f["rule"], key)
            else:
                assert math.isclose(f[key], r[key], rel_tol=1e-12, abs_tol=1e-9), (f["rule"], key)
    by = {r["rule"]: r for r in fast["results"]}
    for rule in by:
        assert by[rule]["liquidations"] > 0, rule  # WETH 2,000 → 1,000 liquidates alice and carol everywhere
        for m in MODEL_METRICS:
            assert (by[rule][m] is None) == (rule != "comet"), (rule, m)
    # Comet absorbs alice and carol at 01:00 (WETH 1,400: 10·1,400·0.895 = 12,530 < 17,000 after alice's
    # borrow; carol 5·1,400·0.895 + 5,000·0.9 = 10,765 ≥ 8,000 stays until 02:00) and pays from reserves
    assert by["comet"]["protocol_reserves_usd"] is not None and by["comet"]["absorbed_collateral_unsold_usd"] == 0.0


def test_text_table_shows_the_comet_rows_only_with_a_comet_rule_set(db):  # noqa: F811
    path = Path(db).with_name("protocols.toml")
    path.write_text(HEADER + RULES)
    out = mbt("run", str(path), "--db", db).stdout
    assert "protocol_reserves_usd" in out and "absorbed_collateral_unsold_usd" in out
    only_aave = HEADER + RULES.split("[[rules]]\nname = \"comet\"")[0]
    path.write_text(only_aave)
    out = mbt("run", str(path), "--db", db).stdout
    assert "protocol_reserves_usd" not in out and "bad_debt_usd" in out


@pytest.mark.parametrize("patch, message", [
    (('base = "USDC"', 'base = "GHO"'), "market.base: 'GHO' is not an asset of this run"),
    (("liquidation_factor = 0.95\n[rules.assets.USDC]", "liquidation_factor = 1.5\n[rules.assets.USDC]"),
     "rules.comet.assets.WETH.liquidation_factor: must satisfy 0 < factor ≤ 1"),
    (("lltv = 0.86", "lltv = 1.0"), "rules.morpho.markets[0].lltv: must satisfy 0 < lltv < 1"),
])
def test_protocol_config_errors_are_one_line(db, patch, message):  # noqa: F811
    assert message in _error(db, HEADER + RULES.replace(*patch, 1))
