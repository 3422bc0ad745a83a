-- The market's user actions after a block, with their block timestamps (mbt positions --save).
SELECT e.block, e.log_index, e.tx_hash, e.event, e.reserve, e."user", e.amount, e.flag, epoch(b.timestamp)::BIGINT
FROM aave_pool_events e LEFT JOIN rpc_blocks b ON b.chain_id = $chain_id AND b.number = e.block
WHERE e.stream = $stream AND e.block > $block AND e.event IN ('Supply', 'Deposit', 'Withdraw', 'Borrow', 'Repay')
ORDER BY e.block, e.log_index;
