-- One stream's description (rpc_feeds); written with every committed chunk so it never lags the data.
INSERT OR REPLACE INTO rpc_feeds
    (stream, source, chain_id, feed, description, asset, quote_asset, quote_source, all_rounds, first_block,
     endpoint, updated_at)
VALUES ($stream, $source, $chain_id, $feed, $description, $asset, $quote_asset, $quote_source, $all_rounds,
        $first_block, $endpoint, now());
