"""Error types that the CLI turns into one clear line and exit status 2.

Anything the user can fix (bad CSV, bad TOML, missing prices) raises ``MbtError`` (or a subclass) with a
message that already names the file, line, column or config key. Everything else is a bug and keeps its
traceback.
"""


class MbtError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


class InputError(MbtError):
    """Bad input data: the message has the form ``FILE:LINE:COLUMN: what is wrong``."""

    def __init__(self, file: str, line: int, column: str, message: str) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.reason = message
        super().__init__(f"{file}:{line}:{column}: {message}")


class ConfigError(MbtError):
    """Bad run configuration: the message names the TOML key."""
