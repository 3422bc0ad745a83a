-- The (rule, scenario) jobs of a sweep already committed.
SELECT rule, scenario FROM sweep_jobs WHERE run_id = $run_id;
