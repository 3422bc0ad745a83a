-- Every metric row of a run (per scenario and scenario = '*').
SELECT rule, scenario, metric, value FROM run_metrics WHERE run_id = $run_id;
