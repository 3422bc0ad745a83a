-- Undo the Chainlink rows of a stream above $block (reorg repair). Prices first: they are found through
-- the rounds that are about to be deleted. Phases the proxy switched to later go too.
DELETE FROM prices p
WHERE p.source = 'chainlink' AND p.asset = $asset
  AND EXISTS (SELECT 1 FROM chainlink_rounds r
              WHERE r.stream = $stream AND r.block > $block AND r.round_id = p.round_id AND r.updated_at = p.timestamp);
DELETE FROM chainlink_rounds WHERE stream = $stream AND block > $block;
DELETE FROM rpc_phases WHERE stream = $stream AND activated_block > $block;
