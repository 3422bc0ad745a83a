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

-- latest_run(): the run_id of the newest stored run (for the cookbook: WHERE run_id = latest_run()).
CREATE OR REPLACE MACRO latest_run() AS (SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 1);

-- run_summary(rid): one run's results, a row per (rule, scenario) with every metric as a column.
CREATE OR REPLACE MACRO run_summary(rid) AS TABLE SELECT * FROM run_results WHERE run_id = rid;

-- run_baseline: each run's baseline rule set (the first of its config).
CREATE OR REPLACE VIEW run_baseline AS
SELECT run_id, json_extract_string(config_json, '$.rules[0].name') AS baseline FROM runs;

-- metric_changes: every metric of every rule set next to the baseline's on the same scenario.
CREATE OR REPLACE VIEW metric_changes AS
SELECT m.run_id, m.scenario, m.metric, m.rule, m.value, b.value AS baseline_value, m.value - b.value AS change
FROM run_metrics m
JOIN run_baseline rb ON rb.run_id = m.run_id
LEFT JOIN run_metrics b ON b.run_id = m.run_id AND b.scenario = m.scenario AND b.metric = m.metric
                       AND b.rule = rb.baseline;

-- liquidations_by_asset: calls, accounts, debt repaid and penalties per (debt, collateral) asset pair.
CREATE OR REPLACE VIEW liquidations_by_asset AS
SELECT run_id, rule, scenario, debt_asset, collateral_asset, count(*) AS calls, count(DISTINCT account) AS accounts,
       sum(debt_repaid_usd) AS debt_repaid_usd, sum(penalty_usd) AS penalty_usd
FROM liquidations GROUP BY ALL;

-- bad_debt_timeline: bad debt per step and its change from the step before.
CREATE OR REPLACE VIEW bad_debt_timeline AS
SELECT run_id, rule, scenario, ts, bad_debt_usd,
       bad_debt_usd - lag(bad_debt_usd, 1, 0) OVER (PARTITION BY run_id, rule, scenario ORDER BY ts) AS change_usd,
       liquidations, debt_usd, collateral_usd
FROM timeseries;

-- account_impact: what each rule set did to each account (calls, debt repaid, penalty paid).
CREATE OR REPLACE VIEW account_impact AS
SELECT run_id, scenario, account, rule, count(*) AS calls, sum(debt_repaid_usd) AS debt_repaid_usd,
       sum(penalty_usd) AS penalty_usd
FROM liquidations GROUP BY ALL;

-- scenario_distribution: each rule set's bad debt per scenario, ranked (runs with [[scenarios]]).
CREATE OR REPLACE VIEW scenario_distribution AS
SELECT run_id, rule, scenario, value AS bad_debt_usd,
       rank() OVER (PARTITION BY run_id, rule ORDER BY value) AS loss_rank,
       cume_dist() OVER (PARTITION BY run_id, rule ORDER BY value) AS cume_dist
FROM run_metrics WHERE metric = 'bad_debt_usd' AND scenario <> '*';

-- account_health_start: the stored snapshot valued at each run's start (last price at or before it, any
-- source) with each rule set's per-asset liquidation thresholds: collateral, debt and health factor per
-- account (NULL health factor without debt). Table kinds' per-asset values; groups and haircuts are not applied.
CREATE OR REPLACE VIEW account_health_start AS
WITH rules AS (
    SELECT r.run_id, CAST(json_extract_string(r.config_json, '$.run.start') AS TIMESTAMPTZ) AS start,
           unnest(CAST(json_extract(r.config_json, '$.rules') AS JSON[])) AS rule
    FROM runs r
), thresholds AS (
    SELECT run_id, start, json_extract_string(rule, '$.name') AS rule_name,
           unnest(json_keys(json_extract(rule, '$.assets'))) AS asset, rule
    FROM rules
), lt AS (
    SELECT run_id, start, rule_name AS rule, asset,
           CAST(json_extract(rule, '$.assets."' || asset || '".liquidation_threshold') AS DOUBLE) AS lt
    FROM thresholds
), px AS (
    SELECT l.run_id, l.asset, arg_max(p.price_usd, p.timestamp) AS price_usd
    FROM (SELECT DISTINCT run_id, start, asset FROM lt) l
    JOIN prices p ON p.asset = l.asset AND p.timestamp <= l.start
    GROUP BY ALL
)
SELECT lt.run_id, lt.rule, pos.account,
       sum(pos.collateral * px.price_usd) AS collateral_usd,
       sum(pos.collateral * px.price_usd * lt.lt) AS weighted_collateral_usd,
       sum(pos.debt * px.price_usd) AS debt_usd,
       CASE WHEN sum(pos.debt * px.price_usd) > 0
            THEN sum(pos.collateral * px.price_usd * lt.lt) / sum(pos.debt * px.price_usd) END AS health_factor
FROM lt
JOIN px ON px.run_id = lt.run_id AND px.asset = lt.asset
JOIN positions pos ON pos.asset = lt.asset
GROUP BY ALL;

-- account_health: each account's health factor at the start (the snapshot, account_health_start) and at the end
-- of the replay (account_states, historical-or-any scenario), per run and rule set.
CREATE OR REPLACE VIEW account_health AS
SELECT coalesce(s.run_id, e.run_id) AS run_id, coalesce(s.rule, e.rule) AS rule, e.scenario,
       coalesce(s.account, e.account) AS account, s.health_factor AS hf_start, e.health_factor AS hf_end,
       s.debt_usd AS debt_start_usd, e.debt_usd AS debt_end_usd, e.unrealised_bad_debt_usd, e.written_off
FROM account_health_start s
FULL OUTER JOIN account_states e ON e.run_id = s.run_id AND e.rule = s.rule AND e.account = s.account;

-- run_comparison: run_results (wide: a column per metric) with each rule set's change against the baseline.
CREATE OR REPLACE VIEW run_comparison AS
SELECT r.*, r.bad_debt_usd - b.bad_debt_usd AS bad_debt_change_usd,
       r.liquidations - b.liquidations AS liquidations_change,
       r.liquidation_penalty_usd - b.liquidation_penalty_usd AS penalty_change_usd,
       CASE WHEN b.borrowing_power_usd > 0 THEN r.borrowing_power_usd / b.borrowing_power_usd - 1 END
           AS borrowing_power_change
FROM run_results r
JOIN run_baseline rb ON rb.run_id = r.run_id
LEFT JOIN run_results b ON b.run_id = r.run_id AND b.scenario = r.scenario AND b.rule = rb.baseline;
