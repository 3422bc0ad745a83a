-- LiquidationCall of a market in chain order (receiveAToken ones update the collateral reserve's state).
SELECT block, log_index, "user", collateral_asset, debt_asset, receive_atoken FROM aave_liquidations
WHERE stream = $stream ORDER BY block, log_index;
