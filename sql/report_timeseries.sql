-- One scenario's time series of a run, per rule set (mbt report).
SELECT rule, ts, bad_debt_usd, liquidations, debt_usd, collateral_usd FROM timeseries
WHERE run_id = $run_id AND scenario = $scenario ORDER BY rule, ts;
