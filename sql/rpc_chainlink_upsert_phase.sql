-- One phase of a stream's proxy.
INSERT OR REPLACE INTO rpc_phases (stream, phase, aggregator, decimals, activated_block)
VALUES ($stream, $phase, $aggregator, $decimals, $activated_block);
