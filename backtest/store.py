"""The store: the one place that talks to DuckDB (DESIGN §1, §5b).

SQL lives in ``sql/*.sql`` (shipped as ``backtest.sql``), one idea per file, loaded by name; values are
always bound as parameters. Every connection sets ``TimeZone = 'UTC'``. A CSV load is one transaction:
conflicts are detected inside it and the transaction is rolled back, so a failed load leaves the
database exactly as it was.
"""

from __future__ import annotations

import copy
import os
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import duckdb

from .errors import InputError, MbtError

if TYPE_CHECKING:  # pandas is imported by the ingest path only: `mbt run` does without it
    import pandas as pd
    import pyarrow as pa

SCHEMA_VERSION = "1"
DEFAULT_DB = "mbt.duckdb"

KEYS = {
    "prices": ("asset", "source", "timestamp", "round_id"),
    "positions": ("account", "asset", "market"),
    "liquidity": ("asset", "timestamp", "venue"),
    "indices": ("asset", "timestamp"),
}
VALUES = {
    "prices": ("price_usd", "block"),
    "positions": ("emode", "collateral", "debt"),
    "liquidity": ("depth_usd_2pct", "reserve_asset", "reserve_quote"),
    "indices": ("liquidity_index", "variable_borrow_index"),
}
EVENT_COLUMNS = ("timestamp", "account", "asset", "action", "amount", "block", "log_index", "tx_hash", "market")


def _sql_dir():
    try:
        return resources.files("backtest.sql")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "sql"


def schema_files() -> list[str]:
    """Names of the schema files, applied in sorted order: ``schema.sql``, then ``schema_*.sql``."""
    return sorted(p.name[:-4] for p in _sql_dir().iterdir() if p.name.startswith("schema") and p.name.endswith(".sql"))


@cache
def sql_text(name: str) -> str:
    """The text of ``sql/<name>.sql`` (from the installed package, or the source tree)."""
    try:
        return resources.files("backtest.sql").joinpath(f"{name}.sql").read_text(encoding="utf-8")
    except ModuleNotFoundError:
        return (Path(__file__).resolve().parent.parent / "sql" / f"{name}.sql").read_text(encoding="utf-8")


def ident(name: str) -> str:
    """Quote an SQL identifier (the one escape helper; values are never formatted into SQL)."""
    return '"' + name.replace('"', '""') + '"'


def resolve_db_path(db: str | None) -> str:
    """DESIGN §6: ``--db``, else ``$MBT_DB``, else ``mbt.duckdb`` in the current directory."""
    return db or os.environ.get("MBT_DB") or DEFAULT_DB


def _constant_columns(batch) -> dict[str, str]:
    """The string columns of an Arrow record batch that hold one value in every row (a dictionary column
    whose dictionary is that one string, no nulls): name → value."""
    import pyarrow as pa

    out = {}
    if batch.num_rows == 0:
        return out
    for name, col in zip(batch.schema.names, batch.columns):
        if not pa.types.is_dictionary(col.type) or col.null_count or len(col.dictionary) != 1:
            continue
        if pa.types.is_string(col.dictionary.type) or pa.types.is_large_string(col.dictionary.type):
            out[name] = col.dictionary[0].as_py()
    return out


class Store:
    """A DuckDB database file holding inputs and results.

    Parameters
    ----------
    path : database file
    read_only : open read-only (``mbt sql``); the file must exist
    """

    def __init__(self, path: str, *, read_only: bool = False) -> None:
        self.path = path
        if read_only and not Path(path).exists():
            raise MbtError(f"{path}: database not found (load data with `mbt ingest csv` or run `mbt demo`)")
        try:
            self.con = duckdb.connect(path, read_only=read_only)
        except duckdb.Error as exc:
            raise MbtError(f"{path}: cannot open database: {str(exc).splitlines()[0]}") from None
        self.con.execute("SET TimeZone = 'UTC'")
        if not read_only:
            self._ensure_schema()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def cursor_view(self) -> "Store":
        """This store on a DuckDB cursor of its own (its own temp tables and results), for reads on another
        thread while this connection is free for the caller; ``close`` on the view closes the cursor only."""
        view = copy.copy(self)
        view.con = self.con.cursor()
        view.con.execute("SET TimeZone = 'UTC'")
        return view

    def interrupt(self) -> None:
        """Stop the statement running on this connection (called from another thread)."""
        self.con.interrupt()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction: committed when the block ends, rolled back (and the error re-raised) otherwise."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    # -- schema -------------------------------------------------------------------------------
    def _ensure_schema(self) -> None:
        for name in schema_files():
            self.con.execute(sql_text(name))
        row = self.con.execute("SELECT value FROM mbt_meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            self.con.execute("INSERT INTO mbt_meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])
        elif row[0] != SCHEMA_VERSION:
            raise MbtError(f"{self.path}: schema version {row[0]} is not supported by this mbt "
                           f"(expects {SCHEMA_VERSION})")
        self.con.execute(sql_text("views"))

    # -- queries ------------------------------------------------------------------------------
    def query(self, name: str, **params: Any) -> duckdb.DuckDBPyConnection:
        """Run ``sql/<name>.sql`` with named parameters."""
        return self.con.execute(sql_text(name), params)

    def query_arrow(self, name: str, **params: Any):
        """``sql/<name>.sql`` with named parameters, as an Arrow table (strings stay in Arrow buffers)."""
        return self.con.sql(sql_text(name), params=params or None).to_arrow_table()

    def table_exists(self, name: str) -> bool:
        return bool(self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()[0])

    # -- loading ------------------------------------------------------------------------------
    def ingest(self, frames: dict[str, tuple[pd.DataFrame, str]], *, overwrite: bool = False,
               before: list[tuple[str, list]] | None = None) -> dict[str, int]:
        """Load validated frames (``kind → (frame, display file name)``) in one transaction.

        ``before`` holds statements run first inside the same transaction (``mbt demo`` clears its own
        earlier rows that way). Returns the number of rows added or changed per kind. Raises
        ``InputError`` naming the file and line of the first conflict; nothing is stored then.
        """
        counts: dict[str, int] = {}
        with self._transaction():
            for statement, params in before or []:
                self.con.execute(statement, params)
            for kind, (frame, display) in frames.items():
                counts[kind] = getattr(self, f"_load_{kind}")(frame, display, overwrite)
        return counts

    def _stage(self, frame: pd.DataFrame, kind: str) -> str:
        name = f"_new_{kind}"
        if kind == "prices":
            # HUGEINT round ids (> 64 bits) travel as text and are cast inside DuckDB.
            frame = frame.assign(round_id=frame["round_id"].map(str))
            select = "SELECT * EXCLUDE (round_id), CAST(round_id AS HUGEINT) AS round_id FROM _frame"
        else:
            select = "SELECT * FROM _frame"
        self.con.register("_frame", frame)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(name)} AS {select}")
        self.con.unregister("_frame")
        return name

    def _conflict(self, kind: str, staged: str, display: str) -> None:
        keys, values = KEYS[kind], VALUES[kind]
        on = " AND ".join(f"e.{ident(k)} = n.{ident(k)}" for k in keys)
        differs = " OR ".join(f"e.{ident(v)} IS DISTINCT FROM n.{ident(v)}" for v in values)
        picks = ", ".join(f"e.{ident(v)} IS DISTINCT FROM n.{ident(v)}, e.{ident(v)}, n.{ident(v)}" for v in values)
        row = self.con.execute(
            f"SELECT n._line, {picks} FROM {ident(staged)} n JOIN {ident(kind)} e ON {on} "
            f"WHERE {differs} ORDER BY n._line LIMIT 1").fetchone()
        if row is None:
            return
        for n, v in enumerate(values):
            if row[1 + 3 * n]:
                raise InputError(display, int(row[0]), v,
                                 f"conflicts with the stored row with the same key ({v} {row[2 + 3 * n]!r} stored, "
                                 f"{row[3 + 3 * n]!r} here); use --overwrite to replace it")

    def _load_keyed(self, kind: str, frame: pd.DataFrame, display: str, overwrite: bool) -> int:
        """Insert new keys; identical rows are no-ops; differing rows conflict unless ``overwrite``.

        Returns how many rows were added or changed.
        """
        staged = self._stage(frame, kind)
        on = " AND ".join(f"e.{ident(k)} = n.{ident(k)}" for k in KEYS[kind])
        same = on + "".join(f" AND e.{ident(v)} IS NOT DISTINCT FROM n.{ident(v)}" for v in VALUES[kind])
        cols = ", ".join(ident(c) for c in KEYS[kind] + VALUES[kind])
        if not overwrite:
            self._conflict(kind, staged, display)
        changed = self.con.execute(
            f"SELECT count(*) FROM {ident(staged)} n WHERE NOT EXISTS (SELECT 1 FROM {ident(kind)} e WHERE {same})"
        ).fetchone()[0]
        self.con.execute(f"DELETE FROM {ident(kind)} e WHERE EXISTS (SELECT 1 FROM {ident(staged)} n WHERE {on})")
        self.con.execute(f"INSERT INTO {ident(kind)} ({cols}) SELECT {cols} FROM {ident(staged)}")
        self.con.execute(f"DROP TABLE {ident(staged)}")
        return int(changed)

    def _load_prices(self, frame: pd.DataFrame, display: str, overwrite: bool) -> int:
        return self._load_keyed("prices", frame, display, overwrite)

    def _load_liquidity(self, frame: pd.DataFrame, display: str, overwrite: bool) -> int:
        return self._load_keyed("liquidity", frame, display, overwrite)

    def _load_indices(self, frame: pd.DataFrame, display: str, overwrite: bool) -> int:
        return self._load_keyed("indices", frame, display, overwrite)

    def _load_positions(self, frame: pd.DataFrame, display: str, overwrite: bool) -> int:
        # One snapshot per database: a positions load replaces the whole snapshot.
        self.con.execute("DELETE FROM positions")
        return self._load_keyed("positions", frame, display, overwrite)

    def _load_events(self, frame: pd.DataFrame, display: str, overwrite: bool) -> int:
        staged = self._stage(frame, "events")
        base = self.con.execute("SELECT coalesce(max(seq), 0) + 1 FROM events").fetchone()[0]
        same = " AND ".join(f"e.{ident(c)} IS NOT DISTINCT FROM n.{ident(c)}" for c in EVENT_COLUMNS)
        cols = ", ".join(ident(c) for c in EVENT_COLUMNS)
        before = self.con.execute("SELECT count(*) FROM events").fetchone()[0]
        self.con.execute(
            f"INSERT INTO events ({cols}, seq) SELECT {cols}, ? + n._line FROM {ident(staged)} n "
            f"WHERE NOT EXISTS (SELECT 1 FROM events e WHERE {same})", [base])
        after = self.con.execute("SELECT count(*) FROM events").fetchone()[0]
        self.con.execute(f"DROP TABLE {ident(staged)}")
        return int(after - before)

    # -- results ------------------------------------------------------------------------------
    def write_run(self, run: dict[str, Any], tables: dict[str, pa.Table | pd.DataFrame]) -> None:
        """Store one run's rows, replacing any earlier rows of the same ``run_id``, in one transaction."""
        run_id = run["run_id"]
        with self._transaction():
            for table in ("runs", "run_metrics", "liquidations", "timeseries", "account_states"):
                self.con.execute(f"DELETE FROM {ident(table)} WHERE run_id = ?", [run_id])
            cols = list(run)
            self.con.execute(
                f"INSERT INTO runs ({', '.join(ident(c) for c in cols)}) VALUES ({', '.join('?' * len(cols))})",
                [run[c] for c in cols])
            self._insert_tables(tables)

    # -- sweeps (committed job by job) ------------------------------------------------------------
    def begin_sweep(self, run: dict[str, Any], points: list[tuple[str, str, float]], restart: bool) -> set[tuple[str, str]]:
        """Store a sweep's ``runs`` row and ``sweep_points`` (one transaction); returns the jobs already
        committed by an earlier start of the same sweep (none with ``restart``, which drops its rows first)."""
        run_id = run["run_id"]
        with self._transaction():
            if restart:
                for table in ("runs", "run_metrics", "liquidations", "timeseries", "account_states", "sweep_points",
                              "sweep_jobs"):
                    self.con.execute(f"DELETE FROM {ident(table)} WHERE run_id = ?", [run_id])
            cols = list(run)
            self.con.execute(f"INSERT OR REPLACE INTO runs ({', '.join(ident(c) for c in cols)}) "
                             f"VALUES ({', '.join('?' * len(cols))})", [run[c] for c in cols])
            if points:
                self.con.executemany("INSERT OR REPLACE INTO sweep_points (run_id, rule, key, value) VALUES (?, ?, ?, ?)",
                                     [(run_id, *p) for p in points])
        return {(r, s) for r, s in self.rows("sweep_done", run_id=run_id)}

    def commit_sweep_jobs(self, run_id: str, done: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Finished jobs' rows and their done-markers, in one transaction (a kill loses at most the jobs not
        committed yet). None of them is stored yet (``begin_sweep`` said which are): a job's rows and marker
        only ever go in together, so there is nothing of it to delete first."""
        if not done:
            return
        import pyarrow as pa

        merged: dict[str, Any] = {}
        for _, _, tables in done:
            for name, table in tables.items():
                merged.setdefault(name, []).append(table)
        with self._transaction():
            self._insert_tables({name: pa.concat_tables(parts) for name, parts in merged.items()})
            self.con.executemany("INSERT INTO sweep_jobs (run_id, rule, scenario) VALUES (?, ?, ?)",
                                 [(run_id, rule, scenario) for rule, scenario, _ in done])

    def finish_sweep(self, run_id: str, tables: dict[str, Any]) -> None:
        """Replace a sweep's ``scenario = '*'`` rows (one transaction)."""
        with self._transaction():
            self.con.execute("DELETE FROM run_metrics WHERE run_id = ? AND scenario = '*'", [run_id])
            self._insert_tables(tables)

    COMBINE_ROWS = 1 << 21  # tables shorter than this go in as one INSERT (≈ 17 DuckDB row groups)

    def _insert_tables(self, tables: dict[str, Any]) -> None:
        """Append Arrow tables (or pandas frames) to the store's tables, in the caller's transaction.

        Every INSERT runs on all DuckDB threads, and each leaves up to one partial row group per thread for
        the commit (or the checkpoint at close) to merge and compress again. A table's record batches (one
        per outcome from ``outputs.tables``) therefore go in as one INSERT, combined, when the table is
        shorter than ``COMBINE_ROWS``: for such tables the partial row groups of an INSERT per batch are a
        large share of the rows. Longer tables (a year's time series) go in batch by batch, without the
        copy. String columns that hold one value in every row (``run_id``, ``scenario``, a single rule's
        name) go in as SQL parameters. Measured (bench/RESULTS.md, issue #8, 2026-12-06): the end-to-end
        benchmark's 616,201 result rows in 0.30-0.37 s instead of 0.45-0.57 s (one INSERT per outcome, one
        thread for tables with account ids)."""
        import pyarrow as pa

        for table, frame in tables.items():
            if len(frame) == 0:
                continue
            if not hasattr(frame, "to_batches"):  # a pandas frame
                self._insert_rows(table, frame, list(frame.columns), {})
                continue
            batches = [b for b in frame.to_batches() if b.num_rows]
            if len(batches) > 1 and frame.num_rows < self.COMBINE_ROWS:
                batches = pa.Table.from_batches(batches, schema=frame.schema).combine_chunks().to_batches()
            for batch in batches:
                self._insert_batch(table, batch)

    def _insert_batch(self, table: str, batch) -> None:
        """INSERT one Arrow record batch, its one-value string columns as SQL parameters."""
        consts = _constant_columns(batch)
        if len(consts) == batch.num_columns:  # keep one column to scan: the rows' count
            consts.pop(batch.schema.names[0])
        rows = batch.select([c for c in batch.schema.names if c not in consts]) if consts else batch
        self._insert_rows(table, rows, batch.schema.names, consts)

    def _insert_rows(self, table: str, rows: Any, columns: list[str], consts: dict[str, str]) -> None:
        """INSERT ``rows`` into ``table``; the ``consts`` columns as one value each (a SQL parameter): DuckDB
        stores a constant vector at a fraction of the cost of the same string repeated per row."""
        self.con.register("_rows", rows)
        try:
            exprs = ", ".join("?" if c in consts else ident(c) for c in columns)
            values = [consts[c] for c in columns if c in consts]
            self.con.execute(f"INSERT INTO {ident(table)} ({', '.join(ident(c) for c in columns)}) "
                             f"SELECT {exprs} FROM _rows", values)
        finally:
            self.con.unregister("_rows")

    RESULT_TABLES = ("runs", "run_metrics", "liquidations", "timeseries", "account_states", "sweep_points")

    def run_table(self, table: str, run_id: str):
        """One result table's rows of ``run_id`` as an Arrow table (``mbt export``)."""
        if table not in self.RESULT_TABLES:
            raise ValueError(table)
        order = {"runs": "run_id", "run_metrics": "rule, scenario, metric", "liquidations": "rule, scenario, call",
                 "timeseries": "rule, scenario, ts", "account_states": "rule, scenario, account",
                 "sweep_points": "rule, key"}[table]
        return self.con.sql(f"SELECT * FROM {ident(table)} WHERE run_id = $run_id ORDER BY {order}",
                            params={"run_id": run_id}).to_arrow_table()

    def resolve_run(self, run_id: str) -> str:
        """``run_id``, or the newest run for ``latest``; one-line error for an unknown id."""
        if run_id == "latest":
            rows = self.con.execute("SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 1").fetchall()
            if not rows:
                raise MbtError(f"{self.path}: no runs stored (mbt run or mbt demo first)")
            return rows[0][0]
        if not self.rows("export_run", run_id=run_id):
            raise MbtError(f"run {run_id!r}: not in {self.path} (mbt runs lists the stored runs)")
        return run_id

    def rows(self, name: str, **params: Any) -> list[tuple]:
        """All rows of ``sql/<name>.sql`` (one query) with named parameters."""
        return self.query(name, **params).fetchall()

    def replace_onchain_book(self, market: str, positions: list[tuple], events: list[tuple],
                             indices: list[tuple]) -> None:
        """``mbt positions --save``, in one transaction: ``positions`` (account, asset, market, emode, collateral,
        debt) replace the snapshot, ``events`` (unix ts, account, asset, action, amount, block, log_index,
        tx_hash) replace the events of ``market``, ``indices`` (asset, unix ts, liquidity, variable) are upserted."""
        with self._transaction():
            self.con.execute("DELETE FROM positions")
            if positions:
                self.con.executemany("INSERT INTO positions (account, asset, market, emode, collateral, debt) "
                                     "VALUES (?, ?, ?, ?, ?, ?)", positions)
            self.con.execute("DELETE FROM events WHERE market = ?", [market])
            seq = self.con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
            if events:
                self.con.executemany(
                    "INSERT INTO events (timestamp, account, asset, action, amount, block, log_index, tx_hash, market, "
                    "seq) VALUES (to_timestamp(?), ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(*e, market, seq + n) for n, e in enumerate(events, start=1)])
            if indices:
                self.con.executemany("INSERT OR REPLACE INTO indices (asset, timestamp, liquidity_index, "
                                     "variable_borrow_index) VALUES (?, to_timestamp(?), ?, ?)", indices)

    def iter_rows(self, sql: str, params: list[Any] | None = None) -> Iterator[tuple]:
        cur = self.con.execute(sql, params or [])
        while batch := cur.fetchmany(10_000):
            yield from batch

    # -- for the CLI (it only wires; the SQL stays here) ----------------------------------------
    #: Statements ``mbt demo`` runs before loading, in the same transaction: its own earlier rows go.
    DEMO_CLEANUP: tuple[tuple[str, list], ...] = (
        ("DELETE FROM prices WHERE source = 'demo'", []),
        ("DELETE FROM events WHERE tx_hash LIKE 'demo-%'", []),
        ("DELETE FROM liquidity WHERE venue = 'demo'", []),
    )

    def user_query(self, sql: str) -> tuple[list[str] | None, list[tuple]]:
        """Run a user's query (``mbt sql``): (column names or None for a statement without result, rows).

        Raises ``MbtError`` with DuckDB's first message line (e.g. a write on a read-only connection).
        """
        try:
            cur = self.con.execute(sql)
        except duckdb.Error as exc:
            raise MbtError(f"sql: {str(exc).splitlines()[0]}") from None
        if cur.description is None:
            return None, []
        return [d[0] for d in cur.description], cur.fetchall()

    def runs_summary(self) -> tuple[list[str], list[tuple]]:
        """The stored runs, newest first (``mbt runs``): column names and rows."""
        cur = self.con.execute("""
            SELECT r.run_id, r.name, strftime(r.created_at, '%Y-%m-%d %H:%M:%S') AS created_utc,
                   r.grid_steps AS steps, r.accounts,
                   (SELECT count(DISTINCT rule) FROM run_metrics m WHERE m.run_id = r.run_id) AS rule_sets,
                   (SELECT value FROM run_metrics m WHERE m.run_id = r.run_id AND m.metric = 'bad_debt_usd'
                    ORDER BY rowid LIMIT 1) AS baseline_bad_debt_usd
            FROM runs r ORDER BY r.created_at DESC""")
        return [d[0] for d in cur.description], cur.fetchall()
