-- One asset's prices from one source at or before $at_us (mbt derive), in time order. Rows at one timestamp
-- come by round_id, so the last of them (the highest round, DESIGN §3) is the one a daily close takes.
-- Parameters: $asset, $source (VARCHAR), $at_us (BIGINT, µs since the epoch)
SELECT epoch_us(timestamp) AS ts_us, price_usd
FROM prices
WHERE asset = $asset AND source = $source AND epoch_us(timestamp) <= $at_us
ORDER BY timestamp, round_id;
