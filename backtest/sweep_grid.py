"""The grid of a sweep: keys, values, ``--grid`` and ``[sweep]`` parsing (pure; docs/sweeps.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import ConfigError

SWEEP_KEYS = ("base", "grid")
_SEGMENT = re.compile(r'"([^"]+)"|([^.]+)')


def key_path(key: str) -> list[str]:
    """``assets."USDC.e".ltv`` → ``["assets", "USDC.e", "ltv"]`` (quoted segments may hold dots)."""
    parts, pos = [], 0
    while pos < len(key):
        m = _SEGMENT.match(key, pos)
        if m is None:
            raise ConfigError(f"--grid {key!r}: not a dotted key like assets.WETH.liquidation_threshold")
        parts.append(m.group(1) or m.group(2))
        pos = m.end()
        if pos < len(key):
            if key[pos] != ".":
                raise ConfigError(f"--grid {key!r}: not a dotted key like assets.WETH.liquidation_threshold")
            pos += 1
    if len(parts) < 2:
        raise ConfigError(f"--grid {key!r}: name a setting of the base rule set, e.g. assets.WETH.ltv")
    return parts


def parse_values(text: Any, key: str) -> list[float]:
    """``start:stop:step`` (inclusive, exact decimal steps) or ``a,b,c`` (or a TOML list of numbers)."""
    if isinstance(text, list):
        values = text
    elif isinstance(text, (int, float)) and not isinstance(text, bool):
        values = [text]
    elif isinstance(text, str) and ":" in text:
        try:
            start, stop, step = (Decimal(x.strip()) for x in text.split(":"))
        except (ValueError, InvalidOperation):
            raise ConfigError(f"{key}: expected start:stop:step, e.g. 0.70:0.85:0.01, got {text!r}") from None
        if step <= 0 or stop < start:
            raise ConfigError(f"{key}: start:stop:step needs step > 0 and stop ≥ start, got {text!r}")
        n = int((stop - start) / step)
        values = [float(start + i * step) for i in range(n + 1)]
    elif isinstance(text, str):
        try:
            values = [float(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise ConfigError(f"{key}: expected numbers separated by commas, got {text!r}") from None
    else:
        raise ConfigError(f"{key}: expected start:stop:step or a list of numbers, got {text!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{key}: {v!r} is not a number")
        out.append(float(v))
    if not out:
        raise ConfigError(f"{key}: no values")
    if len(set(out)) != len(out):
        raise ConfigError(f"{key}: a value is listed twice")
    return out


def grid_from_cli(specs: tuple[str, ...] | list[str]) -> dict[str, list[float]]:
    grid: dict[str, list[float]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--grid {spec!r}: expected KEY=VALUES, e.g. assets.WETH.liquidation_threshold=0.70:0.85:0.01")
        key = key.strip()
        key_path(key)
        if key in grid:
            raise ConfigError(f"--grid {key}: given twice")
        grid[key] = parse_values(values.strip(), f"--grid {key}")
    return grid


def sweep_table(doc: Mapping[str, Any]) -> tuple[str | None, dict[str, list[float]]]:
    """The config's ``[sweep]`` table (``base``, ``[sweep.grid]``), if any."""
    table = doc.get("sweep")
    if table is None:
        return None, {}
    if not isinstance(table, Mapping):
        raise ConfigError("sweep: expected a [sweep] table with base and [sweep.grid]")
    for k in table:
        if k not in SWEEP_KEYS:
            raise ConfigError(f"sweep.{k}: unknown key; allowed: base, grid")
    base = table.get("base")
    if base is not None and (not isinstance(base, str) or not base):
        raise ConfigError(f"sweep.base: expected a rule set name, got {base!r}")
    grid_raw = table.get("grid", {})
    if not isinstance(grid_raw, Mapping):
        raise ConfigError("sweep.grid: expected a table of KEY = VALUES")
    grid = {}
    for key, values in grid_raw.items():
        key_path(key)
        grid[key] = parse_values(values, f"sweep.grid.{key}")
    return base, grid
