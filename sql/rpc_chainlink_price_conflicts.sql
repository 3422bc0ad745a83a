-- The first staged price (_rpc_prices) whose key is stored with a different value (DESIGN §2 semantics,
-- an identical row is a no-op, a different one is an error unless --overwrite).
SELECT n.asset, to_timestamp(n.updated_at) AS timestamp,
       (CAST(n.phase AS HUGEINT) << 64) | CAST(n.agg_round AS HUGEINT) AS round_id,
       e.price_usd AS stored_price, n.price_usd AS new_price, e.block AS stored_block, n.block AS new_block
FROM _rpc_prices n
JOIN prices e
  ON e.asset = n.asset AND e.source = 'chainlink' AND e.timestamp = to_timestamp(n.updated_at)
 AND e.round_id = (CAST(n.phase AS HUGEINT) << 64) | CAST(n.agg_round AS HUGEINT)
WHERE e.price_usd IS DISTINCT FROM n.price_usd OR e.block IS DISTINCT FROM n.block
ORDER BY n.updated_at, n.phase, n.agg_round
LIMIT 1;
