-- DESIGN §5b ingest_state: the stream is complete up to last_block (inclusive), whose hash is recorded.
INSERT OR REPLACE INTO ingest_state (source, stream, last_block, last_block_hash, updated_at)
VALUES ($source, $stream, $last_block, $last_block_hash, now());
