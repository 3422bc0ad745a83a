"""A run gives the same results — JSON document and stored tables, bit for bit — whichever executor runs its
jobs: ``local`` (threads, both cores), ``processes`` (spawned workers), ``dask`` on a real LocalCluster
started by the run, and ``dask`` on an existing cluster (a real scheduler + worker as subprocesses).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from backtest.errors import MbtError
from tests.dbutil import build, replay
from tests.unit.test_executors import external_scheduler  # noqa: F401  (fixture)

rng = np.random.default_rng(8)
N = 300
PRICES = "timestamp,asset,price_usd\n" + "".join(
    f"2021-05-19T{h:02d}:00:00Z,WETH,{3400 - 120 * h + (37 if h % 3 else 0)}\n"
    f"2021-05-19T{h:02d}:00:00Z,USDC,1\n2021-05-19T{h:02d}:00:00Z,DAI,{1 + 0.004 * (h % 4)}\n" for h in range(14))
POSITIONS = "account,asset,collateral,debt,emode\n" + "".join(
    f"acct{i},WETH,{rng.uniform(0.5, 5):.6f},0,{'stables' if i % 7 == 0 else ''}\n"
    f"acct{i},{'USDC' if i % 2 else 'DAI'},0,{rng.uniform(500, 2600) * (1 if i % 5 else 3):.4f},"
    f"{'stables' if i % 7 == 0 else ''}\n" for i in range(N))
EVENTS = "timestamp,account,asset,action,amount\n" + "".join(
    f"2021-05-19T{3 + i % 9:02d}:00:00Z,acct{i},USDC,repay,{50 + i}\n" for i in range(0, N, 11))
CONFIG = """[run]
name = "executors"
start = "2021-05-19T00:00:00Z"
end = "2021-05-19T13:00:00Z"

[[rules]]
name = "current"
[rules.assets.WETH]
ltv = 0.80
liquidation_threshold = 0.825
liquidation_bonus = 0.05
[rules.assets.USDC]
ltv = 0.80
liquidation_threshold = 0.85
liquidation_bonus = 0.05
[rules.assets.DAI]
ltv = 0.75
liquidation_threshold = 0.80
liquidation_bonus = 0.05

[[rules]]
name = "tighter"
base = "current"
[rules.assets.WETH]
ltv = 0.75
liquidation_threshold = 0.78
liquidation_bonus = 0.08

[[rules]]
name = "v3"
base = "current"
[rules.market]
liquidation = "aave-v3"
protocol_fee = 0.1

[[rules]]
name = "emode"
kind = "cross"
[rules.assets.WETH]
ltv = 0.80
liquidation_threshold = 0.825
liquidation_bonus = 0.05
[rules.assets.USDC]
ltv = 0.80
liquidation_threshold = 0.85
liquidation_bonus = 0.05
[rules.assets.DAI]
ltv = 0.75
liquidation_threshold = 0.80
liquidation_bonus = 0.05
[rules.groups.stables]
assets = ["USDC", "DAI"]
ltv = 0.93
liquidation_threshold = 0.95
liquidation_bonus = 0.01
"""
TABLES = ("run_metrics", "liquidations", "timeseries")


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return build(tmp_path_factory.mktemp("exec"), prices=PRICES, positions=POSITIONS, events=EVENTS)


def snapshot(db, run_id):
    with duckdb.connect(str(db), read_only=True) as con:
        return {t: con.execute(f"SELECT * FROM {t} WHERE run_id = ? ORDER BY ALL", [run_id]).fetchall()
                for t in TABLES}


@pytest.fixture(scope="module")
def local(db):
    out = replay(db, CONFIG, executor="local")
    return out.document(), snapshot(db, out.run_id)


def test_local_run_is_not_trivial(local):
    doc, tables = local
    by_rule = {r["rule"]: r for r in doc["results"]}
    assert list(by_rule) == ["current", "tighter", "v3", "emode"]
    assert all(r["liquidations"] > 0 for r in doc["results"])
    assert by_rule["tighter"]["liquidations"] != by_rule["current"]["liquidations"]
    assert len(tables["timeseries"]) == 4 * 14


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_processes_and_dask_local_cluster_match_local(db, local, executor):
    out = replay(db, CONFIG, executor=executor)
    assert out.document() == local[0]
    assert snapshot(db, out.run_id) == local[1]


@pytest.mark.slow
def test_dask_external_scheduler_matches_local(db, local, external_scheduler):  # noqa: F811
    out = replay(db, CONFIG, executor="dask", scheduler=external_scheduler)
    assert out.document() == local[0]
    assert snapshot(db, out.run_id) == local[1]


def test_scheduler_needs_the_dask_executor(db):
    with pytest.raises(MbtError, match="--scheduler: only used with --executor dask"):
        replay(db, CONFIG, executor="local", scheduler="tcp://127.0.0.1:1")


def test_reference_engine_matches_through_the_same_jobs(db, local):
    out = replay(db, CONFIG, engine="reference", executor="local")
    assert out.document() == local[0]
