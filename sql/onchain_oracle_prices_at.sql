-- The last sampled oracle price of every reserve at or before a block (raw base units).
SELECT reserve, arg_max(price_raw, block) FROM aave_oracle_prices
WHERE stream = $stream AND block <= $block GROUP BY reserve;
