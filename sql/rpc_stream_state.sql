-- A stream's stored coverage (rpc_feeds.first_block .. ingest_state.last_block) and its settings.
SELECT f.first_block, s.last_block, s.last_block_hash, f.chain_id,
       f.feed, f.description, f.asset, f.quote_asset, f.quote_source, f.all_rounds
FROM rpc_feeds f JOIN ingest_state s ON s.source = f.source AND s.stream = f.stream
WHERE f.source = $source AND f.stream = $stream;
