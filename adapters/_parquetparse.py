"""Typed Parquet columns → the validated values of ``adapters._csvparse``, without a detour through text.

A Parquet column already has a type, so each field kind (``adapters.tables.Field.kind``) accepts the
types that can hold it and checks the values the CSV converters check, vectorised over the column:

- text, account, choice: string columns (also large and dictionary-encoded); null counts as blank;
- float: integer, floating and decimal columns; finite, ``> 0`` or ``>= 0``; null is a missing value;
- uint (``block``, ``log_index``): integer columns, or floating ones holding whole numbers; ``>= 0`` and
  within int64; null (or NaN in a floating column) is empty;
- round_id: integer or decimal columns (decimals go through the exact text converter), or floating
  ones holding whole numbers below 2^53; null is 0;
- timestamp: zone-aware timestamps (converted to UTC, cut to the microsecond), or unix seconds as
  integers or floats (rounded to the microsecond; > 1e11 is refused as probable milliseconds). Naive
  timestamps and dates are refused, like zone-less text.

A string column of any kind is converted exactly as a CSV column (after stripping), so a file written
with every column as text behaves like the CSV. Any other type is an ``InputError`` at row 0 (the schema).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from adapters._csvparse import Parsed, show
from adapters.tables import Field
from mbt_errors import InputError

_INT64_MAX = np.iinfo(np.int64).max
_MAX_UNIX_SECONDS = 1e11
_EXACT_FLOAT_INT = 2.0**53
_NAT = np.iinfo(np.int64).min
_UNIT_US = {"s": (1_000_000, 1), "ms": (1_000, 1), "us": (1, 1), "ns": (1, 1_000)}
_WHAT = {"text": "a text", "account": "a text", "choice": "a text", "float": "a numeric", "uint": "an integer",
         "round_id": "an integer", "timestamp": "a zone-aware timestamp or unix-seconds"}


def _type_error(name: str, f: Field, array: pa.Array, extra: str = "") -> InputError:
    return InputError(name, 0, f.name, f"expected {_WHAT[f.kind]} column, got Parquet type {array.type}{extra}")


def is_text(t: pa.DataType) -> bool:
    """A string type (the CSV converters apply)."""
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def as_cells(array: pa.Array) -> pa.Array:
    """A string column as the CSV reader's cells: plain string type, nulls blank, whitespace stripped."""
    cells = pc.fill_null(pc.cast(array, pa.string()), "")
    return pc.utf8_trim_whitespace(cells)


def _null_mask(array: pa.Array) -> np.ndarray:
    if array.null_count == 0:
        return np.zeros(len(array), dtype=bool)
    return np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _floats(array: pa.Array) -> np.ndarray:
    """float64 values, NaN where null."""
    cast = pc.cast(array, pa.float64())
    values = cast.to_numpy(zero_copy_only=False)
    return np.array(values, dtype=np.float64)


def _shown(values: np.ndarray, i: int, integer: bool) -> str:
    v = values[i]
    return str(int(v)) if integer else repr(float(v))


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


# ---------------------------------------------------------------------------------------- per kind


def _float(array: pa.Array, f: Field, name: str) -> Parsed:
    if not _is_number(array.type):
        raise _type_error(name, f, array)
    required, strict = bool(f.options.get("required")), bool(f.options.get("strict_positive"))
    null = _null_mask(array)
    values = _floats(array) + 0.0   # + 0.0 turns -0.0 into 0.0
    integer = pa.types.is_integer(array.type)
    with np.errstate(invalid="ignore"):
        out_of_range = values <= 0 if strict else values < 0
    nonfinite = ~np.isfinite(values) & ~null
    bad = nonfinite | out_of_range | (null & required)

    def why(i: int) -> str:
        if null[i]:
            return "missing value"
        if nonfinite[i]:
            return f"not finite: {show(repr(float(values[i])))}"
        return f"must be {'> 0' if strict else '>= 0'}, got {_shown(values, i, integer)}"

    return Parsed(values, bad, why)


def _whole_floats(array: pa.Array, limit: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A floating column as (values, empty: null or NaN, fraction: not a whole number, overflow: ≥ limit)."""
    values = _floats(array)
    empty = np.isnan(values)
    with np.errstate(invalid="ignore"):
        fraction = ~empty & (~np.isfinite(values) | (np.floor(values) != values))
        overflow = ~empty & ~fraction & (np.abs(values) >= limit)
    return values, empty, fraction, overflow


def _int_why(values: np.ndarray, null: np.ndarray, fraction: np.ndarray, overflow: np.ndarray, limit: str,
             integer: bool) -> Callable[[int], str]:
    def why(i: int) -> str:
        if null[i]:
            return "missing value"
        if fraction[i]:
            return f"not an integer: {show(repr(float(values[i])))}"
        if overflow[i]:
            return f"numeric overflow: {show(_shown(values, i, integer))} (maximum {limit})"
        return f"must be >= 0, got {_shown(values, i, integer)}"

    return why


def _uint(array: pa.Array, f: Field, name: str) -> Parsed:
    t = array.type
    n = len(array)
    if pa.types.is_integer(t):
        null = _null_mask(array)
        raw = pc.fill_null(array, 0).to_numpy(zero_copy_only=False)
        fraction = np.zeros(n, dtype=bool)
        if pa.types.is_unsigned_integer(t):
            overflow = raw > np.uint64(_INT64_MAX) if raw.dtype == np.uint64 else np.zeros(n, dtype=bool)
            negative = np.zeros(n, dtype=bool)
            ints = np.where(overflow, 0, raw).astype(np.int64)
        else:
            ints = raw.astype(np.int64)
            overflow = np.zeros(n, dtype=bool)
            negative = ints < 0
        shown = raw
        integer = True
    elif pa.types.is_floating(t):
        values, null, fraction, overflow = _whole_floats(array, 2.0**63)
        negative = ~null & ~fraction & ~overflow & (values < 0)
        ints = np.where(null | fraction | overflow, 0, values).astype(np.int64)
        shown = values
        integer = False
    else:
        raise _type_error(name, f, array)
    bad = fraction | overflow | negative
    if f.options.get("required"):
        bad |= null
    usable = ~(null | bad)
    out = pd.arrays.IntegerArray(np.where(usable, ints, 0), ~usable)
    return Parsed(pd.Series(out), bad, _int_why(shown, null, fraction, overflow, str(_INT64_MAX), integer))


def _round_id(array: pa.Array, f: Field, name: str) -> Parsed:
    from adapters._csvparse import parse_round_id

    t = array.type
    n = len(array)
    if pa.types.is_decimal(t):
        # Exact whatever the width (decimal(38, 0) holds any round id): the text converter does it.
        return parse_round_id(as_cells(pc.cast(array, pa.string())))
    null = np.zeros(n, dtype=bool)   # null is round 0, like a blank CSV cell
    if pa.types.is_integer(t):
        raw = pc.fill_null(array, 0).to_numpy(zero_copy_only=False)
        fraction = overflow = np.zeros(n, dtype=bool)
        negative = (raw < 0) if pa.types.is_signed_integer(t) else np.zeros(n, dtype=bool)
        values = raw.astype(object)       # Python ints, exact for uint64 too
        shown, integer = raw, True
    elif pa.types.is_floating(t):
        floats, empty, fraction, overflow = _whole_floats(array, _EXACT_FLOAT_INT)
        negative = ~empty & ~fraction & ~overflow & (floats < 0)
        ok = ~(empty | fraction | overflow | negative)
        values = np.where(ok, floats, 0).astype(np.int64).astype(object)
        shown, integer = floats, False
    else:
        raise _type_error(name, f, array)
    bad = fraction | overflow | negative
    values = np.where(bad, 0, values).astype(object)
    limit = "2**53 in a floating column; store round ids as integers" if not integer else str(2**127 - 1)
    return Parsed(pd.Series(values, dtype=object), bad, _int_why(shown, null, fraction, overflow, limit, integer))


def _timestamp(array: pa.Array, f: Field, name: str) -> Parsed:
    t = array.type
    n = len(array)
    null = _null_mask(array)
    micros = np.full(n, _NAT, dtype=np.int64)
    unparsable = np.zeros(n, dtype=bool)
    millis = np.zeros(n, dtype=bool)
    shown: np.ndarray | None = None
    integer = False
    if pa.types.is_timestamp(t):
        if t.tz is None:
            raise InputError(name, 0, f.name, f"timestamp column without time zone (Parquet type {t}); store it "
                                              f"zone-aware, e.g. timestamp[us, tz=UTC]")
        mul, div = _UNIT_US[t.unit]
        raw = pc.fill_null(array.cast(pa.int64()), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        micros = np.where(null, _NAT, (raw // div) * mul)
    elif pa.types.is_date(t):
        raise InputError(name, 0, f.name, f"date column without time (Parquet type {t}); store a zone-aware "
                                          f"timestamp, e.g. timestamp[us, tz=UTC]")
    elif pa.types.is_integer(t) or pa.types.is_floating(t):
        seconds = _floats(array)
        if pa.types.is_floating(t):
            null = null | np.isnan(seconds)
        with np.errstate(invalid="ignore"):
            unparsable = ~null & (~np.isfinite(seconds) | (seconds < 0))
            millis = ~null & ~unparsable & (seconds > _MAX_UNIX_SECONDS)
        ok = ~(null | unparsable | millis)
        if pa.types.is_integer(t):
            whole = pc.fill_null(array, 0).to_numpy(zero_copy_only=False)
            micros = np.where(ok, np.where(ok, whole, 0).astype(np.int64) * 1_000_000, _NAT)
        else:
            micros = np.where(ok, np.rint(np.where(ok, seconds, 0) * 1e6), 0).astype(np.int64)
            micros[~ok] = _NAT
        shown = seconds
        integer = pa.types.is_integer(t)
    else:
        raise _type_error(name, f, array)
    bad = null | unparsable | millis
    values = pd.Series(micros.view("M8[us]")).dt.tz_localize("UTC")

    def why(i: int) -> str:
        if null[i]:
            return "missing value"
        assert shown is not None
        raw = _shown(shown, i, integer) if np.isfinite(shown[i]) else repr(float(shown[i]))
        if millis[i]:
            return f"unix time {show(raw)} looks like milliseconds (expected seconds)"
        return f"unparsable timestamp: {show(raw)} (expected a zone-aware timestamp or unix seconds >= 0)"

    return Parsed(values, bad, why)


_TYPED: dict[str, Callable[[pa.Array, Field, str], Parsed]] = {
    "float": _float, "uint": _uint, "round_id": _round_id, "timestamp": _timestamp,
}


def convert_column(f: Field, array: pa.Array | pa.ChunkedArray, name: str,
                   text: Callable[[Field, pa.Array], Parsed]) -> Parsed:
    """Convert one Parquet column as field ``f`` says; ``text`` converts string columns (the CSV way).

    Raises
    ------
    InputError
        At row 0 when the column's type cannot hold the field.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if is_text(array.type):
        return text(f, as_cells(array))
    typed = _TYPED.get(f.kind)
    if typed is None:
        raise _type_error(name, f, array)
    return typed(array, f, name)
