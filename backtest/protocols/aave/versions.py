"""Aave protocol versions and the behaviour switches that differ between them.

A version string (``"v2"``, ``"v3.0"`` … ``"v3.7"``; ``"v3"`` means the latest) resolves to a frozen
:class:`Rules` record whose boolean fields say which code path each computation takes. Every other module of
the package asks a :class:`Rules` instead of comparing version strings, so the version map of PROTOCOLS §1.1
lives in this one file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

VERSIONS: tuple[str, ...] = ("v2", "v3.0", "v3.1", "v3.2", "v3.3", "v3.4", "v3.5", "v3.7")
"""Versions with their own behaviour, oldest first (v3.6 changed nothing modelled here; use ``"v3.5"``)."""

ALIASES: dict[str, str] = {"v3": "v3.7", "v3.6": "v3.5"}
"""Other accepted spellings: ``"v3"`` is the latest release modelled; 3.6 computes like 3.5."""


@dataclass(frozen=True)
class Rules:
    """Behaviour of one Aave version (what the integer layer does differently).

    Attributes
    ----------
    name : str
        Canonical version string, one of :data:`VERSIONS`.
    v2 : bool
        Aave v2: ETH base currency on the main market, bonus applied before the division, fixed 50 %
        close factor, no protocol fee, e-mode, isolation or deficit.
    position_close_factor : bool
        3.3+: the close factor is a whole-position rule with the $2,000 threshold and the $1,000 dust rule.
    deficit : bool
        3.3+: a liquidation that leaves no collateral burns all remaining debt into the reserve deficit.
    directional : bool
        3.5+: TokenMath rounding (aToken balance floor, debt ceil, burn/mint directions), debt valued in
        base currency with ceil, ``percentDivCeil`` for the debt needed when collateral caps a call, and
        the health factor computed from the unnormalised ``Σ C_i·LT_i``.
    explicit_liquidation_rounding : bool
        3.7: ``percentMulFloor`` for the collateral with bonus, ``percentDivFloor``/``percentMulCeil`` for
        the protocol fee, and "no collateral left" detected from scaled consumption.
    emode_category_per_asset : bool
        3.0–3.1: an asset belongs to one e-mode category (reserve config bits 168–175) and a category may
        carry its own price source.
    emode_bitmaps : bool
        3.2+: categories list their collateral assets in a bitmap of reserve ids.
    isolation : bool
        3.0–3.6: isolation mode and its debt ceiling exist.
    isolation_by_ceiling : bool
        3.4–3.6: a liquidation reduces the collateral's isolated debt whenever that collateral has a debt
        ceiling (earlier: only if the user is still isolated after the collateral flag was updated).
    dust_leftover_net_of_fee : bool
        3.4+: the dust rule values the collateral left net of the protocol fee (3.3 ignored the fee).
    compounding : str
        Borrow-index approximation: ``"v2"`` (rate per second first), ``"v3.0"`` (rate² / year² terms),
        ``"v3.4"`` (Horner form of ``1 + x + x²/2 + x³/6`` with ``x = rate·Δt / year``).
    """

    name: str
    v2: bool
    position_close_factor: bool
    deficit: bool
    directional: bool
    explicit_liquidation_rounding: bool
    emode_category_per_asset: bool
    emode_bitmaps: bool
    isolation: bool
    isolation_by_ceiling: bool
    dust_leftover_net_of_fee: bool
    compounding: str

    @property
    def has_protocol_fee(self) -> bool:
        """True for every v3 version (v2 reserves have no liquidation protocol fee)."""
        return not self.v2


def _minor(name: str) -> int:
    return int(name.split(".")[1]) if "." in name else -1


@cache
def resolve(version: str | Rules) -> Rules:
    """Behaviour record of a version.

    Parameters
    ----------
    version : str or Rules
        ``"v2"``, ``"v3.0"`` … ``"v3.7"``, ``"v3"`` (= latest, ``"v3.7"``) or ``"v3.6"`` (= ``"v3.5"``);
        a :class:`Rules` is returned unchanged.

    Returns
    -------
    Rules

    Raises
    ------
    ValueError
        Unknown version; the message lists the accepted ones.
    """
    if isinstance(version, Rules):
        return version
    name = ALIASES.get(version, version)
    if name not in VERSIONS:
        accepted = ", ".join([*VERSIONS, *ALIASES])
        raise ValueError(f"unknown Aave version {version!r}; expected one of {accepted}")
    if name == "v2":
        return Rules(name, True, False, False, False, False, False, False, False, False, False, "v2")
    minor = _minor(name)
    return Rules(
        name=name,
        v2=False,
        position_close_factor=minor >= 3,
        deficit=minor >= 3,
        directional=minor >= 5,
        explicit_liquidation_rounding=minor >= 7,
        emode_category_per_asset=minor <= 1,
        emode_bitmaps=minor >= 2,
        isolation=minor <= 6,
        isolation_by_ceiling=4 <= minor <= 6,
        dust_leftover_net_of_fee=minor >= 4,
        compounding="v3.4" if minor >= 4 else "v3.0",
    )
