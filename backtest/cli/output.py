"""Plain-text tables for the terminal: the run comparison (metrics × rule sets) and SQL results."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import Any, Sequence

from ..outputs.metrics import COUNT_METRICS, METRICS, MODEL_METRICS


def format_cell(value: Any) -> str:
    """One value as text: ints with separators, floats to 6 significant figures, NULL as ``NULL``."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e15 or abs(value) < 1e-4):
            return f"{value:.6g}"
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, align: Sequence[str] | None = None) -> str:
    """Align ``rows`` under ``headers``; numbers right-aligned unless ``align`` says otherwise."""
    cells = [[format_cell(v) if not isinstance(v, str) else v for v in row] for row in rows]
    if align is None:
        align = ["r" if rows and all(isinstance(r[i], (int, float, Decimal)) or r[i] is None for r in rows) else "l"
                 for i in range(len(headers))]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if a == "r" else v.ljust(w) for v, w, a in zip(values, widths, align)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _metric_cell(metric: str, value: Any) -> str:
    if value is None:
        return "NULL"
    if metric in COUNT_METRICS:
        return f"{int(value):,}"
    if metric == "capital_efficiency":
        return f"{value:.4f}"
    return f"{value:,.2f}"


def across_table(results: list[dict]) -> str:
    """The ``scenario = "*"`` metrics as rows, rule sets as columns (runs with two or more scenarios)."""
    from ..outputs.metrics import ACROSS_METRICS, ALL_SCENARIOS

    rows_in = [r for r in results if r["scenario"] == ALL_SCENARIOS]
    headers = ["across scenarios"] + [r["rule"] for r in rows_in]
    rows = [["kind"] + [r["kind"] for r in rows_in]]
    for m in ACROSS_METRICS:
        rows.append([m] + [("—" if r[m] is None else (f"{r[m]:.4f}" if m == "p_bad_debt" else f"{r[m]:,.2f}"))
                           for r in rows_in])
    return render_table(headers, rows, align=["l"] + ["r"] * len(rows_in))


def comparison_table(results: list[dict]) -> str:
    """Metrics as rows, rule sets side by side as columns (the baseline first)."""
    headers = ["metric"] + [r["rule"] for r in results]
    rows = [["kind"] + [r["kind"] for r in results]]
    rows += [[m] + [_metric_cell(m, r[m]) for r in results] for m in METRICS
             if m not in MODEL_METRICS or any(r[m] is not None for r in results)]
    return render_table(headers, rows, align=["l"] + ["r"] * len(results))
