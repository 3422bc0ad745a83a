-- Tables of `mbt ingest rpc` (docs/rpc.md). Applied after schema.sql on every writable open, idempotently.
-- A stream is one feed on one chain: '<chain id>:<proxy address, lower case>'. Everything a chunk of
-- blocks adds (raw logs, rounds, prices, headers, checkpoint) is committed in one transaction together
-- with ingest_state (schema.sql), so a run killed at any point leaves a consistent prefix.

-- One row per stream: what the feed is and how it is stored. RPC endpoints are kept only as
-- scheme://host[:port] (never a path, query or userinfo: those carry API keys).
CREATE TABLE IF NOT EXISTS rpc_feeds (
    stream       VARCHAR PRIMARY KEY,
    source       VARCHAR NOT NULL,      -- 'chainlink'
    chain_id     BIGINT NOT NULL,
    feed         VARCHAR NOT NULL,      -- proxy address, lower case
    description  VARCHAR NOT NULL,      -- the proxy's description(), e.g. 'USDC / USD'
    asset        VARCHAR NOT NULL,      -- prices.asset of this stream
    quote_asset  VARCHAR,               -- NULL: the feed is quoted in USD
    quote_source VARCHAR,
    all_rounds   BOOLEAN NOT NULL,      -- true: every round of every phase aggregator is stored
    first_block  BIGINT NOT NULL,       -- stored coverage is first_block .. ingest_state.last_block
    endpoint     VARCHAR NOT NULL,      -- redacted endpoint(s) of the last run
    updated_at   TIMESTAMPTZ NOT NULL
);

-- The proxy's phases: aggregator, its decimals, and the block at which the proxy switched to it.
CREATE TABLE IF NOT EXISTS rpc_phases (
    stream          VARCHAR NOT NULL,
    phase           INTEGER NOT NULL,
    aggregator      VARCHAR NOT NULL,
    decimals        INTEGER NOT NULL,
    activated_block BIGINT,             -- NULL when unknown (--all-rounds does not need it)
    PRIMARY KEY (stream, phase)
);

-- Every log fetched, exactly as the node returned it, so rounds and prices can be decoded again
-- (`mbt ingest rpc --redecode`) without asking the node. Hex fields are stored as the bytes they spell
-- (half the size of hex text, and 2-3x faster to write); '0x' || lower(hex(data)) gives the text back.
CREATE TABLE IF NOT EXISTS raw_logs (
    stream       VARCHAR NOT NULL,
    block        BIGINT NOT NULL,
    log_index    BIGINT NOT NULL,
    block_hash   BLOB NOT NULL,
    tx_hash      BLOB NOT NULL,
    tx_index     BIGINT NOT NULL,
    address      BLOB NOT NULL,
    topic0       BLOB,
    topic1       BLOB,
    topic2       BLOB,
    topic3       BLOB,
    data         BLOB NOT NULL
    -- Unique on (stream, block, log_index), kept so by the writes (rpc_clear_chunk deletes a chunk's blocks
    -- before they are inserted). No PRIMARY KEY: its index makes the largest table several times slower
    -- to write, and every write already covers whole chunks.
);

-- Decoded rounds (one per phase and aggregator round). answer is the raw integer as text (int256 does
-- not fit any SQL integer type); price = answer / 10^decimals in the feed's quote unit.
CREATE TABLE IF NOT EXISTS chainlink_rounds (
    stream     VARCHAR NOT NULL,
    phase      INTEGER NOT NULL,
    agg_round  BIGINT NOT NULL,
    round_id   HUGEINT NOT NULL,        -- (phase << 64) | agg_round
    answer     VARCHAR NOT NULL,
    price      DOUBLE NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    block      BIGINT NOT NULL,
    log_index  BIGINT,                  -- NULL for rounds recovered with getRoundData
    origin     VARCHAR NOT NULL         -- 'AnswerUpdated' | 'NewTransmission' | 'getRoundData'
    -- Unique on (stream, phase, agg_round), kept so like raw_logs (rpc_clear_chunk before each insert).
);

-- Block headers seen (timestamps for NewTransmission-only rounds, hashes for reorg checks).
CREATE TABLE IF NOT EXISTS rpc_blocks (
    chain_id  BIGINT NOT NULL,
    number    BIGINT NOT NULL,
    hash      VARCHAR NOT NULL,
    timestamp TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (chain_id, number)
);

-- The last block of every committed chunk and its hash: where a reorg check can resume from.
CREATE TABLE IF NOT EXISTS rpc_checkpoints (
    stream     VARCHAR NOT NULL,
    block      BIGINT NOT NULL,
    block_hash VARCHAR NOT NULL,
    PRIMARY KEY (stream, block)
);
