-- A stream's stored logs in chain order (for re-decoding), in the column order of LOG_SCHEMA.
SELECT block, log_index, block_hash, tx_hash, tx_index, address, topic0, topic1, topic2, topic3, data
FROM raw_logs WHERE stream = $stream ORDER BY block, log_index;
