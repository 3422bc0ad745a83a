-- The last block of a committed chunk and its hash.
INSERT OR REPLACE INTO rpc_checkpoints (stream, block, block_hash) VALUES ($stream, $block, $block_hash);
