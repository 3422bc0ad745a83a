"""Recompute the collateral seized by real Aave v2 liquidations with the exact v2 formula and classify misses.

The shared folder ``aave_v2_liquidations_idea_rpi/`` holds Aave v2 ``LiquidationCall`` rows as indexed by
the subgraph (debt repaid, collateral seized, both oracle prices in wei of ETH) and a reserve-config
snapshot (decimals, liquidation bonus). For every main-pool row whose amounts and prices are integers this
module recomputes the seized collateral with :func:`backtest.protocols.aave.collateral_to_seize`
(``version="v2"``: bonus applied before the division, half-up ``percentMul``) and sorts each row into one
class of :data:`CLASSES`. Pure functions over the standard library (csv, gzip, decimal); no pandas, no
network. Run ``python -m backtest.validation.aave_liquidations /path/to/shared/data`` for the summary.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from backtest.errors import MbtError
from backtest.protocols.aave import collateral_to_seize
from backtest.protocols.aave.fixedpoint import percent_div, percent_mul

DATA_DIR = "aave_v2_liquidations_idea_rpi"
LIQUIDATIONS_FILE = f"{DATA_DIR}/aave_v2_liquidations_subgraph.csv.gz"
CONFIG_FILE = f"{DATA_DIR}/aave_v2_reserve_config_subgraph.csv"
MAIN_POOL = "0xb53c1a33016b2dc2ff3653530bff1848a515c8c5"
"""Aave v2 Ethereum main market (LendingPoolAddressesProvider), the subgraph's ``pool``."""

WETH = "WETH"
WETH_PRICE = 10**18
"""The v2 main-market oracle prices in wei of ETH: WETH is always 1e18 (the subgraph leaves it empty)."""

RELATIVE_TOLERANCE = Decimal("1e-9")
"""A recomputed amount within this relative distance of the record counts as a match for approximate classes."""

CLASSES: dict[str, str] = {
    "reproduced": "recomputed seized collateral equals the record to the wei",
    "collateral_capped": "the user's balance capped the call: the debt recomputed from the seized collateral "
    "(percentDiv(Pc·coll·ud / (Pd·uc), LB)) equals the record to the wei",
    "later_bonus": "the snapshot's bonus is later than the one in force: the record matches (within 1e-9) the "
    "formula with another bonus value of the config, i.e. the ratio equals a ratio of bonus values",
    "power_of_ten": "upstream scaling off by a power of ten: record / recomputed = 10^k (k ≠ 0) within 1e-9",
    "near_miss": "within 1e-9 of the record but not to the wei: prices above 2^53 wei were stored as floats "
    "and lost their last digits, or the oracle moved within the block",
    "other": "none of the above (typically a different oracle price than the one recorded)",
}
"""Classification codes, in the order they are tested."""

EXCLUSIONS: dict[str, str] = {
    "other_pool": "not the main pool (AMM market)",
    "amount_not_integer": "amounts written as scaled decimals by the subgraph, not raw integers",
    "debt_price_missing": "debt is WETH and the subgraph left its price empty",
    "price_not_integer": "an oracle price is missing or not an integer",
    "reserve_not_in_config": "a symbol is absent from the main-pool config",
}
"""Why a row is not evaluated."""


@dataclass(frozen=True)
class ReserveParams:
    """Main-pool reserve parameters from the config snapshot.

    Attributes
    ----------
    symbol : str
    decimals : int
    liquidation_bonus_bps : int, bps including principal (10500 = 5 % bonus; 0 = not collateral)
    """

    symbol: str
    decimals: int
    liquidation_bonus_bps: int


@dataclass(frozen=True)
class LiquidationRecord:
    """One evaluated liquidation.

    Attributes
    ----------
    line : int
        Line in the CSV (header = 1).
    timestamp : int, unix s
    user : str
    collateral, debt : str
        Reserve symbols.
    collateral_amount : int, raw collateral units
        Seized by the liquidator (v2 has no protocol fee).
    debt_amount : int, raw debt units
        Debt repaid.
    collateral_price, debt_price : int, wei of ETH per whole token
    """

    line: int
    timestamp: int
    user: str
    collateral: str
    debt: str
    collateral_amount: int
    debt_amount: int
    collateral_price: int
    debt_price: int


@dataclass(frozen=True)
class Classification:
    """Outcome for one record.

    Attributes
    ----------
    record : LiquidationRecord
    code : str
        Key of :data:`CLASSES`.
    recomputed : int, raw collateral units
        v2 formula with the config bonus.
    bonus_bps : int
        Config bonus; for ``later_bonus`` the bonus value that matches the record.
    power : int
        ``k`` for ``power_of_ten``, else 0.
    """

    record: LiquidationRecord
    code: str
    recomputed: int
    bonus_bps: int
    power: int = 0

    @property
    def ratio(self) -> float:
        """Recorded / recomputed seized collateral (``inf`` when the recomputation is 0)."""
        return self.record.collateral_amount / self.recomputed if self.recomputed else float("inf")


def parse_integer(text: str) -> int | None:
    """Positive integer written as an int or integral float (``"6.9083e+14"``, ``"690830000000000.0"``), else None."""
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or value <= 0 or value != value.to_integral_value():
        return None
    return int(value)


def load_reserve_config(path: Path, pool: str = MAIN_POOL) -> dict[str, ReserveParams]:
    """Reserve parameters of one pool from ``aave_v2_reserve_config_subgraph.csv``, keyed by symbol.

    Raises
    ------
    MbtError
        A required column is missing or a value is not a number (message names file, line, column).
    """
    params: dict[str, ReserveParams] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            if row.get("pool", "").lower() != pool:
                continue
            try:
                symbol = row["symbol"]
                decimals = int(row["decimals"])
                bonus = int(Decimal(row["reserveLiquidationBonus"]))
            except KeyError as exc:
                raise MbtError(f"{path.name}: missing column {exc.args[0]!r}") from None
            except (ValueError, InvalidOperation):
                raise MbtError(f"{path.name}:{line}: decimals / reserveLiquidationBonus is not a number") from None
            params[symbol] = ReserveParams(symbol, decimals, bonus)
    if not params:
        raise MbtError(f"{path.name}: no reserve of pool {pool}")
    return params


def read_liquidations(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line, row)`` of every liquidation in the (gzipped) subgraph CSV, values as written."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        required = {"collateralAmount", "collateralReserve", "pool", "principalAmount", "principalReserve",
                    "timestamp", "user", "reservePriceETHPrincipal", "reservePriceETHCollateral"}
        missing = required - set(reader.fieldnames or ())
        if missing:
            raise MbtError(f"{path.name}: missing columns {', '.join(sorted(missing))}")
        yield from enumerate(reader, start=2)


def select(
    rows: Iterable[tuple[int, dict[str, str]]],
    config: Mapping[str, ReserveParams],
    *,
    pool: str = MAIN_POOL,
    weth_debt: bool = False,
) -> tuple[list[LiquidationRecord], Counter[str]]:
    """Rows that can be recomputed exactly, and the count of each exclusion reason.

    A row is kept when it belongs to ``pool``, both amounts are raw integers, both prices are integers (a
    WETH collateral's empty price is 1e18) and both symbols are in ``config``.

    Parameters
    ----------
    rows : iterable of (line, row)
        From :func:`read_liquidations`.
    config : mapping of str to ReserveParams
    pool : str
    weth_debt : bool
        Also fill a WETH *debt*'s empty price with 1e18 (not part of the headline set).

    Returns
    -------
    (records, exclusions)
        ``exclusions`` counts keys of :data:`EXCLUSIONS`.
    """
    records: list[LiquidationRecord] = []
    excluded: Counter[str] = Counter()
    for line, row in rows:
        if row["pool"].lower() != pool:
            excluded["other_pool"] += 1
            continue
        if not (row["collateralAmount"].isdigit() and row["principalAmount"].isdigit()):
            excluded["amount_not_integer"] += 1
            continue
        collateral, debt = row["collateralReserve"], row["principalReserve"]
        collateral_price = parse_integer(row["reservePriceETHCollateral"])
        if collateral == WETH and not row["reservePriceETHCollateral"]:
            collateral_price = WETH_PRICE
        debt_price = parse_integer(row["reservePriceETHPrincipal"])
        if debt == WETH and not row["reservePriceETHPrincipal"]:
            if not weth_debt:
                excluded["debt_price_missing"] += 1
                continue
            debt_price = WETH_PRICE
        if collateral_price is None or debt_price is None:
            excluded["price_not_integer"] += 1
            continue
        if collateral not in config or debt not in config:
            excluded["reserve_not_in_config"] += 1
            continue
        records.append(
            LiquidationRecord(line, int(row["timestamp"]), row["user"], collateral, debt,
                              int(row["collateralAmount"]), int(row["principalAmount"]), collateral_price, debt_price)
        )
    return records, excluded


def recompute(record: LiquidationRecord, config: Mapping[str, ReserveParams], bonus_bps: int | None = None) -> int:
    """Collateral the v2 formula seizes for the record's debt (raw units; config bonus unless given)."""
    collateral, debt = config[record.collateral], config[record.debt]
    return collateral_to_seize(
        record.debt_amount, record.debt_price, debt.decimals, record.collateral_price, collateral.decimals,
        collateral.liquidation_bonus_bps if bonus_bps is None else bonus_bps, version="v2",
    )


def debt_for_collateral(record: LiquidationRecord, config: Mapping[str, ReserveParams], bonus_bps: int) -> int:
    """v2's debt when the user's balance caps the call: ``percentDiv(Pc·coll·ud / (Pd·uc), LB)`` (raw units)."""
    uc, ud = 10 ** config[record.collateral].decimals, 10 ** config[record.debt].decimals
    value = record.collateral_price * record.collateral_amount * ud // (record.debt_price * uc)
    return percent_div(value, bonus_bps)


def v3_order(record: LiquidationRecord, config: Mapping[str, ReserveParams]) -> int:
    """What v3's order (divide first, then ``percentMul``) would give for the same inputs (raw units)."""
    uc, ud = 10 ** config[record.collateral].decimals, 10 ** config[record.debt].decimals
    base = record.debt_price * record.debt_amount * uc // (record.collateral_price * ud)
    return percent_mul(base, config[record.collateral].liquidation_bonus_bps)


def _close(recorded: int, computed: int | Decimal) -> bool:
    return abs(Decimal(recorded) - Decimal(computed)) <= RELATIVE_TOLERANCE * Decimal(recorded)


def classify(
    record: LiquidationRecord, config: Mapping[str, ReserveParams], bonus_values: Sequence[int]
) -> Classification:
    """Class of one record (first that applies, in the order of :data:`CLASSES`).

    Parameters
    ----------
    record : LiquidationRecord
    config : mapping of str to ReserveParams
    bonus_values : sequence of int, bps
        Candidate bonuses for ``later_bonus`` (the distinct non-zero bonuses of the config).
    """
    bonus = config[record.collateral].liquidation_bonus_bps
    recomputed = recompute(record, config)
    recorded = record.collateral_amount
    if recomputed == recorded:
        return Classification(record, "reproduced", recomputed, bonus)
    if debt_for_collateral(record, config, bonus) == record.debt_amount:
        return Classification(record, "collateral_capped", recomputed, bonus)
    for other in bonus_values:
        if other == bonus:
            continue
        if _close(recorded, recompute(record, config, other)) or debt_for_collateral(
            record, config, other
        ) == record.debt_amount:
            return Classification(record, "later_bonus", recomputed, other)
    if recomputed:
        ratio = Decimal(recorded) / Decimal(recomputed)
        for other in (bonus, *bonus_values):
            for power in (k for k in range(-36, 37) if k):
                target = Decimal(other) / Decimal(bonus) * Decimal(10) ** power
                if abs(ratio / target - 1) <= RELATIVE_TOLERANCE:
                    return Classification(record, "power_of_ten", recomputed, other, power)
    if _close(recorded, recomputed):
        return Classification(record, "near_miss", recomputed, bonus)
    return Classification(record, "other", recomputed, bonus)


@dataclass(frozen=True)
class Report:
    """All evaluated records with their class, the exclusions, and the WETH-debt side set."""

    classifications: list[Classification]
    excluded: Counter[str]
    weth_debt: list[Classification]
    config: dict[str, ReserveParams]

    def counts(self) -> dict[str, int]:
        """Rows per class, every key of :data:`CLASSES` present."""
        found = Counter(c.code for c in self.classifications)
        return {code: found.get(code, 0) for code in CLASSES}


def validate(shared_data: Path) -> Report:
    """Classify every exactly recomputable main-pool liquidation of the shared data folder.

    Parameters
    ----------
    shared_data : Path
        The folder holding ``aave_v2_liquidations_idea_rpi/``.

    Returns
    -------
    Report

    Raises
    ------
    MbtError
        A file is missing or malformed.
    """
    liquidations, config_path = shared_data / LIQUIDATIONS_FILE, shared_data / CONFIG_FILE
    for path in (liquidations, config_path):
        if not path.is_file():
            raise MbtError(f"{path}: file not found")
    config = load_reserve_config(config_path)
    bonus_values = sorted({p.liquidation_bonus_bps for p in config.values()} - {0})
    # The AMM market's bonuses (e.g. 11500) are candidates for "later bonus" too.
    amm = load_reserve_config(config_path, pool="0xacc030ef66f9dfeae9cbb0cd1b25654b82cfa8d5")
    bonus_values = sorted(set(bonus_values) | ({p.liquidation_bonus_bps for p in amm.values()} - {0}))
    rows = list(read_liquidations(liquidations))
    records, excluded = select(rows, config)
    weth_records, _ = select(rows, config, weth_debt=True)
    weth_only = [r for r in weth_records if r.debt == WETH and r.debt_price == WETH_PRICE]
    return Report(
        [classify(r, config, bonus_values) for r in records],
        excluded,
        [classify(r, config, bonus_values) for r in weth_only],
        config,
    )


def format_report(report: Report, *, show: str | None = None) -> str:
    """Human-readable summary (counts per class and exclusion; optionally the rows of one class)."""
    counts = report.counts()
    total = len(report.classifications)
    lines = [f"Aave v2 liquidations recomputed with the exact v2 formula: {total} main-pool rows with integer values"]
    for code, n in counts.items():
        lines.append(f"  {code:<18} {n:>5}  {CLASSES[code]}")
    config = report.config
    reproduced = [c.record for c in report.classifications if c.code == "reproduced"]
    v3_diff = sum(v3_order(r, config) != r.collateral_amount for r in reproduced)
    lines.append(f"  of the reproduced rows, v3's order of operations (divide first) would differ on {v3_diff}")
    later = Counter((c.record.collateral, config[c.record.collateral].liquidation_bonus_bps, c.bonus_bps)
                    for c in report.classifications if c.code == "later_bonus")
    if later:
        pairs = ", ".join(f"{s} {a}→{b} in force ({n})" for (s, a, b), n in sorted(later.items()))
        lines.append(f"  later_bonus by collateral (snapshot → in force): {pairs}")
    lines.append("excluded rows:")
    for code, text in EXCLUSIONS.items():
        lines.append(f"  {code:<22} {report.excluded.get(code, 0):>5}  {text}")
    weth = Counter(c.code for c in report.weth_debt)
    lines.append(
        f"WETH-debt rows with the price set to 1e18 (not in the headline set): {len(report.weth_debt)}, "
        + ", ".join(f"{k} {v}" for k, v in weth.most_common())
    )
    if show:
        lines.append(f"rows classified {show}:")
        for c in report.classifications:
            if c.code == show:
                r = c.record
                lines.append(f"  line {r.line} {r.collateral}/{r.debt} recorded {r.collateral_amount} "
                             f"recomputed {c.recomputed} ratio {c.ratio:.9g} bonus {c.bonus_bps} power {c.power}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the summary; return the exit status (2 with one error line when the data cannot be read).

    Parameters
    ----------
    argv : sequence of str, optional
        ``SHARED_DATA [--show CLASS]``; ``sys.argv[1:]`` by default.
    """
    parser = argparse.ArgumentParser(
        prog="python -m backtest.validation.aave_liquidations",
        description="Recompute the collateral seized by real Aave v2 liquidations and classify the misses.",
    )
    parser.add_argument("shared_data", type=Path, help="the shared data folder (…/shared/data)")
    parser.add_argument("--show", choices=list(CLASSES), help="also list the rows of this class")
    args = parser.parse_args(argv)
    try:
        report = validate(args.shared_data)
    except (MbtError, OSError, csv.Error, EOFError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(report, show=args.show))
    return 0


if __name__ == "__main__":
    sys.exit(main())
