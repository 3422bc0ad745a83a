"""Compatibility: ``import backtest.cli.commands`` registers every verb (as it did when they lived here).

The verbs now have one module each (``backtest.cli.demo``, ``ingest``, ``ingest_rpc``, ``run``, ``runs``,
``sql``); ``backtest.cli.main`` names them and imports one when it is invoked.
"""

from __future__ import annotations

from .main import cli

cli.load_all()
cli.commands["ingest"].load_all()

__all__ = ["cli"]
