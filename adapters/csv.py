"""CSV input adapter: read one prices/positions/events/liquidity/indices file into a validated DataFrame.

This is the pure half of ``mbt ingest csv`` (DESIGN §2): it reads and checks a file and returns typed
columns with each row's physical line number; it never touches the database. Any bad input raises
``InputError`` ("FILE:LINE:COLUMN: what is wrong") for the first problem in file order. The byte-level
reading and the per-column converters live in ``adapters._csvparse``; the per-kind schemas, the choice
of the first error and within-file duplicates in ``adapters.tables`` (shared with ``adapters.parquet``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

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
from adapters.tables import ACTIONS, KINDS, Field, assemble, check_header, check_kind, schema, wanted_columns

__all__ = ["ACTIONS", "KINDS", "convert_text", "read_table"]

#: Converter of each field kind for a column of stripped text cells.
TEXT_CONVERTERS: dict[str, Callable[..., Parsed]] = {
    "text": parse_text, "account": parse_account, "choice": parse_choice, "float": parse_float,
    "uint": parse_uint, "round_id": parse_round_id, "timestamp": parse_timestamp,
}


def convert_text(f: Field, cells: pa.Array) -> Parsed:
    """Convert one column of stripped text cells as field ``f`` says (also Parquet's text columns)."""
    return TEXT_CONVERTERS[f.kind](cells, **f.options)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


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
        If ``kind`` is not one of the five kinds.
    """
    check_kind(kind)
    name = str(path) if display_name is None else display_name
    cells = read_cells(path, name, wanted_columns(kind))
    fields = schema(kind, cells.header)
    check_header(kind, cells.header, fields, name, warn or _stderr)
    parsed = {f.name: convert_text(f, cells.columns[f.name]) for f in fields if f.name in cells.columns}
    return assemble(kind, name, cells.header, fields, parsed, cells.lines, deferred=cells.deferred)
