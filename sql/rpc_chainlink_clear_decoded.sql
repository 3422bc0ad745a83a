-- Before re-decoding a stream from raw_logs: drop its prices and rounds (the caller has read the rounds
-- recovered with getRoundData, which no log can give back, and inserts them again).
DELETE FROM prices p
WHERE p.source = 'chainlink' AND p.asset = $asset
  AND EXISTS (SELECT 1 FROM chainlink_rounds r
              WHERE r.stream = $stream AND r.round_id = p.round_id AND r.updated_at = p.timestamp);
DELETE FROM chainlink_rounds WHERE stream = $stream;
