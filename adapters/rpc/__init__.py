"""JSON-RPC adapters (DESIGN §1): fetch and map only; they never hold the database connection.

``transport`` (HTTP, retries, rate limit, fail-over, batching) and ``chain`` (adaptive ``eth_getLogs``
ranges, block headers) serve every RPC source; ``chainlink`` and ``chainlink_logs`` are the Chainlink
price-feed source; ``redact`` keeps endpoint credentials out of all output.
"""
