-- Undo the Aave rows of a stream above $block (reorg repair).
DELETE FROM indices i
WHERE EXISTS (SELECT 1 FROM aave_reserve_updates u JOIN aave_reserves r ON r.stream = u.stream AND r.reserve = u.reserve
              WHERE u.stream = $stream AND u.block > $block AND r.symbol = i.asset AND to_timestamp(u.ts) = i.timestamp);
DELETE FROM aave_token_events WHERE stream = $stream AND block > $block;
DELETE FROM aave_reserve_updates WHERE stream = $stream AND block > $block;
DELETE FROM aave_pool_events WHERE stream = $stream AND block > $block;
DELETE FROM aave_liquidations WHERE stream = $stream AND block > $block;
DELETE FROM aave_config_events WHERE stream = $stream AND block > $block;
DELETE FROM prices p
WHERE p.source = 'aave-oracle' AND p.block > $block
  AND p.asset IN (SELECT symbol FROM aave_reserves WHERE stream = $stream);
DELETE FROM aave_oracle_prices WHERE stream = $stream AND block > $block;
