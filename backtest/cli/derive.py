"""``mbt derive``: a risk-based rule set (ltv, threshold, bonus per asset or group) from stored prices, as TOML.

Only wiring: options → ``backtest.derive`` (parse, read the store read-only, derive, write) → stdout or
``--out``. docs/derive.md has the formulas.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from ..errors import ConfigError, MbtError
from .base import cli, db_option, debug_option, err

_D = {"method": "hs", "alpha": "0.99", "horizon": "1d", "lookback": "180d", "lam": "0.94", "gas_usd": "5.0",
      "debt_repaid_usd": "10000", "ltv_gap": "0.05", "name": "derived"}
_FLAGS = {"method": "--method", "alpha": "--alpha", "horizon": "--horizon", "lookback": "--lookback",
          "lam": "--lambda", "gas_usd": "--gas-usd", "debt_repaid_usd": "--debt-repaid-usd",
          "slippage": "--slippage", "ltv_gap": "--ltv-gap", "assets": "--assets", "price_source": "--price-source",
          "name": "--name"}


def _command(db_path: str, at: str, given: dict[str, str | None], groups: tuple[str, ...]) -> str:
    # the options that differ from the defaults, plus the resolved --at: rerunning it gives the same file
    words = ["mbt", "derive", "--db", db_path, "--at", at]
    for key, flag in _FLAGS.items():
        value = given.get(key)
        if value is not None and value != _D.get(key):
            words += [flag, str(value)]
    for g in groups:
        words += ["--group", g]
    return shlex.join(words)


@cli.command("derive")
@click.option("--method", default=_D["method"], metavar="hs|ewma",
              help="Δ by historical simulation of overlapping h-day returns (hs) or parametric z·σ·√h with a "
              "RiskMetrics EWMA σ (ewma).")
@click.option("--alpha", default=_D["alpha"], metavar="FRACTION", help="Quantile of the adverse move (0.5 ≤ α < 1).")
@click.option("--horizon", default=_D["horizon"], metavar="DAYS",
              help="Liquidation horizon h, whole days (\"1d\", \"2d\").")
@click.option("--lookback", default=_D["lookback"], metavar="DURATION",
              help="hs: returns whose close date τ satisfies at − lookback < τ ≤ at.")
@click.option("--lambda", "lam", default=_D["lam"], metavar="λ", help="ewma: decay factor (0 < λ < 1).")
@click.option("--at", default=None, metavar="TIMESTAMP",
              help="Use prices at or before this instant only  [default: the last stored price time]")
@click.option("--assets", default=None, metavar="SYM,SYM,...",
              help="Assets to derive  [default: every asset with stored prices (from --price-source, if given)]")
@click.option("--price-source", "price_source", default=None, metavar="NAME",
              help="Price source to use; required when an asset has prices from several.")
@click.option("--group", "groups", multiple=True, metavar="NAME=SYM1,SYM2,...",
              help="A correlated (e-mode-like) group: kind = \"cross\", Δ of the members' price ratios (repeatable).")
@click.option("--gas-usd", "gas_usd", default=_D["gas_usd"], metavar="USD", help="Gas cost g of one liquidation.")
@click.option("--debt-repaid-usd", "debt_repaid_usd", default=_D["debt_repaid_usd"], metavar="USD",
              help="Debt D_repaid repaid by one liquidation (sets g/D and the size sold).")
@click.option("--slippage", default=None, metavar="FRACTION",
              help="Slippage for every asset  [default: from the liquidity table; 0 where it has no rows]")
@click.option("--ltv-gap", "ltv_gap", default=_D["ltv_gap"], metavar="FRACTION", help="ltv = max(0, LT − gap).")
@click.option("--name", default=_D["name"], metavar="NAME", help="Name of the rule set.")
@click.option("--out", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the TOML here  [default: stdout]")
@db_option
@debug_option
def derive_cmd(method: str, alpha: str, horizon: str, lookback: str, lam: str, at: str | None, assets: str | None,
               price_source: str | None, groups: tuple[str, ...], gas_usd: str, debt_repaid_usd: str,
               slippage: str | None, ltv_gap: str, name: str, out: str | None, db: str | None) -> None:
    """Derive ltv, liquidation threshold and bonus from stored prices (PROTOCOLS §9) as a rule-set TOML."""
    from ..derive import derive_rules, load_inputs, parse_assets, parse_groups, parse_settings, rules_toml
    from ..store import Store, resolve_db_path
    from ..timeutil import format_instant, parse_instant

    settings = parse_settings(method=method, alpha=alpha, horizon=horizon, lookback=lookback, lam=lam,
                              gas_usd=gas_usd, debt_repaid_usd=debt_repaid_usd, slippage=slippage, ltv_gap=ltv_gap)
    at_us = None
    if at is not None:
        try:
            at_us = parse_instant(at)
        except ValueError as exc:
            raise ConfigError(f"--at {at!r}: {exc}") from None
    if not name.strip():
        raise ConfigError("--name: expected a non-empty rule set name")
    wanted = parse_assets(assets) if assets is not None else None
    group_map = parse_groups(groups)
    if wanted is not None:  # a group's members need their own [rules.assets] tables too
        wanted += [s for members in group_map.values() for s in members if s not in wanted]
        wanted = list(dict.fromkeys(wanted))
    path = resolve_db_path(db)
    with Store(path, read_only=True) as store:
        inputs = load_inputs(store, wanted, price_source, at_us)
    if wanted is None:
        for gname, members in group_map.items():
            for sym in members:
                if sym not in inputs.series:
                    raise MbtError(f"--group {gname}: asset {sym!r} has no stored prices"
                                   + (f" from {price_source!r}" if price_source else ""))
    rules = derive_rules(inputs.series, inputs.depth, settings, inputs.at_us, groups=group_map, name=name,
                         sources=inputs.sources)
    given = {"method": method, "alpha": alpha, "horizon": horizon, "lookback": lookback, "lam": lam,
             "gas_usd": gas_usd, "debt_repaid_usd": debt_repaid_usd, "slippage": slippage, "ltv_gap": ltv_gap,
             "assets": assets, "price_source": price_source, "name": name}
    text = rules_toml(rules, _command(path, format_instant(inputs.at_us), given, groups))
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        Path(out).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise MbtError(f"--out {out}: cannot write: {exc.strerror or exc}") from None
    err(f"wrote {out}: rule set {name!r}, {len(rules.assets)} assets"
        + (f", {len(rules.groups)} group(s)" if rules.groups else ""))
