-- Per-account health factor at the run's start under each rule set (mbt report).
SELECT rule, account, weighted_collateral_usd, debt_usd, health_factor FROM account_health_start
WHERE run_id = $run_id AND debt_usd > 0;
