-- account_states (mbt extension of DESIGN §5b): each account's position at the end of a replay, per rule set
-- and scenario — accounts that still owe something or were written off (sweeps do not write it). Last-step
-- prices; `maintenance_usd` = Σ collateral·price·LT with the account's last-step thresholds (no liquidity haircut;
-- portfolio kinds: Σ collateral·price − the requirement at the last step).
CREATE TABLE IF NOT EXISTS account_states (
    run_id                  VARCHAR NOT NULL,
    rule                    VARCHAR NOT NULL,
    scenario                VARCHAR NOT NULL,
    account                 VARCHAR USING COMPRESSION uncompressed NOT NULL,  -- docs/architecture.md, "Writes"
    collateral_usd          DOUBLE NOT NULL,
    debt_usd                DOUBLE NOT NULL,
    maintenance_usd         DOUBLE NOT NULL,
    health_factor           DOUBLE,             -- maintenance_usd / debt_usd; NULL without debt
    unrealised_bad_debt_usd DOUBLE NOT NULL,    -- max(0, debt − collateral that backs debt)
    written_off             BOOLEAN NOT NULL
);
