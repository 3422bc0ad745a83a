"""What a run produces: metrics (DESIGN §5) and the result tables (§5b)."""
