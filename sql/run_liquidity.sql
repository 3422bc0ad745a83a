-- Liquidity depth observations (kind = "liquidity-haircut"): depth_usd_2pct, or constant-product reserves
-- converted with $factor = 1/sqrt(0.98) - 1. Parameters: $assets (VARCHAR[]), $end, $factor
SELECT asset, venue, epoch_us(timestamp) AS ts_us,
       coalesce(depth_usd_2pct, reserve_quote * $factor) AS depth_usd
FROM liquidity
WHERE list_contains($assets, asset) AND timestamp <= $end
ORDER BY asset, venue, ts_us;
