-- Before an Aave chunk (blocks $lo..$hi) is inserted: remove the stream's decoded rows in those blocks.
DELETE FROM aave_token_events WHERE stream = $stream AND block BETWEEN $lo AND $hi;
DELETE FROM aave_reserve_updates WHERE stream = $stream AND block BETWEEN $lo AND $hi;
DELETE FROM aave_pool_events WHERE stream = $stream AND block BETWEEN $lo AND $hi;
DELETE FROM aave_liquidations WHERE stream = $stream AND block BETWEEN $lo AND $hi;
DELETE FROM aave_config_events WHERE stream = $stream AND block BETWEEN $lo AND $hi;
