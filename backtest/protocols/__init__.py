"""Protocol models: exact integer replicas of on-chain arithmetic and their float counterparts.

Each protocol lives in its own module or small package (``aave`` for Aave v2/v3). The integer layers use
plain Python ints and reproduce the contracts' rounding to the wei, for replaying history; the float layers
(``aave_float``) express the same mechanics in float64 for counterfactual replays and are what the
numba engine ports. Nothing here touches the network, DuckDB or pandas.
"""

from ..errors import MbtError


class ProtocolRevert(MbtError):
    """A contract call that would revert: ``reason`` is the contract's revert string, its custom-error name
    (``"NotLiquidatable"``), or ``"panic 0x11"`` for checked arithmetic under/overflow."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"reverted: {reason}" + (f" ({detail})" if detail else ""))


UINT256_MAX = 2**256 - 1


def checked(value: int, what: str = "") -> int:
    """``value`` as a Solidity ≥ 0.8 ``uint256`` result: below 0 or above 2²⁵⁶ − 1 reverts with panic 0x11."""
    if value < 0 or value > UINT256_MAX:
        raise ProtocolRevert("panic 0x11", what)
    return value


__all__ = ["ProtocolRevert", "UINT256_MAX", "checked"]
