-- One reserve of an Aave stream and the market row (written with a run's first chunk).
INSERT OR REPLACE INTO aave_markets (stream, version, pool, addresses_provider, configurator, oracle)
VALUES ($stream, $version, $pool, $addresses_provider, $configurator, $oracle);
INSERT OR REPLACE INTO aave_reserves (stream, reserve, symbol, decimals, a_token, debt_token, reserve_id)
VALUES ($stream, $reserve, $symbol, $decimals, $a_token, $debt_token, $reserve_id);
