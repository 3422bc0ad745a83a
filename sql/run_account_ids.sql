-- Account ids of the run in engine order (after run_accounts.sql built _run_accounts).
SELECT account FROM _run_accounts ORDER BY ai;
