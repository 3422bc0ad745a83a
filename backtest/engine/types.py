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
MAX_CALLS_PER_STEP = 100  # DESIGN §4: at most this many liquidation calls per account and step
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
    """One rule set's numbers for the engine.

    The simple form (``kind = "asset"``) gives per-asset vectors. Every other kind compiles to the same
    shape: parameter *tables* indexed ``[update, row, asset]`` where ``row`` is a parameter row chosen per
    account (isolated markets, correlated groups) and ``update`` a time row chosen per step (dynamic LT).

    ltv, liquidation_threshold, liquidation_bonus : float64, shape (K,) or (U, R, K), fractions
    close_factor : float, 0 < cf ≤ 1
    gas_usd : float, USD cost of one liquidation call
    account_row : int64 (A,) or None — fixed parameter row per account; −1 = chosen by the account's
        debts each step: the first group whose ``group_assets`` mask holds every debt asset (row g + 1),
        else row 0. None: every account uses row 0.
    group_assets : bool (G, K) or None — assets of each correlated group (rows 1..G)
    update_index : int64 (T,) or None — parameter time row per grid step (None: row 0 throughout)
    depth_usd : float64 (T, K) or None — liquidity depth per step; when given, LT and LTV of an account's
        asset are scaled by ``max(haircut_floor, 1 − haircut_k · c·p / depth)``
    enforce_ltv : refuse borrow/withdraw events that leave ``Σ c·p·LTV < Σ d·p``
    model : name of a registered liquidation model (``backtest.models``), e.g. ``"aave"`` (DESIGN §4,
        ``close_factor``), ``"aave-v2"``, ``"aave-v3"``. A shorthand int is accepted too: 0 = ``"aave"``,
        1 = Aave v2, 2 = v3.0–3.2, 3 = v3.3, 4 = v3.4+ (with ``dust``).
    model_args : the model's float64 argument vector; None = derived from ``close_factor`` (``"aave"``)
        or the int shorthand and ``dust``
    protocol_fee : float64 (K,) or None — share of the bonus part of seized collateral that goes to the
        protocol (Aave's liquidationProtocolFee ÷ 1e4); reduces the liquidator's profit, not the borrower's
        penalty
    dust : for the shorthand codes 3–4, what a call that would leave < $1,000 of debt or collateral does:
        0 = nothing (the call reverts), 1 = shrinks to leave exactly $1,000

    The requirement hooks are ``backtest.engine.tables`` (see there), or their one-row specialisation
    ``backtest.engine.plain`` when the tables are one row with no time rows and no depth; a rule kind with another requirement
    passes an object with the same interface (``hooks``, ``pack``, ``liquidation``, ``fees``, ``gas_usd``,
    ``enforce_ltv``, ``borrowing_power``, ``collateral_mask``).
    """

    @property
    def hooks(self) -> str:
        """The requirement hooks' module: ``engine.plain`` for one row of vectors, else ``engine.tables``."""
        from . import plain

        return plain.HOOKS if plain.applies(self) else "backtest.engine.tables"

    ltv: np.ndarray
    liquidation_threshold: np.ndarray
    liquidation_bonus: np.ndarray
    close_factor: float = 0.5
    gas_usd: float = 0.0
    account_row: np.ndarray | None = None
    group_assets: np.ndarray | None = None
    update_index: np.ndarray | None = None
    depth_usd: np.ndarray | None = None
    haircut_k: float = 1.0
    haircut_floor: float = 0.5
    enforce_ltv: bool = False
    model: int | str = "aave"
    protocol_fee: np.ndarray | None = None
    dust: int = 0
    model_args: np.ndarray | None = None

    def liquidation(self):
        """(model plugin, float64 argument vector) of this rule set."""
        from ..models import get

        name, args = self.model, self.model_args
        if not isinstance(name, str):
            code = int(name)
            name = "aave" if code == 0 else ("aave-v2" if code == 1 else "aave-v3")
            if args is None and code > 0:
                args = np.array([code - 1, self.dust], dtype=np.float64)
        if args is None:
            args = np.array([self.close_factor], dtype=np.float64) if name == "aave" else \
                np.array([3, self.dust], dtype=np.float64)
        return get(name), np.ascontiguousarray(args, dtype=np.float64)

    def pack(self, pc: np.ndarray, pd: np.ndarray, levels: np.ndarray, n_accounts: int):
        from . import plain, tables

        return (plain if plain.applies(self) else tables).pack(self, pc, pd, levels, n_accounts)

    def borrowing_power(self, collateral: np.ndarray, debt: np.ndarray, first_prices: np.ndarray) -> float:
        from .tables import borrowing_power

        return borrowing_power(self, collateral, debt, first_prices)

    def collateral_mask(self, debt: np.ndarray, n_steps: int) -> np.ndarray:
        from .tables import collateral_mask

        return collateral_mask(self, debt, n_steps)

    def last_thresholds(self, debt: np.ndarray, n_steps: int) -> np.ndarray:
        from .tables import last_thresholds

        return last_thresholds(self, debt, n_steps)

    def fees(self, n_assets: int) -> np.ndarray:
        if self.protocol_fee is None:
            return np.zeros(n_assets)
        return np.ascontiguousarray(self.protocol_fee, dtype=np.float64)

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ltv, lt, lb) as float64 tables of shape (U, R, K)."""
        out = []
        for x in (self.ltv, self.liquidation_threshold, self.liquidation_bonus):
            x = np.asarray(x, dtype=np.float64)
            out.append(np.ascontiguousarray(x.reshape(1, 1, -1) if x.ndim == 1 else x))
        return out[0], out[1], out[2]

    def rows(self, n_accounts: int) -> np.ndarray:
        """Fixed parameter row per account (−1 = by debts), int64 (A,)."""
        if self.account_row is None:
            return np.zeros(n_accounts, dtype=np.int64)
        return np.ascontiguousarray(self.account_row, dtype=np.int64)

    def groups(self, n_assets: int) -> np.ndarray:
        if self.group_assets is None:
            return np.zeros((0, n_assets), dtype=np.bool_)
        return np.ascontiguousarray(self.group_assets, dtype=np.bool_)

    def updates(self, n_steps: int) -> np.ndarray:
        if self.update_index is None:
            return np.zeros(n_steps, dtype=np.int64)
        return np.ascontiguousarray(self.update_index, dtype=np.int64)


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
    protocol_fee: np.ndarray  # collateral units to the protocol (part of collateral_seized)

    def __len__(self) -> int:
        return int(self.step.shape[0])

    def sorted(self) -> "Liquidations":
        """Canonical order: by step, then account, keeping call order within an account."""
        account = np.asarray(self.account)
        if len(account) < 2 or bool(np.all(account[1:] >= account[:-1])):
            # account-major, as the fast kernel writes them: a stable sort by step gives the same order
            order = np.argsort(self.step, kind="stable")
        else:
            order = np.lexsort((np.arange(len(self)), self.account, self.step))
        return Liquidations(*(getattr(self, f)[order] for f in LIQUIDATION_FIELDS))


LIQUIDATION_FIELDS = (
    "step", "account", "debt_asset", "collateral_asset",
    "debt_repaid", "collateral_seized", "debt_repaid_usd", "penalty_usd", "protocol_fee",
)


@dataclass
class ReplayResult:
    """Everything one replay produces; metrics are derived from it by ``backtest.outputs.metrics``.

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
    blocked_borrow_usd: float = 0.0
    blocked_withdraw_usd: float = 0.0
    stats: dict = field(default_factory=dict)
