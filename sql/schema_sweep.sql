-- Parameter sweeps (`mbt sweep`, docs/sweeps.md): the swept values of each generated rule set, and the jobs
-- already committed (a sweep started again with the same command skips them).
CREATE TABLE IF NOT EXISTS sweep_points (
    run_id VARCHAR NOT NULL,
    rule   VARCHAR NOT NULL,     -- sweep-0001, ... (the base rule set has no rows)
    key    VARCHAR NOT NULL,     -- e.g. assets.WETH.liquidation_threshold
    value  DOUBLE NOT NULL,
    PRIMARY KEY (run_id, rule, key)
);

CREATE TABLE IF NOT EXISTS sweep_jobs (
    run_id   VARCHAR NOT NULL,
    rule     VARCHAR NOT NULL,
    scenario VARCHAR NOT NULL,
    PRIMARY KEY (run_id, rule, scenario)
);
