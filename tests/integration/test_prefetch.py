"""`mbt run` starts the store reads before the config is validated (`inputs.Prefetch`): the same inputs, the
same errors in the same order, nothing created or left running when the config is bad."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import numpy as np
import pytest

from backtest.config import load_config
from backtest.inputs import Prefetch, ReadSpec, load_inputs, peek_spec
from backtest.store import Store

from .test_cli import CONFIG, counts, ingest, mbt, work  # noqa: F401  (the toy store and its config)


def _same_inputs(a, b) -> None:
    assert a.fingerprint == b.fingerprint
    assert a.assets == b.assets and a.sources == b.sources
    assert a.accounts.tolist() == b.accounts.tolist()
    assert a.account_names.equals(b.account_names)
    np.testing.assert_array_equal(a.grid_us, b.grid_us)
    np.testing.assert_array_equal(a.prices, b.prices)
    np.testing.assert_array_equal(a.book.collateral, b.book.collateral)
    np.testing.assert_array_equal(a.book.debt, b.book.debt)
    for field in ("account", "step", "asset", "action", "amount"):
        np.testing.assert_array_equal(getattr(a.events, field), getattr(b.events, field))


def _no_prefetch_thread_left() -> bool:
    return not any(t.name == "mbt-prefetch" and t.is_alive() for t in threading.enumerate())


def test_prefetched_inputs_are_the_inputs_read_afterwards(work):
    assert ingest(work).exit_code == 0
    db, toml = str(work / "t.duckdb"), str(work / "run.toml")
    cfg = load_config(toml)
    with Store(db) as store:
        plain = load_inputs(store, cfg)
    pre = Prefetch.start(db, toml)
    assert pre is not None
    with pre.store as store:
        reads = pre.take(store, cfg)
        assert reads is not None and set(reads._done) == {"assets", "grid", "book"}  # all read on the thread
        got = load_inputs(store, cfg, pre)
    _same_inputs(got, plain)
    assert _no_prefetch_thread_left()


def test_reads_for_another_period_are_not_used(work):
    assert ingest(work).exit_code == 0
    db = str(work / "t.duckdb")
    other = work / "other.toml"
    other.write_text(CONFIG.replace('end = "2021-05-19T02:00:00Z"', 'end = "2021-05-19T01:00:00Z"'))
    cfg = load_config(str(work / "run.toml"))
    pre = Prefetch.start(db, str(other))
    with pre.store as store:
        assert pre.take(store, cfg) is None  # peeked end differs from the config's
        got = load_inputs(store, cfg, pre)
    with Store(db) as store:
        _same_inputs(got, load_inputs(store, cfg))
    assert len(got.grid_us) == 3  # the config's period, not the peeked one


def test_peek_reads_the_run_table_only_and_gives_up_quietly(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('[run]\nstart = "2021-05-19T00:00:00Z"\nend = "2021-05-19T02:00:00Z"\nstep = "10min"\n'
                    'price_source = { WETH = "chainlink" }\n[[rules]]\nnme = "typo is not the peek\'s business"\n')
    spec = peek_spec(str(good))
    assert spec == ReadSpec(1621382400000000, 1621389600000000, 600, {"WETH": "chainlink"})
    for text in ("not toml [", "[run]\nstart = 5\nend = 6\n", "[market]\n"):
        (tmp_path / "bad.toml").write_text(text)
        assert peek_spec(str(tmp_path / "bad.toml")) is None
    assert peek_spec(str(tmp_path / "missing.toml")) is None
    assert Prefetch.start(str(tmp_path / "absent.duckdb"), str(good)) is None  # nothing to read: no file made
    assert not (tmp_path / "absent.duckdb").exists()


def test_a_bad_config_is_reported_first_and_nothing_is_left_open(work):
    assert ingest(work).exit_code == 0
    before = counts(work / "t.duckdb")
    bad = work / "bad.toml"
    bad.write_text(CONFIG.replace("liquidation_bonus = 0.05", "liquidation_bonsu = 0.05", 1))
    r = mbt("run", str(bad), "--db", str(work / "t.duckdb"))
    assert r.exit_code == 2
    assert "liquidation_bonsu" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert _no_prefetch_thread_left()
    assert counts(work / "t.duckdb") == before
    duckdb.connect(str(work / "t.duckdb")).close()  # not held open by a leftover connection


def test_read_errors_come_after_the_config_checks_that_precede_them(work):
    """The prefetch meets the empty grid first; `mbt run` still names the `price_source` key, which is
    checked before the grid is built — the same message as without a prefetch."""
    assert ingest(work).exit_code == 0
    cfg = work / "late.toml"
    cfg.write_text(CONFIG.replace('start = "2021-05-19T00:00:00Z"\nend = "2021-05-19T02:00:00Z"',
                                  'start = "2022-01-01T00:00:00Z"\nend = "2022-01-02T00:00:00Z"\n'
                                  'price_source = { WTEH = "csv" }'))
    r = mbt("run", str(cfg), "--db", str(work / "t.duckdb"))
    assert r.exit_code == 2
    assert "run.price_source.WTEH" in r.stderr and "WETH" in r.stderr  # did-you-mean
    loaded = load_config(str(cfg))
    with Store(str(work / "t.duckdb")) as store:
        with pytest.raises(Exception) as plain:
            load_inputs(store, loaded)
    assert str(plain.value) in r.stderr
    # without the bad key, the read error itself comes out, as it would without a prefetch
    cfg.write_text(cfg.read_text().replace('price_source = { WTEH = "csv" }', ""))
    r = mbt("run", str(cfg), "--db", str(work / "t.duckdb"))
    assert r.exit_code == 2 and "empty grid" in r.stderr
    assert _no_prefetch_thread_left()


def test_a_store_without_positions_fails_the_same_way(tmp_path):
    db = tmp_path / "p.duckdb"
    (tmp_path / "prices.csv").write_text("timestamp,asset,price_usd\n2021-05-19T00:00:00Z,WETH,2000\n"
                                         "2021-05-19T00:00:00Z,USDC,1\n")
    assert mbt("ingest", "csv", "--prices", str(tmp_path / "prices.csv"), "--db", str(db)).exit_code == 0
    (tmp_path / "run.toml").write_text(CONFIG)
    r = mbt("run", str(tmp_path / "run.toml"), "--db", str(db))
    assert r.exit_code == 2 and "no positions stored" in r.stderr
    assert _no_prefetch_thread_left()
    assert Path(db).exists()


def test_a_store_that_cannot_be_opened_here_is_opened_and_reported_as_usual(work):
    """A file that is not a DuckDB database: the prefetch gives up quietly, `mbt run` opens it in the ordinary
    order and names it in one line (after the config is known to be fine)."""
    not_db = work / "not.duckdb"
    not_db.write_text("this is not a database\n")
    assert Prefetch.start(str(not_db), str(work / "run.toml")) is None
    r = mbt("run", str(work / "run.toml"), "--db", str(not_db))
    assert r.exit_code == 2 and "cannot open database" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert _no_prefetch_thread_left()
