-- Price observations a run reads: one source per asset, rows up to the run's end, as (asset index, µs,
-- round, price). Several rows at one timestamp are resolved to the highest round_id (DESIGN §3) by the
-- runner, which also sorts if the rows do not come back in (ki, ts_us, round_id) order: a plain scan keeps
-- the insertion order, and sorting tens of millions of already ordered rows here would double the read.
-- Parameters: $assets (VARCHAR[]), $sources (VARCHAR[], same order), $end (TIMESTAMPTZ)
SELECT s.ki,
       epoch_us(p.timestamp) AS ts_us,
       p.round_id,
       p.price_usd
FROM prices AS p
JOIN (SELECT unnest($assets) AS asset, unnest($sources) AS source,
             unnest(range(CAST(len($assets) AS BIGINT))) AS ki) AS s
  ON p.asset = s.asset AND p.source = s.source
WHERE p.timestamp <= $end;
