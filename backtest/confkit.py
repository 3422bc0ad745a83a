"""Validation helpers shared by the config, the rule kinds and the liquidation models.

Each raises ``ConfigError`` with one line naming the TOML key. Kept apart from ``backtest.config`` so that
plug-in modules (``backtest.kinds``, ``backtest.models``) can use them without an import circle.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import ConfigError
from .timeutil import parse_duration, parse_instant

ASSET_KEYS = ("ltv", "liquidation_threshold", "liquidation_bonus")


@dataclass(frozen=True)
class AssetParams:
    """Per-asset parameters: ``ltv`` and ``liquidation_threshold`` fractions 0–1, ``liquidation_bonus`` ≥ 0."""

    ltv: float
    liquidation_threshold: float
    liquidation_bonus: float


def _quote_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _hint(key: str, allowed: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(allowed)}"


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}.{_quote_key(key)}: unknown key{_hint(key, allowed)}" if where
                              else f"{_quote_key(key)}: unknown key{_hint(key, allowed)}")


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"{key}: must be finite, got {value!r}")
    return value


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}: expected a non-empty string, got {value!r}")
    return value


def _choice(value: Any, key: str, implemented: tuple[str, ...], planned: tuple[str, ...]) -> str:
    value = _string(value, key)
    if value in implemented:
        return value
    if value in planned:
        raise ConfigError(f"{key}: {value!r} is not implemented yet; available: {', '.join(implemented)}")
    raise ConfigError(f"{key}: invalid value {value!r}{_hint(value, implemented + planned)}")


def _instant(value: Any, key: str) -> int:
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a quoted timestamp string like \"2021-05-19T00:00:00Z\", got {value!r}")
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _merge(parent: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(parent)
    for key, value in child.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _asset_params(table: Any, where: str) -> AssetParams:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table with keys {', '.join(ASSET_KEYS)}")
    _check_keys(table, ASSET_KEYS, where)
    for key in ASSET_KEYS:
        if key not in table:
            raise ConfigError(f"{where}.{key}: missing (every asset needs {', '.join(ASSET_KEYS)})")
    ltv = _number(table["ltv"], f"{where}.ltv")
    lt = _number(table["liquidation_threshold"], f"{where}.liquidation_threshold")
    lb = _number(table["liquidation_bonus"], f"{where}.liquidation_bonus")
    if not 0 <= lt < 1:
        raise ConfigError(f"{where}.liquidation_threshold: must satisfy 0 ≤ liquidation_threshold < 1, got {lt}")
    if not 0 <= ltv <= lt:
        raise ConfigError(f"{where}.ltv: must satisfy 0 ≤ ltv ≤ liquidation_threshold ({lt}), got {ltv}")
    if lb < 0:
        raise ConfigError(f"{where}.liquidation_bonus: must be ≥ 0 (a fraction: Aave's 10500 bps = 0.05), got {lb}")
    return AssetParams(ltv, lt, lb)


def _duration(value: Any, key: str) -> int:
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string like \"1d\", got {value!r}")
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None
