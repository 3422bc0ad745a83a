-- Prices of one chunk, staged as _rpc_prices (DESIGN §5b prices; source 'chainlink').
INSERT OR REPLACE INTO prices (asset, source, timestamp, round_id, price_usd, block)
SELECT asset, 'chainlink', to_timestamp(updated_at),
       (CAST(phase AS HUGEINT) << 64) | CAST(agg_round AS HUGEINT), price_usd, block
FROM _rpc_prices;
