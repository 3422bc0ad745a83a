-- Rounds of a Chainlink stream recovered with getRoundData (no log gives them back: a re-decode keeps them).
SELECT phase, agg_round, answer, epoch(updated_at)::BIGINT AS updated_at, block FROM chainlink_rounds
WHERE stream = $stream AND origin = 'getRoundData' ORDER BY phase, agg_round;
