-- Before an Aave chunk (blocks $lo..$hi) is inserted: remove the stream's decoded rows in those blocks.
DELETE FROM aave_token_events WHERE stream = $stream AND block BETWEEN $lo AND $hi;
DELETE FROM aave_reserve_updates WHERE stream = $stream AND block BETWEEN $lo AND $hi;
DELETE FROM aave_pool_events WHERE stream = $stream AND block BETWEEN $lo AND $hi;
DELETE FROM aave_liquidations WHERE stream = $stream AND block BETWEEN $lo AND $hi;
DELETE FROM aave_config_events WHERE stream = $stream AND block BETWEEN $lo AND $hi;
DELETE FROM prices p
WHERE p.source = 'aave-oracle' AND p.block BETWEEN $lo AND $hi
  AND p.asset IN (SELECT symbol FROM aave_reserves WHERE stream = $stream);
DELETE FROM aave_oracle_prices WHERE stream = $stream AND block BETWEEN $lo AND $hi;
