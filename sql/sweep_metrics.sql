-- Per-scenario metrics of a run (the inputs of its scenario = '*' rows).
SELECT rule, scenario, metric, value FROM run_metrics WHERE run_id = $run_id AND scenario <> '*';
