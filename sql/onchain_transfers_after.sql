-- aToken transfers after a block with their block timestamps (mbt positions --save).
SELECT t.block, t.log_index, t.tx_hash, t.reserve, t.account, t.other, t.value, t.idx, epoch(b.timestamp)::BIGINT
FROM aave_token_events t LEFT JOIN rpc_blocks b ON b.chain_id = $chain_id AND b.number = t.block
WHERE t.stream = $stream AND t.block > $block AND t.kind = 'transfer' AND t.side = 'collateral'
ORDER BY t.block, t.log_index;
