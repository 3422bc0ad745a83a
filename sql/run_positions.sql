-- The snapshot a run starts from as (account index, asset index, amounts), summed over markets per
-- (account, asset) for kind = "asset". Parameters: $assets (VARCHAR[], column order)
SELECT a.ai, CAST(list_position($assets, p.asset) - 1 AS BIGINT) AS ki,
       sum(p.collateral) AS collateral, sum(p.debt) AS debt
FROM positions AS p JOIN _run_accounts AS a USING (account)
GROUP BY a.ai, p.asset;
