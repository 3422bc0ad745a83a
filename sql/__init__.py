"""SQL files of the mbt store, shipped inside the wheel as ``backtest.sql`` (see backtest.store)."""
