-- One run's metrics (mbt report).
SELECT rule, kind, scenario, metric, value FROM run_metrics WHERE run_id = $run_id;
