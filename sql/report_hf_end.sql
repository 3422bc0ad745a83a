-- Per-account health factor at the end of one scenario of a run (account_states; mbt report).
SELECT rule, account, maintenance_usd, debt_usd, health_factor FROM account_states
WHERE run_id = $run_id AND scenario = $scenario AND debt_usd > 0;
