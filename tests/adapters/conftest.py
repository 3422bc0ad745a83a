"""Fixtures of the RPC adapter tests: a real node (anvil) seeded once per session with a realistic feed.

The chain reproduces a Chainlink USDC / USD proxy with three phase aggregators, each generation of
aggregator events, and the real rounds of ``shared/data/chainlink_stablecoins_etherisc`` (values and
timestamps, PROVENANCE §1a); without that folder a seeded series shaped like it is generated instead, so
nothing is skipped. Phases overlap as they did on mainnet: the next aggregator transmits a few rounds
before the proxy switches to it, and the previous one keeps transmitting afterwards (those rounds were
never served by the proxy). A second proxy, STETH / ETH (18 decimals), serves the quote-asset tests.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.realdata import shared_data_dir

from .anvil import Anvil, FeedBuilder, Node, run_mbt

# Event masks of TestAggregator.
ANSWER_UPDATED, NEW_ROUND, OCR1, OCR2 = 1, 2, 4, 8
FLUX = ANSWER_UPDATED | NEW_ROUND              # FluxAggregator: NewRound + AnswerUpdated
OCR1_ALL = OCR1 | NEW_ROUND | ANSWER_UPDATED   # OCR1 emits all three
SILENT = 0                                     # no log at all: only getRoundData can recover the round


def _etherisc(name: str) -> list[tuple[int, int, int]] | None:
    """(phase, answer, updatedAt) rows of a real Chainlink dump, or None when the data is absent."""
    path = shared_data_dir() / "chainlink_stablecoins_etherisc" / name
    if not path.exists():
        return None
    with path.open(newline="") as fh:
        return [(int(r["phaseId"]), int(r["answer"]), int(r["updatedAt"])) for r in csv.DictReader(fh)]


def _generated_usdc(seed: int = 5) -> list[tuple[int, int, int]]:
    """A USDC-like series (deviation 0.25 % or 24 h heartbeat), two overlapping phases, when data is absent."""
    rng = np.random.default_rng(seed)
    rows = []
    for phase, start, n in ((1, 1_610_000_000, 295), (2, 1_617_279_401, 420)):
        t, price = start, 100_000_000
        for _ in range(n):
            t += int(rng.integers(600, 86_400))
            price = int(price * (1 + rng.normal(0, 0.002)))
            rows.append((phase, price, t))
    return rows


def _steth_rows() -> list[tuple[int, int]]:
    """(answer 1e18, updatedAt) of STETH / ETH rounds (oldest 40), real when available."""
    name = "steth_eth_0x86392dC19c0b719886221c78AB11eb8Cf5c52812.csv"
    path = shared_data_dir() / "chainlink_rounds_sajanrajdev" / name
    if path.exists():
        with path.open(newline="") as fh:
            rows = [(int(float(r["answer"])), int(r["update"])) for r in csv.DictReader(fh) if int(r["update"])]
        return sorted(rows, key=lambda r: r[1])[:40]
    rng = np.random.default_rng(7)
    t = 1_643_487_908
    out = []
    for _ in range(40):
        t += int(rng.integers(3_600, 86_400))
        out.append((int(1e18 * (0.995 + rng.normal(0, 0.002))), t))
    return out


def eth_usd_rows() -> list[tuple[int, float]]:
    """(unix s, ETH USD) hourly, covering the STETH rounds: CoinGecko WETH when available, else generated."""
    path = shared_data_dir() / "coingecko_hourly_2021_2023_bhemen" / "WETH_usd.csv.gz"
    if path.exists():
        with gzip.open(path, "rt", newline="") as fh:
            return [(int(r["timestamp"]) // 1000, float(r["USD_price"])) for r in csv.DictReader(fh)]
    rng = np.random.default_rng(11)
    t0 = 1_640_995_200
    px = 3_700 * np.exp(np.cumsum(rng.normal(0, 0.01, 24 * 400)))
    return [(t0 + 3_600 * i, float(p)) for i, p in enumerate(px)]


@dataclass
class Chain:
    """The seeded session chain."""

    anvil: Anvil
    node: Node
    usdc: FeedBuilder
    steth: FeedBuilder
    head: int

    @property
    def url(self) -> str:
        return self.anvil.url


def _seed_usdc(node: Node, rows: list[tuple[int, int, int]]) -> tuple[FeedBuilder, int]:
    phase1 = [(a, t) for p, a, t in rows if p == 1]
    phase2 = [(a, t) for p, a, t in rows if p == 2][:420]
    a2_rows, a3_rows = phase2[:300], phase2[300:]
    b = FeedBuilder(node, 8, "USDC / USD")
    t = min(phase1[0][1], a2_rows[0][1]) - 3_000
    agg1 = b.new_aggregator(t)
    b.deploy_proxy(agg1, t + 60)
    agg2 = b.new_aggregator(t + 120)
    agg3 = b.new_aggregator(t + 180)
    # Switch to phase 2 at a fixed date inside the overlap (phase 1 goes on transmitting for months, as
    # on mainnet); to phase 3 after its 5th round (5 phase-3 rounds were never served by the proxy).
    switch2 = 1_623_715_200   # 2021-06-15
    switch3 = a3_rows[5][1] - 1 if len(a3_rows) > 5 else a3_rows[-1][1] + 1
    events: list[tuple[int, str, int, int]] = []   # (time, aggregator|"switchN", answer, mask)
    for i, (a, ts) in enumerate(phase1):
        events.append((ts, agg1, a, SILENT if i in (40, 41, 42) else FLUX))
    for a, ts in a2_rows:
        events.append((ts, agg2, a, OCR1_ALL))
    for i, (a, ts) in enumerate(a3_rows):
        events.append((ts, agg3, a, SILENT if 20 <= i < 35 else OCR2))
    events.append((switch2, "switch2", 0, 0))
    events.append((switch3, "switch3", 0, 0))
    events.sort(key=lambda e: (e[0], e[1]))
    last = t + 180
    for ts, target, answer, mask in events:
        ts = max(ts, last + 1)   # one block per event: timestamps must strictly increase
        last = ts
        if target == "switch2":
            b.confirm(agg2, ts)
        elif target == "switch3":
            b.confirm(agg3, ts)
        else:
            b.transmit(target, answer, ts, mask)
    b.finalize_phases()
    return b, last


def _seed_steth(node: Node, start: int) -> tuple[FeedBuilder, int]:
    rows = _steth_rows()
    b = FeedBuilder(node, 18, "STETH / ETH")
    t = max(start, rows[0][1] - 600) + 1
    agg = b.new_aggregator(t)
    b.deploy_proxy(agg, t + 1)
    last = t + 1
    for answer, ts in rows:
        ts = max(ts, last + 1)
        last = ts
        b.transmit(agg, answer, ts, OCR1_ALL)
    b.finalize_phases()
    return b, last


@pytest.fixture(scope="session")
def chain() -> Iterator[Chain]:
    """anvil with the USDC / USD feed (≈ 715 rounds, 3 phases) and a STETH / ETH feed, mined once."""
    rows = _etherisc("chainlink_usdc_usd_all.csv") or _generated_usdc()
    genesis = min(t for _, _, t in rows) - 10_000
    anvil = Anvil(genesis)
    try:
        node = Node(anvil.url)
        usdc, last = _seed_usdc(node, rows)
        steth, last = _seed_steth(node, last)
        # A few empty blocks on top, so confirmation depths have something to hold back.
        for _ in range(30):
            last += 12
            node.mine(last)
        yield Chain(anvil, node, usdc, steth, node.head())
    finally:
        anvil.stop()


@pytest.fixture(scope="session")
def reference_db(chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The USDC feed ingested straight from the node, uninterrupted: what every other run must equal."""
    db = tmp_path_factory.mktemp("reference") / "ref.duckdb"
    result = run_mbt(["--feed", chain.usdc.proxy, "--from-block", "0", "--rpc-url", chain.url,
                      "--confirmations", "0", "--blocks-per-request", "64", "--db", str(db)])
    assert result.exit_code == 0, result.output
    return db
