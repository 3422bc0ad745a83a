-- The market row of an Aave stream.
SELECT version, pool, addresses_provider, configurator, oracle FROM aave_markets WHERE stream = $stream;
