-- Convenience views over the result tables, for `mbt sql`.
-- run_results: one row per (run, rule, scenario) with every metric as a column.
CREATE OR REPLACE VIEW run_results AS
SELECT run_id, rule, kind, scenario,
       max(value) FILTER (WHERE metric = 'bad_debt_usd')            AS bad_debt_usd,
       max(value) FILTER (WHERE metric = 'realised_bad_debt_usd')   AS realised_bad_debt_usd,
       max(value) FILTER (WHERE metric = 'unrealised_bad_debt_usd') AS unrealised_bad_debt_usd,
       max(value) FILTER (WHERE metric = 'liquidations')            AS liquidations,
       max(value) FILTER (WHERE metric = 'liquidated_debt_usd')     AS liquidated_debt_usd,
       max(value) FILTER (WHERE metric = 'liquidation_penalty_usd') AS liquidation_penalty_usd,
       max(value) FILTER (WHERE metric = 'insolvent_accounts')      AS insolvent_accounts,
       max(value) FILTER (WHERE metric = 'borrowing_power_usd')     AS borrowing_power_usd,
       max(value) FILTER (WHERE metric = 'capital_efficiency')      AS capital_efficiency,
       max(value) FILTER (WHERE metric = 'capped_events_usd')       AS capped_events_usd,
       max(value) FILTER (WHERE metric = 'blocked_borrow_usd')      AS blocked_borrow_usd,
       max(value) FILTER (WHERE metric = 'blocked_withdraw_usd')    AS blocked_withdraw_usd,
       max(value) FILTER (WHERE metric = 'var_95_bad_debt_usd')     AS var_95_bad_debt_usd,
       max(value) FILTER (WHERE metric = 'es_95_bad_debt_usd')      AS es_95_bad_debt_usd,
       max(value) FILTER (WHERE metric = 'var_99_bad_debt_usd')     AS var_99_bad_debt_usd,
       max(value) FILTER (WHERE metric = 'es_99_bad_debt_usd')      AS es_99_bad_debt_usd,
       max(value) FILTER (WHERE metric = 'lar_95_liquidated_debt_usd') AS lar_95_liquidated_debt_usd,
       max(value) FILTER (WHERE metric = 'lar_99_liquidated_debt_usd') AS lar_99_liquidated_debt_usd,
       max(value) FILTER (WHERE metric = 'mean_bad_debt_usd')       AS mean_bad_debt_usd,
       max(value) FILTER (WHERE metric = 'p_bad_debt')              AS p_bad_debt
FROM run_metrics
GROUP BY ALL;

-- onchain_liquidations: the liquidations an ingested Aave market really had (mbt ingest rpc --source
-- aave-v3|aave-v2), in token units beside the raw integers, to read next to a replay's `liquidations`.
CREATE OR REPLACE VIEW onchain_liquidations AS
SELECT m.pool AS market, l.block, b.timestamp AS ts, l.tx_hash AS tx, l."user", d.symbol AS debt_asset,
       c.symbol AS collateral_asset,
       CAST(l.debt_to_cover AS DOUBLE) / 10 ^ d.decimals AS debt_to_cover,
       CAST(l.collateral_amount AS DOUBLE) / 10 ^ c.decimals AS seized,
       l.debt_to_cover AS debt_to_cover_raw, l.collateral_amount AS seized_raw,
       l.liquidator, l.receive_atoken, l.log_index
FROM aave_liquidations l
JOIN aave_markets m ON m.stream = l.stream
LEFT JOIN aave_reserves d ON d.stream = l.stream AND d.reserve = l.debt_asset
LEFT JOIN aave_reserves c ON c.stream = l.stream AND c.reserve = l.collateral_asset
LEFT JOIN rpc_blocks b ON b.chain_id = CAST(split_part(l.stream, ':', 1) AS BIGINT) AND b.number = l.block;
