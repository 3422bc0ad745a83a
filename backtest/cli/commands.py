"""Compatibility: ``import backtest.cli.commands`` registers every verb (as it did when they lived here).

The verbs now have one module each (``backtest.cli.demo``, ``ingest``, ``ingest_rpc``, ``run``, ``runs``,
``sql``); ``backtest.cli.main`` imports them all.
"""

from __future__ import annotations

from .main import cli

__all__ = ["cli"]
