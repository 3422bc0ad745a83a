-- Block headers of one chunk, staged as _rpc_blocks (timestamp in unix seconds).
INSERT OR REPLACE INTO rpc_blocks (chain_id, number, hash, timestamp)
SELECT $chain_id, number, hash, to_timestamp(timestamp) FROM _rpc_blocks;
