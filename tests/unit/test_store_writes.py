"""Store writes of result rows: one INSERT per table (outcomes combined), one-value string columns as parameters."""

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from backtest.store import Store, _constant_columns


def _same(value, n):
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value]))


def _run(run_id):
    return {"run_id": run_id, "name": "t", "created_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
            "config_json": "{}", "config_hash": "h", "data_fingerprint": "f", "mbt_version": "0"}


class _Recording:
    """A connection that notes the text of every statement it runs."""

    def __init__(self, inner, seen):
        self.inner, self.seen = inner, seen

    def execute(self, sql, *args):
        self.seen.append(sql)
        return self.inner.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _liquidations(run_id, rule, accounts):
    n = len(accounts)
    names = pa.array(["0xa", "0xb", "0xc"])
    return pa.table({
        "run_id": _same(run_id, n), "rule": _same(rule, n), "scenario": _same("historical", n),
        "ts": pa.array(np.arange(n, dtype=np.int64)).cast(pa.timestamp("us", tz="UTC")),
        "account": pa.DictionaryArray.from_arrays(pa.array(np.asarray(accounts, dtype=np.int32)), names),
        "debt_asset": _same("USDC", n), "collateral_asset": _same("WETH", n),
        "debt_repaid": pa.array(np.ones(n)), "collateral_seized": pa.array(np.ones(n)),
        "debt_repaid_usd": pa.array(np.ones(n)), "penalty_usd": pa.array(np.full(n, 0.5)),
        "protocol_fee": pa.array(np.zeros(n)), "call": pa.array(np.arange(n, dtype=np.int64)),
    })


def test_constant_string_columns_are_found():
    t = _liquidations("r1", "current", [0, 2, 1])
    consts = _constant_columns(t.to_batches()[0])
    assert consts == {"run_id": "r1", "rule": "current", "scenario": "historical", "debt_asset": "USDC",
                      "collateral_asset": "WETH"}
    assert _constant_columns(pa.table({"x": pa.array(["a", "a"])}).to_batches()[0]) == {}  # plain strings vary
    # two outcomes combined: the rule differs between them, so it is a column; the rest stay one value each
    two = pa.concat_tables([t, _liquidations("r1", "tighter", [1])]).combine_chunks()
    assert set(_constant_columns(two.to_batches()[0])) == {"run_id", "scenario", "debt_asset", "collateral_asset"}


def test_write_run_stores_every_value_of_each_outcome_in_one_insert_per_table(tmp_path):
    with Store(str(tmp_path / "w.duckdb")) as store:
        before = store.con.execute("SELECT current_setting('threads')").fetchone()[0]
        two = pa.concat_tables([_liquidations("r1", "current", [0, 2]), _liquidations("r1", "tighter", [1])])
        statements = []
        store.con = _Recording(store.con, statements)
        store.write_run(_run("r1"), {"liquidations": two})
        store.con = store.con.inner
        assert sum(s.startswith('INSERT INTO "liquidations"') for s in statements) == 1
        rows = store.con.execute("SELECT run_id, rule, scenario, account, debt_asset, collateral_asset, call "
                                 "FROM liquidations ORDER BY rule, call").fetchall()
        assert rows == [("r1", "current", "historical", "0xa", "USDC", "WETH", 0),
                        ("r1", "current", "historical", "0xc", "USDC", "WETH", 1),
                        ("r1", "tighter", "historical", "0xb", "USDC", "WETH", 0)]
        assert store.con.execute("SELECT current_setting('threads')").fetchone()[0] == before
        # the same run again replaces its rows, nothing doubled
        store.write_run(_run("r1"), {"liquidations": two})
        assert store.con.execute("SELECT count(*) FROM liquidations").fetchone()[0] == 3


def test_a_table_of_constant_columns_only_keeps_its_row_count(tmp_path):
    with Store(str(tmp_path / "c.duckdb")) as store:
        store.con.execute("CREATE TABLE only_consts (a VARCHAR, b VARCHAR)")
        with store._transaction():
            store._insert_tables({"only_consts": pa.table({"a": _same("x", 3), "b": _same("y", 3)})})
        assert store.con.execute("SELECT a, b FROM only_consts").fetchall() == [("x", "y")] * 3


def test_result_account_ids_are_stored_uncompressed_in_a_new_store(tmp_path):
    """The account-id columns of the two large result tables skip DuckDB's string compression (DICT_FSST
    took ~0.4 of the ~0.9 s the end-to-end benchmark's write took); the other string columns keep it."""
    path = str(tmp_path / "u.duckdb")
    with Store(path) as store:
        store.write_run(_run("r1"), {"liquidations": _liquidations("r1", "current", [0, 2, 1] * 50)})
    with Store(path) as store:
        rows = store.con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE column_name = 'account' AND table_name IN ('liquidations', 'account_states')").fetchall()
        assert sorted(rows) == [("account_states", "account"), ("liquidations", "account")]
        used = dict(store.con.execute(
            "SELECT column_name, string_agg(DISTINCT compression, ',') FROM pragma_storage_info('liquidations') "
            "WHERE segment_type = 'VARCHAR' GROUP BY column_name").fetchall())
        assert used["account"] == "Uncompressed"
        assert used["debt_asset"] != "Uncompressed"
        assert store.con.execute("SELECT count(*), count(DISTINCT account) FROM liquidations").fetchone() == (150, 3)


def test_a_long_table_goes_in_batch_by_batch_with_the_same_rows(tmp_path):
    with Store(str(tmp_path / "l.duckdb")) as store:
        two = pa.concat_tables([_liquidations("r1", "current", [0, 2]), _liquidations("r1", "tighter", [1])])
        store.COMBINE_ROWS = 3  # this table (3 rows) counts as long: no combined copy
        statements = []
        store.con = _Recording(store.con, statements)
        store.write_run(_run("r1"), {"liquidations": two})
        store.con = store.con.inner
        assert sum(s.startswith('INSERT INTO "liquidations"') for s in statements) == 2
        assert store.con.execute("SELECT rule, account, call FROM liquidations ORDER BY rule, call").fetchall() == [
            ("current", "0xa", 0), ("current", "0xc", 1), ("tighter", "0xb", 0)]
