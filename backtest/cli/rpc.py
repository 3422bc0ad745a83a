"""``mbt ingest rpc``: registered on the ``ingest`` group (issue 5 fills this in)."""
