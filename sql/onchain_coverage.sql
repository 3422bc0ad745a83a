-- The ingested block range of a stream.
SELECT f.first_block, s.last_block FROM rpc_feeds f
JOIN ingest_state s ON s.stream = f.stream AND s.source = f.source WHERE f.stream = $stream;
