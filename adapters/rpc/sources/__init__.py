"""The log-ingest sources of ``mbt ingest rpc --source NAME``: one module each, registered here.

A source (``base.LogSource``) declares its name, events, CLI options, tables, and the pure mapping raw
logs → frames; the generic driver (``backtest.ingest.driver``) does the chunking, resuming, reorg repair
and storing. Adding one is one module in this package plus one entry in :data:`SOURCES` (or a call to
:func:`register_source` from outside the package); docs/rpc.md, "Adding an ingest source", walks through
it. Names DESIGN §6 plans but that do not exist yet are in :data:`PLANNED`: asking for one is a clear
"not implemented yet" error rather than an unknown value.
"""

from __future__ import annotations

from mbt_errors import MbtError

from . import aave, chainlink
from .base import LogSource

#: name → source, in the order ``--help`` lists them.
SOURCES: dict[str, LogSource] = {
    chainlink.SOURCE.name: chainlink.SOURCE,
    aave.AAVE_V3.name: aave.AAVE_V3,
    aave.AAVE_V2.name: aave.AAVE_V2,
}

#: Sources DESIGN §6 names that arrive with their issues.
PLANNED = ("comet",)


def register_source(source: LogSource) -> LogSource:
    """Add ``source`` to :data:`SOURCES` (its ``name`` must be new); returns it, so it works as a decorator."""
    if not source.name or source.name in SOURCES:
        raise ValueError(f"source name {source.name!r} is empty or already registered")
    SOURCES[source.name] = source
    return source


def get_source(name: str) -> LogSource:
    """The registered source called ``name``.

    Raises
    ------
    MbtError
        ``name`` is planned but not implemented yet, or unknown.
    """
    if name in SOURCES:
        return SOURCES[name]
    known = ", ".join(SOURCES)
    if name in PLANNED:
        raise MbtError(f"--source {name}: not implemented yet (available: {known})")
    raise MbtError(f"--source {name!r}: unknown source (available: {known}; planned: {', '.join(PLANNED)})")


__all__ = ["PLANNED", "SOURCES", "LogSource", "get_source", "register_source"]
