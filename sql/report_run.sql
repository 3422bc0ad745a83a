-- One run's row (mbt report).
SELECT run_id, name, created_at, config_json, config_hash, data_fingerprint, mbt_version, engine, grid_steps,
       accounts, assets, command
FROM runs WHERE run_id = $run_id;
