"""margin-backtester: replay lending/margin history under alternative margin rules.

The package is split by role: ``backtest.engine`` holds the pure numeric replay (numpy/numba only),
``backtest.config`` turns TOML into frozen rule sets, ``backtest.store`` is the one place that talks to
DuckDB, ``backtest.runner`` wires store → engine → metrics → store, and ``backtest.cli`` only wires commands.
"""

__version__ = "0.1.0"
