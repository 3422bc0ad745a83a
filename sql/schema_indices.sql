-- Interest indices per asset (Aave-style: ray values stored as DOUBLE; only ratios are used).
CREATE TABLE IF NOT EXISTS indices (
    asset                 VARCHAR NOT NULL,
    timestamp             TIMESTAMPTZ NOT NULL,
    liquidity_index       DOUBLE NOT NULL,
    variable_borrow_index DOUBLE NOT NULL,
    PRIMARY KEY (asset, timestamp)
);
