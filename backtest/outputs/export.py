"""Arrow tables to Parquet or CSV files, atomically (``mbt export``)."""

from __future__ import annotations

from pathlib import Path


def write_table(table, path: Path, fmt: str) -> Path:
    """Write ``table`` to ``path`` (a temporary file renamed into place, so a reader never sees half a file)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "parquet":
        pq.write_table(table, tmp)
    else:
        # lists (runs.assets) have no CSV form: written as their JSON-like text
        cols = []
        for name in table.column_names:
            col = table.column(name)
            if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
                col = pa.array([None if v is None else "[" + ",".join(map(str, v)) + "]" for v in col.to_pylist()],
                               pa.string())
            cols.append(col)
        pcsv.write_csv(pa.table(cols, names=table.column_names), tmp)
    tmp.replace(path)
    return path
