"""Error types that the CLI turns into one clear line and exit status 2 (re-exported from ``mbt_errors``).

The classes live in the top-level module ``mbt_errors`` so that ``adapters`` can raise them without
importing ``backtest``; ``from backtest.errors import MbtError`` keeps working and names the same classes.
"""

from mbt_errors import ConfigError, InputError, MbtError

__all__ = ["ConfigError", "InputError", "MbtError"]
