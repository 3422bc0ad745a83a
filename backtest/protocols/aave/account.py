"""Integer account state of an Aave market and the health factor of an account (PROTOCOLS §1.2–§1.3).

A :class:`Market` holds the reserves (configuration, oracle price, current indices, deficit, isolated
debt) and the e-mode categories; a :class:`UserPosition` holds one account's scaled aToken and variable-debt
balances, its collateral flags and its e-mode category. :func:`account_data` replays
``GenericLogic.calculateUserAccountData`` of the chosen version (per-asset base values, e-mode thresholds and
≤3.1 category prices, floor/ceil valuation, normalised or unnormalised HF); :func:`health_factor` is the same
computation on plain balances. Isolation-mode helpers cover the 3.0–3.6 debt ceiling.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .fixedpoint import (
    RAY,
    UINT256_MAX,
    a_token_balance,
    a_token_mint_scaled,
    percent_mul,
    to_base,
    v_token_balance,
    v_token_mint_scaled,
    wad_div,
)
from .versions import Rules, resolve

DEBT_CEILING_DECIMALS = 2
"""Isolation debt ceilings and ``isolationModeTotalDebt`` carry 2 decimals of the base currency."""


class AaveRevert(Exception):
    """The modelled contract call would revert; ``reason`` is Aave's error name (e.g. ``MUST_NOT_LEAVE_DUST``)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True)
class Reserve:
    """One reserve of a market at the evaluation time.

    Attributes
    ----------
    decimals : int
        Token decimals (``unit = 10**decimals``).
    price : int, base-currency units per whole token
        ``AaveOracle.getAssetPrice`` (v3 USD markets: 8 decimals; v2 main market: wei of ETH). Must be > 0.
    liquidation_threshold_bps, liquidation_bonus_bps, ltv_bps : int, bps
        Reserve parameters; the bonus includes principal (10500 = 5 % bonus). LT 0 = not collateral.
    liquidation_protocol_fee_bps : int, bps of the bonus part
        v3 only (v2 reserves have none).
    liquidity_index, variable_borrow_index : int, ray
        Normalised income / debt at the evaluation time (see :mod:`.interest` to extrapolate them).
    reserve_id : int
        Position in the reserves list: the bit in e-mode bitmaps (3.2+).
    emode_category : int
        E-mode category of the asset (≤3.1; 0 = none).
    debt_ceiling : int, base units with 2 decimals
        Isolation-mode debt ceiling (3.0–3.6; 0 = not an isolated asset).
    borrowable_in_isolation : bool
        May be borrowed by isolated accounts.
    isolation_mode_total_debt : int, base units with 2 decimals
        Debt currently backed by this isolated collateral, summed over accounts.
    deficit : int, raw token units
        Bad debt booked on this reserve (3.3+).
    """

    decimals: int
    price: int
    liquidation_threshold_bps: int
    liquidation_bonus_bps: int
    ltv_bps: int = 0
    liquidation_protocol_fee_bps: int = 0
    liquidity_index: int = RAY
    variable_borrow_index: int = RAY
    reserve_id: int = 0
    emode_category: int = 0
    debt_ceiling: int = 0
    borrowable_in_isolation: bool = False
    isolation_mode_total_debt: int = 0
    deficit: int = 0

    @property
    def unit(self) -> int:
        """``10**decimals``."""
        return 10**self.decimals


@dataclass(frozen=True)
class EModeCategory:
    """An e-mode category.

    Attributes
    ----------
    ltv_bps, liquidation_threshold_bps, liquidation_bonus_bps : int, bps
        Parameters that replace the reserve's for member collateral.
    price : int or None, base units
        ≤3.1 only: price of the category's ``priceSource``, used for every member asset (collateral and
        debt) when set.
    collateral_bitmap : int
        3.2+: bit ``reserve_id`` set = the reserve counts as e-mode collateral of this category.
    borrowable_bitmap : int
        3.2+: bit ``reserve_id`` set = the reserve may be borrowed in this category (not used by liquidations).
    """

    ltv_bps: int
    liquidation_threshold_bps: int
    liquidation_bonus_bps: int
    price: int | None = None
    collateral_bitmap: int = 0
    borrowable_bitmap: int = 0


@dataclass(frozen=True)
class Market:
    """Reserves by symbol and e-mode categories by id."""

    reserves: Mapping[str, Reserve]
    emode_categories: Mapping[int, EModeCategory] = field(default_factory=dict)

    def reserve(self, asset: str) -> Reserve:
        """The reserve of ``asset``; ``KeyError`` naming the asset when it is not listed."""
        try:
            return self.reserves[asset]
        except KeyError:
            raise KeyError(f"asset {asset!r} is not a reserve of this market") from None


@dataclass(frozen=True)
class UserPosition:
    """One account.

    Attributes
    ----------
    scaled_collateral : mapping of str to int
        ``aToken.scaledBalanceOf(user)`` per asset.
    scaled_debt : mapping of str to int
        ``variableDebtToken.scaledBalanceOf(user)`` per asset (stable debt is not modelled).
    collateral_enabled : frozenset of str or None
        Assets whose "using as collateral" flag is set; ``None`` = every asset with a scaled balance.
    emode_category : int
        The account's e-mode category (0 = none).
    """

    scaled_collateral: Mapping[str, int] = field(default_factory=dict)
    scaled_debt: Mapping[str, int] = field(default_factory=dict)
    collateral_enabled: frozenset[str] | None = None
    emode_category: int = 0

    def enabled_collateral(self) -> frozenset[str]:
        """Assets with the collateral flag set (all supplied assets when ``collateral_enabled`` is None)."""
        if self.collateral_enabled is None:
            return frozenset(a for a, s in self.scaled_collateral.items() if s > 0)
        return self.collateral_enabled

    @staticmethod
    def from_balances(
        market: Market,
        collateral: Mapping[str, int],
        debt: Mapping[str, int],
        *,
        version: str = "v3",
        emode_category: int = 0,
        collateral_enabled: Iterable[str] | None = None,
    ) -> UserPosition:
        """Position holding the given underlying amounts at the reserves' current indices.

        Balances are converted to scaled units the way a supply / borrow would mint them for this version,
        so the read-back balance can differ from the input by rounding when an index is not exactly 1 ray.

        Parameters
        ----------
        market : Market
        collateral, debt : mapping of str to int, raw token units
        version : str
        emode_category : int
        collateral_enabled : iterable of str, optional
            Default: every asset in ``collateral``.
        """
        rules = resolve(version)
        scaled_c = {a: a_token_mint_scaled(x, market.reserve(a).liquidity_index, rules) for a, x in collateral.items()}
        scaled_d = {a: v_token_mint_scaled(x, market.reserve(a).variable_borrow_index, rules) for a, x in debt.items()}
        enabled = frozenset(collateral if collateral_enabled is None else collateral_enabled)
        return UserPosition(scaled_c, scaled_d, enabled, emode_category)


@dataclass(frozen=True)
class AccountData:
    """Result of :func:`account_data` (``getUserAccountData`` plus the per-asset legs).

    Attributes
    ----------
    total_collateral_base, total_debt_base : int, base units
    avg_ltv_bps, avg_liquidation_threshold_bps : int, bps (floor of the value-weighted mean)
    health_factor : int, wad
        ``2**256 − 1`` without debt.
    collateral_base : dict of str to int, base units
        Each enabled collateral with a non-zero effective LT.
    debt_base : dict of str to int, base units
        Each borrowed asset.
    collateral_balance, debt_balance : dict of str to int, raw token units
        Balances read from the scaled amounts with the version's rounding.
    """

    total_collateral_base: int
    total_debt_base: int
    avg_ltv_bps: int
    avg_liquidation_threshold_bps: int
    health_factor: int
    collateral_base: dict[str, int]
    debt_base: dict[str, int]
    collateral_balance: dict[str, int]
    debt_balance: dict[str, int]


def in_emode(market: Market, user: UserPosition, asset: str, rules: Rules) -> bool:
    """Whether ``asset`` counts as e-mode collateral of the account's category (never for v2)."""
    if rules.v2 or user.emode_category == 0:
        return False
    reserve = market.reserve(asset)
    if rules.emode_category_per_asset:
        return reserve.emode_category == user.emode_category
    category = market.emode_categories.get(user.emode_category)
    return category is not None and bool((category.collateral_bitmap >> reserve.reserve_id) & 1)


def asset_price(market: Market, user: UserPosition, asset: str, rules: Rules) -> int:
    """Price used for ``asset`` in the account's HF and liquidations (≤3.1 e-mode category price if set)."""
    reserve = market.reserve(asset)
    if rules.emode_category_per_asset and user.emode_category != 0:
        category = market.emode_categories.get(user.emode_category)
        if category is not None and category.price and reserve.emode_category == user.emode_category:
            return category.price
    return reserve.price


def _category(market: Market, user: UserPosition) -> EModeCategory | None:
    if user.emode_category == 0:
        return None
    try:
        return market.emode_categories[user.emode_category]
    except KeyError:
        raise KeyError(f"e-mode category {user.emode_category} is not defined in the market") from None


def _combine(rules: Rules, legs: list[tuple[int, int, int]], total_debt: int) -> tuple[int, int, int, int]:
    """Totals and HF from ``(collateral_base, lt_bps, ltv_bps)`` legs; mirrors calculateUserAccountData."""
    total_collateral = sum(c for c, _, _ in legs)
    weighted_lt = sum(c * lt for c, lt, _ in legs)
    weighted_ltv = sum(c * ltv for c, _, ltv in legs if ltv)
    avg_lt = weighted_lt // total_collateral if total_collateral else 0
    avg_ltv = weighted_ltv // total_collateral if total_collateral else 0
    if total_debt == 0:
        hf = UINT256_MAX
    elif rules.directional:
        # 3.5+: HF from the unnormalised Σ C_i·LT_i (4 extra decimals), wadDiv half-up, then floor by 1e4.
        hf = wad_div(weighted_lt, total_debt) // 10_000
    else:
        hf = wad_div(percent_mul(total_collateral, avg_lt), total_debt)
    return total_collateral, avg_ltv, avg_lt, hf


def account_data(market: Market, user: UserPosition, *, version: str = "v3") -> AccountData:
    """Collateral, debt and health factor of an account, with the version's integer rounding.

    Collateral counts for enabled assets whose effective LT is non-zero: ``C_i = floor(balance·price/unit)``.
    Debt: ``D_j = balance·price/unit``, floor before 3.5, ceil from 3.5. Balances come from the scaled amounts
    and the reserves' indices (half-up before 3.5; aToken floor / debt ceil from 3.5).

    Parameters
    ----------
    market : Market
    user : UserPosition
    version : str

    Returns
    -------
    AccountData
    """
    rules = resolve(version)
    category = None if rules.v2 else _category(market, user)
    enabled = user.enabled_collateral()
    legs: list[tuple[int, int, int]] = []
    collateral_base: dict[str, int] = {}
    collateral_balance: dict[str, int] = {}
    for asset, scaled in user.scaled_collateral.items():
        reserve = market.reserve(asset)
        balance = a_token_balance(scaled, reserve.liquidity_index, rules)
        collateral_balance[asset] = balance
        if asset not in enabled or reserve.liquidation_threshold_bps == 0:
            continue
        lt, ltv = reserve.liquidation_threshold_bps, reserve.ltv_bps
        if category is not None and in_emode(market, user, asset, rules):
            lt, ltv = category.liquidation_threshold_bps, (category.ltv_bps if ltv else 0)
        value = to_base(balance, asset_price(market, user, asset, rules), reserve.unit)
        collateral_base[asset] = value
        legs.append((value, lt, ltv))
    debt_base: dict[str, int] = {}
    debt_balance: dict[str, int] = {}
    for asset, scaled in user.scaled_debt.items():
        if scaled == 0:
            continue
        reserve = market.reserve(asset)
        balance = v_token_balance(scaled, reserve.variable_borrow_index, rules)
        debt_balance[asset] = balance
        price = asset_price(market, user, asset, rules)
        debt_base[asset] = to_base(balance, price, reserve.unit, ceil=rules.directional)
    total_debt = sum(debt_base.values())
    total_collateral, avg_ltv, avg_lt, hf = _combine(rules, legs, total_debt)
    return AccountData(
        total_collateral, total_debt, avg_ltv, avg_lt, hf, collateral_base, debt_base, collateral_balance, debt_balance
    )


def _require_int(name: str, value: object, *, positive: bool = False) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or (positive and value == 0):
        kind = "a positive" if positive else "a non-negative"
        raise ValueError(f"{name} must be {kind} int, got {value!r}")
    return value


def health_factor(
    collateral: Mapping[str, int],
    debt: Mapping[str, int],
    prices: Mapping[str, int],
    decimals: Mapping[str, int],
    liquidation_threshold_bps: Mapping[str, int],
    *,
    version: str = "v2",
) -> int:
    """Health factor of plain balances, exactly as the version's ``calculateUserAccountData`` computes it.

    Parameters
    ----------
    collateral : mapping of str to int, raw token units
        Balances of the assets enabled as collateral (e-mode users: pass the e-mode thresholds below).
    debt : mapping of str to int, raw token units
        Debt balances.
    prices : mapping of str to int, base units per whole token
        Oracle prices (> 0) of every asset in ``collateral`` and ``debt``.
    decimals : mapping of str to int
        Token decimals of every asset in ``collateral`` and ``debt``.
    liquidation_threshold_bps : mapping of str to int, bps
        Threshold of every collateral asset; assets with 0 are ignored, as on-chain.
    version : str
        ``"v2"``, ``"v3.0"`` … ``"v3.7"``, ``"v3"``.

    Returns
    -------
    int, wad
        ``2**256 − 1`` when the total debt in base units is 0; 0 when there is debt but no collateral.

    Examples
    --------
    PROTOCOLS §1.11 at a WETH price of $1,650 (v3.3):

    >>> health_factor({"WETH": 10 * 10**18}, {"USDC": 14_000 * 10**6}, {"WETH": 1650 * 10**8, "USDC": 10**8},
    ...               {"WETH": 18, "USDC": 6}, {"WETH": 8300}, version="v3.3")
    978214285714285714
    """
    rules = resolve(version)
    legs: list[tuple[int, int, int]] = []
    for asset, amount in collateral.items():
        _require_int(f"collateral[{asset!r}]", amount)
        try:
            lt = _require_int(f"liquidation_threshold_bps[{asset!r}]", liquidation_threshold_bps[asset])
            price = _require_int(f"prices[{asset!r}]", prices[asset], positive=True)
            unit = 10 ** _require_int(f"decimals[{asset!r}]", decimals[asset])
        except KeyError as exc:
            raise ValueError(f"collateral asset {asset!r} has no {exc.args[0]!r} entry") from None
        if lt:
            legs.append((to_base(amount, price, unit), lt, 0))
    total_debt = 0
    for asset, amount in debt.items():
        _require_int(f"debt[{asset!r}]", amount)
        if asset not in prices or asset not in decimals:
            raise ValueError(f"debt asset {asset!r} needs a price and decimals")
        price = _require_int(f"prices[{asset!r}]", prices[asset], positive=True)
        unit = 10 ** _require_int(f"decimals[{asset!r}]", decimals[asset])
        total_debt += to_base(amount, price, unit, ceil=rules.directional)
    return _combine(rules, legs, total_debt)[3]


# --- isolation mode (3.0–3.6) ------------------------------------------------------------------------------


def isolated_debt_units(amount: int, decimals: int) -> int:
    """Debt amount in the 2-decimal units of debt ceilings: ``amount // 10**(decimals − 2)`` (floor)."""
    return amount // 10 ** max(decimals - DEBT_CEILING_DECIMALS, 0)


def isolation_mode_state(market: Market, user: UserPosition, *, version: str = "v3.5") -> tuple[bool, str | None, int]:
    """Whether the account is in isolation mode (``UserConfiguration.getIsolationModeState``).

    Returns
    -------
    (active, collateral asset or None, debt ceiling)
        Active when the version has isolation mode, exactly one collateral flag is set and that reserve has
        a non-zero debt ceiling (2-decimal base units).
    """
    rules = resolve(version)
    enabled = user.enabled_collateral()
    if not rules.isolation or len(enabled) != 1:
        return False, None, 0
    (asset,) = enabled
    ceiling = market.reserve(asset).debt_ceiling
    return (True, asset, ceiling) if ceiling else (False, None, 0)


def check_isolated_borrow(
    market: Market, user: UserPosition, asset: str, amount: int, *, version: str = "v3.5"
) -> int:
    """Validate a borrow against isolation mode (``ValidationLogic.validateBorrow``) and return the new total.

    Parameters
    ----------
    market, user : Market, UserPosition
    asset : str
        Asset to borrow.
    amount : int, raw token units
    version : str

    Returns
    -------
    int
        The isolated collateral's ``isolationModeTotalDebt`` after the borrow (unchanged when not isolated).

    Raises
    ------
    AaveRevert
        ``ASSET_NOT_BORROWABLE_IN_ISOLATION`` or ``DEBT_CEILING_EXCEEDED``.
    """
    active, collateral, ceiling = isolation_mode_state(market, user, version=version)
    if not active or collateral is None:
        return 0
    reserve = market.reserve(asset)
    if not reserve.borrowable_in_isolation:
        raise AaveRevert("ASSET_NOT_BORROWABLE_IN_ISOLATION", asset)
    total = market.reserve(collateral).isolation_mode_total_debt + isolated_debt_units(amount, reserve.decimals)
    if total > ceiling:
        raise AaveRevert("DEBT_CEILING_EXCEEDED", f"{collateral}: {total} > {ceiling}")
    return total
