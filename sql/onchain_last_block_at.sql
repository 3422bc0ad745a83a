-- The last stored block of a range at or before an instant (unix seconds).
SELECT max(number) FROM rpc_blocks
WHERE chain_id = $chain_id AND number BETWEEN $lo AND $hi AND epoch(timestamp) <= $ts;
