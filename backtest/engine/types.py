"""Plain array containers passed into and out of the replay engines.

The engine sees only numbers: assets are column indices (in Python ``sorted`` order of their symbols, so
"lowest index" is DESIGN §4's tie-break), accounts are row indices, grid steps are integers. Memory is
O(A·K + T·K): positions are dense (accounts × assets), prices are (steps × assets); there is never an
(accounts × steps) array.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SUPPLY, WITHDRAW, BORROW, REPAY = 0, 1, 2, 3
ACTIONS = {"supply": SUPPLY, "withdraw": WITHDRAW, "borrow": BORROW, "repay": REPAY}


@dataclass(frozen=True)
class Book:
    """Positions snapshot at the run's start.

    collateral, debt : float64 (accounts × assets), token units
    """

    collateral: np.ndarray
    debt: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.collateral.shape  # type: ignore[return-value]


@dataclass(frozen=True)
class Events:
    """Ledger events, already mapped to grid steps and sorted in application order.

    Order is (step, then the DESIGN §2 order within a step); an account's events keep their relative order.

    account, step, asset : int64 (events,)
    action : int8 (events,), one of SUPPLY/WITHDRAW/BORROW/REPAY
    amount : float64 (events,), token units ≥ 0
    """

    account: np.ndarray
    step: np.ndarray
    asset: np.ndarray
    action: np.ndarray
    amount: np.ndarray

    @staticmethod
    def empty() -> "Events":
        return Events(
            np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
            np.zeros(0, np.int8), np.zeros(0, np.float64),
        )

    def __len__(self) -> int:
        return int(self.account.shape[0])


@dataclass(frozen=True)
class Params:
    """One rule set's numbers for the engine (``kind = "asset"``).

    ltv, liquidation_threshold, liquidation_bonus : float64 (assets,), fractions
    close_factor : float, 0 < cf ≤ 1
    gas_usd : float, USD cost of one liquidation call
    """

    ltv: np.ndarray
    liquidation_threshold: np.ndarray
    liquidation_bonus: np.ndarray
    close_factor: float = 0.5
    gas_usd: float = 0.0


@dataclass
class Liquidations:
    """One row per liquidation call (long table)."""

    step: np.ndarray
    account: np.ndarray
    debt_asset: np.ndarray
    collateral_asset: np.ndarray
    debt_repaid: np.ndarray
    collateral_seized: np.ndarray
    debt_repaid_usd: np.ndarray
    penalty_usd: np.ndarray

    def __len__(self) -> int:
        return int(self.step.shape[0])

    def sorted(self) -> "Liquidations":
        """Canonical order: by step, then account, keeping call order within an account."""
        order = np.lexsort((np.arange(len(self)), self.account, self.step))
        return Liquidations(*(getattr(self, f)[order] for f in LIQUIDATION_FIELDS))


LIQUIDATION_FIELDS = (
    "step", "account", "debt_asset", "collateral_asset",
    "debt_repaid", "collateral_seized", "debt_repaid_usd", "penalty_usd",
)


@dataclass
class ReplayResult:
    """Everything one replay produces; metrics are derived from it by ``backtest.metrics``.

    Per-step arrays have length T (grid steps) and describe the state after that step's liquidations.
    """

    liquidations: Liquidations
    realised_bad_debt: np.ndarray  # (T,) USD written off at each step
    unrealised_bad_debt: np.ndarray  # (T,) Σ max(0, D−C) over accounts after the step
    liquidation_calls: np.ndarray  # (T,) int64
    collateral_usd: np.ndarray  # (T,) all assets, LT = 0 included
    debt_usd: np.ndarray  # (T,)
    written_off: np.ndarray  # (A,) bool
    final_collateral: np.ndarray  # (A, K)
    final_debt: np.ndarray  # (A, K)
    capped_events_usd: float
    stats: dict = field(default_factory=dict)
