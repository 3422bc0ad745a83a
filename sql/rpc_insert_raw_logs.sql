-- Logs of one chunk, staged as _rpc_raw_logs (hex fields as bytes).
INSERT INTO raw_logs
    (stream, block, log_index, block_hash, tx_hash, tx_index, address, topic0, topic1, topic2, topic3, data)
SELECT $stream, block, log_index, block_hash, tx_hash, tx_index, address, topic0, topic1, topic2, topic3, data
FROM _rpc_raw_logs;
