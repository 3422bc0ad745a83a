"""The NumPy baseline of ``bench/end_to_end.py``: DESIGN §4 written per step the way a competent NumPy user
would, reading the same DuckDB file that ``mbt run`` reads, without using any of mbt's code.

Per rule set and grid step: apply the step's ledger events (a Python loop — withdraw/repay capping
depends on order), screen every account with two mat-vecs ``coll @ (p·LT)`` and ``debt @ p``, re-check the
few screened accounts with §4's exact arithmetic and vectorise the first call's choice of assets and its
profitability test, then loop in Python over the accounts where a call is actually made (up to 100 calls
each), and check for write-off only the accounts that could have lost their last collateral this step
(liquidated or touched by an event; everyone at step 0). Sums are accumulated in the same order as mbt's
engine so the metrics come out bit-identical, which ``end_to_end.py`` checks. It prints the same JSON
document as ``mbt run --json`` on stdout and its phase timings on stderr. It does not write results back
to the database (``mbt run`` does), which favours the baseline.

Scope: the DESIGN §3 subset the benchmark config uses (``kind = "asset"``, ``liquidation = "aave"``,
``slippage = "none"``, one price source per asset, no ``step`` grid).

    python bench/numpy_baseline.py CONFIG.toml --db DB
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import tomllib
from datetime import datetime

import duckdb
import numpy as np

MAX_CALLS = 100
MARKET_DEFAULTS = {"liquidation": "aave", "close_factor": 0.5, "gas_usd": 0.0, "slippage": "none"}


def resolve_rules(doc: dict) -> list[tuple[str, dict, dict]]:
    """(name, asset → params, market) per rule set, ``base`` deep-merged, defaults filled."""
    top_market = {**MARKET_DEFAULTS, **doc.get("market", {})}
    done: dict[str, tuple[dict, dict]] = {}
    out = []
    for r in doc["rules"]:
        assets, market = ({a: dict(v) for a, v in done[r["base"]][0].items()}, dict(done[r["base"]][1])) \
            if "base" in r else ({}, dict(top_market))
        for a, v in r.get("assets", {}).items():
            assets.setdefault(a, {}).update(v)
        market.update(r.get("market", {}))
        if market["liquidation"] != "aave" or market["slippage"] != "none" or r.get("kind", "asset") != "asset":
            raise SystemExit("numpy_baseline: only kind=asset, liquidation=aave, slippage=none")
        done[r["name"]] = (assets, market)
        out.append((r["name"], assets, market))
    return out


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def load(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> dict:
    """Grid, dense prices, book and events from the store's tables."""
    held = [a for (a,) in con.execute("SELECT DISTINCT asset FROM positions").fetchall()]
    in_events = [a for (a,) in con.execute(
        "SELECT DISTINCT asset FROM events WHERE timestamp > ? AND timestamp <= ?", [start, end]).fetchall()]
    assets = sorted(set(held) | set(in_events))
    nsrc = con.execute("SELECT max(n) FROM (SELECT count(DISTINCT source) AS n FROM prices "
                       "WHERE list_contains(?, asset) GROUP BY asset)", [assets]).fetchone()[0]
    if nsrc != 1:
        raise SystemExit("numpy_baseline: expects one price source per asset")
    px = con.execute("""
        SELECT list_position(?, asset) - 1 AS k, epoch_us(timestamp) AS ts, arg_max(price_usd, round_id) AS p
        FROM prices WHERE list_contains(?, asset) AND timestamp <= ?
        GROUP BY asset, timestamp ORDER BY k, ts""", [assets, assets, end]).fetchnumpy()
    k_col, ts_col, p_col = (np.asarray(px[c]) for c in ("k", "ts", "p"))
    start_us, end_us = (int(x.timestamp() * 1_000_000) for x in (start, end))
    held_k = [assets.index(a) for a in held]
    in_range = (ts_col >= start_us) & (ts_col <= end_us) & np.isin(k_col, held_k)
    grid = np.unique(ts_col[in_range])
    K = len(assets)
    prices = np.empty((len(grid), K))
    for k in range(K):
        sel = k_col == k
        idx = np.searchsorted(ts_col[sel], grid, side="right") - 1
        if idx[0] < 0:
            raise SystemExit(f"numpy_baseline: {assets[k]} has no price at the first grid point")
        prices[:, k] = p_col[sel][idx]
    grid_end = datetime.fromtimestamp(grid[-1] / 1e6, tz=start.tzinfo)
    acc = ("WITH acc AS (SELECT account, row_number() OVER (ORDER BY account) - 1 AS ai FROM "
           "(SELECT account FROM positions UNION SELECT account FROM events WHERE timestamp > $s AND timestamp <= $e)) ")
    A = con.execute(acc + "SELECT count(*) FROM acc", {"s": start, "e": grid_end}).fetchone()[0]
    pos = con.execute(acc + """
        SELECT ai, list_position($assets, asset) - 1 AS k, sum(collateral) AS c, sum(debt) AS d
        FROM positions JOIN acc USING (account) GROUP BY ai, asset""",
                      {"s": start, "e": grid_end, "assets": assets}).fetchnumpy()
    coll = np.zeros((A, K))
    debt = np.zeros((A, K))
    coll[pos["ai"], pos["k"]] = pos["c"]
    debt[pos["ai"], pos["k"]] = pos["d"]
    ev = con.execute(acc + """
        SELECT epoch_us(timestamp) AS ts, ai, list_position($assets, asset) - 1 AS k,
               CASE action WHEN 'supply' THEN 0 WHEN 'withdraw' THEN 1 WHEN 'borrow' THEN 2 ELSE 3 END AS act,
               amount
        FROM events JOIN acc USING (account) WHERE timestamp > $s AND timestamp <= $e
        ORDER BY timestamp, block NULLS FIRST, log_index NULLS FIRST, seq""",
                     {"s": start, "e": grid_end, "assets": assets}).fetchnumpy()
    step = np.searchsorted(grid, np.asarray(ev["ts"]), side="left")
    return {"assets": assets, "prices": prices, "coll": coll, "debt": debt, "ev_step": step,
            "ev_acc": np.asarray(ev["ai"], np.int64), "ev_k": np.asarray(ev["k"], np.int64),
            "ev_act": np.asarray(ev["act"], np.int64), "ev_amt": np.asarray(ev["amount"], np.float64)}


def replay(data: dict, lt: np.ndarray, lb: np.ndarray, cf: float, gas: float) -> dict:
    """One rule set over the whole grid; returns what the metrics need."""
    prices = data["prices"]
    T, K = prices.shape
    c = data["coll"].copy()
    d = data["debt"].copy()
    A = c.shape[0]
    coll_cols = np.flatnonzero(lt > 0)
    ltl, lbl = lt.tolist(), lb.tolist()
    w = prices * lt  # p·LT per step
    ev_lo = np.searchsorted(data["ev_step"], np.arange(T + 1), side="left")
    ev_acc, ev_k = data["ev_acc"].tolist(), data["ev_k"].tolist()
    ev_act, ev_amt = data["ev_act"].tolist(), data["ev_amt"].tolist()
    realised = np.zeros(T)
    written = np.zeros(A, dtype=bool)
    liq_usd: list[float] = []
    liq_pen: list[float] = []
    capped = 0.0
    rows = np.arange(0)
    for t in range(T):
        p = prices[t]
        pl = p.tolist()
        # 0. events of this step, in order
        lo, hi = ev_lo[t], ev_lo[t + 1]
        for e in range(lo, hi):
            a, k, act, amt = ev_acc[e], ev_k[e], ev_act[e], ev_amt[e]
            if act == 0:
                c[a, k] += amt
            elif act == 2:
                d[a, k] += amt
            else:
                bal = c if act == 1 else d
                have = bal[a, k]
                if amt > have:
                    capped += (amt - have) * pl[k]
                    bal[a, k] = 0.0
                else:
                    bal[a, k] = have - amt
        # 1. screen all accounts with two mat-vecs (loose by 1e-9: the exact test follows)
        cand = np.flatnonzero(c @ w[t] < (d @ p) * (1.0 + 1e-9))
        acted = rows
        if cand.size:
            cc, dd = c[cand], d[cand]
            num = np.zeros(cand.size)
            den = np.zeros(cand.size)
            for k in range(K):  # §4's summation order, so HF matches mbt's bit for bit
                if ltl[k] > 0:
                    num += cc[:, k] * pl[k] * ltl[k]
                den += dd[:, k] * pl[k]
            with np.errstate(divide="ignore", invalid="ignore"):
                under = (den > 0) & (num / den < 1.0)
            cand, cc, dd = cand[under], cc[under], dd[under]
            # 2. first call, vectorised: which pair, and is it worth making?
            n = cand.size
            r = np.arange(n)
            j = np.argmax(np.where(dd > 0, dd * p, -1.0), axis=1)
            cv = np.where((lt > 0) & (cc > 0), cc * p, -1.0)
            i = np.argmax(cv, axis=1)
            has_i = cv[r, i] > -1.0
            r_cf = cf * dd[r, j]
            r_col = (cc[r, i] * p[i]) / (p[j] * (1.0 + lb[i]))
            repaid = np.where(r_col <= r_cf, r_col, r_cf)
            acted = cand[has_i & (repaid * p[j] * lb[i] - gas > 0)]
            # the accounts that really get liquidated: §4 call by call, in plain Python
            for a in acted.tolist():
                ca, da = c[a].tolist(), d[a].tolist()
                for _ in range(MAX_CALLS):
                    nm = 0.0
                    dn = 0.0
                    for k in range(K):
                        if ltl[k] > 0:
                            nm += ca[k] * pl[k] * ltl[k]
                        dn += da[k] * pl[k]
                    if not (dn > 0 and nm / dn < 1.0):
                        break
                    jj, best = -1, -1.0
                    for k in range(K):
                        if da[k] > 0 and da[k] * pl[k] > best:
                            jj, best = k, da[k] * pl[k]
                    ii, best = -1, -1.0
                    for k in range(K):
                        if ltl[k] > 0 and ca[k] > 0 and ca[k] * pl[k] > best:
                            ii, best = k, ca[k] * pl[k]
                    if ii < 0:
                        break
                    rcf = cf * da[jj]
                    rcol = (ca[ii] * pl[ii]) / (pl[jj] * (1.0 + lbl[ii]))
                    if rcol <= rcf:
                        rep, seized = rcol, ca[ii]
                    else:
                        rep = rcf
                        seized = min(rep * pl[jj] * (1.0 + lbl[ii]) / pl[ii], ca[ii])
                    if rep * pl[jj] * lbl[ii] - gas <= 0:
                        break
                    da[jj] -= rep
                    ca[ii] = 0.0 if rcol <= rcf else ca[ii] - seized
                    liq_usd.append(rep * pl[jj])
                    liq_pen.append(rep * pl[jj] * lbl[ii])
                c[a] = ca
                d[a] = da
        # 3. write-off where no collateral with LT > 0 is left (only these accounts can have changed)
        chk = np.arange(A) if t == 0 else np.union1d(acted, np.asarray(ev_acc[lo:hi], dtype=np.int64))
        if chk.size:
            sd = d[chk]
            gone = (sd > 0).any(axis=1) & ~(c[chk][:, coll_cols] != 0.0).any(axis=1)
            if gone.any():
                who = chk[gone]
                owed = np.zeros(who.size)
                for k in range(K):
                    owed += sd[gone][:, k] * pl[k]
                realised[t] = sum(owed.tolist())
                written[who] = True
                d[who] = 0.0
    return {"coll": c, "debt": d, "realised": realised, "written": written, "liq_usd": np.asarray(liq_usd),
            "liq_pen": np.asarray(liq_pen), "capped": capped}


def metrics(out: dict, data: dict, lt: np.ndarray, ltv: np.ndarray, baseline_bp: float | None) -> dict:
    """DESIGN §5 metrics, accumulated in mbt's order."""
    prices = data["prices"]
    last = prices[-1]
    c, d = out["coll"], out["debt"]
    K = prices.shape[1]
    dd = np.zeros(c.shape[0])
    cc = np.zeros(c.shape[0])
    for k in range(K):
        dd += d[:, k] * last[k]
        if lt[k] > 0:
            cc += c[:, k] * last[k]
    under = (d > 0).any(axis=1) & (dd > cc)
    unrealised = float(sum((dd[under] - cc[under]).tolist()))
    realised = float(np.sum(out["realised"]))
    owed = d @ last
    backed = c @ np.where(lt > 0, last, 0.0)
    insolvent = out["written"] | ((owed > 0) & (owed > backed))
    bp = float(data["coll"].sum(axis=0) @ (prices[0] * ltv))
    base = bp if baseline_bp is None else baseline_bp
    eff = bp / base if base > 0 else None
    return {"bad_debt_usd": realised + unrealised, "realised_bad_debt_usd": realised,
            "unrealised_bad_debt_usd": unrealised, "liquidations": int(out["liq_usd"].size),
            "liquidated_debt_usd": float(np.sum(out["liq_usd"])),
            "liquidation_penalty_usd": float(np.sum(out["liq_pen"])),
            "insolvent_accounts": int(np.count_nonzero(insolvent)), "borrowing_power_usd": bp,
            "capital_efficiency": eff if eff is None or math.isfinite(eff) else None,
            "capped_events_usd": float(out["capped"])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="NumPy per-step baseline of DESIGN §4 (see bench/end_to_end.py)")
    ap.add_argument("config")
    ap.add_argument("--db", required=True)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    with open(args.config, "rb") as f:
        doc = tomllib.load(f)
    rules = resolve_rules(doc)
    con = duckdb.connect(args.db, read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    data = load(con, _instant(doc["run"]["start"]), _instant(doc["run"]["end"]))
    con.close()
    t1 = time.perf_counter()
    phases = {"read": t1 - t0}
    results = []
    baseline_bp = None
    for name, params, market in rules:
        assets = data["assets"]
        ltv = np.array([params[a]["ltv"] for a in assets], dtype=np.float64)
        lt = np.array([params[a]["liquidation_threshold"] for a in assets], dtype=np.float64)
        lb = np.array([params[a]["liquidation_bonus"] for a in assets], dtype=np.float64)
        t = time.perf_counter()
        out = replay(data, lt, lb, float(market["close_factor"]), float(market["gas_usd"]))
        m = metrics(out, data, lt, ltv, baseline_bp)
        phases[f"replay {name}"] = time.perf_counter() - t
        if baseline_bp is None:
            baseline_bp = m["borrowing_power_usd"]
        results.append({"rule": name, "kind": "asset", "scenario": "historical", **m})
    A, K = data["coll"].shape
    T = data["prices"].shape[0]
    print(json.dumps({"results": results}, allow_nan=False))
    print(json.dumps({"phases_s": phases, "accounts": A, "assets": K, "steps": T,
                      "events": int(data["ev_acc"].size)}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
