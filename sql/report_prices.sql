-- Price provenance for a run's assets: sources with time ranges, row counts and block ranges (mbt report).
SELECT asset, source, count(*) AS rows, min(timestamp) AS first, max(timestamp) AS last, min(block), max(block)
FROM prices WHERE list_contains($assets, asset) GROUP BY asset, source ORDER BY asset, source;
