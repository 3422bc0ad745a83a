"""Aave liquidation arithmetic per version (PROTOCOLS §1.4–§1.7, §1.10), exact to the wei.

:func:`collateral_to_seize` and :func:`available_collateral` are ``_calculateAvailableCollateralToLiquidate``
(v2: bonus applied before the division; v3: after, with the protocol fee carved out of the bonus part);
:func:`close_factor_bps` / :func:`max_debt_to_cover` are the per-version close-factor rules; and
:func:`liquidation_call` runs a whole ``liquidationCall`` on a :class:`~.account.Market` and
:class:`~.account.UserPosition`: validation, close factor, collateral, the 3.3+ dust rule, collateral flag,
debt and collateral burns in scaled units, protocol fee transfer, isolated-debt update and the 3.3+ deficit.
Liquidity checks, pause/freeze, grace periods and the L2 sentinel are the caller's business.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .account import (
    AaveRevert,
    Market,
    UserPosition,
    account_data,
    asset_price,
    in_emode,
    isolated_debt_units,
)
from .fixedpoint import (
    PERCENTAGE_FACTOR,
    UINT256_MAX,
    WAD,
    a_token_balance,
    a_token_burn_scaled,
    mul_div_ceil,
    percent_div,
    percent_div_ceil,
    percent_div_floor,
    percent_mul,
    percent_mul_ceil,
    percent_mul_floor,
    to_base,
    v_token_balance,
    v_token_burn_scaled,
)
from .versions import Rules, resolve

HEALTH_FACTOR_LIQUIDATION_THRESHOLD = WAD
"""HF below 1.0 (wad) makes an account liquidatable."""
CLOSE_FACTOR_HF_THRESHOLD = 95 * 10**16
"""v3: at or below HF 0.95 the whole reserve debt may be liquidated."""
DEFAULT_LIQUIDATION_CLOSE_FACTOR = 5_000
MAX_LIQUIDATION_CLOSE_FACTOR = 10_000
MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD = 2_000 * 10**8
"""3.3+: $2,000 in an 8-decimal USD base; smaller reserve positions are always 100 % liquidatable."""
MIN_LEFTOVER_BASE = MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD // 2
"""3.3+: $1,000; a partial liquidation must leave at least this much debt and collateral."""


def _check_bps(name: str, value: int, *, upper: int | None = None, positive: bool = False) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be a {'positive' if positive else 'non-negative'} int, got {value!r}")
    if upper is not None and value > upper:
        raise ValueError(f"{name} must be at most {upper}, got {value}")


def close_factor_bps(
    health_factor: int,
    *,
    version: str = "v2",
    reserve_collateral_base: int | None = None,
    reserve_debt_base: int | None = None,
) -> int:
    """Close factor in bps for one liquidation call.

    Parameters
    ----------
    health_factor : int, wad
    version : str
    reserve_collateral_base, reserve_debt_base : int, optional, base units
        3.3+ only: the account's value in the chosen collateral and debt reserves.

    Returns
    -------
    int, bps
        v2: 5000. v3.0–3.2: 5000 above HF 0.95, else 10000 — a share of the reserve debt. 3.3+: 10000 when
        HF ≤ 0.95 or either reserve value is below $2,000 (the whole reserve debt); otherwise 5000, which
        then caps the call at half of the account's *total* debt (see :func:`max_debt_to_cover`).
    """
    rules = resolve(version)
    if rules.v2:
        return DEFAULT_LIQUIDATION_CLOSE_FACTOR
    if health_factor <= CLOSE_FACTOR_HF_THRESHOLD:
        return MAX_LIQUIDATION_CLOSE_FACTOR
    if rules.position_close_factor:
        if reserve_collateral_base is None or reserve_debt_base is None:
            raise ValueError("3.3+ close factor needs reserve_collateral_base and reserve_debt_base")
        small = min(reserve_collateral_base, reserve_debt_base) < MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD
        return MAX_LIQUIDATION_CLOSE_FACTOR if small else DEFAULT_LIQUIDATION_CLOSE_FACTOR
    return DEFAULT_LIQUIDATION_CLOSE_FACTOR


def max_debt_to_cover(
    reserve_debt: int,
    *,
    health_factor: int,
    version: str = "v2",
    debt_price: int | None = None,
    debt_decimals: int | None = None,
    total_debt_base: int | None = None,
    reserve_collateral_base: int | None = None,
) -> int:
    """Most debt of one reserve that a single call may repay (before the collateral cap).

    Parameters
    ----------
    reserve_debt : int, raw debt-token units
        The account's debt in the chosen debt reserve.
    health_factor : int, wad
    version : str
    debt_price : int, base units; debt_decimals : int
        3.3+ only.
    total_debt_base : int, base units
        3.3+ only: the account's total debt (from :func:`~.account.account_data`).
    reserve_collateral_base : int, base units
        3.3+ only: the account's value in the chosen collateral reserve (floor).

    Returns
    -------
    int, raw debt-token units
        v2 / 3.0–3.2: ``percentMul(reserve_debt, close_factor)``. 3.3+: the whole reserve debt, except when
        both reserve values are ≥ $2,000, HF > 0.95 and the reserve debt exceeds half of the total debt:
        then ``floor(percentMul(total_debt_base, 5000)·unit / price)``.
    """
    rules = resolve(version)
    if not rules.position_close_factor:
        return percent_mul(reserve_debt, close_factor_bps(health_factor, version=rules.name))
    if debt_price is None or debt_decimals is None or total_debt_base is None or reserve_collateral_base is None:
        raise ValueError("3.3+ needs debt_price, debt_decimals, total_debt_base and reserve_collateral_base")
    unit = 10**debt_decimals
    reserve_debt_base = to_base(reserve_debt, debt_price, unit, ceil=rules.directional)
    factor = close_factor_bps(
        health_factor,
        version=rules.name,
        reserve_collateral_base=reserve_collateral_base,
        reserve_debt_base=reserve_debt_base,
    )
    if factor == MAX_LIQUIDATION_CLOSE_FACTOR:
        return reserve_debt
    half = percent_mul(total_debt_base, DEFAULT_LIQUIDATION_CLOSE_FACTOR)
    return half * unit // debt_price if reserve_debt_base > half else reserve_debt


def collateral_to_seize(
    debt_to_cover: int,
    debt_price: int,
    debt_decimals: int,
    collateral_price: int,
    collateral_decimals: int,
    liquidation_bonus_bps: int,
    *,
    version: str = "v2",
    protocol_fee_bps: int = 0,
) -> int:
    """Raw collateral units leaving the user for ``debt_to_cover`` repaid (liquidator's part + protocol fee).

    No balance cap (the caller applies it; see :func:`available_collateral`). The protocol fee is carved out
    of this amount, so it does not change the total; it is validated and accepted for symmetry.

    Parameters
    ----------
    debt_to_cover : int, raw debt-token units
    debt_price, collateral_price : int, base units per whole token (> 0)
    debt_decimals, collateral_decimals : int
    liquidation_bonus_bps : int, bps including principal (10500 = 5 % bonus)
    version : str
        v2: ``floor(percentMul(Pd·debt·uc, LB) / (Pc·ud))`` (bonus before the division, half-up).
        v3: ``percentMul(floor(Pd·debt·uc / (Pc·ud)), LB)`` (half-up; 3.7 ``percentMulFloor``).
    protocol_fee_bps : int, bps of the bonus part
        Must be 0 for v2 (no protocol fee there).

    Returns
    -------
    int, raw collateral-token units

    Examples
    --------
    PROTOCOLS §1.11 at a WETH price of $1,650 (7,000 USDC repaid, v3.3): 4,433,333,333,333,333,333 wei to the
    liquidator plus 21,212,121,212,121,212 wei of protocol fee.

    >>> collateral_to_seize(7_000 * 10**6, 10**8, 6, 1650 * 10**8, 18, 10500, version="v3.3",
    ...                     protocol_fee_bps=1000)
    4454545454545454545
    """
    rules = resolve(version)
    for name, value in (("debt_to_cover", debt_to_cover), ("debt_decimals", debt_decimals),
                        ("collateral_decimals", collateral_decimals)):
        _check_bps(name, value)
    _check_bps("debt_price", debt_price, positive=True)
    _check_bps("collateral_price", collateral_price, positive=True)
    _check_bps("liquidation_bonus_bps", liquidation_bonus_bps, positive=True)
    _check_bps("protocol_fee_bps", protocol_fee_bps, upper=PERCENTAGE_FACTOR)
    if rules.v2 and protocol_fee_bps:
        raise ValueError("Aave v2 has no liquidation protocol fee; protocol_fee_bps must be 0")
    return _max_collateral(
        rules, debt_to_cover, debt_price, 10**debt_decimals, collateral_price, 10**collateral_decimals,
        liquidation_bonus_bps,
    )


def _max_collateral(rules: Rules, debt: int, pd: int, ud: int, pc: int, uc: int, bonus: int) -> int:
    if rules.v2:
        return percent_mul(pd * debt * uc, bonus) // (pc * ud)
    base_collateral = pd * debt * uc // (pc * ud)
    if rules.explicit_liquidation_rounding:
        return percent_mul_floor(base_collateral, bonus)
    return percent_mul(base_collateral, bonus)


@dataclass(frozen=True)
class CollateralQuote:
    """Result of :func:`available_collateral` (``_calculateAvailableCollateralToLiquidate``).

    Attributes
    ----------
    collateral_to_liquidator : int, raw collateral units
        Excludes the protocol fee (the ``LiquidationCall`` event's ``liquidatedCollateralAmount``).
    debt_to_repay : int, raw debt units
        ``debtToCover`` actually repaid (reduced when the collateral balance caps the call).
    protocol_fee : int, raw collateral units
    collateral_base : int, base units
        ``floor((liquidator + fee)·price / unit)``, used by 3.3–3.6 to detect "no collateral left".
    """

    collateral_to_liquidator: int
    debt_to_repay: int
    protocol_fee: int
    collateral_base: int

    @property
    def collateral_seized(self) -> int:
        """Collateral leaving the user: liquidator's part plus protocol fee."""
        return self.collateral_to_liquidator + self.protocol_fee


def available_collateral(
    debt_to_cover: int,
    debt_price: int,
    debt_decimals: int,
    collateral_price: int,
    collateral_decimals: int,
    liquidation_bonus_bps: int,
    collateral_balance: int,
    *,
    version: str = "v2",
    protocol_fee_bps: int = 0,
) -> CollateralQuote:
    """Collateral and debt of one call once the user's collateral balance caps it (PROTOCOLS §1.6).

    Parameters
    ----------
    debt_to_cover : int, raw debt units
        After the close factor.
    debt_price, collateral_price : int, base units
    debt_decimals, collateral_decimals : int
    liquidation_bonus_bps : int, bps including principal
    collateral_balance : int, raw collateral units
        The user's aToken balance of the collateral.
    version : str
    protocol_fee_bps : int, bps of the bonus part (0 for v2)

    Returns
    -------
    CollateralQuote
        When the bonus-inclusive collateral exceeds the balance, the whole balance is taken and the debt is
        ``percentDiv(floor(Pc·balance·ud / (Pd·uc)), LB)`` (3.5+: ``percentDivCeil``). The fee is
        ``percentMul(coll − percentDiv(coll, LB), fee)`` (3.7: ``percentMulCeil`` of
        ``coll − percentDivFloor(coll, LB)``).
    """
    rules = resolve(version)
    maximum = collateral_to_seize(
        debt_to_cover, debt_price, debt_decimals, collateral_price, collateral_decimals, liquidation_bonus_bps,
        version=rules.name, protocol_fee_bps=protocol_fee_bps,
    )
    _check_bps("collateral_balance", collateral_balance)
    uc, ud, bonus = 10**collateral_decimals, 10**debt_decimals, liquidation_bonus_bps
    if maximum > collateral_balance:
        collateral = collateral_balance
        value_in_debt = collateral_price * collateral * ud // (debt_price * uc)
        debt = percent_div_ceil(value_in_debt, bonus) if rules.directional else percent_div(value_in_debt, bonus)
    else:
        collateral, debt = maximum, debt_to_cover
    collateral_base = collateral * collateral_price // uc
    fee = 0
    if protocol_fee_bps:
        if rules.explicit_liquidation_rounding:
            fee = percent_mul_ceil(collateral - percent_div_floor(collateral, bonus), protocol_fee_bps)
        else:
            fee = percent_mul(collateral - percent_div(collateral, bonus), protocol_fee_bps)
    return CollateralQuote(collateral - fee, debt, fee, collateral_base)


@dataclass(frozen=True)
class LiquidationOutcome:
    """Result of :func:`liquidation_call`.

    Attributes
    ----------
    debt_repaid : int, raw debt units
        Paid by the liquidator (``LiquidationCall.debtToCover``).
    collateral_to_liquidator : int, raw collateral units
        ``LiquidationCall.liquidatedCollateralAmount``.
    protocol_fee : int, raw collateral units
        Sent to the treasury as aTokens (after the 1-wei balance cap).
    deficit : dict of str to int, raw units per debt asset
        3.3+: debt burned into reserve deficits (``DeficitCreated``); empty otherwise.
    health_factor_before, health_factor_after : int, wad
    collateral_disabled : bool
        The collateral flag of the seized asset was cleared.
    no_collateral_left : bool
        3.3+: the contract's ``hasNoCollateralLeft``; ≤3.2: the account holds no collateral value after the
        call, so any remaining debt is realised bad debt (PROTOCOLS §1.7).
    isolated_debt_repaid : int, 2-decimal base units
        Decrease of an isolated collateral's ``isolationModeTotalDebt``.
    user : UserPosition
        The account after the call.
    market : Market
        The market after the call (deficits and isolated debt updated; indices and rates unchanged).
    """

    debt_repaid: int
    collateral_to_liquidator: int
    protocol_fee: int
    deficit: dict[str, int]
    health_factor_before: int
    health_factor_after: int
    collateral_disabled: bool
    no_collateral_left: bool
    isolated_debt_repaid: int
    user: UserPosition
    market: Market

    @property
    def collateral_seized(self) -> int:
        """Collateral that left the user: liquidator's part plus protocol fee (raw units)."""
        return self.collateral_to_liquidator + self.protocol_fee


def _bonus(market: Market, user: UserPosition, asset: str, rules: Rules) -> int:
    if in_emode(market, user, asset, rules):
        return market.emode_categories[user.emode_category].liquidation_bonus_bps
    return market.reserve(asset).liquidation_bonus_bps


def _debt_price(market: Market, user: UserPosition, asset: str, rules: Rules) -> int:
    # ≤3.1: a user in an e-mode category with a price source values every debt at that price (debts of an
    # e-mode user are always category members there).
    if rules.emode_category_per_asset and user.emode_category:
        category = market.emode_categories.get(user.emode_category)
        if category is not None and category.price:
            return category.price
    return market.reserve(asset).price


def _check_dust(rules: Rules, reserve_debt: int, balance: int, quote: CollateralQuote,
                pd: int, ud: int, pc: int, uc: int) -> None:
    if not (quote.debt_to_repay < reserve_debt and quote.collateral_seized < balance):
        return
    debt_left = reserve_debt - quote.debt_to_repay
    debt_left_base = mul_div_ceil(debt_left, pd, ud) if rules.directional else debt_left * pd // ud
    # 3.3 valued the collateral left without deducting the protocol fee; 3.4+ deducts it.
    collateral_left = balance - quote.collateral_to_liquidator
    if rules.dust_leftover_net_of_fee:
        collateral_left -= quote.protocol_fee
    collateral_left_base = collateral_left * pc // uc
    if debt_left_base < MIN_LEFTOVER_BASE or collateral_left_base < MIN_LEFTOVER_BASE:
        raise AaveRevert(
            "MUST_NOT_LEAVE_DUST",
            f"leftover debt {debt_left_base} / collateral {collateral_left_base} base units < {MIN_LEFTOVER_BASE}",
        )


def liquidation_call(
    market: Market,
    user: UserPosition,
    *,
    collateral_asset: str,
    debt_asset: str,
    debt_to_cover: int = UINT256_MAX,
    version: str = "v3",
) -> LiquidationOutcome:
    """One ``liquidationCall`` on an integer account state, as the given version executes it.

    Parameters
    ----------
    market : Market
        Reserves with current prices and indices (the call does not accrue interest).
    user : UserPosition
    collateral_asset, debt_asset : str
    debt_to_cover : int, raw debt units
        ``2**256 − 1`` (default) = as much as allowed.
    version : str

    Returns
    -------
    LiquidationOutcome

    Raises
    ------
    AaveRevert
        ``HEALTH_FACTOR_NOT_BELOW_THRESHOLD``, ``COLLATERAL_CANNOT_BE_LIQUIDATED`` (flag not set or LT 0),
        ``SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER`` or, 3.3+, ``MUST_NOT_LEAVE_DUST``.
    """
    rules = resolve(version)
    collateral_reserve, debt_reserve = market.reserve(collateral_asset), market.reserve(debt_asset)
    before = account_data(market, user, version=rules.name)
    scaled_collateral = user.scaled_collateral.get(collateral_asset, 0)
    balance = a_token_balance(scaled_collateral, collateral_reserve.liquidity_index, rules)
    reserve_debt = v_token_balance(user.scaled_debt.get(debt_asset, 0), debt_reserve.variable_borrow_index, rules)

    if before.health_factor >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
        raise AaveRevert("HEALTH_FACTOR_NOT_BELOW_THRESHOLD", f"HF {before.health_factor}")
    enabled = user.enabled_collateral()
    if collateral_reserve.liquidation_threshold_bps == 0 or collateral_asset not in enabled:
        raise AaveRevert("COLLATERAL_CANNOT_BE_LIQUIDATED", collateral_asset)
    if reserve_debt == 0:
        raise AaveRevert("SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER", debt_asset)

    bonus = _bonus(market, user, collateral_asset, rules)
    fee_bps = 0 if rules.v2 else collateral_reserve.liquidation_protocol_fee_bps
    pc, uc = asset_price(market, user, collateral_asset, rules), collateral_reserve.unit
    pd, ud = _debt_price(market, user, debt_asset, rules), debt_reserve.unit
    cap = max_debt_to_cover(
        reserve_debt,
        health_factor=before.health_factor,
        version=rules.name,
        debt_price=pd,
        debt_decimals=debt_reserve.decimals,
        total_debt_base=before.total_debt_base,
        reserve_collateral_base=balance * pc // uc,
    )
    quote = available_collateral(
        min(debt_to_cover, cap), pd, debt_reserve.decimals, pc, collateral_reserve.decimals, bonus, balance,
        version=rules.name, protocol_fee_bps=fee_bps,
    )
    if rules.position_close_factor:
        _check_dust(rules, reserve_debt, balance, quote, pd, ud, pc, uc)

    index_c = collateral_reserve.liquidity_index
    burn_to_liquidator = a_token_burn_scaled(quote.collateral_to_liquidator, index_c, rules)
    no_collateral_left = False
    if rules.explicit_liquidation_rounding:
        # 3.7: consumption measured in scaled units, as the burn and the fee transfer will round it.
        consumed = min(burn_to_liquidator + a_token_burn_scaled(quote.protocol_fee, index_c, rules), scaled_collateral)
        consumed_base = a_token_balance(consumed, index_c, rules) * pc // uc
        no_collateral_left = consumed_base == before.total_collateral_base
        collateral_disabled = consumed == scaled_collateral or no_collateral_left
    else:
        collateral_disabled = quote.collateral_seized == balance
        if rules.deficit:
            no_collateral_left = before.total_collateral_base == quote.collateral_base
    new_enabled = enabled - {collateral_asset} if collateral_disabled else enabled

    # Debt burn: the whole reserve debt when the account is left without collateral (3.3+), else the repaid part.
    new_debt = dict(user.scaled_debt)
    deficit: dict[str, int] = {}
    index_d = debt_reserve.variable_borrow_index
    burn_amount = reserve_debt if no_collateral_left else quote.debt_to_repay
    new_debt[debt_asset] = max(new_debt.get(debt_asset, 0) - v_token_burn_scaled(burn_amount, index_d, rules), 0)
    if no_collateral_left and reserve_debt > quote.debt_to_repay:
        deficit[debt_asset] = reserve_debt - quote.debt_to_repay

    # Isolated debt counter (3.0–3.6).
    reserves = dict(market.reserves)
    isolated_asset: str | None = None
    if rules.isolation:
        if rules.isolation_by_ceiling:
            isolated_asset = collateral_asset if collateral_reserve.debt_ceiling else None
        elif len(new_enabled) == 1:
            (only,) = new_enabled
            isolated_asset = only if market.reserve(only).debt_ceiling else None
    isolated_repaid = 0
    if isolated_asset is not None:
        isolated = reserves[isolated_asset]
        isolated_repaid = min(isolated_debt_units(quote.debt_to_repay, debt_reserve.decimals),
                              isolated.isolation_mode_total_debt)
        reserves[isolated_asset] = replace(
            isolated, isolation_mode_total_debt=isolated.isolation_mode_total_debt - isolated_repaid
        )

    # Collateral to the liquidator, then the protocol fee capped at what is left (the contracts' 1-wei guard).
    remaining = max(scaled_collateral - burn_to_liquidator, 0)
    fee = quote.protocol_fee
    if fee:
        fee_scaled = a_token_burn_scaled(fee, index_c, rules)
        if fee_scaled > remaining:
            fee = a_token_balance(remaining, index_c, rules)
            fee_scaled = remaining if rules.directional else a_token_burn_scaled(fee, index_c, rules)
        remaining = max(remaining - fee_scaled, 0)
    new_collateral = dict(user.scaled_collateral)
    new_collateral[collateral_asset] = remaining

    # 3.3+: every other debt of an account left without collateral becomes deficit too.
    if no_collateral_left:
        for asset, scaled in user.scaled_debt.items():
            if asset == debt_asset or scaled == 0:
                continue
            amount = v_token_balance(scaled, market.reserve(asset).variable_borrow_index, rules)
            deficit[asset] = deficit.get(asset, 0) + amount
            new_debt[asset] = 0
    for asset, amount in deficit.items():
        reserves[asset] = replace(reserves[asset], deficit=reserves[asset].deficit + amount)

    new_user = replace(
        user,
        scaled_collateral=new_collateral,
        scaled_debt={a: s for a, s in new_debt.items() if s},
        collateral_enabled=new_enabled,
    )
    new_market = replace(market, reserves=reserves)
    after = account_data(new_market, new_user, version=rules.name)
    if not rules.deficit:
        no_collateral_left = after.total_collateral_base == 0
    return LiquidationOutcome(
        debt_repaid=quote.debt_to_repay,
        collateral_to_liquidator=quote.collateral_to_liquidator,
        protocol_fee=fee,
        deficit=deficit,
        health_factor_before=before.health_factor,
        health_factor_after=after.health_factor,
        collateral_disabled=collateral_disabled,
        no_collateral_left=no_collateral_left,
        isolated_debt_repaid=isolated_repaid,
        user=new_user,
        market=new_market,
    )
