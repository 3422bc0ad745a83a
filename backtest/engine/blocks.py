"""Block reductions used by the skipping bounds of the fast engine (numpy only)."""

from __future__ import annotations

import numpy as np


def block_reduce(values: np.ndarray, block: int, how: str) -> np.ndarray:
    """Per-block minimum or maximum over axis 0 (steps); the last block may be short."""
    T = values.shape[0]
    n = (T + block - 1) // block
    pad = n * block - T
    if pad:
        values = np.concatenate([values, np.repeat(values[-1:], pad, axis=0)])
    shaped = values.reshape((n, block) + values.shape[1:])
    return shaped.min(axis=1) if how == "min" else shaped.max(axis=1)


def block_bounds(prices: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-block, per-asset minimum and maximum of ``prices`` (steps × assets)."""
    return block_reduce(prices, block, "min"), block_reduce(prices, block, "max")
