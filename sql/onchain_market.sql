-- One ingested Aave market.
SELECT version, pool, oracle FROM aave_markets WHERE stream = $stream;
