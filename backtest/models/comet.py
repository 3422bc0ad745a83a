"""Compound v3 (Comet) in float64: ``[market] liquidation = "comet"`` — absorb, then store-front sales.

PROTOCOLS §2.3 / §10.2 / §10.6; the integer layer it is held to is ``backtest.protocols.comet``.

**Absorb** (in both engines' liquidation step, instead of the per-call loop): an account whose
``Σ c·p·LCF < Σ d·p`` loses *all* its eligible collateral; each asset is credited at ``LF·value``; every
debt is extinguished; what the credit exceeds the debt by becomes a supply of the ``base`` asset for the
user; the protocol pays out ``basePaidOut = max(debt, credit)`` from its reserves. No close factor, no gas
test (absorbers are not paid on-chain). The liquidation rows of an absorb are one per seized asset:
``collateral_seized`` the whole balance, ``penalty_usd = value·(1 − LF)``, ``debt_repaid_usd`` the debt
extinguished, split over the assets in proportion to their credit. An account with debt and nothing to
seize is written off (the protocol pays its debt and gets nothing: realised bad debt at once).

**Sales** (after the replay, :func:`settle`): the absorbed collateral joins the protocol's collateral
reserves in absorb order. From ``buy_delay_steps`` after its absorb, at every step while the reserves are
below ``target_reserves``, buyers take lots first-in first-out at the store-front price
``p·(1 − store_front_price_factor·(1 − LF))``, at most ``buy_capacity_usd`` of base a step (0 = no limit), and
only while a purchase earns its buyer more than ``gas_usd``. Reserves (USD) start at ``reserves``, fall by each
``basePaidOut`` and rise by each purchase. An absorb's realised bad debt is ``max(0, basePaidOut − proceeds)``,
booked at the step its last lot sells; until then its unrealised bad debt is ``max(0, basePaidOut −
proceeds − unsold lots at the store-front price)``. New metrics: ``protocol_reserves_usd`` (end) and
``absorbed_collateral_unsold_usd`` (unsold lots at the last prices).

Per-asset keys of a Comet rule set (``[rules.assets.<SYM>]``): ``borrow_collateral_factor`` (the LTV),
``liquidate_collateral_factor`` (the liquidation threshold) and ``liquidation_factor`` (the share of value
credited at absorb; the engine's bonus is ``1/LF − 1``); the ``ltv`` / ``liquidation_threshold`` /
``liquidation_bonus`` form is accepted too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from numba import njit

from ..confkit import AssetParams, _asset_params, _check_keys, _number, _string
from ..errors import ConfigError
from . import Model, register

COMET_ASSET_KEYS = ("borrow_collateral_factor", "liquidate_collateral_factor", "liquidation_factor")
ABSORB_CALLS = ("comet_call",)  # the kernels' absorb branch (backtest.engine.kernels.absorbs)
KEYS: dict[str, Any] = {"base": "USDC", "store_front_price_factor": 0.6, "target_reserves": 5_000_000.0,
                        "reserves": 0.0, "buy_delay_steps": 0, "buy_capacity_usd": 0.0}


@dataclass(frozen=True)
class CometAsset:
    """A Comet collateral's factors (fractions); the engine reads them as ltv / threshold / bonus."""

    borrow_collateral_factor: float
    liquidate_collateral_factor: float
    liquidation_factor: float

    @property
    def ltv(self) -> float:
        return self.borrow_collateral_factor

    @property
    def liquidation_threshold(self) -> float:
        return self.liquidate_collateral_factor

    @property
    def liquidation_bonus(self) -> float:
        lf = self.liquidation_factor
        return 1.0 / lf - 1.0 if lf > 0 else 0.0


def asset_schema(table: Any, where: str) -> AssetParams | CometAsset:
    """``[rules.assets.<SYM>]`` of a Comet rule set: Comet's three factors, or the generic three keys."""
    if isinstance(table, Mapping) and any(k in table for k in COMET_ASSET_KEYS):
        _check_keys(table, COMET_ASSET_KEYS, where)
        for key in COMET_ASSET_KEYS:
            if key not in table:
                raise ConfigError(f"{where}.{key}: missing (a Comet asset needs {', '.join(COMET_ASSET_KEYS)})")
        bcf, lcf, lf = (_number(table[k], f"{where}.{k}") for k in COMET_ASSET_KEYS)
        if not 0 <= lcf < 1:
            raise ConfigError(f"{where}.liquidate_collateral_factor: must satisfy 0 ≤ factor < 1, got {lcf}")
        if not 0 <= bcf <= lcf:
            raise ConfigError(f"{where}.borrow_collateral_factor: must satisfy 0 ≤ factor ≤ "
                              f"liquidate_collateral_factor ({lcf}), got {bcf}")
        if not (0 < lf <= 1 or (lf == 0 and lcf == 0)):
            raise ConfigError(f"{where}.liquidation_factor: must satisfy 0 < factor ≤ 1 (0 only for a non-collateral "
                              f"asset), got {lf}")
        return CometAsset(bcf, lcf, lf)
    return _asset_params(table, where)


def _parse(table: Mapping[str, Any], where: str, written: frozenset) -> dict:
    base = _string(table["base"], f"{where}.base")
    sfpf = _number(table["store_front_price_factor"], f"{where}.store_front_price_factor")
    if not 0 <= sfpf <= 1:
        raise ConfigError(f"{where}.store_front_price_factor: must satisfy 0 ≤ factor ≤ 1, got {sfpf}")
    out = {"base": base, "store_front_price_factor": sfpf}
    for key in ("target_reserves", "reserves", "buy_capacity_usd"):
        v = _number(table[key], f"{where}.{key}")
        if v < 0:
            raise ConfigError(f"{where}.{key}: must be ≥ 0, got {v}")
        out[key] = v
    delay = table["buy_delay_steps"]
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
        raise ConfigError(f"{where}.buy_delay_steps: expected an integer ≥ 0, got {delay!r}")
    out["buy_delay_steps"] = delay
    return out


def bind(settings: Mapping[str, Any], assets: list[str]) -> np.ndarray:
    """``[base column, store_front_price_factor, target_reserves, reserves, buy_delay_steps, buy_capacity_usd]``."""
    base = settings["base"]
    if base not in assets:
        raise ConfigError(f"market.base: {base!r} is not an asset of this run (assets: {', '.join(assets)})")
    return np.array([assets.index(base), settings["store_front_price_factor"], settings["target_reserves"],
                     settings["reserves"], settings["buy_delay_steps"], settings["buy_capacity_usd"]],
                    dtype=np.float64)


@njit(cache=True, nogil=True, inline="always")
def comet_call(args, d_j, p_j, c_i, p_i, bonus, fee, hf, debt_usd):
    """Not called: Comet liquidates by absorbing (the kernel's absorb branch); kept for the seam's signature."""
    return 0.0, 0.0, 0.0, False, False


@njit(cache=True, nogil=True)
def _sell(step, coll_k, seized, penalty, repaid_usd, group, pc, T, sfpf, target, reserves, delay, capacity, gas):
    """The store-front sales of every absorb (rows ordered by step, then account; ``group`` numbers absorbs).

    Returns (realised (T,), unrealised (T,), reserves after each step (T,), unsold amount per row).
    """
    n = step.shape[0]
    G = group[n - 1] + 1 if n else 0
    paid = np.zeros(G)
    credit = np.zeros(G)
    proceeds = np.zeros(G)
    left_rows = np.zeros(G, dtype=np.int64)
    absorbed_at = np.zeros(G, dtype=np.int64)
    lf = np.empty(n)
    for r in range(n):
        g = group[r]
        value = seized[r] * pc[step[r], coll_k[r]]
        lf[r] = 1.0 - penalty[r] / value if value > 0 else 1.0
        credit[g] += value - penalty[r]
        paid[g] += repaid_usd[r]  # the debt extinguished; basePaidOut = max(debt, credit) below
        left_rows[g] += 1
        absorbed_at[g] = step[r]
    for g in range(G):
        if credit[g] > paid[g]:
            paid[g] = credit[g]
    left = seized.copy()
    realised = np.zeros(T)
    unrealised = np.zeros(T)
    res_t = np.zeros(T)
    open_value = np.zeros(max(G, 1))
    seen = np.full(max(G, 1), -1, dtype=np.int64)
    res = reserves
    nxt = 0  # next group to be absorbed (groups are in step order)
    head = 0  # first row with collateral left
    for t in range(T):
        while nxt < G and absorbed_at[nxt] == t:
            res -= paid[nxt]
            nxt += 1
        budget = capacity if capacity > 0 else math.inf
        r = head
        while r < n and step[r] <= t and res < target and budget > 0:
            if left[r] <= 0 or step[r] + delay > t:
                r += 1
                continue
            k = coll_k[r]
            store = pc[t, k] * (1.0 - sfpf * (1.0 - lf[r]))
            if not store > 0:
                r += 1
                continue
            spend = min(left[r] * store, budget)
            gain = spend / store * pc[t, k] - spend  # the buyer's discount on what it buys
            if gain <= gas:
                r += 1
                continue
            amount = left[r] if spend >= left[r] * store else spend / store
            left[r] -= amount
            res += spend
            budget -= spend
            g = group[r]
            proceeds[g] += spend
            if left[r] <= 0:
                left[r] = 0.0
                left_rows[g] -= 1
                if left_rows[g] == 0:
                    loss = paid[g] - proceeds[g]
                    if loss > 0:
                        realised[t] += loss
        while head < n and left[head] <= 0:
            head += 1
        # unrealised: absorbs with lots unsold, valued at the store-front price
        last = head
        while last < n and step[last] <= t:
            if left[last] > 0:
                open_value[group[last]] += left[last] * pc[t, coll_k[last]] * (1.0 - sfpf * (1.0 - lf[last]))
            last += 1
        for rr in range(head, last):
            g = group[rr]
            if left_rows[g] > 0 and seen[g] != t:
                seen[g] = t
                gap = paid[g] - proceeds[g] - open_value[g]
                if gap > 0:
                    unrealised[t] += gap
            open_value[g] = 0.0
        res_t[t] = res
    return realised, unrealised, res_t, left


def settle(result, pc: np.ndarray, args: np.ndarray, gas_usd: float) -> None:
    """Run the store-front sales on ``result`` (a ``ReplayResult``) in place: bad debt and reserve metrics."""
    liq = result.liquidations.sorted()
    T = pc.shape[0]
    step = np.ascontiguousarray(liq.step, dtype=np.int64)
    acct = np.asarray(liq.account, dtype=np.int64)
    n = len(step)
    group = np.zeros(n, dtype=np.int64)
    if n:
        group[1:] = np.cumsum((step[1:] != step[:-1]) | (acct[1:] != acct[:-1]))
    realised, unrealised, res_t, left = _sell(
        step, np.ascontiguousarray(liq.collateral_asset, dtype=np.int64),
        np.ascontiguousarray(liq.collateral_seized, dtype=np.float64),
        np.ascontiguousarray(liq.penalty_usd, dtype=np.float64),
        np.ascontiguousarray(liq.debt_repaid_usd, dtype=np.float64), group, np.ascontiguousarray(pc), T,
        float(args[1]), float(args[2]), float(args[3]), int(args[4]), float(args[5]), float(gas_usd))
    result.realised_bad_debt = result.realised_bad_debt + realised
    result.unrealised_bad_debt = result.unrealised_bad_debt + unrealised
    unsold = float(np.sum(left * pc[-1, np.asarray(liq.collateral_asset, dtype=np.int64)])) if n else 0.0
    result.stats["protocol_reserves_usd"] = float(res_t[-1]) if T else float(args[3])
    result.stats["absorbed_collateral_unsold_usd"] = unsold


MODEL = register(Model(
    name="comet",
    keys=KEYS,
    parse=_parse,
    engine_args=lambda s: np.zeros(6, dtype=np.float64),
    call=comet_call,
    summary="Compound v3: absorb all collateral at LF, reserves pay the debt, store-front sales below target",
    absorb=True,
    bind=bind,
    settle=settle,
    asset_schema=asset_schema,
))
