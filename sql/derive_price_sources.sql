-- The assets with stored prices, each source's last price time (mbt derive: the assets, the source, the
-- default --at). No parameters.
SELECT asset, source, epoch_us(max(timestamp)) AS last_us
FROM prices
GROUP BY asset, source
ORDER BY asset, source;
