-- The decoded rows of one Aave chunk, staged as _aave_* (big integers staged as decimal text).
INSERT INTO aave_token_events
SELECT $stream, block, log_index, tx_hash, token, reserve, side, kind, account, other,
       CAST(value AS HUGEINT), CAST(balance_increase AS HUGEINT), CAST(idx AS HUGEINT)
FROM _aave_token_events;
INSERT INTO aave_reserve_updates
SELECT $stream, block, log_index, tx_hash, reserve, CAST(liquidity_rate AS HUGEINT), CAST(stable_rate AS HUGEINT),
       CAST(variable_rate AS HUGEINT), CAST(liquidity_index AS HUGEINT), CAST(variable_index AS HUGEINT), ts, origin
FROM _aave_reserve_updates;
INSERT INTO aave_pool_events
SELECT $stream, block, log_index, tx_hash, event, reserve, "user", other, CAST(amount AS HUGEINT), flag, category
FROM _aave_pool_events;
INSERT INTO aave_liquidations
SELECT $stream, block, log_index, tx_hash, "user", collateral_asset, debt_asset, CAST(debt_to_cover AS HUGEINT),
       CAST(collateral_amount AS HUGEINT), liquidator, receive_atoken
FROM _aave_liquidations;
INSERT INTO aave_config_events
SELECT $stream, block, log_index, tx_hash, event, asset, category, CAST(v1 AS HUGEINT), CAST(v2 AS HUGEINT),
       CAST(v3 AS HUGEINT), flag, label, address
FROM _aave_config_events;
-- The chunk's index updates into indices (DESIGN §5b extension: asset = the reserve's symbol; ray / 1e27), the
-- last update of each reserve per block (one timestamp per block).
INSERT OR REPLACE INTO indices (asset, timestamp, liquidity_index, variable_borrow_index)
SELECT r.symbol, to_timestamp(u.ts), CAST(u.liquidity_index AS DOUBLE) / 1e27, CAST(u.variable_index AS DOUBLE) / 1e27
FROM _aave_reserve_updates u JOIN aave_reserves r ON r.stream = $stream AND r.reserve = u.reserve
QUALIFY row_number() OVER (PARTITION BY u.reserve, u.block ORDER BY u.log_index DESC) = 1;
-- Oracle prices sampled in the chunk (--prices oracle): exact raw values, and as DESIGN prices rows
-- (source 'aave-oracle', round_id = the block, so the latest block wins within a second).
INSERT OR REPLACE INTO aave_oracle_prices
SELECT $stream, block, reserve, CAST(price_raw AS HUGEINT), CAST(unit AS HUGEINT) FROM _aave_oracle_prices;
INSERT OR REPLACE INTO prices (asset, source, timestamp, round_id, price_usd, block)
SELECT symbol, 'aave-oracle', to_timestamp(ts), block, price_usd, block FROM _aave_oracle_prices;
