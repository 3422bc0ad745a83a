-- The accounts that paid the most liquidation penalty on one scenario of a run, with each rule set's figures.
WITH tot AS (SELECT account, max(penalty_usd) AS worst FROM account_impact
             WHERE run_id = $run_id AND scenario = $scenario GROUP BY account
             ORDER BY worst DESC LIMIT $n)
SELECT i.account, i.rule, i.calls, i.debt_repaid_usd, i.penalty_usd FROM account_impact i
JOIN tot USING (account) WHERE i.run_id = $run_id AND i.scenario = $scenario ORDER BY tot.worst DESC, i.rule;
