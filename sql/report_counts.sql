-- Snapshot and ledger sizes (mbt report).
SELECT (SELECT count(*) FROM positions), (SELECT count(DISTINCT account) FROM positions), (SELECT count(*) FROM events),
       (SELECT min(timestamp) FROM events), (SELECT max(timestamp) FROM events);
