-- Stored phases of a Chainlink stream: aggregator, decimals, switch block.
SELECT phase, aggregator, decimals, activated_block FROM rpc_phases WHERE stream = $stream ORDER BY phase;
