"""``mbt ingest csv`` / ``mbt ingest parquet``: validate input files, then load them in one transaction.

Every file is read and checked before the database is opened (``adapters.csv.read_table``, or
``adapters.parquet.read_parquet_table`` for names ending in ``.parquet`` or with ``parquet=True``), so
a bad file stops the load with one ``FILE:ROW:COLUMN`` line and nothing is written; then
``Store.ingest`` stores them all in one transaction (DESIGN §2).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd

from ..store import Store

KINDS = ("prices", "positions", "events", "liquidity", "indices")


def read_file(kind: str, path: str, *, parquet: bool | None = None,
              warn: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Read and validate one input file; Parquet when ``parquet`` (None: when the name ends in .parquet)."""
    from adapters.parquet import is_parquet_name, read_parquet_table

    if parquet if parquet is not None else is_parquet_name(path):
        return read_parquet_table(kind, path, display_name=path, warn=warn)
    from adapters.csv import read_table

    return read_table(kind, path, display_name=path, warn=warn)


def read_inputs(files: Mapping[str, str | None], *, parquet: bool | None = None,
                warn: Callable[[str], None] | None = None) -> dict[str, tuple[pd.DataFrame, str]]:
    """Validate every given file (before the database is touched) → ``kind → (frame, display name)``."""
    frames = {}
    for kind in KINDS:
        path = files.get(kind)
        if path:
            frames[kind] = (read_file(kind, path, parquet=parquet, warn=warn), path)
    return frames


def ingest_files(db_path: str, files: Mapping[str, str | None], *, overwrite: bool = False,
                 parquet: bool | None = None, warn: Callable[[str], None] | None = None
                 ) -> tuple[dict[str, tuple[pd.DataFrame, str]], dict[str, int]]:
    """Validate ``files`` and store them in one transaction.

    Parameters
    ----------
    db_path : str
        The database file (created if missing, only once every file has passed its checks).
    files : mapping
        kind → path (None or absent: not given).
    overwrite : bool
        Replace stored rows whose key matches but whose values differ (else that is an error).
    parquet : bool or None
        Read every file as Parquet (True), as CSV (False), or decide by the file name (None).
    warn : callable, optional
        Receives one-line warnings (unknown columns).

    Returns
    -------
    (dict, dict)
        ``kind → (frame, display name)`` as read, and ``kind → rows added or changed``.

    Raises
    ------
    InputError
        The first problem of the first bad file, or a conflict with stored rows; nothing is stored then.
    """
    frames = read_inputs(files, parquet=parquet, warn=warn)
    with Store(db_path) as store:
        counts = store.ingest(frames, overwrite=overwrite)
    return frames, counts
