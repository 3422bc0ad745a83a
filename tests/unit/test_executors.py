"""Executors (``backtest.executors``): every executor returns what a plain loop returns, in order.

The workload is a small health-factor scan over a seeded book (a numba kernel compiled with ``nogil=True``,
like the replay kernels), run as several jobs: ``local`` (threads), ``processes`` (spawned workers) and
``dask`` (a real ``LocalCluster``, and a real ``dask scheduler`` + ``dask worker`` started as subprocesses
on 127.0.0.1) must give bit-identical arrays, call ``progress`` once per job in the calling thread, and
re-raise a job's exception with its type and message (the earliest job's when several fail). Failures of
the machinery (unknown executor, unreachable scheduler, a worker that dies) are one-line ``MbtError``s.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from numba import njit

from backtest.errors import InputError, MbtError
from backtest.executors import EXECUTORS, DaskExecutor, Executor, cores, get_executor, redact

ROOT = Path(__file__).resolve().parents[2]
N_JOBS = 6


# ---- the workload (module level: the workers import it by name) ----------------------------------------


@dataclass(frozen=True)
class Job:
    index: int
    prices: np.ndarray  # (T, K) USD
    collateral: np.ndarray  # (A, K) token units
    debt: np.ndarray  # (A, K) token units
    lt: np.ndarray  # (K,) fraction 0–1
    fail: str = ""  # "mbt" | "input" | "value": the job raises that
    sleep_s: float = 0.0


@dataclass(frozen=True)
class Scan:
    index: int
    min_hf: np.ndarray  # (A,)
    steps_below: np.ndarray  # (A,) steps with HF < 1
    shortfall_usd: float  # Σ over steps of Σ_a max(0, D − Σ c·p·LT)
    collateral_sum: float  # a NumPy reduction over the item as the worker received it
    received_aligned: bool  # every array of the item, as the job saw it
    thread: int
    pid: int


@njit(cache=True, nogil=True)
def _scan(prices, collateral, debt, lt):
    T, K = prices.shape
    A = collateral.shape[0]
    min_hf = np.full(A, np.inf)
    below = np.zeros(A, dtype=np.int64)
    shortfall = 0.0
    for a in range(A):
        for t in range(T):
            c = 0.0
            d = 0.0
            for k in range(K):
                c += collateral[a, k] * prices[t, k] * lt[k]
                d += debt[a, k] * prices[t, k]
            if d > 0.0:
                hf = c / d
                if hf < min_hf[a]:
                    min_hf[a] = hf
                if hf < 1.0:
                    below[a] += 1
                    shortfall += d - c
    return min_hf, below, shortfall


def scan(job: Job) -> Scan:
    if job.sleep_s:
        time.sleep(job.sleep_s)
    if job.fail == "mbt":
        raise MbtError(f"job {job.index}: rules.r{job.index}.ltv: must be ≤ liquidation_threshold")
    if job.fail == "input":
        raise InputError("prices.csv", 7 + job.index, "price_usd", "must be > 0")
    if job.fail == "value":
        raise ValueError(f"job {job.index} went wrong")
    min_hf, below, shortfall = _scan(job.prices, job.collateral, job.debt, job.lt)
    received = all(a.flags.aligned for a in (job.prices, job.collateral, job.debt, job.lt))
    return Scan(job.index, min_hf, below, float(shortfall), float(job.collateral.sum()), received,
                threading.get_ident(), os.getpid())


def make_jobs(n: int = N_JOBS, accounts: int = 3000, steps: int = 400, overrides: dict | None = None) -> list[Job]:
    rng = np.random.default_rng(20210519)
    K = 4
    lt = np.array([0.825, 0.75, 0.85, 0.0])
    jobs = []
    for i in range(n):
        shock = np.linspace(0.0, -0.5 - 0.05 * i, steps)[:, None] * np.array([1.0, 1.2, 0.0, 0.0])
        noise = rng.normal(0, 0.004, (steps, K)).cumsum(axis=0) * np.array([1, 1, 0.1, 0.1])
        prices = np.array([3000.0, 40_000.0, 1.0, 1.0]) * np.exp(shock + noise)
        collateral = rng.lognormal(0, 1, (accounts, K)) * (rng.random((accounts, K)) < 0.5)
        debt = np.zeros((accounts, K))
        debt[:, 2] = (collateral * prices[0] * lt).sum(axis=1) / rng.uniform(1.01, 3.0, accounts)
        jobs.append(Job(i, prices, collateral, debt, lt, **(overrides or {}).get(i, {})))
    return jobs


def same(a: list[Scan], b: list[Scan]) -> bool:
    """Bit for bit, including NumPy reductions here over the arrays that came back (a float64 sum depends on
    the memory alignment of its input)."""
    return len(a) == len(b) and all(
        x.index == y.index and np.array_equal(x.min_hf, y.min_hf) and np.array_equal(x.steps_below, y.steps_below)
        and x.shortfall_usd == y.shortfall_usd and x.collateral_sum == y.collateral_sum
        and x.received_aligned and x.min_hf.flags.aligned and x.steps_below.flags.aligned
        and np.sum(x.min_hf[np.isfinite(x.min_hf)]) == np.sum(y.min_hf[np.isfinite(y.min_hf)])
        for x, y in zip(a, b))


@pytest.fixture(scope="module")
def jobs() -> list[Job]:
    return make_jobs()


@pytest.fixture(scope="module")
def expected(jobs) -> list[Scan]:
    return [scan(j) for j in jobs]  # a plain loop (also compiles or loads the kernel before any timing)


@pytest.fixture(scope="module")
def processes_pool():
    with get_executor("processes") as ex:  # spawning workers takes seconds: one pool for the module
        yield ex


@pytest.fixture(scope="module")
def dask_local():
    with get_executor("dask", workers=2) as ex:  # one LocalCluster for the module
        cluster = ex._cluster
        yield ex
    assert ex._client is None and cluster.status.name == "closed"


SHARED = {"processes": "processes_pool", "dask": "dask_local"}  # started once, by the module fixtures


def _executor(name: str, request) -> contextlib.AbstractContextManager[Executor]:
    if name in SHARED:
        return contextlib.nullcontext(request.getfixturevalue(SHARED[name]))
    return get_executor(name)


ALL = [pytest.param("local"), pytest.param("processes", marks=pytest.mark.slow),
       pytest.param("dask", marks=pytest.mark.slow)]


# ---- choosing an executor ----------------------------------------------------------------------------


def test_executor_names():
    assert EXECUTORS == ("local", "processes", "dask")
    with pytest.raises(MbtError) as e:
        get_executor("x")
    assert str(e.value) == "--executor: 'x' is not available; use one of local, processes, dask"


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "local", "scheduler": "tcp://127.0.0.1:8786"}, "--scheduler: only used with --executor dask"),
    ({"name": "processes", "workers": 0}, "--workers: must be a whole number ≥ 1, got 0"),
    ({"name": "dask", "scheduler": "tcp://127.0.0.1:8786", "workers": 2}, "--workers: sizes the local Dask"),
    ({"name": "dask", "scheduler": "not an address"}, "--scheduler 'not an address': expected an address"),
])
def test_bad_options_are_one_line_errors(kwargs, message):
    with pytest.raises(MbtError) as e:
        get_executor(**kwargs)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_addresses_lose_their_credentials():
    assert redact("tls://alice:s3cret@sched.example:8786") == "tls://sched.example:8786"
    assert redact("alice@10.0.0.1:8786") == "10.0.0.1:8786"
    assert redact("tcp://10.0.0.1:8786") == "tcp://10.0.0.1:8786"
    with pytest.raises(MbtError) as e:
        get_executor("dask", scheduler="tcp://alice:s3cret@bad host:1")  # malformed, and with a password
    assert "s3cret" not in str(e.value)


def test_describe_is_one_line_without_starting_anything():
    for name in EXECUTORS:
        text = get_executor(name, workers=2).describe()
        assert text.startswith(f"{name}: ") and "\n" not in text
    assert get_executor("dask", workers=2).describe() == "dask: LocalCluster 2 workers × 1 thread (not started)"


# ---- same results as a plain loop --------------------------------------------------------------------


def test_local_runs_jobs_on_several_threads_with_the_same_results(jobs, expected):
    with get_executor("local") as ex:
        got = ex.map(scan, jobs)
    assert same(got, expected)
    assert {r.pid for r in got} == {os.getpid()}
    if cores() > 1:
        assert len({r.thread for r in got}) > 1, "the nogil kernel should have run on more than one thread"


@pytest.mark.parametrize("name", ALL)
def test_every_executor_returns_a_plain_loops_results_in_order(name, request, jobs, expected):
    seen: list[tuple[int, int, int]] = []
    with _executor(name, request) as ex:
        got = ex.map(scan, jobs, progress=lambda i, job: seen.append((i, job.index, threading.get_ident())))
    assert same(got, expected)
    assert [r.index for r in got] == list(range(len(jobs)))
    assert sorted(i for i, _, _ in seen) == list(range(len(jobs)))  # once per job, any order
    assert all(i == index for i, index, _ in seen)
    assert {t for _, _, t in seen} == {threading.get_ident()}  # in the calling thread
    if name != "local" and cores() > 1:
        assert os.getpid() not in {r.pid for r in got}


def test_processes_run_a_single_job_inline(jobs, expected):
    with get_executor("processes") as ex:
        got = ex.map(scan, jobs[:1])
    assert same(got, expected[:1]) and got[0].pid == os.getpid()


def test_map_without_with_and_with_no_items(jobs, expected):
    ex = get_executor("local")
    assert ex.map(scan, []) == []
    assert same(ex.map(scan, iter(jobs[:3])), expected[:3])


def test_aligned_copies_only_unaligned_arrays_once():
    from backtest.executors import aligned

    raw = np.random.default_rng(1).random(1001)
    buf = bytearray(raw.nbytes + 1)
    odd = np.frombuffer(buf, dtype=np.float64, offset=1, count=raw.size)  # 1 byte off: not aligned
    odd.flags.writeable = True
    odd[:] = raw
    assert not odd.flags.aligned
    ok = np.arange(3.0)
    job = Job(0, odd, odd, ok, ok)
    fixed = aligned([job, (odd, {"b": odd}), "x"])
    new = fixed[0]
    assert new is not job and isinstance(new, Job) and new.index == 0
    assert new.prices.flags.aligned and np.array_equal(new.prices, raw)
    assert new.prices is new.collateral is fixed[1][0] is fixed[1][1]["b"]  # shared stays shared
    assert new.debt is ok and fixed[2] == "x"
    untouched = [job.debt, (ok, {"a": ok})]
    assert aligned(untouched) is untouched


# ---- a job's exception comes back as itself ----------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_a_jobs_exception_keeps_its_type_and_message(name, request):
    with _executor(name, request) as ex:
        with pytest.raises(MbtError) as e:
            ex.map(scan, make_jobs(4, accounts=50, steps=20, overrides={2: {"fail": "mbt"}}))
        assert type(e.value) is MbtError
        assert str(e.value) == "job 2: rules.r2.ltv: must be ≤ liquidation_threshold"

        # InputError's constructor takes four arguments: a plain pickle round trip would fail
        with pytest.raises(InputError) as e:
            ex.map(scan, make_jobs(3, accounts=50, steps=20, overrides={1: {"fail": "input"}}))
        assert str(e.value) == "prices.csv:8:price_usd: must be > 0"
        assert (e.value.file, e.value.line, e.value.column) == ("prices.csv", 8, "price_usd")

        # several failures: the earliest job's, as a plain loop would raise, even if it ends last
        with pytest.raises(ValueError, match=r"^job 1 went wrong$"):
            ex.map(scan, make_jobs(4, accounts=50, steps=20, overrides={1: {"fail": "value", "sleep_s": 0.3},
                                                                   3: {"fail": "mbt"}}))


def test_processes_a_dead_worker_is_a_one_line_error():
    with pytest.raises(MbtError) as e:
        with get_executor("processes") as ex:
            ex.map(os._exit, [3, 3])  # each worker process exits abruptly
    assert str(e.value).startswith("--executor processes: a worker process died")


def test_processes_interrupt_terminates_the_workers():
    def interrupt(i, item):
        raise KeyboardInterrupt

    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        with get_executor("processes") as ex:
            ex.map(time.sleep, [0.0, 600.0, 600.0, 600.0], progress=interrupt)
            pytest.fail("map should have raised")  # pragma: no cover
    assert time.perf_counter() - t0 < 300  # the 600 s sleepers were terminated, not waited for


# ---- dask --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_dask_local_cluster_describes_itself(dask_local):
    assert dask_local.describe() == "dask: LocalCluster 2 workers × 1 thread"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def external_scheduler(tmp_path_factory):
    """A real ``dask scheduler`` and one ``dask worker`` (2 threads) as subprocesses on 127.0.0.1."""
    from distributed import Client

    tmp = tmp_path_factory.mktemp("dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    logs = []

    def start(args: list[str], log: str) -> subprocess.Popen:
        out = open(tmp / log, "wb")  # noqa: SIM115 - closed in the finalizer
        logs.append(out)
        return subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    procs: list[subprocess.Popen] = []
    try:
        procs.append(start(["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
                            "--scheduler-file", str(tmp / "scheduler.json")], "scheduler.log"))
        deadline = time.monotonic() + 30
        while not (tmp / "scheduler.json").exists():
            assert procs[0].poll() is None and time.monotonic() < deadline, (tmp / "scheduler.log").read_text()
            time.sleep(0.1)
        assert json.loads((tmp / "scheduler.json").read_text())["address"] == address
        procs.append(start(["worker", address, "--nthreads", "2", "--no-nanny", "--no-dashboard",
                            "--name", "mbt-test-worker"], "worker.log"))
        with Client(address, timeout=10, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=30)
        yield address
    finally:
        for p in reversed(procs):  # the worker first, then its scheduler
            _stop(p)
        for f in logs:
            f.close()


@pytest.mark.slow
def test_dask_external_scheduler(external_scheduler, jobs, expected):
    seen = []
    with get_executor("dask", scheduler=external_scheduler) as ex:
        assert ex.describe() == f"dask: {external_scheduler} (1 worker × 2 threads)"
        got = ex.map(scan, jobs, progress=lambda i, job: seen.append(i))
        with pytest.raises(MbtError, match=r"^job 0: "):
            ex.map(scan, make_jobs(2, accounts=10, steps=5, overrides={0: {"fail": "mbt"}}))
    assert same(got, expected)
    assert sorted(seen) == list(range(len(jobs)))
    assert os.getpid() not in {r.pid for r in got}


@pytest.mark.slow
def test_dask_interrupt_closes_the_client_and_leaves_the_cluster_alone(external_scheduler):
    def interrupt(i, item):
        raise KeyboardInterrupt

    ex = get_executor("dask", scheduler=external_scheduler)
    with pytest.raises(KeyboardInterrupt):
        with ex:
            ex.map(time.sleep, [0.0, 2.0, 2.0], progress=interrupt)
    assert ex._client is None
    with get_executor("dask", scheduler=external_scheduler) as again:
        assert again.map(abs, [-1, -2]) == [1, 2]


@pytest.mark.slow
def test_dask_unreachable_scheduler_is_a_one_line_error():
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    with pytest.raises(MbtError) as e:
        with get_executor("dask", scheduler=address):
            pytest.fail("should not connect")  # pragma: no cover
    assert str(e.value) == (f"--scheduler {address}: cannot reach the dask scheduler "
                            "(connection refused for 5 s: is it running, on that port?)")


@pytest.mark.slow
def test_dask_a_server_that_never_answers_is_a_one_line_error():
    with socket.socket() as server:  # the kernel accepts connections into the backlog; nobody answers
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        t0 = time.perf_counter()
        with pytest.raises(MbtError) as e:
            with DaskExecutor(address, connect_timeout=2):
                pytest.fail("should not connect")  # pragma: no cover
        assert time.perf_counter() - t0 < 60  # bounded: it gave up rather than hang
    assert str(e.value) == f"--scheduler {address}: cannot reach the dask scheduler (no answer within 2 s)"


@pytest.mark.slow
def test_dask_a_worker_address_is_not_a_scheduler(external_scheduler):
    from distributed import Client

    with Client(external_scheduler, timeout=10, set_as_default=False) as client:
        worker = next(iter(client.nthreads()))
    with pytest.raises(MbtError) as e:
        with get_executor("dask", scheduler=worker):
            pytest.fail("should not connect")  # pragma: no cover
    assert str(e.value) == (f"--scheduler {worker}: cannot reach the dask scheduler "
                            "(the server there is a dask Worker, not a scheduler)")


def test_dask_credentials_never_reach_a_message():
    for address in ("tcp://alice:s3cret@127.0.0.1:8786", "alice:s3cret@127.0.0.1:8786"):
        with pytest.raises(MbtError) as e:
            get_executor("dask", scheduler=address)
        assert "s3cret" not in str(e.value) and "alice" not in str(e.value)
        assert "a dask address carries no user or password" in str(e.value)


class _FakeClient:
    """Stands in for ``distributed.Client`` where a real cluster cannot produce the case."""

    def __init__(self, versions: dict[str, str] | None = None, error: Exception | None = None) -> None:
        self.versions, self.error = versions, error

    def run(self, fn):
        if self.error is not None:
            raise self.error
        return self.versions


def test_dask_workers_without_mbt_or_with_another_version_are_refused():
    from backtest import __version__

    ex = DaskExecutor("tcp://10.0.0.1:8786")
    ex._client = _FakeClient(error=ModuleNotFoundError("No module named 'backtest'"))
    with pytest.raises(MbtError) as e:
        ex._check_workers()
    assert str(e.value) == ("--scheduler tcp://10.0.0.1:8786: the dask workers cannot import mbt (No module "
                            f"named 'backtest'); install margin-backtester {__version__} in the workers' "
                            "environment")
    ex._client = _FakeClient({"tcp://10.0.0.2:1": __version__, "tcp://10.0.0.3:1": "0.0.1"})
    with pytest.raises(MbtError, match=r"the dask workers run margin-backtester 0\.0\.1, this is "):
        ex._check_workers()
    ex._client = _FakeClient({"tcp://10.0.0.2:1": __version__})
    ex._check_workers()
    ex._client = None
