-- Reserves of an ingested Aave market, in getReservesList order.
SELECT reserve, symbol, decimals, a_token, debt_token, reserve_id FROM aave_reserves
WHERE stream = $stream ORDER BY reserve_id;
