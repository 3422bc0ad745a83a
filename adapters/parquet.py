"""Parquet input adapter: one prices/positions/events/liquidity/indices file → a validated DataFrame.

The Parquet twin of ``adapters.csv.read_table``: the same columns (by name, any order; unknown ones
ignored with a warning), the same checks and the same one-line errors ``FILE:ROW:COLUMN: message``, where
ROW is the 1-based data row (row 0: the file itself or its schema — missing, duplicate or mistyped
columns). The file is read with ``pyarrow.parquet`` (only the columns the kind uses) and every check
works on whole typed columns (``adapters._parquetparse``); text columns go through the CSV converters.
It never touches the database.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import numpy as np
import pandas as pd

from adapters._parquetparse import convert_column
from adapters.csv import convert_text
from adapters.tables import assemble, check_header, check_kind, schema
from mbt_errors import InputError

__all__ = ["is_parquet_name", "read_parquet_table"]


def is_parquet_name(path: str | os.PathLike) -> bool:
    """True when the file name ends in ``.parquet`` (any case): ``mbt ingest csv`` reads it as Parquet."""
    return str(path).lower().endswith(".parquet")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _first_sentence(exc: BaseException) -> str:
    return str(exc).splitlines()[0].split(". ")[0].rstrip(".")


def _open(path: str | os.PathLike, name: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(name, 0, "", f"cannot read file ({exc.strerror or exc})") from None
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(name, 0, "", f"not a Parquet file ({_first_sentence(exc)})") from None


def read_parquet_table(kind: str, path: str | os.PathLike, *, display_name: str | None = None,
                       warn: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Read and validate one input Parquet file (the CSV contract of DESIGN §2, typed columns).

    Parameters
    ----------
    kind : {"prices", "positions", "events", "liquidity", "indices"}
        Which table the file holds.
    path : str or os.PathLike
        A Parquet file.
    display_name : str, optional
        The FILE part of error messages and warnings; default ``str(path)``.
    warn : callable, optional
        Receives one-line warnings (unknown columns); default prints them to stderr.

    Returns
    -------
    pandas.DataFrame
        Exactly what ``adapters.csv.read_table`` returns for the same data, with ``_line`` holding the
        1-based row number instead of the physical line.

    Raises
    ------
    InputError
        For the first problem in row order, as ``FILE:ROW:COLUMN: message`` (row 0 = file or schema).
    ValueError
        If ``kind`` is not one of the five kinds.
    """
    import pyarrow as pa

    check_kind(kind)
    name = str(path) if display_name is None else display_name
    pf = _open(path, name)
    header = [str(c) for c in pf.schema_arrow.names]
    fields = schema(kind, header)
    check_header(kind, header, fields, name, warn or _stderr, line=0, text_hint=False)
    present = [f for f in fields if f.name in header]
    try:
        table = pf.read(columns=[f.name for f in present])
    except (OSError, pa.ArrowException) as exc:
        raise InputError(name, 0, "", f"not a readable Parquet file ({_first_sentence(exc)})") from None
    parsed = {f.name: convert_column(f, table.column(f.name), name, convert_text) for f in present}
    lines = np.arange(1, table.num_rows + 1, dtype=np.int64)
    return assemble(kind, name, header, fields, parsed, lines, unit="row")
