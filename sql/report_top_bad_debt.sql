-- The accounts with the most bad debt at the end of one scenario (unrealised; written off flagged), per rule set.
WITH tot AS (SELECT account, max(unrealised_bad_debt_usd) AS worst, bool_or(written_off) AS any_written
             FROM account_states WHERE run_id = $run_id AND scenario = $scenario GROUP BY account
             ORDER BY any_written DESC, worst DESC LIMIT $n)
SELECT s.account, s.rule, s.debt_usd, s.unrealised_bad_debt_usd, s.written_off FROM account_states s
JOIN tot USING (account) WHERE s.run_id = $run_id AND s.scenario = $scenario
ORDER BY tot.any_written DESC, tot.worst DESC, s.rule;
