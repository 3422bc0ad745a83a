"""Every way data gets into the database: files (CSV, Parquet) and chain logs (JSON-RPC sources).

- ``files``: ``mbt ingest csv|parquet`` — validate every file first (``adapters.csv`` / ``adapters.parquet``),
  then one store transaction for all of them;
- ``driver``: the chunked, resumable, reorg-aware log-ingest driver of ``mbt ingest rpc``, generic over
  the source plug-ins of ``adapters.rpc.sources`` (Chainlink is the first);
- ``rpc_store``: the driver's reads and writes (raw logs, checkpoints, ``ingest_state``, each source's
  frames), all through ``sql/rpc_*.sql``.

The CLI only wires options to these functions; adapters fetch and map, the store writes.
"""
