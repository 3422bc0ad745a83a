-- Before re-decoding a stream from raw_logs: drop its prices and the rounds decoded from logs
-- (rounds recovered with getRoundData have no log to be decoded from, so they stay).
DELETE FROM prices p
WHERE p.source = 'chainlink' AND p.asset = $asset
  AND EXISTS (SELECT 1 FROM chainlink_rounds r
              WHERE r.stream = $stream AND r.round_id = p.round_id AND r.updated_at = p.timestamp);
DELETE FROM chainlink_rounds WHERE stream = $stream AND origin <> 'getRoundData';
