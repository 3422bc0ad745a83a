-- USD prices of a quote asset from one source, one per timestamp (the highest round_id wins, DESIGN §3),
-- as unix microseconds for an as-of lookup.
SELECT epoch_us(timestamp) AS ts_us, arg_max(price_usd, round_id) AS price_usd
FROM prices
WHERE asset = $asset AND source = $source
GROUP BY timestamp
ORDER BY timestamp;
