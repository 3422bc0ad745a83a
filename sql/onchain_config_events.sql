-- Parameter events of a market up to a block, in chain order.
SELECT event, asset, category, v1, v2, v3, flag, label, address FROM aave_config_events
WHERE stream = $stream AND block <= $block ORDER BY block, log_index;
