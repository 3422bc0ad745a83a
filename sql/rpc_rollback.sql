-- Undo everything a stream stored above $block (a reorg replaced those blocks), in one transaction.
-- Prices first: they are found through the rounds that are about to be deleted.
DELETE FROM prices p
WHERE p.source = 'chainlink' AND p.asset = $asset
  AND EXISTS (SELECT 1 FROM chainlink_rounds r
              WHERE r.stream = $stream AND r.block > $block AND r.round_id = p.round_id AND r.updated_at = p.timestamp);
DELETE FROM chainlink_rounds WHERE stream = $stream AND block > $block;
DELETE FROM raw_logs WHERE stream = $stream AND block > $block;
DELETE FROM rpc_checkpoints WHERE stream = $stream AND block > $block;
DELETE FROM rpc_blocks WHERE chain_id = $chain_id AND number > $block;
DELETE FROM rpc_phases WHERE stream = $stream AND activated_block > $block;
UPDATE ingest_state SET last_block = $block, last_block_hash = $block_hash, updated_at = now()
WHERE source = $source AND stream = $stream;
