-- Snapshot rows with their market ids (kind = "isolated"). Parameters: $assets (VARCHAR[], column order)
SELECT a.ai, CAST(list_position($assets, p.asset) - 1 AS BIGINT) AS ki, p.market, p.collateral, p.debt
FROM positions AS p JOIN _run_accounts AS a USING (account)
ORDER BY a.ai, ki, p.market;
