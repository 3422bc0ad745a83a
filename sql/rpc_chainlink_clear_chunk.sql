-- Before a Chainlink chunk (blocks $lo..$hi) is inserted: remove the stream's rounds in those blocks
-- (chainlink_rounds has no primary key; see schema_rpc.sql).
DELETE FROM chainlink_rounds WHERE stream = $stream AND block BETWEEN $lo AND $hi;
