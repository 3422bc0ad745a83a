"""Error types every part of mbt raises for problems the user can fix (one line, exit status 2).

A top-level module so that both import packages use it without depending on each other: ``adapters``
never imports ``backtest`` (the adapters are usable, and testable, on their own), and ``backtest.errors``
re-exports these classes for the code and users that import them from there. Anything the user can fix
(bad CSV or Parquet input, bad TOML, missing prices, a bad RPC option) raises ``MbtError`` (or a subclass)
with a message that already names the file, row, column or option; the CLI prints it as one line.
Everything else is a bug and keeps its traceback.
"""


class MbtError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class InputError(MbtError):
    """Bad input data: the message has the form ``FILE:LINE:COLUMN: what is wrong``.

    ``line`` is the physical line for CSV files (the header is line 1) and the 1-based data row for
    Parquet files (0 for the file or its schema).
    """

    def __init__(self, file: str, line: int, column: str, message: str) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.reason = message
        super().__init__(f"{file}:{line}:{column}: {message}")


class ConfigError(MbtError):
    """Bad run configuration: the message names the TOML key."""


__all__ = ["ConfigError", "InputError", "MbtError"]
