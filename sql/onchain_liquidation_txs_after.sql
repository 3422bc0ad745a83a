-- Transactions with an on-chain liquidation after a block.
SELECT block, tx_hash FROM aave_liquidations WHERE stream = $stream AND block > $block;
