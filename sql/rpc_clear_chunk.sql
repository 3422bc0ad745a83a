-- Before a chunk (blocks $lo..$hi) is inserted: remove whatever the stream holds in those blocks, so that
-- committing the same chunk twice stores it once (raw_logs and chainlink_rounds have no primary key).
DELETE FROM raw_logs WHERE stream = $stream AND block BETWEEN $lo AND $hi;
DELETE FROM chainlink_rounds WHERE stream = $stream AND block BETWEEN $lo AND $hi;
