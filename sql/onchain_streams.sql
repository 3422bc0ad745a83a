-- The Aave markets ingested into this database (mbt positions / mbt params).
SELECT stream FROM aave_markets ORDER BY stream;
