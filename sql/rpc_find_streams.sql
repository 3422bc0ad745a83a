-- The streams of one source key (rpc_feeds.feed, e.g. a proxy address) on every chain.
SELECT stream FROM rpc_feeds WHERE source = $source AND feed = $key ORDER BY stream;
