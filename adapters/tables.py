"""The input tables of DESIGN §2, whatever the file format: columns, header checks, in-file duplicates.

``adapters.csv`` (text cells) and ``adapters.parquet`` (typed columns) both describe a file as a header plus
one converted column per field (``adapters._csvparse.Parsed``: values, bad rows, why) and hand it to
:func:`assemble`, so both formats share the schemas below, the choice of the *first* problem (lowest row,
then leftmost column), and the resolution of rows that repeat a key. Nothing here reads a file or
touches the database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from adapters._csvparse import Parsed
from mbt_errors import InputError

KINDS = ("prices", "positions", "events", "liquidity", "indices")
ACTIONS = ("supply", "withdraw", "borrow", "repay")


@dataclass(frozen=True)
class Field:
    """One column of a kind: its name, the kind of value, the converter's options, the absent default.

    ``kind`` is one of ``text``, ``account``, ``choice``, ``float``, ``uint``, ``round_id``, ``timestamp``
    (the converters of ``adapters._csvparse``; ``adapters._parquetparse`` has a typed twin of each).
    ``absent`` builds the values of an absent optional column from the row count; None marks a required
    column.
    """

    name: str
    kind: str
    options: Mapping[str, object] = field(default_factory=dict)
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


_TEXT = {"required": True}
_PRICE = {"required": True, "strict_positive": True}
_AMOUNT = {"required": True, "strict_positive": False}
_RESERVE = {"required": False, "strict_positive": True}

_SCHEMAS: dict[str, tuple[Field, ...]] = {
    "prices": (
        Field("asset", "text", _TEXT),
        Field("source", "text", {"required": False, "default": "csv"}, _strs("csv")),
        Field("timestamp", "timestamp"),
        Field("round_id", "round_id", {}, _zeros),
        Field("price_usd", "float", _PRICE),
        Field("block", "uint", {}, _na_ints),
    ),
    "positions": (
        Field("account", "account"),
        Field("asset", "text", _TEXT),
        Field("market", "text", {"required": False}, _strs("")),
        Field("emode", "text", {"required": False, "default": None}, _nones),
        Field("collateral", "float", _AMOUNT),
        Field("debt", "float", _AMOUNT),
    ),
    "events": (
        Field("timestamp", "timestamp"),
        Field("account", "account"),
        Field("asset", "text", _TEXT),
        Field("action", "choice", {"choices": ACTIONS}),
        Field("amount", "float", _AMOUNT),
        Field("block", "uint", {}, _na_ints),
        Field("log_index", "uint", {}, _na_ints),
        Field("tx_hash", "text", {"required": False}, _strs("")),
        Field("market", "text", {"required": False}, _strs("")),
    ),
    "indices": (
        Field("timestamp", "timestamp"),
        Field("asset", "text", _TEXT),
        Field("liquidity_index", "float", _PRICE),
        Field("variable_borrow_index", "float", _PRICE),
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


def _liquidity_schema(header: list[str]) -> tuple[Field, ...]:
    # The header decides the form. Depth may be 0 (no size can be sold within 2 %); reserves must be
    # > 0 because a constant-product pool with an empty side has no price. Reserve columns given next
    # to a depth column are kept (optional) rather than ignored.
    depth_form = "depth_usd_2pct" in header
    reserve = _RESERVE if depth_form else {"required": True, "strict_positive": True}
    return (
        Field("asset", "text", _TEXT),
        Field("timestamp", "timestamp"),
        Field("venue", "text", {"required": False}, _strs("")),
        Field("depth_usd_2pct", "float", _AMOUNT, None if depth_form else _nans),
        Field("reserve_asset", "float", reserve, _nans if depth_form else None),
        Field("reserve_quote", "float", reserve, _nans if depth_form else None),
    )


def check_kind(kind: str) -> None:
    """Raise ValueError unless ``kind`` is one of :data:`KINDS`."""
    if kind not in KINDS:
        raise ValueError(f"unknown table kind {kind!r}; expected one of {', '.join(KINDS)}")


def wanted_columns(kind: str) -> set[str]:
    """Every column name ``kind`` may use, whichever form (the readers convert only these)."""
    return {f.name for f in (_liquidity_schema([]) if kind == "liquidity" else _SCHEMAS[kind])}


def schema(kind: str, header: list[str]) -> tuple[Field, ...]:
    """The fields of ``kind`` for a file with this header (the liquidity form depends on it)."""
    return _liquidity_schema(header) if kind == "liquidity" else _SCHEMAS[kind]


def check_header(kind: str, header: list[str], fields: tuple[Field, ...], name: str, warn: Callable[[str], None],
                 *, line: int = 1, text_hint: bool = True) -> None:
    """Duplicate known columns and missing required ones are errors (at ``line``); unknown ones a warning.

    ``line`` is where a header problem is reported (1 for CSV, 0 for a Parquet schema); ``text_hint``
    adds the "separated by something other than commas?" hint to a one-column CSV header.
    """
    known = {f.name for f in fields}
    seen: set[str] = set()
    for col in header:
        if col in known and col in seen:
            raise InputError(name, line, col, "duplicate column")
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
        elif text_hint and len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
            hint = " (the header has one column: is the file separated by something other than commas?)"
        raise InputError(name, line, col, "missing required column" + hint)


def _conflicts(df: pd.DataFrame, key: tuple[str, ...], order: list[str], lines: np.ndarray,
               name: str, unit: str) -> np.ndarray | None:
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
                             f"conflicts with {unit} {int(lines[ref[dup[k]]])} (same key, different {col})")
    drop = np.zeros(len(df), dtype=bool)
    drop[dup] = True
    return drop


def assemble(kind: str, name: str, header: list[str], fields: tuple[Field, ...], parsed: Mapping[str, Parsed],
             lines: np.ndarray, *, deferred: InputError | None = None, unit: str = "line") -> pd.DataFrame:
    """The validated frame of one file, or the first problem in file order as ``InputError``.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    name : str
        The FILE part of messages.
    header : list of str
        The file's column names in file order (decides "leftmost column").
    fields : tuple of Field
        ``schema(kind, header)``.
    parsed : mapping
        Converted columns of the fields present in the file (absent ones get their defaults).
    lines : ndarray of int64
        Each row's number in messages: the physical CSV line, or the 1-based Parquet row.
    deferred : InputError, optional
        A structural problem found after the rows given (raised only if no earlier row is bad).
    unit : str
        How messages name a row ("line" or "row").

    Returns
    -------
    pandas.DataFrame
        The kind's columns in contract order plus ``_line``; rows repeating an earlier row's key with
        identical values are dropped.
    """
    n = len(lines)
    columns: dict[str, object] = {}
    first_bad: tuple[int, int, str, Parsed] | None = None
    for f in fields:
        conv = parsed.get(f.name)
        if conv is None:
            columns[f.name] = f.absent(n)
            continue
        columns[f.name] = conv.values
        if conv.bad is not None and conv.bad.any():
            candidate = (int(conv.bad.argmax()), header.index(f.name), f.name, conv)
            if first_bad is None or candidate[:2] < first_bad[:2]:
                first_bad = candidate
    df = pd.DataFrame(columns)
    df["_line"] = lines

    # Rows before the first bad one are all valid, so duplicates are judged only there; a conflict
    # found there comes earlier in the file than the bad row.
    limit = n if first_bad is None else first_bad[0]
    order = [c for c in header if c in columns] + [c for c in columns if c not in header]
    key = _KEYS[kind] or tuple(columns)
    # Absent columns hold one default value: they cannot tell rows apart, so the duplicate search
    # (the costliest check on large files) skips them.
    varying = tuple(k for k in key if k in parsed) or key
    drop = _conflicts(df.iloc[:limit], varying, [c for c in order if c not in key], lines, name, unit)
    if first_bad is not None:
        row, _, col, conv = first_bad
        raise InputError(name, int(lines[row]), col, conv.why(row))
    if deferred is not None:
        raise deferred
    if drop is not None:
        df = df[~drop].reset_index(drop=True)
    return df
