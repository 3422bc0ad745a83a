-- Liquidity depth of each asset at $at_us (mbt derive): every venue's last observation at or before it,
-- summed over venues, as the runner carries depth forward (run_liquidity.sql); constant-product reserves
-- are converted with $factor = 1/sqrt(0.98) - 1. Parameters: $assets (VARCHAR[]), $at_us (BIGINT, µs), $factor
SELECT asset, sum(depth_usd) AS depth_usd, count(*) AS venues
FROM (
    SELECT asset, venue, coalesce(depth_usd_2pct, reserve_quote * $factor) AS depth_usd
    FROM liquidity
    WHERE list_contains($assets, asset) AND epoch_us(timestamp) <= $at_us
    QUALIFY row_number() OVER (PARTITION BY asset, venue ORDER BY timestamp DESC) = 1
)
GROUP BY asset
ORDER BY asset;
