-- Unix timestamps of stored block headers.
SELECT number, epoch(timestamp)::BIGINT FROM rpc_blocks WHERE chain_id = $chain_id AND list_contains($blocks, number);
