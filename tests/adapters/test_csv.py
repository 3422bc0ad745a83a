"""Tests for adapters.csv: the DESIGN §2 input contract, one test per class of bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import _csvparse
from adapters.csv import read_table
from backtest.errors import InputError

PRICES = "timestamp,asset,price_usd\n"
POSITIONS = "account,asset,collateral,debt\n"
EVENTS = "timestamp,account,asset,action,amount\n"
ADDR = "0x" + "AbCdEf0123" * 4


def write(tmp_path: Path, content: str | bytes, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def load(kind: str, path: Path, warnings: list[str] | None = None) -> pd.DataFrame:
    sink = [] if warnings is None else warnings
    return read_table(kind, path, display_name="f.csv", warn=sink.append)


def error(kind: str, tmp_path: Path, content: str | bytes) -> str:
    with pytest.raises(InputError) as info:
        load(kind, write(tmp_path, content))
    return str(info.value)


# ------------------------------------------------------------------------------ whole-file problems


def test_empty_file(tmp_path):
    assert error("prices", tmp_path, b"") == "f.csv:1:: empty file"


def test_bom_only_file_is_empty(tmp_path):
    assert error("prices", tmp_path, b"\xef\xbb\xbf") == "f.csv:1:: empty file"


def test_binary_file_with_nul_bytes(tmp_path):
    msg = error("prices", tmp_path, b"PK\x03\x04\x00\x00binary")
    assert msg == "f.csv:1:: not a text CSV file (binary content)"


def test_invalid_utf8_names_its_line(tmp_path):
    content = (PRICES + "2021-05-19T00:00:00Z,ETH,1\n2021-05-19T00:00:00Z,caf\xe9,1\n").encode("latin-1")
    assert error("prices", tmp_path, content).startswith("f.csv:3:: not UTF-8 text (invalid byte 0xe9)")


def test_corrupt_gzip(tmp_path):
    content = gzip.compress((PRICES + "2021-05-19T00:00:00Z,ETH,1\n").encode())[:-12]
    assert error("prices", tmp_path, content) == "f.csv:1:: not a text CSV file (corrupt gzip data)"


def test_unreadable_file(tmp_path):
    with pytest.raises(InputError) as info:
        load("prices", tmp_path / "missing.csv")
    assert str(info.value).startswith("f.csv:1:: cannot read file")


def test_blank_header_line(tmp_path):
    assert error("prices", tmp_path, "\n" + PRICES) == "f.csv:1:: missing header row (line 1 is blank)"


def test_missing_required_column(tmp_path):
    msg = error("prices", tmp_path, "timestamp,asset\n2021-05-19T00:00:00Z,ETH\n")
    assert msg == "f.csv:1:price_usd: missing required column"


def test_duplicate_column(tmp_path):
    msg = error("prices", tmp_path, "timestamp,asset,price_usd,asset\n2021-05-19T00:00:00Z,ETH,1,ETH\n")
    assert msg == "f.csv:1:asset: duplicate column"


def test_liquidity_without_either_form(tmp_path):
    msg = error("liquidity", tmp_path, "timestamp,asset\n")
    assert msg == "f.csv:1:depth_usd_2pct: missing required column (or give reserve_asset and reserve_quote)"


def test_liquidity_half_a_reserve_pair(tmp_path):
    msg = error("liquidity", tmp_path, "timestamp,asset,reserve_asset\n")
    assert msg == "f.csv:1:reserve_quote: missing required column"


# ---------------------------------------------------------------------------------- row structure


@pytest.mark.parametrize("row, fields", [("1621382401,ETH,1,9", 4), ("1621382401,ETH", 2), ("  ", 1)])
def test_ragged_row(tmp_path, row, fields):
    content = PRICES + "2021-05-19T00:00:00Z,ETH,1\n" + row + "\n"
    plural = "" if fields == 1 else "s"
    assert error("prices", tmp_path, content) == f"f.csv:3:: row has {fields} field{plural}, header has 3"


def test_ragged_row_line_counts_multiline_quoted_cells(tmp_path):
    content = EVENTS.strip() + ",market\n" + f'1621382400,{ADDR},ETH,supply,1,"two\nlines"\n' + "1,2\n"
    assert error("events", tmp_path, content) == "f.csv:4:: row has 2 fields, header has 6"


# ------------------------------------------------------------------------------------------ numbers


@pytest.mark.parametrize("value", ["abc", "1,5", "0x10", "1.2.3", "--1"])
def test_unparsable_number(tmp_path, value):
    msg = error("prices", tmp_path, PRICES + f'2021-05-19T00:00:00Z,ETH,"{value}"\n')
    assert msg == f"f.csv:2:price_usd: not a number: {value!r}"


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity"])
def test_non_finite_number(tmp_path, value):
    msg = error("positions", tmp_path, POSITIONS + f"{ADDR},ETH,{value},0\n")
    assert msg == f"f.csv:2:collateral: not finite: {value!r}"


def test_empty_required_number(tmp_path):
    msg = error("positions", tmp_path, POSITIONS + f"{ADDR},ETH,1,  \n")
    assert msg == "f.csv:2:debt: missing value"


def test_float_overflow(tmp_path):
    msg = error("prices", tmp_path, PRICES + "2021-05-19T00:00:00Z,ETH,1e400\n")
    assert msg == "f.csv:2:price_usd: numeric overflow: '1e400'"


def test_round_id_overflow(tmp_path):
    content = f"timestamp,asset,price_usd,round_id\n1,ETH,1,{2**127 - 1}\n2,ETH,1,{2**127}\n"
    assert error("prices", tmp_path, content).startswith("f.csv:3:round_id: numeric overflow: ")


def test_block_overflow(tmp_path):
    content = f"timestamp,asset,price_usd,block\n1,ETH,1,{2**63 - 1}\n2,ETH,1,{2**63}\n"
    assert error("prices", tmp_path, content).startswith("f.csv:3:block: numeric overflow: ")


@pytest.mark.parametrize("value, reason", [("1.5", "not an integer: '1.5'"), ("-3", "must be >= 0, got -3")])
def test_bad_block(tmp_path, value, reason):
    content = "timestamp,asset,price_usd,block\n" + f"1621382400,ETH,1,{value}\n"
    assert error("prices", tmp_path, content) == f"f.csv:2:block: {reason}"


@pytest.mark.parametrize("value", ["0", "-2.5", "1e-400"])
def test_zero_or_negative_price(tmp_path, value):
    msg = error("prices", tmp_path, PRICES + f"2021-05-19T00:00:00Z,ETH,{value}\n")
    assert msg == f"f.csv:2:price_usd: must be > 0, got {value}"


@pytest.mark.parametrize(
    "kind, content, column",
    [
        ("positions", POSITIONS + f"{ADDR},ETH,-1,0\n", "collateral"),
        ("positions", POSITIONS + f"{ADDR},ETH,1,-0.5\n", "debt"),
        ("events", EVENTS + f"1621382400,{ADDR},ETH,borrow,-2\n", "amount"),
        ("liquidity", "timestamp,asset,depth_usd_2pct\n1621382400,ETH,-1\n", "depth_usd_2pct"),
        ("liquidity", "timestamp,asset,reserve_asset,reserve_quote\n1621382400,ETH,-1,5\n", "reserve_asset"),
        ("liquidity", "timestamp,asset,reserve_asset,reserve_quote\n1621382400,ETH,1,0\n", "reserve_quote"),
    ],
)
def test_negative_amounts(tmp_path, kind, content, column):
    assert error(kind, tmp_path, content).startswith(f"f.csv:2:{column}: must be ")


# --------------------------------------------------------------------------------------------- text


def test_blank_account(tmp_path):
    assert error("positions", tmp_path, POSITIONS + ",ETH,1,0\n") == "f.csv:2:account: missing value"


def test_whitespace_only_asset(tmp_path):
    msg = error("events", tmp_path, EVENTS + f"1621382400,{ADDR},   ,supply,1\n")
    assert msg == "f.csv:2:asset: missing value"


def test_unknown_action(tmp_path):
    msg = error("events", tmp_path, EVENTS + f"1621382400,{ADDR},ETH,Supply,1\n")
    assert msg == (
        "f.csv:2:action: unknown value 'Supply' (expected one of supply, withdraw, borrow, repay)"
    )


# --------------------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    "value, reason",
    [
        ("2021-05-19T00:00:00", "timestamp without time zone: '2021-05-19T00:00:00' (add Z or +hh:mm)"),
        ("2021-05-19", "date without time: '2021-05-19' (give e.g. 2021-05-19T00:00:00Z)"),
        ("1621382400000", "unix time '1621382400000' looks like milliseconds (expected seconds)"),
        ("2021-02-30T00:00:00Z", "invalid date or time: '2021-02-30T00:00:00Z'"),
        ("yesterday",
         "unparsable timestamp: 'yesterday' (expected ISO-8601 with Z or +hh:mm, or unix seconds)"),
        ("", "missing value"),
    ],
)
def test_bad_timestamp(tmp_path, value, reason):
    msg = error("prices", tmp_path, PRICES + "2021-05-19T00:00:00Z,ETH,1\n" + f"{value},ETH,1\n")
    assert msg == f"f.csv:3:timestamp: {reason}"


# ------------------------------------------------------------------------------------- duplicates


def test_conflicting_duplicate(tmp_path):
    content = PRICES + "1621382400,ETH,1\n1621382400,BTC,2\n2021-05-19T00:00:00Z,ETH,1.5\n"
    assert error("prices", tmp_path, content) == (
        "f.csv:4:price_usd: conflicts with line 2 (same key, different price_usd)"
    )


def test_conflict_names_first_differing_column_in_header_order(tmp_path):
    content = "account,asset,debt,collateral\n" + f"{ADDR},ETH,1,1\n{ADDR.lower()},ETH,2,2\n"
    assert error("positions", tmp_path, content) == (
        "f.csv:3:debt: conflicts with line 2 (same key, different debt)"
    )


# ------------------------------------------------------------------------------ first problem wins


def test_first_problem_in_file_order_across_columns(tmp_path):
    # Row 3 has a bad asset (column 2), row 2 a bad price (column 3): row 2 wins; within row 4 the
    # leftmost column wins.
    content = PRICES + "1621382400,ETH,x\n1621382401,,1\n"
    assert error("prices", tmp_path, content).startswith("f.csv:2:price_usd: ")
    content = PRICES + "1621382400,ETH,1\nnope,,x\n"
    assert error("prices", tmp_path, content).startswith("f.csv:3:timestamp: ")


def test_bad_value_before_ragged_row_wins(tmp_path):
    content = PRICES + "1621382400,ETH,0\n1621382401,ETH,1,extra\n"
    assert error("prices", tmp_path, content).startswith("f.csv:2:price_usd: ")


def test_conflict_before_bad_value_wins(tmp_path):
    content = PRICES + "1621382400,ETH,1\n1621382400,ETH,2\n1621382401,ETH,abc\n"
    assert error("prices", tmp_path, content).startswith("f.csv:3:price_usd: conflicts with line 2")
    content = PRICES + "1621382400,ETH,1\n1621382401,ETH,abc\n1621382400,ETH,2\n"
    assert error("prices", tmp_path, content).startswith("f.csv:3:price_usd: not a number")


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown table kind"):
        read_table("trades", "x.csv")


# ------------------------------------------------------------------------------------ happy paths


def test_columns_any_order_and_defaults(tmp_path):
    df = load("prices", write(tmp_path, "price_usd, asset ,timestamp\n3000.5,ETH,2021-05-19T00:00:00Z\n"))
    assert list(df.columns) == ["asset", "source", "timestamp", "round_id", "price_usd", "block", "_line"]
    row = df.iloc[0]
    assert (row.asset, row.source, row.round_id, row.price_usd) == ("ETH", "csv", 0, 3000.5)
    assert type(row.round_id) is int and pd.isna(row.block)
    assert row.timestamp == pd.Timestamp("2021-05-19T00:00:00Z")


def test_dtypes_and_header_only_files(tmp_path):
    expected = {
        "prices": "asset source timestamp round_id price_usd block",
        "positions": "account asset market emode collateral debt",
        "events": "timestamp account asset action amount block log_index tx_hash market",
        "liquidity": "asset timestamp venue depth_usd_2pct reserve_asset reserve_quote",
    }
    headers = {"prices": PRICES, "positions": POSITIONS, "events": EVENTS,
               "liquidity": "timestamp,asset,depth_usd_2pct\n"}
    dtypes = {"timestamp": "datetime64[us, UTC]", "round_id": "object", "emode": "object", "block": "Int64",
              "log_index": "Int64", "_line": "int64", "price_usd": "float64", "collateral": "float64",
              "debt": "float64", "amount": "float64", "depth_usd_2pct": "float64",
              "reserve_asset": "float64", "reserve_quote": "float64"}
    for kind, header in headers.items():
        df = load(kind, write(tmp_path, header, f"{kind}.csv"))
        assert len(df) == 0
        assert list(df.columns) == expected[kind].split() + ["_line"]
        for col in df.columns:
            assert str(df[col].dtype) == dtypes.get(col, "str"), (kind, col)


def test_bom_crlf_and_whitespace(tmp_path):
    content = "\ufeffaccount,asset,collateral,debt\r\n  bob , WETH ,1.5 , 2\r\nalice,USDC.e,0,0\r\n"
    df = load("positions", write(tmp_path, content))
    assert df.account.tolist() == ["bob", "alice"] and df.asset.tolist() == ["WETH", "USDC.e"]
    assert df.collateral.tolist() == [1.5, 0.0] and df._line.tolist() == [2, 3]


def test_gzip_detected_by_content(tmp_path):
    raw = gzip.compress((POSITIONS + f"{ADDR},ETH,1,0\n").encode())
    for name in ("p.csv.gz", "p.csv"):
        df = load("positions", write(tmp_path, raw, name))
        assert df.asset.tolist() == ["ETH"]


def test_unknown_columns_warn(tmp_path):
    warnings: list[str] = []
    path = write(tmp_path, "foo,account,asset,collateral,debt,bar\n1,a,ETH,1,0,2\n")
    df = load("positions", path, warnings)
    assert warnings == ["f.csv: unknown column(s) ignored: foo, bar"]
    assert "foo" not in df.columns


def test_default_warning_goes_to_stderr_with_path_as_name(tmp_path, capsys):
    path = write(tmp_path, "account,asset,collateral,debt,note\na,ETH,1,0,x\n")
    read_table("positions", path)
    assert capsys.readouterr().err == f"{path}: unknown column(s) ignored: note\n"


def test_iso_timestamps_converted_to_utc(tmp_path):
    values = ["2021-05-19T02:00:00+02:00", "2021-05-19 00:00:00.123456Z", "2021-05-18T19:30-04:30",
              "2021-05-19T00:00:00.9999999Z"]
    df = load("prices", write(tmp_path, PRICES + "".join(f"{v},A{i},1\n" for i, v in enumerate(values))))
    assert df.timestamp.tolist() == [
        pd.Timestamp("2021-05-19T00:00:00Z"), pd.Timestamp("2021-05-19T00:00:00.123456Z"),
        pd.Timestamp("2021-05-19T00:00:00Z"), pd.Timestamp("2021-05-19T00:00:00.999999Z"),
    ]


def test_unix_seconds(tmp_path):
    df = load("prices", write(tmp_path, PRICES + "1621382400,A,1\n1621382400.5,B,1\n1621382400.000001,C,1\n"))
    base = pd.Timestamp("2021-05-19T00:00:00Z")
    assert df.timestamp.tolist() == [base, base + pd.Timedelta("500ms"), base + pd.Timedelta("1us")]


def test_accounts_lower_cased_only_when_hex_address(tmp_path):
    content = POSITIONS + f"{ADDR},ETH,1,0\n0x{'G' * 40},ETH,1,0\nAlice,ETH,1,0\n"
    df = load("positions", write(tmp_path, content))
    assert df.account.tolist() == [ADDR.lower(), "0x" + "G" * 40, "Alice"]


def test_assets_are_case_sensitive(tmp_path):
    df = load("positions", write(tmp_path, POSITIONS + "a,ETH,1,0\na,eth,1,0\na,WETH,1,0\n"))
    assert df.asset.tolist() == ["ETH", "eth", "WETH"]


def test_identical_duplicates_dropped_keeping_first(tmp_path):
    content = PRICES + "1621382400,ETH,1.50\n1621382400,BTC,2\n2021-05-19T00:00:00Z,ETH,1.5\n"
    df = load("prices", write(tmp_path, content))
    assert df.asset.tolist() == ["ETH", "BTC"] and df._line.tolist() == [2, 3]


def test_events_keep_file_order_and_drop_identical_rows(tmp_path):
    rows = [f"1621382400,{ADDR},ETH,repay,1\n", f"1621382300,{ADDR},ETH,borrow,1\n"]
    df = load("events", write(tmp_path, EVENTS + rows[0] + rows[1] + rows[0]))
    assert df.action.tolist() == ["repay", "borrow"] and df._line.tolist() == [2, 3]


def test_optional_columns_blank_cells(tmp_path):
    content = "account,asset,collateral,debt,market,emode\na,ETH,1,0,,\nb,ETH,1,0,aave-v3,2\n"
    df = load("positions", write(tmp_path, content))
    assert df.market.tolist() == ["", "aave-v3"] and df.emode.tolist() == [None, "2"]
    content = "timestamp,asset,price_usd,source,block\n1621382400,ETH,1,,\n1621382401,ETH,1,chainlink,17.0\n"
    df = load("prices", write(tmp_path, content))
    assert df.source.tolist() == ["csv", "chainlink"] and df.block.tolist() == [pd.NA, 17]


def test_huge_round_id_kept_exactly(tmp_path):
    big = (6 << 64) | 123
    content = "timestamp,asset,price_usd,round_id\n" + f"1621382400,ETH,1,{big}\n1621382401,ETH,1,7\n"
    df = load("prices", write(tmp_path, content))
    assert df.round_id.tolist() == [big, 7] and all(type(v) is int for v in df.round_id)


def test_liquidity_forms(tmp_path):
    df = load("liquidity", write(tmp_path, "timestamp,asset,depth_usd_2pct,venue\n1,ETH,0,uni\n", "d.csv"))
    assert df.depth_usd_2pct.tolist() == [0.0] and np.isnan(df.reserve_asset[0]) and df.venue[0] == "uni"
    df = load("liquidity", write(tmp_path, "timestamp,asset,reserve_asset,reserve_quote\n1,ETH,2,6000\n"))
    assert np.isnan(df.depth_usd_2pct[0]) and (df.reserve_asset[0], df.reserve_quote[0]) == (2.0, 6000.0)
    assert df.venue[0] == ""


def test_blank_lines_skipped_and_line_numbers_kept(tmp_path):
    df = load("positions", write(tmp_path, POSITIONS + "a,ETH,1,0\n\n\r\nb,ETH,1,0\n"))
    assert df._line.tolist() == [2, 5]


def test_multiline_quoted_cell(tmp_path):
    content = EVENTS.strip() + ",tx_hash\n" + '1,a,ETH,supply,1,"x\ny"\n2,b,ETH,supply,2,z\n'
    df = load("events", write(tmp_path, content))
    assert df.tx_hash.tolist() == ["x\ny", "z"] and df._line.tolist() == [2, 4]


# ------------------------------------------------------------------ fast (Arrow) vs slow (stdlib) path

_cell = st.text(alphabet=" ab,\"\r\n\u00e9", max_size=4)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_cell, _cell, _cell), max_size=6), st.booleans(), st.booleans())
def test_fast_and_slow_readers_agree(rows, crlf, blank_lines):
    # Both readers must yield the same cells and line numbers whenever the fast one accepts the file.
    def quote(cell: str) -> str:
        return '"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',"\r\n') else cell

    eol = "\r\n" if crlf else "\n"
    lines = ["a,b,c"] + [",".join(map(quote, r)) for r in rows]
    text = eol.join(lines) + eol
    if blank_lines:
        text = text.replace(eol, eol + eol, 1)
    data = text.encode()
    wanted = {"a", "b", "c"}
    fast = _csvparse._fast_cells(data, "f.csv", wanted)
    slow = _csvparse._slow_cells(data, "f.csv", wanted)
    if fast is not None:
        assert fast.lines.tolist() == slow.lines.tolist()
        for col in wanted:
            assert fast.columns[col].to_pylist() == slow.columns[col].to_pylist()
