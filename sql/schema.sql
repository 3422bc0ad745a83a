-- mbt database schema (DESIGN §5b). Applied idempotently on every writable open.
-- Schema version is stored in mbt_meta; bump it (and add a migration) when a table changes.
CREATE TABLE IF NOT EXISTS mbt_meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS prices (
    asset     VARCHAR NOT NULL,
    source    VARCHAR NOT NULL,
    timestamp TIMESTAMPTZ NOT NULL,
    round_id  HUGEINT NOT NULL,
    price_usd DOUBLE NOT NULL,
    block     BIGINT,
    PRIMARY KEY (asset, source, timestamp, round_id)
);

CREATE TABLE IF NOT EXISTS positions (
    account    VARCHAR NOT NULL,
    asset      VARCHAR NOT NULL,
    market     VARCHAR NOT NULL,
    emode      VARCHAR,
    collateral DOUBLE NOT NULL,
    debt       DOUBLE NOT NULL,
    PRIMARY KEY (account, asset, market)
);

CREATE TABLE IF NOT EXISTS events (
    timestamp TIMESTAMPTZ NOT NULL,
    account   VARCHAR NOT NULL,
    asset     VARCHAR NOT NULL,
    action    VARCHAR NOT NULL,
    amount    DOUBLE NOT NULL,
    block     BIGINT,
    log_index BIGINT,
    tx_hash   VARCHAR NOT NULL,
    market    VARCHAR NOT NULL,
    seq       BIGINT NOT NULL   -- load order: the "file row" tie-break of DESIGN §4
);

CREATE TABLE IF NOT EXISTS liquidity (
    asset          VARCHAR NOT NULL,
    timestamp      TIMESTAMPTZ NOT NULL,
    venue          VARCHAR NOT NULL,
    depth_usd_2pct DOUBLE,
    reserve_asset  DOUBLE,
    reserve_quote  DOUBLE,
    PRIMARY KEY (asset, timestamp, venue)
);

CREATE TABLE IF NOT EXISTS ingest_state (
    source          VARCHAR NOT NULL,
    stream          VARCHAR NOT NULL,
    last_block      BIGINT,
    last_block_hash VARCHAR,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, stream)
);

CREATE TABLE IF NOT EXISTS runs (
    run_id           VARCHAR PRIMARY KEY,
    name             VARCHAR NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    config_json      VARCHAR NOT NULL,
    config_hash      VARCHAR NOT NULL,
    data_fingerprint VARCHAR NOT NULL,
    mbt_version      VARCHAR NOT NULL,
    engine           VARCHAR,
    grid_steps       BIGINT,
    accounts         BIGINT,
    assets           VARCHAR[]
);

CREATE TABLE IF NOT EXISTS run_metrics (
    run_id   VARCHAR NOT NULL,
    rule     VARCHAR NOT NULL,
    kind     VARCHAR NOT NULL,
    scenario VARCHAR NOT NULL,
    metric   VARCHAR NOT NULL,
    value    DOUBLE
);

CREATE TABLE IF NOT EXISTS liquidations (
    run_id            VARCHAR NOT NULL,
    rule              VARCHAR NOT NULL,
    scenario          VARCHAR NOT NULL,
    ts                TIMESTAMPTZ NOT NULL,
    account           VARCHAR USING COMPRESSION uncompressed NOT NULL,  -- see docs/architecture.md, "Writes"
    debt_asset        VARCHAR NOT NULL,
    collateral_asset  VARCHAR NOT NULL,
    debt_repaid       DOUBLE NOT NULL,
    collateral_seized DOUBLE NOT NULL,
    debt_repaid_usd   DOUBLE NOT NULL,
    penalty_usd       DOUBLE NOT NULL,
    call              BIGINT NOT NULL   -- order of the call within the run (per rule and scenario)
);

CREATE TABLE IF NOT EXISTS timeseries (
    run_id         VARCHAR NOT NULL,
    rule           VARCHAR NOT NULL,
    scenario       VARCHAR NOT NULL,
    ts             TIMESTAMPTZ NOT NULL,
    collateral_usd DOUBLE NOT NULL,
    debt_usd       DOUBLE NOT NULL,
    bad_debt_usd   DOUBLE NOT NULL,
    liquidations   BIGINT NOT NULL
);

-- Added with the Aave liquidation models: collateral units of each call that went to the protocol.
ALTER TABLE liquidations ADD COLUMN IF NOT EXISTS protocol_fee DOUBLE;

-- The command that made a run (mbt report's reproducibility footer; paths as given, no secrets).
ALTER TABLE runs ADD COLUMN IF NOT EXISTS command VARCHAR;
