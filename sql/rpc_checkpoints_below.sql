-- Up to $limit checkpoints of a stream at or below $block, highest first (reorg search).
SELECT block, block_hash FROM rpc_checkpoints WHERE stream = $stream AND block <= $block
ORDER BY block DESC LIMIT $limit;
