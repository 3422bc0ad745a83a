-- Rounds of one chunk, staged as _rpc_rounds (updated_at in unix seconds; answer as decimal text).
INSERT INTO chainlink_rounds
    (stream, phase, agg_round, round_id, answer, price, updated_at, block, log_index, origin)
SELECT $stream, phase, agg_round, (CAST(phase AS HUGEINT) << 64) | CAST(agg_round AS HUGEINT), answer, price,
       to_timestamp(updated_at), block, log_index, origin
FROM _rpc_rounds;
