-- Tables of `mbt ingest rpc --source aave-v3 | aave-v2` (docs/onchain.md). A stream is one Pool on one chain:
-- '<chain id>:<pool address, lower case>' (its rpc_feeds row: feed = the pool, asset = the market label).
-- Raw integers of the chain (amounts, scaled balances, indices, rates) are HUGEINT: exact, never a float.
-- Every row is a pure function of one log (plus the block's timestamp); scaled balances are derived from
-- aave_token_events in chain order (backtest.onchain.aave).

-- The market: version and the contracts found from the Pool (written with every run's first chunk).
CREATE TABLE IF NOT EXISTS aave_markets (
    stream             VARCHAR PRIMARY KEY,
    version            VARCHAR NOT NULL,   -- 'v3.7', 'v2', ... (rounding and event shapes)
    pool               VARCHAR NOT NULL,
    addresses_provider VARCHAR,
    configurator       VARCHAR,
    oracle             VARCHAR
);

-- The market's reserves as discovered from the Pool (getReservesList, getReserveData) at ingest.
CREATE TABLE IF NOT EXISTS aave_reserves (
    stream      VARCHAR NOT NULL,
    reserve     VARCHAR NOT NULL,      -- underlying token, lower case
    symbol      VARCHAR NOT NULL,
    decimals    INTEGER NOT NULL,
    a_token     VARCHAR NOT NULL,
    debt_token  VARCHAR NOT NULL,      -- variable-debt token
    reserve_id  INTEGER NOT NULL,      -- position in getReservesList (the bit of getUserConfiguration)
    PRIMARY KEY (stream, reserve)
);

-- Mint / Burn / BalanceTransfer of the market's aTokens (side 'collateral') and variable-debt tokens ('debt').
CREATE TABLE IF NOT EXISTS aave_token_events (
    stream           VARCHAR NOT NULL,
    block            BIGINT NOT NULL,
    log_index        BIGINT NOT NULL,
    tx_hash          VARCHAR NOT NULL,
    token            VARCHAR NOT NULL,
    reserve          VARCHAR NOT NULL,
    side             VARCHAR NOT NULL,  -- 'collateral' | 'debt'
    kind             VARCHAR NOT NULL,  -- 'mint' | 'burn' | 'transfer'
    account          VARCHAR NOT NULL,  -- whose balance: onBehalfOf (mint), from (burn, transfer)
    other            VARCHAR NOT NULL,  -- caller (mint), target (burn), to (transfer)
    value            HUGEINT NOT NULL,  -- as emitted (transfer: scaled units in v3, underlying in v2)
    balance_increase HUGEINT NOT NULL,  -- interest accrued since the account's last action (v3; 0 in v2)
    idx              HUGEINT NOT NULL   -- the index the token used (ray)
);

-- ReserveDataUpdated, and the state updates the Pool makes without that event (origin 'updateState').
CREATE TABLE IF NOT EXISTS aave_reserve_updates (
    stream          VARCHAR NOT NULL,
    block           BIGINT NOT NULL,
    log_index       BIGINT NOT NULL,
    tx_hash         VARCHAR NOT NULL,
    reserve         VARCHAR NOT NULL,
    liquidity_rate  HUGEINT NOT NULL,   -- ray per year
    stable_rate     HUGEINT NOT NULL,
    variable_rate   HUGEINT NOT NULL,
    liquidity_index HUGEINT NOT NULL,   -- ray
    variable_index  HUGEINT NOT NULL,
    ts              BIGINT NOT NULL,    -- unix seconds of the block: the reserve's lastUpdateTimestamp
    origin          VARCHAR NOT NULL
);

-- The Pool's user-facing events: Supply/Deposit, Withdraw, Borrow, Repay, ReserveUsedAsCollateral*,
-- UserEModeSet, DeficitCreated/Covered.
CREATE TABLE IF NOT EXISTS aave_pool_events (
    stream    VARCHAR NOT NULL,
    block     BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    tx_hash   VARCHAR NOT NULL,
    event     VARCHAR NOT NULL,
    reserve   VARCHAR,
    "user"    VARCHAR,                  -- whose position (onBehalfOf for supply and borrow)
    other     VARCHAR,                  -- caller / to / repayer
    amount    HUGEINT,
    flag      BOOLEAN,                  -- Repay: useATokens; collateral events: enabled
    category  BIGINT                    -- UserEModeSet: the category; Borrow: the rate mode
);

-- LiquidationCall as the chain recorded it (the on-chain liquidations to compare a replay with).
CREATE TABLE IF NOT EXISTS aave_liquidations (
    stream            VARCHAR NOT NULL,
    block             BIGINT NOT NULL,
    log_index         BIGINT NOT NULL,
    tx_hash           VARCHAR NOT NULL,
    "user"            VARCHAR NOT NULL,
    collateral_asset  VARCHAR NOT NULL,
    debt_asset        VARCHAR NOT NULL,
    debt_to_cover     HUGEINT NOT NULL,  -- debt repaid, raw units of debt_asset
    collateral_amount HUGEINT NOT NULL,  -- liquidatedCollateralAmount, raw units of collateral_asset
    liquidator        VARCHAR NOT NULL,
    receive_atoken    BOOLEAN NOT NULL
);

-- PoolConfigurator parameter events (ltv/lt/bonus in bps as v1/v2/v3; old/new as v1/v2).
CREATE TABLE IF NOT EXISTS aave_config_events (
    stream    VARCHAR NOT NULL,
    block     BIGINT NOT NULL,
    log_index BIGINT NOT NULL,
    tx_hash   VARCHAR NOT NULL,
    event     VARCHAR NOT NULL,
    asset     VARCHAR,
    category  BIGINT,
    v1        HUGEINT,
    v2        HUGEINT,
    v3        HUGEINT,
    flag      BOOLEAN,
    label     VARCHAR,
    address   VARCHAR
);

-- AaveOracle.getAssetPrice per reserve at sampled blocks (--prices oracle): the prices the Pool used.
CREATE TABLE IF NOT EXISTS aave_oracle_prices (
    stream    VARCHAR NOT NULL,
    block     BIGINT NOT NULL,
    reserve   VARCHAR NOT NULL,
    price_raw HUGEINT NOT NULL,    -- base-currency units (BASE_CURRENCY_UNIT = 1e8 for USD markets)
    unit      HUGEINT NOT NULL,
    PRIMARY KEY (stream, block, reserve)
);
