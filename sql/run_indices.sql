-- Interest index observations of the run's assets up to its end. Parameters: $assets, $end
SELECT asset, epoch_us(timestamp) AS ts_us, liquidity_index, variable_borrow_index
FROM indices
WHERE list_contains($assets, asset) AND timestamp <= $end
ORDER BY asset, ts_us;
