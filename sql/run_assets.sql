-- Assets a run needs: those of the snapshot (they define the grid) and those of its events.
-- Parameters: $start, $end (TIMESTAMPTZ)
SELECT asset, bool_or(in_positions) AS in_positions
FROM (SELECT DISTINCT asset, true AS in_positions FROM positions
      UNION ALL
      SELECT DISTINCT asset, false FROM events WHERE timestamp > $start AND timestamp <= $end)
GROUP BY asset;
