-- Which price sources each asset has. Parameters: $assets (VARCHAR[])
SELECT asset, list(DISTINCT source ORDER BY source) AS sources
FROM prices
WHERE list_contains($assets, asset)
GROUP BY asset;
