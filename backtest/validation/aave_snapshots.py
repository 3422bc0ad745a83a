"""Rebuild Aave v2 health factors from recorded account snapshots and compare them with the on-chain value.

The shared folder ``aave_v2_user_snapshots_bhemen/`` holds, per account, rows sampled every 5,000 blocks
with the ``getUserAccountData`` result (``totalCollateral``/``totalDebt`` in ETH-wei from the Aave oracle,
``healthFactor`` rounded to 2 decimals), raw aToken/debt-token balances per asset and CoinGecko USD prices.
This module turns one file into dense ``(rows × assets)`` arrays in token units, takes liquidation
thresholds from the subgraph reserve config (main pool), calls :func:`backtest.engine.health.health_factors`
row by row (each row has its own price vector) and reports the relative error per row, a summary and the
rows beyond a limit with the likely reason. Pure functions over pandas/numpy; no DuckDB, no network.
Run ``python -m backtest.validation.aave_snapshots /path/to/shared/data`` to print the summary.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from backtest.engine.health import health_factors
from backtest.errors import InputError, MbtError

MAIN_POOL = "0xb53c1a33016b2dc2ff3653530bff1848a515c8c5"
"""Aave v2 Ethereum main market (LendingPoolAddressesProvider) as written in the subgraph config's ``pool``."""

SNAPSHOT_DIR = "aave_v2_user_snapshots_bhemen"
TOKENS_FILE = f"{SNAPSHOT_DIR}/aave_atokens_v2.csv"
CONFIG_FILE = "aave_v2_liquidations_idea_rpi/aave_v2_reserve_config_subgraph.csv"
SNAPSHOT_GLOB = "*_details_v2.csv"

HF_HALF_STEP = 0.005
"""Half of the last recorded digit of ``healthFactor`` (2 decimals)."""

PRICE_NOISE = 0.03
"""Relative CoinGecko-vs-oracle noise allowed on top of the rounding step when blaming rounding."""

PRICE_GAP_LIMIT = 0.10
"""|price factor − 1| above which a row's error is put down to CoinGecko vs oracle prices."""

WEI = 1e18
_BALANCE_COLUMN = re.compile(r"(?P<symbol>\w+)_(?P<side>collateral|debt)")

REASONS: dict[str, str] = {
    "debt_missing_in_file": "per-asset debt columns are all zero although getUserAccountData reports debt "
    "(first snapshot of the history; the balances look read before that block's borrow)",
    "totals_after_liquidation": "on-chain totals already reflect the final liquidation (totalCollateral 0, "
    "HF 0.00) while the balance columns still hold the collateral seized in that block",
    "stale_prices": "CoinGecko prices identical to a neighbouring snapshot: the hourly series starts "
    "2021-01-01 and earlier rows carry its first price",
    "hf_rounding": "recorded HF is tiny: the reconstruction is within its 2-decimal rounding step "
    "(± 0.005, plus 3 % price noise)",
    "price_divergence": "CoinGecko prices differ from the Aave oracle: file-valued collateral/debt ratio "
    "differs from the on-chain one by more than 10 %",
    "unexplained": "no known cause",
}
"""Reason codes for rows beyond the reporting limit, in the order they are tested."""


@dataclass(frozen=True)
class AccountSnapshots:
    """One snapshot file as dense arrays.

    Attributes
    ----------
    file : str
        File name.
    user : str
        Account address as written in the file.
    assets : tuple of str
        Asset symbols, the column order of the matrices.
    block, timestamp : int array (rows,)
        Block number; unix seconds (UTC).
    collateral, debt : float array (rows × assets), token units
        aToken and debt-token balances (raw ÷ 10**decimals).
    prices : float array (rows × assets), USD per token unit
        CoinGecko prices recorded with the row.
    hf_recorded : float array (rows,)
        ``healthFactor`` from ``getUserAccountData``, 2 decimals.
    total_collateral_eth, total_debt_eth : float array (rows,), ETH
        ``totalCollateral`` / ``totalDebt`` from ``getUserAccountData`` (oracle prices), ÷ 1e18.
    """

    file: str
    user: str
    assets: tuple[str, ...]
    block: np.ndarray
    timestamp: np.ndarray
    collateral: np.ndarray
    debt: np.ndarray
    prices: np.ndarray
    hf_recorded: np.ndarray
    total_collateral_eth: np.ndarray
    total_debt_eth: np.ndarray


def load_tokens(path: Path) -> pd.DataFrame:
    """Read ``aave_atokens_v2.csv``.

    Parameters
    ----------
    path : Path
        The token table (``symbol, address, decimals, …``).

    Returns
    -------
    DataFrame indexed by ``symbol`` (case as written, e.g. ``sUSD``) with ``address`` (lower-case hex)
    and ``decimals`` (int).
    """
    tokens = pd.read_csv(path, dtype={"symbol": str, "address": str})
    tokens["address"] = tokens["address"].str.lower()
    tokens["decimals"] = tokens["decimals"].astype(np.int64)
    return tokens.set_index("symbol")[["address", "decimals"]]


def load_reserve_config(path: Path) -> pd.DataFrame:
    """Read the subgraph reserve config (main and AMM market rows).

    Parameters
    ----------
    path : Path
        ``aave_v2_reserve_config_subgraph.csv``; ``id`` is the underlying address followed by the pool.

    Returns
    -------
    DataFrame with ``address`` (underlying, lower-case), ``pool``, ``symbol``, ``decimals`` and
    ``liquidation_threshold`` (fraction 0–1, from bps).
    """
    raw = pd.read_csv(path, dtype={"id": str, "pool": str, "symbol": str})
    return pd.DataFrame(
        {
            "address": raw["id"].str[:42].str.lower(),
            "pool": raw["pool"].str.lower(),
            "symbol": raw["symbol"],
            "decimals": raw["decimals"].astype(np.int64),
            "liquidation_threshold": raw["reserveLiquidationThreshold"].astype(np.float64) / 1e4,
        }
    )


def liquidation_thresholds(
    assets: Sequence[str],
    tokens: pd.DataFrame,
    config: pd.DataFrame,
    pool: str = MAIN_POOL,
    overrides: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Liquidation threshold of each asset in one pool, matched by underlying address.

    Parameters
    ----------
    assets : sequence of str
        Symbols as in the snapshot columns (looked up in ``tokens`` for the address).
    tokens : DataFrame
        From :func:`load_tokens`.
    config : DataFrame
        From :func:`load_reserve_config`.
    pool : str
        Addresses provider of the market; the Aave v2 main market by default (the AMM market lists the
        same underlyings with other thresholds, e.g. WETH 0.825 instead of 0.85).
    overrides : mapping of str to float, optional
        Symbol → threshold (fraction 0–1) replacing the config value, e.g. a historical setting.

    Returns
    -------
    (lt, missing)
        ``lt`` float array (assets,), fraction 0–1; assets absent from the config get 0 (they cannot
        count as collateral) and are named in ``missing``.

    Raises
    ------
    MbtError
        The token table and the config disagree on an asset's decimals (a sign of a wrong match).
    """
    in_pool = config[config["pool"] == pool.lower()].drop_duplicates("address").set_index("address")
    lt = np.zeros(len(assets), dtype=np.float64)
    missing: list[str] = []
    for k, symbol in enumerate(assets):
        address, decimals = tokens.loc[symbol, "address"], tokens.loc[symbol, "decimals"]
        if address not in in_pool.index:
            missing.append(symbol)
            continue
        config_decimals = in_pool.loc[address, "decimals"]
        if config_decimals != decimals:
            raise MbtError(f"{symbol}: {decimals} decimals in the token table, {config_decimals} in the config")
        lt[k] = in_pool.loc[address, "liquidation_threshold"]
    for symbol, value in (overrides or {}).items():
        if symbol in assets:
            lt[list(assets).index(symbol)] = value
    return lt, tuple(missing)


def load_snapshot_file(path: Path, tokens: pd.DataFrame) -> AccountSnapshots:
    """Load one ``<user>_details_v2.csv`` into dense arrays.

    Raw balance columns ``<SYM>_collateral`` / ``<SYM>_debt`` are integer token amounts (stored as floats);
    the ``… (in USD)`` columns are derived in the file and not used. Prices come from ``<SYM>_USD_price``.

    Parameters
    ----------
    path : Path
        The snapshot file.
    tokens : DataFrame
        From :func:`load_tokens`, for the decimals.

    Returns
    -------
    AccountSnapshots

    Raises
    ------
    InputError
        An asset without decimals or price column, or a price that is NaN, infinite, zero or negative.
    """
    frame = pd.read_csv(path)
    assets: list[str] = []
    for column in frame.columns:
        match = _BALANCE_COLUMN.fullmatch(column)
        if match and match["symbol"] not in assets:
            assets.append(match["symbol"])
    shape = (len(frame), len(assets))
    collateral, debt, prices = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for k, symbol in enumerate(assets):
        if symbol not in tokens.index:
            raise InputError(path.name, 1, f"{symbol}_*", "symbol not in the token table (decimals unknown)")
        scale = 10.0 ** int(tokens.loc[symbol, "decimals"])
        for side, target in (("collateral", collateral), ("debt", debt)):
            if f"{symbol}_{side}" in frame:
                target[:, k] = frame[f"{symbol}_{side}"].to_numpy(np.float64) / scale
        price_column = f"{symbol}_USD_price"
        if price_column not in frame:
            raise InputError(path.name, 1, price_column, "missing price column")
        prices[:, k] = frame[price_column].to_numpy(np.float64)
        bad = ~(np.isfinite(prices[:, k]) & (prices[:, k] > 0))
        if bad.any():
            row = int(np.argmax(bad))
            raise InputError(path.name, row + 2, price_column, f"price {prices[row, k]!r} is not positive")
    return AccountSnapshots(
        file=path.name,
        user=str(frame["user"].iloc[0]) if len(frame) else "",
        assets=tuple(assets),
        block=frame["block"].to_numpy(np.int64),
        timestamp=frame["timestamp"].to_numpy(np.int64),
        collateral=collateral,
        debt=debt,
        prices=prices,
        hf_recorded=frame["healthFactor"].to_numpy(np.float64),
        total_collateral_eth=frame["totalCollateral"].to_numpy(np.float64) / WEI,
        total_debt_eth=frame["totalDebt"].to_numpy(np.float64) / WEI,
    )


def reconstruct(snapshots: AccountSnapshots, lt: np.ndarray) -> pd.DataFrame:
    """Health factor of every row rebuilt from balances × CoinGecko prices × thresholds.

    Parameters
    ----------
    snapshots : AccountSnapshots
        From :func:`load_snapshot_file`.
    lt : float array (assets,), fraction 0–1
        In the order of ``snapshots.assets``.

    Returns
    -------
    DataFrame, one row per snapshot row:
        ``file, user, block, timestamp`` (unix s); ``hf_recorded``, ``hf_reconstructed`` (``+inf`` when the
        file shows no debt); ``rel_error`` = ``|rec − recorded| / recorded`` (``+inf`` when recorded is 0 and
        rec is not); ``compared`` (False when on-chain ``totalDebt`` is 0 or the recorded HF is not finite:
        such rows have no meaningful HF and are left out of the summary); diagnostics ``debt_in_file``,
        ``onchain_collateral_zero``, ``stale_prices`` and ``price_factor`` (file-valued LT>0 collateral /
        debt ÷ on-chain totalCollateral / totalDebt; 1 when CoinGecko agrees with the oracle).
    """
    s = snapshots
    rows = len(s.block)
    rec = np.empty(rows, dtype=np.float64)
    for i in range(rows):
        rec[i] = health_factors(s.collateral[i : i + 1], s.debt[i : i + 1], s.prices[i], lt)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(rec - s.hf_recorded) / s.hf_recorded
        rel = np.where((s.hf_recorded == 0) & (rec == 0), 0.0, rel)
        collateral_usd = (s.collateral * s.prices) @ (lt > 0).astype(np.float64)
        debt_usd = (s.debt * s.prices).sum(axis=1)
        price_factor = (collateral_usd / debt_usd) * (s.total_debt_eth / s.total_collateral_eth)
    same_as_previous = np.zeros(rows, dtype=bool)
    same_as_previous[1:] = (s.prices[1:] == s.prices[:-1]).all(axis=1)
    stale = same_as_previous.copy()
    stale[:-1] |= same_as_previous[1:]
    return pd.DataFrame(
        {
            "file": s.file,
            "user": s.user,
            "block": s.block,
            "timestamp": s.timestamp,
            "hf_recorded": s.hf_recorded,
            "hf_reconstructed": rec,
            "rel_error": rel,
            "compared": (s.total_debt_eth > 0) & np.isfinite(s.hf_recorded),
            "debt_in_file": debt_usd > 0,
            "onchain_collateral_zero": s.total_collateral_eth == 0,
            "stale_prices": stale,
            "price_factor": price_factor,
        }
    )


def reconstruct_folder(shared_data: Path, lt_overrides: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Rows of :func:`reconstruct` for every snapshot file, using the main-pool config thresholds.

    Parameters
    ----------
    shared_data : Path
        The shared data folder (holding ``aave_v2_user_snapshots_bhemen/`` and
        ``aave_v2_liquidations_idea_rpi/``).
    lt_overrides : mapping of str to float, optional
        Symbol → liquidation threshold (fraction 0–1) replacing the config value.

    Returns
    -------
    DataFrame
        All rows, files in name order; ``DataFrame.attrs["missing_from_config"]`` lists assets absent
        from the main-pool config (threshold 0).
    """
    tokens = load_tokens(shared_data / TOKENS_FILE)
    config = load_reserve_config(shared_data / CONFIG_FILE)
    files = sorted((shared_data / SNAPSHOT_DIR).glob(SNAPSHOT_GLOB))
    if not files:
        raise MbtError(f"{shared_data / SNAPSHOT_DIR}: no {SNAPSHOT_GLOB} files")
    parts: list[pd.DataFrame] = []
    missing: set[str] = set()
    for path in files:
        snapshots = load_snapshot_file(path, tokens)
        lt, absent = liquidation_thresholds(snapshots.assets, tokens, config, overrides=lt_overrides)
        missing.update(absent)
        parts.append(reconstruct(snapshots, lt))
    rows = pd.concat(parts, ignore_index=True)
    rows.attrs["missing_from_config"] = sorted(missing)
    return rows


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Per-file and overall agreement figures.

    Parameters
    ----------
    rows : DataFrame
        From :func:`reconstruct_folder` (or :func:`reconstruct`).

    Returns
    -------
    DataFrame indexed by file, plus a last row ``"all"``, with ``rows`` (in the file), ``excluded`` (no
    on-chain debt), ``n`` (compared), ``median_rel_error`` (fraction), ``within_10``/``within_20`` (share
    of compared rows with relative error ≤ 0.10 / ≤ 0.20) and ``beyond_20`` (count).
    """

    def figures(group: pd.DataFrame) -> dict[str, float]:
        err = group.loc[group["compared"], "rel_error"].to_numpy()
        n = len(err)
        return {
            "rows": len(group),
            "excluded": int((~group["compared"]).sum()),
            "n": n,
            "median_rel_error": float(np.median(err)) if n else np.nan,
            "within_10": float((err <= 0.10).mean()) if n else np.nan,
            "within_20": float((err <= 0.20).mean()) if n else np.nan,
            "beyond_20": int((err > 0.20).sum()),
        }

    table = {name: figures(group) for name, group in rows.groupby("file", sort=True)}
    table["all"] = figures(rows)
    summary = pd.DataFrame.from_dict(table, orient="index")
    return summary.astype({"rows": np.int64, "excluded": np.int64, "n": np.int64, "beyond_20": np.int64})


def beyond(rows: pd.DataFrame, limit: float = 0.20) -> pd.DataFrame:
    """Compared rows whose relative error exceeds ``limit``, with a reason code.

    Parameters
    ----------
    rows : DataFrame
        From :func:`reconstruct_folder`.
    limit : float, fraction
        Relative-error limit (0.20 = 20 %).

    Returns
    -------
    DataFrame
        The selected rows plus ``reason`` (a key of :data:`REASONS`, the first that applies).
    """
    out = rows[rows["compared"] & (rows["rel_error"] > limit)].copy()
    gap = (out["hf_reconstructed"] - out["hf_recorded"]).abs()
    rounding = gap <= HF_HALF_STEP + PRICE_NOISE * out["hf_reconstructed"].abs()
    conditions = [
        ~out["debt_in_file"],
        out["onchain_collateral_zero"] & (out["hf_recorded"] == 0),
        out["stale_prices"],
        rounding,
        (out["price_factor"] - 1).abs() > PRICE_GAP_LIMIT,
    ]
    codes = list(REASONS)
    out["reason"] = np.select(conditions, codes[:-1], default=codes[-1])
    return out


def _format_report(rows: pd.DataFrame, limit: float) -> str:
    summary = summarize(rows)
    shown = summary.copy()
    shown.index = [name.split("_")[0] for name in shown.index]
    for column in ("median_rel_error", "within_10", "within_20"):
        shown[column] = (100 * shown[column]).map("{:.1f} %".format)
    lines = ["Aave v2 health factors rebuilt from account snapshots", shown.to_string(), ""]
    missing = rows.attrs.get("missing_from_config", [])
    lines.append(f"assets missing from the main-pool config (LT 0): {', '.join(missing) or 'none'}")
    far = beyond(rows, limit)
    lines.append(f"rows beyond {limit:.0%}: {len(far)}")
    for code, group in far.groupby("reason", sort=False):
        lines.append(f"  {code} ({len(group)}): {REASONS[code]}")
        for row in group.itertuples():
            when = pd.Timestamp(row.timestamp, unit="s").strftime("%Y-%m-%d %H:%M")
            lines.append(
                f"    {row.file.split('_')[0]} block {row.block} {when} recorded {row.hf_recorded:.2f} "
                f"rebuilt {row.hf_reconstructed:.4f} error {row.rel_error:.3f} price factor {row.price_factor:.3f}"
            )
    return "\n".join(lines)


def _parse_overrides(items: Sequence[str]) -> dict[str, float]:
    overrides: dict[str, float] = {}
    for item in items:
        symbol, _, value = item.partition("=")
        try:
            overrides[symbol] = float(value)
        except ValueError:
            overrides[symbol] = float("nan")
        if not 0 <= overrides[symbol] <= 1:
            raise MbtError(f"--lt {item!r}: expected SYMBOL=fraction between 0 and 1, e.g. WETH=0.825")
    return overrides


def main(argv: Sequence[str] | None = None) -> int:
    """Print the summary and the rows beyond the limit; return the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        ``SHARED_DATA [--lt SYM=fraction …] [--limit fraction]``; ``sys.argv[1:]`` by default.
    """
    parser = argparse.ArgumentParser(
        prog="python -m backtest.validation.aave_snapshots",
        description="Rebuild Aave v2 health factors from the shared account snapshots and compare.",
    )
    parser.add_argument("shared_data", type=Path, help="the shared data folder (…/shared/data)")
    parser.add_argument("--lt", action="append", default=[], metavar="SYM=FRACTION",
                        help="override a liquidation threshold, e.g. WETH=0.825 (repeatable)")
    parser.add_argument("--limit", type=float, default=0.20,
                        help="list rows beyond this relative error (default 0.20)")
    args = parser.parse_args(argv)
    try:
        rows = reconstruct_folder(args.shared_data, _parse_overrides(args.lt))
    except (MbtError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(_format_report(rows, args.limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
