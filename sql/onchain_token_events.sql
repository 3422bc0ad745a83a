-- aToken / variable-debt token events of a market in chain order (the scaled-balance ledger's input).
SELECT block, log_index, token, reserve, side, kind, account, other, value, balance_increase, idx
FROM aave_token_events WHERE stream = $stream ORDER BY block, log_index;
