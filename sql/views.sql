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
       max(value) FILTER (WHERE metric = 'blocked_withdraw_usd')    AS blocked_withdraw_usd
FROM run_metrics
GROUP BY ALL;
