"""margin-backtester: replay lending/margin history under alternative margin rules.

The package is split by role: ``backtest.engine`` holds the pure numeric replay (numpy/numba only),
``backtest.config`` turns TOML into frozen rule sets, ``backtest.store`` is the one place that talks to
DuckDB, ``backtest.runner`` wires store → engine → metrics → store, and ``backtest.cli`` only wires commands.
"""

import os as _os

__version__ = "0.1.0"

# numba's compiled-kernel cache (cache=True) goes to a user cache folder, not next to the installed modules:
# files pip does not know about would survive `pip uninstall` and turn a later reinstall's `backtest` into a
# stray namespace package (and site-packages may be read-only). An explicit NUMBA_CACHE_DIR is respected.
_os.environ.setdefault(
    "NUMBA_CACHE_DIR",
    _os.path.join(_os.environ.get("XDG_CACHE_HOME") or _os.path.join(_os.path.expanduser("~"), ".cache"),
                  "margin-backtester", "numba"),
)
