-- A stored run's canonical config.
SELECT config_json FROM runs WHERE run_id = $run_id;
