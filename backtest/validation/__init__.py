"""Validation of the engine arithmetic against real protocol records (read-only, no network)."""
