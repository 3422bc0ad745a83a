-- Undo what the driver stored for a stream above $block (a reorg replaced those blocks); run in the same
-- transaction right after the source's own rollback file (which may find its rows through these tables).
DELETE FROM raw_logs WHERE stream = $stream AND block > $block;
DELETE FROM rpc_checkpoints WHERE stream = $stream AND block > $block;
DELETE FROM rpc_blocks WHERE chain_id = $chain_id AND number > $block;
UPDATE ingest_state SET last_block = $block, last_block_hash = $block_hash, updated_at = now()
WHERE source = $source AND stream = $stream;
