-- Ingested on-chain streams (endpoints are stored redacted: scheme://host[:port] only).
SELECT source, feed, asset, first_block, endpoint FROM rpc_feeds ORDER BY source, feed;
