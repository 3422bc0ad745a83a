-- Events a run applies: after start, up to the last grid point, in application order
-- (timestamp, block, log_index, file row; a missing block/log_index sorts first).
-- Parameters: $start, $end (TIMESTAMPTZ), $assets (VARCHAR[], column order)
SELECT epoch_us(e.timestamp) AS ts_us, a.ai,
       CAST(list_position($assets, e.asset) - 1 AS BIGINT) AS ki,
       CAST(CASE e.action WHEN 'supply' THEN 0 WHEN 'withdraw' THEN 1 WHEN 'borrow' THEN 2 ELSE 3 END AS TINYINT)
           AS action,
       e.amount, e.market
FROM events AS e JOIN _run_accounts AS a USING (account)
WHERE e.timestamp > $start AND e.timestamp <= $end
ORDER BY e.timestamp, e.block NULLS FIRST, e.log_index NULLS FIRST, e.seq;
