-- Distinct prices.source values stored for one asset (choosing a quote asset's prices).
SELECT DISTINCT source FROM prices WHERE asset = $asset ORDER BY 1;
