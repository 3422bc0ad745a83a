-- ReserveDataUpdated of a market in chain order.
SELECT block, log_index, reserve, liquidity_rate, variable_rate, liquidity_index, variable_index, ts
FROM aave_reserve_updates WHERE stream = $stream ORDER BY block, log_index;
