-- The swept values of a run's rule sets.
SELECT rule, key, value FROM sweep_points WHERE run_id = $run_id ORDER BY rule, key;
