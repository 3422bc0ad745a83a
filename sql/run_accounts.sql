-- Dense account numbering for a run: every account of the snapshot plus every account that appears
-- in the run's events. Parameters: $start, $end (TIMESTAMPTZ)
CREATE OR REPLACE TEMP TABLE _run_accounts AS
SELECT account, CAST(row_number() OVER (ORDER BY account) - 1 AS BIGINT) AS ai
FROM (SELECT account FROM positions
      UNION
      SELECT account FROM events WHERE timestamp > $start AND timestamp <= $end);
