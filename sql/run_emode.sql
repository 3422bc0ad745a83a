-- Each account's e-mode value from the snapshot (kind = "cross"); the smallest when rows disagree.
SELECT a.ai, min(p.emode) AS emode
FROM positions AS p JOIN _run_accounts AS a USING (account)
WHERE p.emode IS NOT NULL AND p.emode <> ''
GROUP BY a.ai;
