"""A toy rule kind registered from the test folder, with its own requirement and no skipping bound.

``kind = "flat"`` with ``[rules.flat] haircut = h, bonus = b``: every asset counts for maintenance at
``(1 − h)`` of its value whatever the asset (so ``[rules.assets]`` is not needed), initial margin at
``(1 − h)²``, the bonus is ``b`` on any collateral. ``skip`` always says "maybe", so the fast kernel
evaluates every step — slower, still exact.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

import numpy as np
from numba import njit

from backtest.confkit import _check_keys, _number
from backtest.errors import ConfigError
from backtest.kinds import Kind, register

HOOKS = __name__
FlatKp = namedtuple("FlatKp", ["weight", "bonus"])


@njit(cache=True, nogil=True)
def regime(kp, a, d):
    return 0


@njit(cache=True, nogil=True)
def maint(kp, a, r, c, d, pc, pd, t):
    total = 0.0
    for k in range(c.shape[0]):
        total += c[k] * pc[t, k]
    return total * kp.weight


@njit(cache=True, nogil=True)
def initial(kp, a, r, c, d, pc, pd, t):
    total = 0.0
    for k in range(c.shape[0]):
        total += c[k] * pc[t, k]
    return total * kp.weight * kp.weight


@njit(cache=True, nogil=True)
def eligible(kp, r, t, k):
    return True


@njit(cache=True, nogil=True)
def bonus(kp, r, t, k):
    return kp.bonus


@njit(cache=True, nogil=True)
def skip(kp, level, b, r, c, d):
    return False


@njit(cache=True, nogil=True)
def stuck(kp, level, b, r, c, d, gas, share):
    return 0


@dataclass(frozen=True)
class FlatSettings:
    haircut: float
    bonus: float


@dataclass(frozen=True)
class FlatParams:
    """The engine parameters of a flat rule set: the interface ``engine.types.Params`` has."""

    weight: float
    lb: float
    model: str
    model_args: np.ndarray
    protocol_fee: np.ndarray
    gas_usd: float
    enforce_ltv: bool
    hooks: str = HOOKS

    def liquidation(self):
        from backtest.models import get

        return get(self.model), np.ascontiguousarray(self.model_args, dtype=np.float64)

    def fees(self, n_assets):
        return np.ascontiguousarray(self.protocol_fee, dtype=np.float64)

    def pack(self, pc, pd, levels, n_accounts):
        return FlatKp(float(self.weight), float(self.lb))

    def borrowing_power(self, collateral, debt, first_prices):
        return float(np.sum(collateral * first_prices) * self.weight * self.weight)

    def collateral_mask(self, debt, n_steps):
        return np.ones(debt.shape, dtype=bool)


def _parse(table, where, assets):
    t = table.get("flat")
    if not isinstance(t, dict):
        raise ConfigError(f"{where}.flat: kind = \"flat\" needs a [{where}.flat] table with haircut, bonus")
    _check_keys(t, ("haircut", "bonus"), f"{where}.flat")
    h = _number(t.get("haircut", 0.2), f"{where}.flat.haircut")
    if not 0 <= h < 1:
        raise ConfigError(f"{where}.flat.haircut: must satisfy 0 ≤ haircut < 1, got {h}")
    return {"flat": FlatSettings(h, _number(t.get("bonus", 0.05), f"{where}.flat.bonus"))}


def _compile(rule, data, base):
    from backtest.rules import Compiled

    s = rule.setting("flat")
    params = FlatParams(1.0 - s.haircut, s.bonus, base["model"], base["model_args"], base["protocol_fee"],
                        base["gas_usd"], base["enforce_ltv"])
    return Compiled(data.book, data.events, params)


KIND = register(Kind(
    name="flat", keys=("flat",), parse=_parse, canonical=lambda rule: {"flat": vars(rule.setting("flat")).copy()},
    compile=_compile, asset_params=False, summary="test-folder toy: one haircut for every asset",
))
