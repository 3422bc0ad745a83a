-- Before a chunk (blocks $lo..$hi) is inserted: remove the raw logs the stream holds in those blocks, so
-- that committing the same chunk twice stores it once (raw_logs has no primary key). Each source's
-- clear_chunk file does the same for its own tables.
DELETE FROM raw_logs WHERE stream = $stream AND block BETWEEN $lo AND $hi;
