"""``[[scenarios]]``: the path kinds, their determinism and no-look-ahead guarantees, and the ``scenario = "*"``
metrics (VaR / ES / LaR, DESIGN §5) on a book whose bad debt is known in closed form."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from backtest.config import parse_config
from backtest.errors import ConfigError
from backtest.inputs import load_inputs
from backtest.scenarios import paths
from backtest.scenarios.stochastic import ewma_variance, gbm_estimates, lookback_returns
from backtest.store import Store
from tests.dbutil import build, replay

START = 1_700_000_000          # run start, unix seconds (on the hour)
H = 3600


def _prices(seed: int = 11, after: dict[int, float] | None = None) -> str:
    """72 hourly WETH/WBTC prices before the start (a seeded random walk), 10 hours flat at 2,000 / 60,000
    from it; USDC at 1. ``after`` overrides WETH prices at hours ≥ 0 (for the no-look-ahead check)."""
    rng = np.random.default_rng(seed)
    lines = ["timestamp,asset,price_usd"]
    weth, wbtc = 2000.0, 60000.0
    walk = []
    for h in range(-72, 0):
        walk.append((h, weth, wbtc))
        weth *= math.exp(rng.normal(0, 0.01))
        wbtc *= math.exp(rng.normal(0, 0.008))
    for h, w, b in walk:
        lines += [f"{START + h * H},WETH,{w!r}", f"{START + h * H},WBTC,{b!r}", f"{START + h * H},USDC,1"]
    for h in range(0, 11):
        w = (after or {}).get(h, 2000.0)
        lines += [f"{START + h * H},WETH,{w!r}", f"{START + h * H},WBTC,60000", f"{START + h * H},USDC,1"]
    return "\n".join(lines) + "\n"


POSITIONS = "account,asset,collateral,debt\na,WETH,1,0\na,USDC,0,1500\nb,WBTC,0.1,0\nb,USDC,0,1000\n"

HEAD = f"""
[run]
name = "sc"
start = "{START}"
end = "{START + 10 * H}"
step = "1h"

[market]
gas_usd = 1e12           # no call ever pays: bad debt is the closed-form shortfall at the end

[[rules]]
name = "base"
[rules.assets.WETH]
ltv = 0.75
liquidation_threshold = 0.8
liquidation_bonus = 0.05
[rules.assets.WBTC]
ltv = 0.7
liquidation_threshold = 0.75
liquidation_bonus = 0.06
[rules.assets.USDC]
ltv = 0.8
liquidation_threshold = 0.85
liquidation_bonus = 0.04
"""


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("sc"), prices=_prices(), positions=POSITIONS)


def _data(db: Path, toml: str):
    cfg = parse_config(tomllib.loads(toml))
    with Store(str(db)) as store:
        inputs = load_inputs(store, cfg)
    return cfg, inputs.data


def test_var_es_lar_on_a_shock_grid_equal_the_closed_form(db: Path) -> None:
    moves = [round(-0.05 * i, 2) for i in range(1, 20)]       # −5 % … −95 % on WETH only
    toml = HEAD + f"""
[[scenarios]]
kind = "historical"
[[scenarios]]
name = "weth"
kind = "shock-grid"
assets = ["WETH"]
moves = {json.dumps(moves)}
"""
    out = replay(db, toml)
    rows = {r["scenario"]: r for r in out.results()}
    assert len(rows) == 21 and rows["*"]["rule"] == "base"
    for m in moves:   # account a: 1 WETH at 2,000·(1 + m) against 1,500 USDC; b stays solvent
        expected = max(0.0, 1500 - 2000 * (1 + m))
        assert rows[f"weth@{m:g}"]["bad_debt_usd"] == pytest.approx(expected, rel=1e-12, abs=1e-9)
    star = rows["*"]
    # 20 losses: 6 zeros (historical, −5 … −25 %), then 100, 200, …, 1,400
    assert star["var_95_bad_debt_usd"] == pytest.approx(1300)       # ⌈0.95·20⌉ = 19th smallest
    assert star["es_95_bad_debt_usd"] == pytest.approx(1350)        # mean of {1,300, 1,400}
    assert star["var_99_bad_debt_usd"] == pytest.approx(1400)       # ⌈0.99·20⌉ = 20th
    assert star["es_99_bad_debt_usd"] == pytest.approx(1400)
    assert star["mean_bad_debt_usd"] == pytest.approx(10500 / 20)
    assert star["p_bad_debt"] == pytest.approx(14 / 20)
    assert star["lar_95_liquidated_debt_usd"] == 0 and star["lar_99_liquidated_debt_usd"] == 0
    assert set(star) == {"rule", "kind", "scenario", "var_95_bad_debt_usd", "es_95_bad_debt_usd",
                         "var_99_bad_debt_usd", "es_99_bad_debt_usd", "lar_95_liquidated_debt_usd",
                         "lar_99_liquidated_debt_usd", "mean_bad_debt_usd", "p_bad_debt"}
    with Store(str(db)) as store:
        stored = dict(store.con.execute("SELECT metric, value FROM run_metrics WHERE run_id = ? AND scenario = '*'",
                                        [out.run_id]).fetchall())
    assert stored["var_95_bad_debt_usd"] == pytest.approx(1300) and len(stored) == 8


def test_one_scenario_has_no_star_rows_and_plain_runs_keep_their_run_id(db: Path) -> None:
    plain = replay(db, HEAD)
    listed = replay(db, HEAD + '\n[[scenarios]]\nkind = "historical"\n')
    assert [r["scenario"] for r in plain.results()] == ["historical"]
    assert [r["scenario"] for r in listed.results()] == ["historical"]
    assert plain.results() == listed.results()
    assert plain.run_id != listed.run_id            # the config differs (it lists its scenarios) …
    assert "scenarios" not in parse_config(tomllib.loads(HEAD)).canonical()   # … a plain one is as before


def test_shock_with_ramp_and_depeg_paths_are_exact(db: Path) -> None:
    toml = HEAD + f"""
[[scenarios]]
name = "ramp"
kind = "shock"
moves = {{ WETH = -0.4, WBTC = 0.1 }}
at = "{START + 4 * H}"
ramp = "2h"
[[scenarios]]
name = "usdc"
kind = "depeg"
asset = "USDC"
floor = 0.9
at = "{START + 2 * H}"
down = "2h"
hold = "1h"
recover = "4h"
"""
    cfg, data = _data(db, toml)
    ramp, usdc = paths(cfg, data)
    k = {a: i for i, a in enumerate(data.assets)}
    w = np.array([0, 0, 0, 0.5, 1, 1, 1, 1, 1, 1, 1])          # 0 before 2h, ½ at 3h, 1 from 4h
    assert np.allclose(ramp.prices[:, k["WETH"]], 2000 * (1 - 0.4 * w), rtol=0, atol=1e-9)
    assert np.allclose(ramp.prices[:, k["WBTC"]], 60000 * (1 + 0.1 * w), rtol=0, atol=1e-7)
    assert np.array_equal(ramp.prices[:, k["USDC"]], data.prices[:, k["USDC"]])
    f = [1, 1, 1, 0.95, 0.9, 0.9, 0.925, 0.95, 0.975, 1, 1]    # down 2h, hold 1h, back over 4h
    assert np.allclose(usdc.prices[:, k["USDC"]], f, rtol=0, atol=1e-12)


def test_window_replays_stored_returns_and_refuses_look_ahead(db: Path) -> None:
    ok = HEAD + f'\n[[scenarios]]\nname = "then"\nkind = "window"\nfrom = "{START - 48 * H}"\n'
    cfg, data = _data(db, ok)
    (then,) = paths(cfg, data)
    k = data.assets.index("WETH")
    ts, px = data.series["WETH"]
    hist = np.array([px[ts == (START - 48 * H + h * H) * 1_000_000][0] for h in range(11)])
    assert np.allclose(then.prices[:, k], 2000 * hist / hist[0], rtol=1e-12)
    late = HEAD + f'\n[[scenarios]]\nname = "late"\nkind = "window"\nfrom = "{START - 5 * H}"\n'
    cfg, data = _data(db, late)
    with pytest.raises(ConfigError, match="no look-ahead"):
        paths(cfg, data)


GENERATED = """
[[scenarios]]
name = "boot"
kind = "bootstrap"
lookback = "48h"
block = "3h"
paths = 4
seed = {seed}
[[scenarios]]
name = "fhs"
kind = "fhs"
lookback = "48h"
paths = 3
seed = {seed}
[[scenarios]]
name = "gbm"
kind = "gbm"
lookback = "48h"
paths = 3
seed = {seed}
jump_intensity = 2.0
jump_mean = -0.02
jump_std = 0.01
"""


def _generated(db: Path, seed: int):
    cfg, data = _data(db, HEAD + GENERATED.format(seed=seed))
    return {p.scenario: p.prices for p in paths(cfg, data)}, data


def test_generated_paths_are_reproducible_per_seed_and_differ_across_seeds(db: Path) -> None:
    a, data = _generated(db, 5)
    b, _ = _generated(db, 5)
    c, _ = _generated(db, 6)
    assert list(a) == ["boot#0001", "boot#0002", "boot#0003", "boot#0004", "fhs#0001", "fhs#0002", "fhs#0003",
                       "gbm#0001", "gbm#0002", "gbm#0003"]
    assert all(np.array_equal(a[n], b[n]) for n in a)
    assert all(not np.array_equal(a[n], c[n]) for n in a)
    assert len({a[n].tobytes() for n in a}) == len(a)          # paths of one scenario differ from each other
    for p in a.values():   # every path starts at the first grid prices and stays positive
        assert np.array_equal(p[0], data.prices[0]) and (p > 0).all()


def test_no_look_ahead_a_price_after_start_cannot_change_a_generated_path(db: Path, tmp_path: Path) -> None:
    other = build(tmp_path, prices=_prices(after={3: 1500.0, 7: 2600.0}), positions=POSITIONS)
    a, _ = _generated(db, 9)
    b, _ = _generated(other, 9)
    assert all(np.array_equal(a[n], b[n]) for n in a)


def test_bootstrap_draws_whole_dated_rows_of_the_lookback_returns(db: Path) -> None:
    cfg, data = _data(db, HEAD + GENERATED.format(seed=2))
    r, dt = lookback_returns(cfg.scenarios[0], cfg, data)
    assert dt == 3600 and r.shape == (48, 3)
    rows = {tuple(np.round(x, 12)) for x in r}
    for p in paths(cfg, data)[:4]:
        for x in np.diff(np.log(p.prices), axis=0):
            assert tuple(np.round(x, 12)) in rows                  # dates kept together across assets


def test_fhs_rescales_standardised_residuals_to_the_volatility_at_start(db: Path) -> None:
    cfg, data = _data(db, HEAD + GENERATED.format(seed=4))
    spec = cfg.scenarios[1]
    r, dt = lookback_returns(spec, cfg, data)
    lam = 0.94 ** (dt / 86_400)
    var = ewma_variance(r, lam)
    # the unit test of PROTOCOLS §9: σ = 3 %, r = −8 %, λ = 0.94 → 3.5071 %
    one = ewma_variance(np.array([[-0.08]]), 0.94)
    assert math.sqrt(0.94 * 0.03 ** 2 + 0.06 * 0.08 ** 2) == pytest.approx(0.035071, abs=5e-7)
    assert one[1, 0] == pytest.approx(0.94 * 0.08 ** 2 + 0.06 * 0.08 ** 2)
    z = {tuple(np.round(x, 9)) for x in r / np.sqrt(var[:-1])}
    first = np.diff(np.log(paths(cfg, data)[4].prices), axis=0)[0]   # fhs#0001, step 1: z · σ_start
    assert tuple(np.round(first / np.sqrt(var[-1]), 9)) in z


def test_gbm_sample_volatility_and_correlation_match_the_estimates(db: Path) -> None:
    toml = HEAD + """
[[scenarios]]
name = "g"
kind = "gbm"
lookback = "72h"
paths = 400
seed = 1
vol_multiplier = 2.0
"""
    cfg, data = _data(db, toml)
    r, _ = lookback_returns(cfg.scenarios[0], cfg, data)
    sigma, corr = gbm_estimates(r)
    gen = np.concatenate([np.diff(np.log(p.prices), axis=0) for p in paths(cfg, data)])   # 4,000 × K
    k = {a: i for i, a in enumerate(data.assets)}
    for asset in ("WETH", "WBTC"):
        i = k[asset]
        assert gen[:, i].std(ddof=1) == pytest.approx(2.0 * sigma[i], rel=0.05)
    i, j = k["WETH"], k["WBTC"]
    assert np.corrcoef(gen[:, i], gen[:, j])[0, 1] == pytest.approx(corr[i, j], abs=0.05)
    assert np.all(gen[:, k["USDC"]] == 0)          # a constant price has no volatility


@pytest.mark.parametrize("body, message", [
    ('kind = "shok"', "unknown scenario kind 'shok'; did you mean 'shock'?"),
    ('kind = "shock"\nmoves = { WETH = -1.0 }', "scenarios.shock.moves.WETH: a move must be > -1"),
    ('kind = "bootstrap"\npaths = 2', "scenarios.bootstrap.lookback: missing"),
    ('kind = "gbm"\nlookback = "1d"\nseed = -1', "scenarios.gbm.seed: expected a whole number ≥ 0"),
    ('kind = "shock"\nmoves = { WETH = -0.1 }\nrampp = "1h"', "scenarios.shock.rampp: unknown key; did you mean 'ramp'?"),
    ('name = "a#1"\nkind = "historical"', "may not contain #, @ or *"),
])
def test_bad_scenario_tables_are_one_line_errors(body: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(tomllib.loads(HEAD + "\n[[scenarios]]\n" + body + "\n"))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_duplicate_scenario_names_and_unknown_assets_are_errors(db: Path) -> None:
    with pytest.raises(ConfigError, match="duplicate scenario name 'x'"):
        parse_config(tomllib.loads(HEAD + '[[scenarios]]\nname = "x"\nkind = "historical"\n'
                                   '[[scenarios]]\nname = "x"\nkind = "historical"\n'))
    cfg, data = _data(db, HEAD + '[[scenarios]]\nkind = "shock"\nmoves = { DOGE = -0.5 }\n')
    with pytest.raises(ConfigError, match="scenarios.shock.moves.DOGE: 'DOGE' is not an asset of this run"):
        paths(cfg, data)


def test_processes_executor_gives_the_same_results(db: Path) -> None:
    toml = HEAD + GENERATED.format(seed=3) + '[[scenarios]]\nname = "s"\nkind = "shock-grid"\nassets = ["WETH"]\n' \
        'moves = [-0.3, -0.5]\n'
    local = replay(db, toml)
    procs = replay(db, toml, executor="processes")
    assert local.results() == procs.results() and local.run_id == procs.run_id


def test_mbt_scenarios_summarises_and_writes_parquet(db: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq
    from click.testing import CliRunner

    from backtest.cli.main import cli

    cfg = tmp_path / "sc.toml"
    cfg.write_text(HEAD + '[[scenarios]]\nkind = "historical"\n[[scenarios]]\nname = "s"\nkind = "shock-grid"\n'
                   'assets = ["WETH"]\nmoves = [-0.2, -0.5]\n')
    result = CliRunner().invoke(cli, ["scenarios", str(cfg), "--db", str(db), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    weth = next(line for line in result.stdout.splitlines() if line.startswith("WETH"))
    cells = weth.split()
    assert cells[1] == "3"                                # three paths
    # worst drawdowns 0, 20 %, 50 %: median 0.2; p95 = 0.2 + 0.9 · 0.3, p99 = 0.2 + 0.98 · 0.3 (linear quantiles)
    assert cells[3:6] == ["0.2000", "0.4700", "0.4940"]
    table = pq.read_table(tmp_path / "out" / "paths.parquet")
    assert table.num_rows == 3 * 11 * 3 and set(table.column("scenario").to_pylist()) == {"historical", "s@-0.2",
                                                                                           "s@-0.5"}
    prices = [r for r in table.to_pylist() if r["scenario"] == "s@-0.5" and r["asset"] == "WETH"]
    assert prices[0]["price_usd"] == 2000 and prices[-1]["price_usd"] == 1000
