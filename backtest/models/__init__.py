"""Liquidation models as named plug-ins: one registry that config, runner and both engines use.

A model is what happens when an account is liquidatable: how much of the chosen debt one call may repay
and how much collateral it takes. Each model family is one module that builds :class:`Model` objects and
calls :func:`register`; adding a model is one module plus one import in :data:`BUILTIN` (or a
``register`` call from anywhere, e.g. a test folder), with no edits elsewhere.

The liquidation *call* has one signature for every model, and one source: a plain Python function that
numba can compile. The reference engine calls the Python function itself (the float spec); the fast
kernel calls its compiled form, generated into a kernel of its own (``backtest.engine.kernels``)::

    call(args, d_j, p_j, c_i, p_i, bonus, fee, hf, debt_usd) -> (repaid, seized, fee_amount, whole, ok)

``args`` is the model's float64 vector (built once per rule set by :meth:`Model.engine_args` from its
config keys); ``d_j``/``p_j`` the debt in the chosen debt asset and its (valuation) price; ``c_i``/``p_i``
the chosen collateral and its price; ``bonus`` the liquidation bonus of the collateral; ``fee`` its protocol
fee share; ``hf`` the health factor before the call; ``debt_usd`` the account's total debt. It returns the
debt repaid and collateral seized (token units, the protocol fee included in ``seized``), the protocol's part,
whether the whole collateral balance was taken, and ``ok = False`` when no call is made (e.g. a call that
would revert).

Every model keeps two promises the fast kernel's block bounds rely on: a call repays at most ``max_share · d_j`` and
takes collateral at ``1 + bonus`` times the value repaid, at most ``c_i`` (so
``repaid·p_j·(1 + bonus) ≤ c_i·p_i``); both hold up to float rounding (a relative 1e-9 is allowed for).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import ConfigError
from ..registry import Registry

#: Keys of ``[market]`` that every model shares; everything else belongs to a model.
COMMON_KEYS: dict[str, Any] = {"liquidation": "aave", "gas_usd": 0.0, "slippage": "none"}


@dataclass(frozen=True)
class Model:
    """One liquidation model.

    name : the ``[market] liquidation`` value
    keys : model-specific ``[market]`` keys and their defaults
    parse : ``parse(table, where, written) -> settings`` — validates the model's keys of a merged
        ``[market]`` table (defaults filled; ``written`` = the keys the user wrote) and returns the resolved
        settings (plain data, JSON-able); raises ``ConfigError`` naming the key
    engine_args : ``engine_args(settings) -> float64 vector`` passed to ``call``
    call : numba-compiled liquidation call (signature in the module doc); ``call.py_func`` is the float spec
    fees : ``fees(settings, n_assets) -> float64 (K,)`` protocol fee share per asset (default zeros)
    needs : data the model needs from the store: ``"indices"`` (interest indices → balance growth)
    interest : accepts ``[market.interest.<SYM>]`` rate curves
    max_share : ``max_share(args) -> float``, the most of ``d_j`` one call may repay (default 1.0); the
        kernel's bound for positions no liquidator would touch uses it
    summary : one line for docs and ``--help``
    absorb : liquidate by absorbing (Comet): a liquidatable account loses all eligible collateral at
        ``LF = 1/(1 + bonus)`` of its value, every debt is extinguished and the excess credit becomes a supply
        of the column ``args[0]``; ``call`` is then not used and ``settle`` runs the protocol's sales
    bind : ``bind(settings, assets) -> float64 vector``, the call's arguments when they depend on the run's
        asset columns (replaces ``engine_args`` when given)
    settle : ``settle(result, pc, args, gas_usd)``, a pass over a finished replay (both engines) that may
        add bad debt and ``stats`` metrics
    asset_schema : parses ``[rules.assets.<SYM>]`` for rule sets of this model (as ``Kind.asset_schema``;
        a kind's own schema wins)
    """

    name: str
    keys: Mapping[str, Any]
    parse: Callable[[Mapping[str, Any], str, frozenset], dict]
    engine_args: Callable[[Mapping[str, Any]], np.ndarray]
    call: Any
    fees: Callable[[Mapping[str, Any], int], np.ndarray] | None = None
    needs: frozenset[str] = frozenset()
    interest: bool = False
    summary: str = ""
    max_share: Callable[[np.ndarray], float] | None = None
    absorb: bool = False
    bind: Callable[[Mapping[str, Any], list], np.ndarray] | None = None
    settle: Callable[..., None] | None = None
    asset_schema: Callable[[Any, str], Any] | None = None

    def share(self, args: np.ndarray) -> float:
        """The most of the chosen debt one call may repay, as a fraction (1.0 unless the model says less)."""
        return 1.0 if self.max_share is None else float(self.max_share(args))

    @property
    def spec(self) -> Callable:
        """The plain-Python float spec (the compiled call's source)."""
        return getattr(self.call, "py_func", self.call)

    def fee_vector(self, settings: Mapping[str, Any], n_assets: int) -> np.ndarray:
        if self.fees is None:
            return np.zeros(n_assets)
        return np.ascontiguousarray(self.fees(settings, n_assets), dtype=np.float64)


PLANNED: tuple[str, ...] = ("maker-clipper", "liquity")
BUILTIN = ("backtest.models.design", "backtest.models.aave", "backtest.models.lending", "backtest.models.comet")
_REGISTRY: Registry = Registry(BUILTIN)
MODELS = _REGISTRY.items  # name → plug-in (use register() to add)


def register(item: Model) -> Model:
    """Add a plug-in (a later registration of the same name replaces it)."""
    return _REGISTRY.register(item.name, item)


def names() -> tuple[str, ...]:
    return _REGISTRY.names()


def get(name: str) -> Model:
    """The model registered as ``name``; ``KeyError`` if none."""
    return _REGISTRY.get(name)


def all_keys() -> dict[str, Any]:
    """Every ``[market]`` key any model declares (common keys first) → default of its first owner."""
    out = dict(COMMON_KEYS)
    for m in _REGISTRY.values():
        for k, v in m.keys.items():
            out.setdefault(k, v)
    if any(m.interest for m in _REGISTRY.values()):
        out.setdefault("interest", {})
    return out


def owners(key: str) -> list[str]:
    """Names of the models that accept ``key``."""
    return [m.name for m in _REGISTRY.values() if key in m.keys or (key == "interest" and m.interest)]


def check_name(value: Any, where: str) -> str:
    """``value`` as a registered model name, or a one-line ``ConfigError``."""
    from ..confkit import _choice  # shared choice/hint wording

    return _choice(value, where, names(), PLANNED)


def reject(key: str, model: Model, where: str) -> ConfigError:
    """The error for a model-specific ``key`` written in a table whose model does not use it."""
    own = owners(key)
    if key == "close_factor":
        return ConfigError(f"{where}.close_factor: fixed by the protocol for liquidation = {model.name!r} "
                           f"(only used with liquidation = {' or '.join(repr(o) for o in own)})")
    return ConfigError(f"{where}.{key}: only valid with liquidation = {' or '.join(repr(o) for o in own)}")
