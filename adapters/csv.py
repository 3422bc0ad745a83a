"""CSV input adapter: read one prices/positions/events/liquidity file into a validated DataFrame.

This is the pure half of ``mbt ingest csv`` (DESIGN §2): it reads and checks a file and returns typed
columns with each row's physical line number; it never touches the database. Any bad input raises
``InputError`` ("FILE:LINE:COLUMN: what is wrong") for the first problem in file order. The byte-level
reading and the per-column converters live in ``adapters._csvparse``; this module holds the per-kind
schemas, picks the first error, and resolves within-file duplicates.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa

from adapters._csvparse import (
    Parsed,
    parse_account,
    parse_choice,
    parse_float,
    parse_round_id,
    parse_text,
    parse_timestamp,
    parse_uint,
    read_cells,
)
from backtest.errors import InputError

KINDS = ("prices", "positions", "events", "liquidity", "indices")
ACTIONS = ("supply", "withdraw", "borrow", "repay")


@dataclass(frozen=True)
class _Field:
    name: str
    parse: Callable[[pa.Array], Parsed]
    # Values for an absent optional column (given the row count); None marks a required column.
    absent: Callable[[int], object] | None = None


def _strs(value: str) -> Callable[[int], pd.Series]:
    return lambda n: pd.Series([value] * n, dtype="str")


def _na_ints(n: int) -> pd.Series:
    return pd.Series(pd.arrays.IntegerArray(np.zeros(n, np.int64), np.ones(n, dtype=bool)))


def _nones(n: int) -> pd.Series:
    return pd.Series(np.full(n, None, dtype=object), dtype=object)


def _zeros(n: int) -> pd.Series:
    return pd.Series(np.zeros(n, dtype=object), dtype=object)  # Python int 0, like parsed round ids


def _nans(n: int) -> np.ndarray:
    return np.full(n, np.nan)


_TEXT = partial(parse_text, required=True)
_PRICE = partial(parse_float, required=True, strict_positive=True)
_AMOUNT = partial(parse_float, required=True, strict_positive=False)
_RESERVE = partial(parse_float, required=False, strict_positive=True)

_SCHEMAS: dict[str, tuple[_Field, ...]] = {
    "prices": (
        _Field("asset", _TEXT),
        _Field("source", partial(parse_text, required=False, default="csv"), _strs("csv")),
        _Field("timestamp", parse_timestamp),
        _Field("round_id", parse_round_id, _zeros),
        _Field("price_usd", _PRICE),
        _Field("block", parse_uint, _na_ints),
    ),
    "positions": (
        _Field("account", parse_account),
        _Field("asset", _TEXT),
        _Field("market", partial(parse_text, required=False), _strs("")),
        _Field("emode", partial(parse_text, required=False, default=None), _nones),
        _Field("collateral", _AMOUNT),
        _Field("debt", _AMOUNT),
    ),
    "events": (
        _Field("timestamp", parse_timestamp),
        _Field("account", parse_account),
        _Field("asset", _TEXT),
        _Field("action", partial(parse_choice, choices=ACTIONS)),
        _Field("amount", _AMOUNT),
        _Field("block", parse_uint, _na_ints),
        _Field("log_index", parse_uint, _na_ints),
        _Field("tx_hash", partial(parse_text, required=False), _strs("")),
        _Field("market", partial(parse_text, required=False), _strs("")),
    ),
    "indices": (
        _Field("timestamp", parse_timestamp),
        _Field("asset", _TEXT),
        _Field("liquidity_index", _PRICE),
        _Field("variable_borrow_index", _PRICE),
    ),
}

_KEYS = {
    "prices": ("asset", "source", "timestamp", "round_id"),
    "positions": ("account", "asset", "market"),
    "events": None,  # the whole row
    "liquidity": ("asset", "timestamp", "venue"),
    "indices": ("asset", "timestamp"),
}


_RESERVES = {"reserve_asset", "reserve_quote"}


def _liquidity_schema(header: list[str]) -> tuple[_Field, ...]:
    # The header decides the form. Depth may be 0 (no size can be sold within 2 %); reserves must be
    # > 0 because a constant-product pool with an empty side has no price. Reserve columns given next
    # to a depth column are kept (optional) rather than ignored.
    depth_form = "depth_usd_2pct" in header
    reserve = _RESERVE if depth_form else partial(parse_float, required=True, strict_positive=True)
    return (
        _Field("asset", _TEXT),
        _Field("timestamp", parse_timestamp),
        _Field("venue", partial(parse_text, required=False), _strs("")),
        _Field("depth_usd_2pct", _AMOUNT, None if depth_form else _nans),
        _Field("reserve_asset", reserve, _nans if depth_form else None),
        _Field("reserve_quote", reserve, _nans if depth_form else None),
    )


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _check_header(kind: str, header: list[str], fields: tuple[_Field, ...], name: str,
                  warn: Callable[[str], None]) -> None:
    known = {f.name for f in fields}
    seen: set[str] = set()
    for col in header:
        if col in known and col in seen:
            raise InputError(name, 1, col, "duplicate column")
        seen.add(col)
    unknown = [c if c else "(blank)" for c in header if c not in known]
    if unknown:
        warn(f"{name}: unknown column(s) ignored: {', '.join(unknown)}")
    missing = [f.name for f in fields if f.absent is None and f.name not in seen]
    if missing:
        col, hint = missing[0], ""
        if kind == "liquidity" and col.startswith("reserve_") and not _RESERVES & seen:
            # Neither form is there: name the depth column, the simpler of the two.
            col, hint = "depth_usd_2pct", " (or give reserve_asset and reserve_quote)"
        elif len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
            hint = " (the header has one column: is the file separated by something other than commas?)"
        raise InputError(name, 1, col, "missing required column" + hint)


def _conflicts(df: pd.DataFrame, key: tuple[str, ...], order: list[str], lines: np.ndarray,
               name: str) -> np.ndarray | None:
    """Rows to drop as exact repeats of an earlier row with the same key; raise on a conflicting one."""
    if len(df) < 2 or not df.duplicated(subset=list(key)).any():
        return None
    group = df.groupby(list(key), sort=False, dropna=False).ngroup().to_numpy()
    _, first = np.unique(group, return_index=True)
    ref = first[group]  # each row's first row with the same key
    dup = np.flatnonzero(ref != np.arange(len(df)))
    differs = []
    for col in order:
        a = df[col].iloc[dup].reset_index(drop=True)
        b = df[col].iloc[ref[dup]].reset_index(drop=True)
        same = (a == b).to_numpy(dtype=bool, na_value=False) | (a.isna() & b.isna()).to_numpy()
        differs.append(~same)
    if differs:
        table = np.column_stack(differs)
        rows = np.flatnonzero(table.any(axis=1))
        if len(rows):
            k = rows[0]
            col = order[int(table[k].argmax())]
            raise InputError(name, int(lines[dup[k]]), col,
                             f"conflicts with line {int(lines[ref[dup[k]]])} (same key, different {col})")
    drop = np.zeros(len(df), dtype=bool)
    drop[dup] = True
    return drop


def read_table(kind: str, path: str | os.PathLike, *, display_name: str | None = None,
               warn: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Read and validate one input CSV file (DESIGN §2).

    Parameters
    ----------
    kind : {"prices", "positions", "events", "liquidity", "indices"}
        Which table the file holds; decides required/optional columns and the duplicate key.
    path : str or os.PathLike
        A UTF-8 CSV file (BOM allowed, LF or CRLF), plain or gzip-compressed (detected by content).
    display_name : str, optional
        The FILE part of error messages and warnings; default ``str(path)``.
    warn : callable, optional
        Receives one-line warnings (unknown columns); default prints them to stderr.

    Returns
    -------
    pandas.DataFrame
        The kind's columns in contract order (see ``docs/csv.md``) plus ``_line`` (int64, the physical
        line of each row; header = 1), in file order. Rows repeating an earlier row's key with identical
        values are dropped.

    Raises
    ------
    InputError
        For the first problem in file order, as ``FILE:LINE:COLUMN: message``.
    ValueError
        If ``kind`` is not one of the four kinds.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown table kind {kind!r}; expected one of {', '.join(KINDS)}")
    name = str(path) if display_name is None else display_name
    schema = _liquidity_schema([]) if kind == "liquidity" else _SCHEMAS[kind]
    wanted = {f.name for f in schema}  # every column this kind may use, whichever form
    cells = read_cells(path, name, wanted)
    fields = _liquidity_schema(cells.header) if kind == "liquidity" else _SCHEMAS[kind]
    _check_header(kind, cells.header, fields, name, warn or _stderr)

    n = cells.n
    columns: dict[str, object] = {}
    first_bad: tuple[int, int, str, Parsed] | None = None
    for f in fields:
        raw = cells.columns.get(f.name)
        if raw is None:
            columns[f.name] = f.absent(n)
            continue
        parsed = f.parse(raw)
        columns[f.name] = parsed.values
        if parsed.bad is not None and parsed.bad.any():
            candidate = (int(parsed.bad.argmax()), cells.header.index(f.name), f.name, parsed)
            if first_bad is None or candidate[:2] < first_bad[:2]:
                first_bad = candidate
    df = pd.DataFrame(columns)
    df["_line"] = cells.lines

    # Rows before the first bad one are all valid, so duplicates are judged only there; a conflict
    # found there comes earlier in the file than the bad row.
    limit = n if first_bad is None else first_bad[0]
    order = [c for c in cells.header if c in columns] + [c for c in columns if c not in cells.header]
    key = _KEYS[kind] or tuple(columns)
    drop = _conflicts(df.iloc[:limit], key, [c for c in order if c not in key], cells.lines, name)
    if first_bad is not None:
        row, _, col, parsed = first_bad
        raise InputError(name, int(cells.lines[row]), col, parsed.why(row))
    if cells.deferred is not None:
        raise cells.deferred
    if drop is not None:
        df = df[~drop].reset_index(drop=True)
    return df
