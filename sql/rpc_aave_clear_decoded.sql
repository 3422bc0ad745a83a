-- Before re-decoding an Aave stream from raw_logs: drop its decoded rows (the reserves stay: they came
-- from the Pool's views, not from logs).
DELETE FROM indices i
WHERE EXISTS (SELECT 1 FROM aave_reserve_updates u JOIN aave_reserves r ON r.stream = u.stream AND r.reserve = u.reserve
              WHERE u.stream = $stream AND TRUE AND r.symbol = i.asset AND to_timestamp(u.ts) = i.timestamp);
DELETE FROM aave_token_events WHERE stream = $stream;
DELETE FROM aave_reserve_updates WHERE stream = $stream;
DELETE FROM aave_pool_events WHERE stream = $stream;
DELETE FROM aave_liquidations WHERE stream = $stream;
DELETE FROM aave_config_events WHERE stream = $stream;
