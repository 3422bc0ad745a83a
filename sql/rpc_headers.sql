-- Stored headers of the block numbers staged as _rpc_numbers.
SELECT b.number, b.hash, epoch(b.timestamp)::BIGINT AS timestamp
FROM rpc_blocks b JOIN _rpc_numbers n ON b.number = n.number
WHERE b.chain_id = $chain_id;
