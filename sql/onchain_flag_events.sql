-- Collateral switches and e-mode choices of a market in chain order.
SELECT block, log_index, event, reserve, "user", flag, category FROM aave_pool_events
WHERE stream = $stream
  AND event IN ('ReserveUsedAsCollateralEnabled', 'ReserveUsedAsCollateralDisabled', 'UserEModeSet')
ORDER BY block, log_index;
