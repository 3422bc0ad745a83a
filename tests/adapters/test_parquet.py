"""Tests for adapters.parquet: the CSV contract (DESIGN §2) on typed Parquet columns.

A good file gives exactly the frame the equivalent CSV gives (``_line`` aside: the 1-based row instead of
the physical line); bad values, wrong column types and missing columns give one ``FILE:ROW:COLUMN`` line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adapters.csv import read_table
from adapters.parquet import is_parquet_name, read_parquet_table
from backtest.errors import InputError

UTC = "UTC"


def _ts(*values: str) -> pa.Array:
    return pa.array([pd.Timestamp(v) for v in values], pa.timestamp("us", tz=UTC))


def write(tmp_path: Path, table: pa.Table, name: str = "f.parquet") -> Path:
    path = tmp_path / name
    pq.write_table(table, path)
    return path


def load(kind: str, path: Path, warnings: list[str] | None = None) -> pd.DataFrame:
    sink = [] if warnings is None else warnings
    return read_parquet_table(kind, path, display_name="f.parquet", warn=sink.append)


def error(kind: str, tmp_path: Path, table: pa.Table) -> str:
    with pytest.raises(InputError) as info:
        load(kind, write(tmp_path, table))
    return str(info.value)


def same_as_csv(kind: str, tmp_path: Path, csv_text: str, table: pa.Table) -> pd.DataFrame:
    (tmp_path / "f.csv").write_text(csv_text)
    expected = read_table(kind, tmp_path / "f.csv", display_name="f.csv", warn=lambda _: None)
    got = load(kind, write(tmp_path, table))
    pd.testing.assert_frame_equal(got.drop(columns="_line"), expected.drop(columns="_line"), check_exact=True)
    assert got["_line"].tolist() == list(range(1, len(got) + 1))
    return got


# ------------------------------------------------------------------------------------ good files

CASES = {
    "prices": (
        "timestamp,asset,price_usd,source,round_id,block\n"
        "2021-05-19T00:00:00Z,WETH,2000.5,chainlink,18446744073709551617,12000000\n"
        "2021-05-19T02:00:00+02:00,WETH,1999,chainlink,18446744073709551618,\n"
        "1621382400.25,USDC,1,,,\n",
        pa.table({"timestamp": _ts("2021-05-19T00:00:00Z", "2021-05-19T00:00:00Z", "2021-05-19T00:00:00.25Z"),
                  "asset": ["WETH", "WETH", "USDC"], "price_usd": [2000.5, 1999.0, 1.0],
                  "source": ["chainlink", "chainlink", None],
                  "round_id": pa.array([(1 << 64) | 1, (1 << 64) | 2, None], pa.decimal128(38, 0)),
                  "block": pa.array([12_000_000, None, None], pa.int64())})),
    "positions": (
        "account,asset,collateral,debt,market,emode\n"
        "0xAbCdEf0123AbCdEf0123AbCdEf0123AbCdEf0123,WETH,1.5,0,,\n"
        "bob,USDC,0,1000,isolated-1,stables\n",
        pa.table({"account": ["0xAbCdEf0123AbCdEf0123AbCdEf0123AbCdEf0123", "bob"], "asset": ["WETH", "USDC"],
                  "collateral": [1.5, 0.0], "debt": pa.array([0, 1000], pa.int32()),
                  "market": [None, "isolated-1"], "emode": [None, "stables"]})),
    "events": (
        "timestamp,account,asset,action,amount,block,log_index,tx_hash\n"
        "1621382400,bob,USDC,repay,10,5,0,0xaa\n"
        "1621382460,bob,WETH,supply,0.25,,,\n",
        pa.table({"timestamp": pa.array([1_621_382_400, 1_621_382_460], pa.int64()), "account": ["bob", "bob"],
                  "asset": ["USDC", "WETH"], "action": pa.array(["repay", "supply"]).dictionary_encode(),
                  "amount": [10.0, 0.25], "block": pa.array([5, None], pa.uint32()),
                  "log_index": pa.array([0.0, None], pa.float64()), "tx_hash": ["0xaa", None]})),
    "liquidity": (
        "timestamp,asset,venue,depth_usd_2pct\n"
        "2021-05-19T00:00:00Z,WETH,uniswap,1500000\n"
        "2021-05-19T00:00:00Z,USDC,,0\n",
        pa.table({"timestamp": _ts("2021-05-19T00:00:00Z", "2021-05-19T00:00:00Z"), "asset": ["WETH", "USDC"],
                  "venue": ["uniswap", None], "depth_usd_2pct": [1_500_000.0, 0.0]})),
    "indices": (
        "timestamp,asset,liquidity_index,variable_borrow_index\n"
        "2021-05-19T00:00:00Z,USDC,1.02e27,1.03e27\n",
        pa.table({"timestamp": pa.array([pd.Timestamp("2021-05-19T00:00:00Z")], pa.timestamp("ns", tz="Asia/Tokyo")),
                  "asset": ["USDC"], "liquidity_index": [1.02e27], "variable_borrow_index": [1.03e27]})),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_a_good_file_reads_like_the_equivalent_csv(kind: str, tmp_path: Path) -> None:
    csv_text, table = CASES[kind]
    same_as_csv(kind, tmp_path, csv_text, table)


def test_text_columns_are_checked_like_csv_cells(tmp_path: Path) -> None:
    # A file written with every column as text (as some exporters do) is read with the CSV converters.
    csv_text = "timestamp,asset,price_usd,round_id,block\n2021-05-19T00:00:00Z, WETH ,1.50,7,17.0\n"
    table = pa.table({"timestamp": ["2021-05-19T00:00:00Z"], "asset": [" WETH "], "price_usd": ["1.50"],
                      "round_id": ["7"], "block": pa.array(["17.0"], pa.large_string())})
    same_as_csv("prices", tmp_path, csv_text, table)


def test_reserves_form_and_repeated_rows(tmp_path: Path) -> None:
    csv_text = ("timestamp,asset,reserve_asset,reserve_quote\n2021-05-19T00:00:00Z,WETH,100,250000\n"
                "2021-05-19T00:00:00Z,WETH,100,250000\n")
    table = pa.table({"timestamp": _ts("2021-05-19T00:00:00Z", "2021-05-19T00:00:00Z"), "asset": ["WETH", "WETH"],
                      "reserve_asset": [100.0, 100.0], "reserve_quote": [250_000.0, 250_000.0]})
    (tmp_path / "f.csv").write_text(csv_text)
    got = load("liquidity", write(tmp_path, table))
    assert len(got) == 1 and got["_line"].tolist() == [1]   # the exact repeat is dropped, like in a CSV


def test_unknown_columns_warn_and_an_empty_file_loads_nothing(tmp_path: Path) -> None:
    warnings: list[str] = []
    table = pa.table({"timestamp": _ts(), "asset": pa.array([], pa.string()), "price_usd": pa.array([], pa.float64()),
                      "note": pa.array([], pa.string())})
    assert load("prices", write(tmp_path, table), warnings).empty
    assert warnings == ["f.parquet: unknown column(s) ignored: note"]


def test_file_names() -> None:
    assert is_parquet_name("a/prices.parquet") and is_parquet_name("P.PARQUET")
    assert not is_parquet_name("prices.csv") and not is_parquet_name("prices.parquet.csv")


# ------------------------------------------------------------------------------------- bad files

def _prices(**columns: pa.Array | list) -> pa.Table:
    base = {"timestamp": _ts("2021-05-19T00:00:00Z", "2021-05-19T01:00:00Z"), "asset": ["WETH", "WETH"],
            "price_usd": [2000.0, 1900.0]}
    base.update(columns)
    return pa.table(base)


@pytest.mark.parametrize("columns, message", [
    ({"price_usd": [2000.0, float("nan")]}, "f.parquet:2:price_usd: not finite: 'nan'"),
    ({"price_usd": [2000.0, float("-inf")]}, "f.parquet:2:price_usd: not finite: '-inf'"),
    ({"price_usd": [0.0, 1900.0]}, "f.parquet:1:price_usd: must be > 0, got 0.0"),
    ({"price_usd": pa.array([5, -1], pa.int64())}, "f.parquet:2:price_usd: must be > 0, got -1"),
    ({"price_usd": [2000.0, None]}, "f.parquet:2:price_usd: missing value"),
    ({"asset": ["WETH", None]}, "f.parquet:2:asset: missing value"),
    ({"asset": ["WETH", "  "]}, "f.parquet:2:asset: missing value"),
    ({"price_usd": ["2000", "abc"]}, "f.parquet:2:price_usd: not a number: 'abc'"),
    ({"block": pa.array([1.5, None])}, "f.parquet:1:block: not an integer: '1.5'"),
    ({"block": pa.array([1, -3], pa.int64())}, "f.parquet:2:block: must be >= 0, got -3"),
    ({"block": pa.array([1, 2**63], pa.uint64())},
     "f.parquet:2:block: numeric overflow: '9223372036854775808' (maximum 9223372036854775807)"),
    ({"round_id": pa.array([1, -2], pa.int64())}, "f.parquet:2:round_id: must be >= 0, got -2"),
    ({"round_id": pa.array([1, 5], pa.decimal128(38, 2))}, None),   # 1.00 and 5.00 are whole: fine
    ({"timestamp": pa.array([1_621_382_400, 1_621_382_400_000], pa.int64())},
     "f.parquet:2:timestamp: unix time '1621382400000' looks like milliseconds (expected seconds)"),
    ({"timestamp": pa.array([1_621_382_400.0, -5.0])},
     "f.parquet:2:timestamp: unparsable timestamp: '-5.0' (expected a zone-aware timestamp or unix seconds >= 0)"),
    ({"timestamp": pa.array([pd.Timestamp("2021-05-19T00:00:00Z"), None], pa.timestamp("s", tz=UTC))},
     "f.parquet:2:timestamp: missing value"),
    ({"timestamp": ["2021-05-19T00:00:00Z", "2021-05-19T00:00:00"]},
     "f.parquet:2:timestamp: timestamp without time zone: '2021-05-19T00:00:00' (add Z or +hh:mm)"),
])
def test_bad_values_name_row_and_column(tmp_path: Path, columns: dict, message: str | None) -> None:
    if message is None:
        assert len(load("prices", write(tmp_path, _prices(**columns)))) == 2
    else:
        assert error("prices", tmp_path, _prices(**columns)) == message


def test_the_first_problem_in_row_order_wins(tmp_path: Path) -> None:
    table = _prices(price_usd=[2000.0, -1.0], asset=["WETH", None], block=pa.array([-1, 0], pa.int64()))
    # Row 1's block comes before row 2's problems; within row 2 the leftmost column would win.
    assert error("prices", tmp_path, table) == "f.parquet:1:block: must be >= 0, got -1"
    table = _prices(price_usd=[2000.0, -1.0], asset=["WETH", None])
    assert error("prices", tmp_path, table) == "f.parquet:2:asset: missing value"


@pytest.mark.parametrize("columns, message", [
    ({"asset": pa.array([1, 2], pa.int64())}, "f.parquet:0:asset: expected a text column, got Parquet type int64"),
    ({"price_usd": [True, False]}, "f.parquet:0:price_usd: expected a numeric column, got Parquet type bool"),
    ({"block": pa.array([b"\x01", b"\x02"])}, "f.parquet:0:block: expected an integer column, got Parquet type binary"),
    ({"timestamp": pa.array([pd.Timestamp("2021-05-19"), pd.Timestamp("2021-05-20")], pa.timestamp("us"))},
     "f.parquet:0:timestamp: timestamp column without time zone (Parquet type timestamp[us]); store it zone-aware, "
     "e.g. timestamp[us, tz=UTC]"),
    ({"timestamp": pa.array([pd.Timestamp("2021-05-19").date()] * 2, pa.date32())},
     "f.parquet:0:timestamp: date column without time (Parquet type date32[day]); store a zone-aware timestamp, "
     "e.g. timestamp[us, tz=UTC]"),
])
def test_a_wrong_column_type_is_a_schema_error(tmp_path: Path, columns: dict, message: str) -> None:
    assert error("prices", tmp_path, _prices(**columns)) == message


def test_missing_and_duplicate_columns(tmp_path: Path) -> None:
    assert error("prices", tmp_path, _prices().drop_columns(["price_usd"])) == \
        "f.parquet:0:price_usd: missing required column"
    liquidity = pa.table({"timestamp": _ts("2021-05-19T00:00:00Z"), "asset": ["WETH"], "reserve_asset": [1.0]})
    assert error("liquidity", tmp_path, liquidity) == "f.parquet:0:reserve_quote: missing required column"
    twice = pa.Table.from_arrays([_ts("2021-05-19T00:00:00Z"), pa.array(["WETH"]), pa.array(["WETH"]),
                                  pa.array([1.0])], names=["timestamp", "asset", "asset", "price_usd"])
    assert error("prices", tmp_path, twice) == "f.parquet:0:asset: duplicate column"


def test_not_a_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    path.write_text("timestamp,asset,price_usd\n")
    with pytest.raises(InputError, match=r"^f\.parquet:0:: not a Parquet file \("):
        load("prices", path)
    with pytest.raises(InputError, match=r"^f\.parquet:0:: cannot read file \(No such file or directory\)$"):
        load("prices", tmp_path / "missing.parquet")


def test_a_key_repeated_with_other_values_names_both_rows(tmp_path: Path) -> None:
    table = _prices(timestamp=_ts("2021-05-19T00:00:00Z", "2021-05-19T00:00:00Z"))
    assert error("prices", tmp_path, table) == \
        "f.parquet:2:price_usd: conflicts with row 1 (same key, different price_usd)"


def test_large_files_stay_columnar(tmp_path: Path) -> None:
    # 200,000 rows of native types: every check runs on whole columns (no per-row Python).
    n = 200_000
    rng = np.random.default_rng(3)
    table = pa.table({"timestamp": pa.array(1_600_000_000 + np.arange(n, dtype=np.int64) * 60),
                      "asset": pa.array(np.where(rng.random(n) < 0.5, "WETH", "WBTC")).dictionary_encode(),
                      "price_usd": rng.uniform(1, 5, n), "block": pa.array(np.arange(n, dtype=np.int64))})
    frame = load("prices", write(tmp_path, table))
    assert len(frame) == n and frame["timestamp"].is_monotonic_increasing
    assert frame["block"].dtype == "Int64" and frame["round_id"].iloc[-1] == 0
