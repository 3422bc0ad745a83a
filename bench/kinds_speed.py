"""Fast-engine speed per rule kind (issue 4) and liquidation model (issue 3): account-steps/s on one core.

Same seeded crash book for every kind (100,000 accounts × 8 assets × 2,000 ten-minute steps, ETH-like
−45 % crash in ~100 steps with a partial rebound); each kind's parameters are built the way
``backtest.rules`` compiles them (tables [update, row, asset]; the portfolio kinds their scenario sets).
Each row shows the median and the best of 5 timed calls after one untimed warm-up call (numba compile /
cache load excluded).

    NUMBA_NUM_THREADS=1 python bench/kinds_speed.py [--accounts N] [--steps T] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from backtest.engine.fast import replay_fast
from backtest.engine.reference import replay_reference
from backtest.engine.types import Book, Events, Params

ASSETS = ["DAI", "LINK", "UNI", "USDC", "USDT", "WBTC", "WETH", "stETH"]  # sorted
VOLATILE = np.array([0, 1, 1, 0, 0, 1, 1, 1], dtype=bool)
BETA = np.array([0, 1.2, 1.1, 0, 0, 0.7, 1.0, 1.02])
START = np.array([1.0, 30.0, 20.0, 1.0, 1.0, 40_000.0, 3_000.0, 2_950.0])
LT = np.array([0.80, 0.75, 0.70, 0.85, 0.0, 0.75, 0.825, 0.75])
LTV = np.maximum(LT - 0.05, 0.0)
LB = np.array([0.05, 0.10, 0.10, 0.05, 0.05, 0.065, 0.05, 0.075])


def market(rng: np.random.Generator, T: int) -> np.ndarray:
    t = np.arange(T)
    crash = np.where(t < 800, 0.0, np.where(t < 900, -(t - 800) / 100 * 0.6, -0.6 + (t - 900) / (T - 900) * 0.2))
    noise = rng.normal(0, 0.003, (T, len(ASSETS))).cumsum(axis=0) * VOLATILE
    stable = rng.normal(0, 0.0005, (T, len(ASSETS))) * ~VOLATILE
    return START * np.exp(noise + stable + crash[:, None] * BETA)


def book(rng: np.random.Generator, A: int, prices: np.ndarray) -> Book:
    K = len(ASSETS)
    coll = np.zeros((A, K))
    debt = np.zeros((A, K))
    rows = np.arange(A)
    ci = rng.choice(np.flatnonzero(LT > 0), A)
    usd = rng.lognormal(9, 1.5, A)
    coll[rows, ci] = usd / prices[0, ci]
    second = rng.random(A) < 0.4
    c2 = rng.choice(np.flatnonzero(LT > 0), A)
    coll[rows[second], c2[second]] += usd[second] * 0.5 / prices[0, c2[second]]
    di = rng.choice([0, 3, 4, 6], A, p=[0.3, 0.35, 0.25, 0.1])
    di = np.where(di == ci, 4, di)
    hf = rng.uniform(1.02, 4.0, A)
    weighted = (coll * prices[0] * LT).sum(axis=1)
    debt[rows, di] = weighted / hf / prices[0, di]
    debt[rng.random(A) < 0.15] = 0.0
    return Book(coll, debt)


def kinds(rng: np.random.Generator, A: int, T: int, prices: np.ndarray, b: Book) -> dict[str, tuple]:
    K = len(ASSETS)
    out: dict[str, tuple] = {"asset": (b, Events.empty(), Params(LTV, LT, LB))}
    # cross: a stablecoin group and an ETH group, rows chosen by debts each step
    groups = np.zeros((2, K), dtype=bool)
    groups[0, [0, 3, 4]] = True
    groups[1, [6, 7]] = True
    tab = np.stack([np.stack([LTV, LT, LB])] * 3)
    tab[1, :, [0, 3, 4]] = (0.93, 0.95, 0.01)
    tab[2, :, [6, 7]] = (0.90, 0.93, 0.01)
    out["cross"] = (b, Events.empty(), Params(tab[None, :, 0], tab[None, :, 1], tab[None, :, 2],
                                              account_row=np.full(A, -1), group_assets=groups))
    # isolated: one position per (collateral, debt) pair; a market per pair
    pairs = {}
    ci = [np.flatnonzero(row) for row in b.collateral > 0]
    dj = [np.flatnonzero(row) for row in b.debt > 0]
    coll, debt, row = [], [], []
    for a in range(A):
        for i in ci[a]:
            m = pairs.setdefault((i, dj[a][0] if len(dj[a]) else -1), len(pairs))
            c = np.zeros(K)
            d = np.zeros(K)
            c[i] = b.collateral[a, i]
            if len(dj[a]):
                d[dj[a][0]] = b.debt[a, dj[a][0]] / len(ci[a])
            coll.append(c)
            debt.append(d)
            row.append(m)
    mt = np.zeros((3, len(pairs), K))
    for (i, _), m in pairs.items():
        mt[:, m, i] = (LTV[i], LT[i] + 0.03, LB[i])
    out["isolated"] = (Book(np.array(coll), np.array(debt)), Events.empty(),
                       Params(mt[0][None], mt[1][None], mt[2][None], account_row=np.array(row)))
    # dynamic: a new threshold row every 144 steps (daily at 10 minutes), moving within ±0.05
    U = T // 144 + 1
    drift = np.clip(rng.normal(0, 0.02, (U, K)).cumsum(axis=0), -0.1, 0.05) * (LT > 0)
    lt_t = np.clip(LT + drift, 0, 0.95) * (LT > 0)
    out["dynamic"] = (b, Events.empty(), Params(np.maximum(lt_t - 0.05, 0)[:, None], lt_t[:, None],
                                                np.broadcast_to(LB, (U, 1, K)).copy(),
                                                update_index=np.arange(T) // 144))
    # liquidity haircut: depth thins by half during the crash
    depth = np.tile(np.array([5e8, 2e7, 2e7, 1e9, 8e8, 2e8, 4e8, 1e8]), (T, 1))
    depth[800:1100] *= 0.5
    out["liquidity-haircut"] = (b, Events.empty(), Params(LTV, LT, LB, depth_usd=depth))
    # enforce_ltv with 50,000 borrow/withdraw events
    E = 50_000
    ev = Events(rng.integers(0, A, E), np.sort(rng.integers(0, T, E)), rng.integers(0, K, E),
                rng.choice([1, 2], E).astype(np.int8), rng.uniform(0, 5, E))
    out["asset+enforce_ltv"] = (b, ev, Params(LTV, LT, LB, enforce_ltv=True))
    # Aave liquidation models (issue 3), and v3 with interest growth (debt 8 %/yr, collateral 3 %/yr)
    out["aave-v2"] = (b, Events.empty(), Params(LTV, LT, LB, model=1))
    out["aave-v3.3 (fee)"] = (b, Events.empty(), Params(LTV, LT, LB, model=3, protocol_fee=np.full(K, 0.1)))
    years = np.arange(T)[:, None] * 600 / (365 * 86400)
    growth = (np.tile(np.exp(0.03 * years), (1, K)), np.tile(np.exp(0.08 * years), (1, K)))
    out["aave-v3.4+interest"] = (b, Events.empty(), Params(LTV, LT, LB, model=4, protocol_fee=np.full(K, 0.1)),
                                 growth)
    # Compound v2 and Morpho Blue liquidation models (issue 13)
    from backtest.models import get as model

    out["compound-v2"] = (b, Events.empty(), Params(LTV, LT, LB, model="compound-v2",
                                                    model_args=model("compound-v2").engine_args(
                                                        {"close_factor": 0.5, "protocol_seize_share": 0.028})))
    out["morpho-blue (isolated)"] = (out["isolated"][0], Events.empty(),
                                     Params(**{**out["isolated"][2].__dict__, "model": "morpho-blue",
                                               "model_args": np.zeros(1)}))
    comet = model("comet")
    out["comet"] = (b, Events.empty(), Params(LTV, LT, LB, model="comet", model_args=comet.bind(
        {**comet.keys, "reserves": 1e7, "target_reserves": 5e7}, ASSETS)))
    # portfolio margin (issue 12): SPAN-like scan (9 scenarios) and 99 % ES over 180 daily scenarios per day
    from backtest.kinds.portfolio import PortfolioParams, scan_moves

    psr = np.where(VOLATILE, 0.12 * np.maximum(BETA, 0.7), 0.01)
    lbp = LB + 0.05 * (LB == 0)
    for mode, name in ((0, "portfolio-scenario"), (1, "portfolio-scenario none")):
        out[name] = (b, Events.empty(), PortfolioParams(mode, scan_moves(psr, 2.0, 0.35)[None], np.array([9]),
                                                        np.array([0]), np.zeros(T, np.int64), lbp, 1.25, 0, "aave",
                                                        np.array([0.5]), None, 0.0, False))
    D, N = T // 144 + 1, 180
    daily = np.where(VOLATILE, 0.045 * np.maximum(BETA, 0.7), 0.001)
    common = rng.standard_t(5, (D, N, 1)) * 0.8
    z = common * VOLATILE + rng.standard_t(5, (D, N, K)) * 0.6
    G = np.expm1(z * daily / 1.29)
    kidx = np.full(D, 178)  # ⌈0.99·180⌉ − 1
    for mode, name in ((3, "portfolio-var es"), (2, "portfolio-var var")):
        out[name] = (b, Events.empty(), PortfolioParams(mode, G, np.full(D, N), kidx, np.arange(T) // 144, lbp, 1.25,
                                                        0, "aave", np.array([0.5]), None, 0.0, False))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=2_000)
    ap.add_argument("--only", nargs="*", default=None, help="rows whose name starts with one of these")
    args = ap.parse_args()
    rng = np.random.default_rng(42)
    prices = market(rng, args.steps)
    b = book(rng, args.accounts, prices)
    print(f"command: NUMBA_NUM_THREADS=1 python bench/kinds_speed.py --accounts {args.accounts} --steps {args.steps}")
    print(f"{'kind':<24} {'engine accounts':>15} {'median steps/s':>15} {'best steps/s':>13} {'median s':>9} "
          f"{'calls':>8} {'evaluated':>9}")
    for name, (bk, ev, params, *extra) in kinds(rng, args.accounts, args.steps, prices, b).items():
        if args.only and not any(name.startswith(x) for x in args.only):
            continue
        growth = extra[0] if extra else None
        replay_fast(prices, bk, ev, params, growth=growth)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            r = replay_fast(prices, bk, ev, params, growth=growth)
            times.append(time.perf_counter() - t0)
        best, median = min(times), float(np.median(times))
        A = bk.collateral.shape[0]
        share = r.stats["evaluated_account_steps"] / r.stats["account_steps"]
        print(f"{name:<24} {A:>15,} {A * args.steps / median:>15.3g} {A * args.steps / best:>13.3g} {median:>9.3f} "
              f"{len(r.liquidations):>8,} {share:>9.2%}")
        # the fast engine is held to the reference on a slice of the same book
        small = Book(bk.collateral[:150], bk.debt[:150])
        keep = ev.account < 150
        sev = Events(ev.account[keep], ev.step[keep], ev.asset[keep], ev.action[keep], ev.amount[keep])
        sp = params if getattr(params, "account_row", None) is None else Params(**{**params.__dict__,
                                                                "account_row": params.account_row[:150]})
        a = replay_fast(prices, small, sev, sp, growth=growth)
        c = replay_reference(prices, small, sev, sp, growth=growth)
        assert len(a.liquidations) == len(c.liquidations) and np.array_equal(a.final_debt, c.final_debt), name


if __name__ == "__main__":
    main()
