-- Price observations a run reads: one source per asset, rows up to the run's end,
-- several rows at one timestamp resolved to the highest round_id (DESIGN §3).
-- Parameters: $assets (VARCHAR[]), $sources (VARCHAR[], same order), $end (TIMESTAMPTZ)
SELECT p.asset,
       epoch_us(p.timestamp)                AS ts_us,
       arg_max(p.price_usd, p.round_id)     AS price_usd
FROM prices AS p
JOIN (SELECT unnest($assets) AS asset, unnest($sources) AS source) AS s
  ON p.asset = s.asset AND p.source = s.source
WHERE p.timestamp <= $end
GROUP BY p.asset, p.timestamp
ORDER BY p.asset, ts_us;
