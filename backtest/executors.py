"""Executors: one interface that runs many independent jobs in this process, in local processes or on Dask.

A job is a module-level function applied to one picklable item (a (scenario, rule set) replay over a book,
later a sweep point). ``get_executor(name)`` returns a context manager whose ``map(fn, items, progress)``
returns ``[fn(item) for item in items]`` in the order of ``items`` whatever the order of completion, calls
``progress(i, item)`` in the calling thread as each job completes, and re-raises a job's exception with its
own type and message. When several jobs fail, the one raised is the first in the order of ``items`` (what a
plain loop would raise): jobs after it are cancelled, jobs before it are waited for. ``local`` runs the jobs
on threads (the numba kernels release the GIL), ``processes`` on spawned worker processes, ``dask`` on a
``distributed.LocalCluster`` it starts or on an existing cluster (``scheduler="tcp://HOST:PORT"``).
``distributed`` is imported only when a Dask executor is entered, so importing this module stays cheap.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import copy
import importlib
import logging
import os
import pickle
import re
import signal
import socket
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import MbtError

EXECUTORS = ("local", "processes", "dask")

T = TypeVar("T")
R = TypeVar("R")
Progress = Callable[[int, Any], None]

CONNECT_TIMEOUT_S = 5.0  # reaching an external scheduler (distributed's own default, 30 s, is long for a CLI)
WORKER_WAIT_S = 30.0  # an external scheduler that has no workers yet: how long to wait for the first one
_ADDRESS = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?(?:[^@\s/]*@)?(?:\[[0-9a-fA-F:.]+\]|[^:\s/\[\]@]+):\d{1,5}$")


def get_executor(name: str, scheduler: str | None = None, workers: int | None = None, *,
                 connect_timeout: float = CONNECT_TIMEOUT_S) -> Executor:
    """The executor called ``name``, not yet started (use it as a context manager).

    Parameters
    ----------
    name : str
        One of ``EXECUTORS``: ``"local"`` (threads in this process), ``"processes"`` (spawned local worker
        processes) or ``"dask"`` (a Dask cluster).
    scheduler : str | None
        ``tcp://HOST:PORT`` of a running Dask scheduler (``dask`` only); ``None`` starts a LocalCluster.
    workers : int | None
        How many jobs run at once: threads (``local``), processes (``processes``) or LocalCluster workers
        (``dask`` without ``scheduler``); default: the cores this process may use.
    connect_timeout : float, seconds
        How long to try to reach ``scheduler``.

    Raises
    ------
    MbtError
        Unknown ``name``, ``scheduler`` without ``dask``, ``workers`` not a positive integer or given with
        ``scheduler``, a malformed ``scheduler`` address.
    """
    if name not in EXECUTORS:
        raise MbtError(f"--executor: {name!r} is not available; use one of {', '.join(EXECUTORS)}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise MbtError(f"--workers: must be a whole number ≥ 1, got {workers!r}")
    if scheduler is not None and name != "dask":
        raise MbtError("--scheduler: only used with --executor dask")
    if name == "local":
        return LocalExecutor(workers)
    if name == "processes":
        return ProcessExecutor(workers)
    return DaskExecutor(scheduler, workers, connect_timeout=connect_timeout)


def redact(address: str) -> str:
    """``address`` without any ``user:password@`` part, for messages and logs."""
    return re.sub(r"^((?:[a-z][a-z0-9+.-]*://)?)[^@\s/]*@", r"\1", address)


def cores() -> int:
    """The number of cores this process may run on (its CPU affinity, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Executor:
    """Runs ``fn`` over ``items``; a context manager that owns its pools, clusters and clients.

    ``map`` may also be called outside a ``with`` block: it then starts and stops the executor itself.
    """

    name = "executor"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or cores()
        self._entered = False

    def __enter__(self) -> Executor:
        self._entered = True
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._entered = False
        self.close(abort=exc_type is not None)

    def close(self, abort: bool = False) -> None:
        """Release what the executor holds; ``abort`` stops running jobs where that is possible."""

    def describe(self) -> str:
        """One line for stderr saying where the jobs run."""
        raise NotImplementedError

    def map(self, fn: Callable[[T], R], items: Iterable[T], progress: Progress | None = None) -> list[R]:
        """``[fn(item) for item in items]``, computed by this executor.

        Parameters
        ----------
        fn : callable
            A module-level (importable, picklable) function of one item.
        items : iterable
            Picklable job descriptions.
        progress : callable(i, item) | None
            Called in the calling thread once per item as it completes (any order); ``i`` is its index.

        Returns
        -------
        list
            The results in the order of ``items``.
        """
        items = list(items)
        if not items:
            return []
        if not self._entered:
            with self:
                return self._map(fn, items, progress)
        return self._map(fn, items, progress)

    def _map(self, fn: Callable[[T], R], items: list[T], progress: Progress | None) -> list[R]:
        raise NotImplementedError


class WithResult:
    """A ``progress`` callback that also gets each job's result as it completes: ``fn(i, item, result)``
    (in the calling thread; e.g. to commit finished jobs while others still run)."""

    with_result = True

    def __init__(self, fn: Callable[[int, Any, Any], None]) -> None:
        self.fn = fn

    def __call__(self, i: int, item: Any, result: Any = None) -> None:
        self.fn(i, item, result)


def _notify(progress: Progress | None, i: int, item: Any, result: Any) -> None:
    if progress is None:
        return
    if getattr(progress, "with_result", False):
        progress(i, item, result)
    else:
        progress(i, item)


def _inline(fn: Callable[[T], R], items: list[T], progress: Progress | None) -> list[R]:
    results = []
    for i, item in enumerate(items):
        results.append(fn(item))
        _notify(progress, i, item, results[-1])
    return results


def _collect(done: Iterator[tuple[int, bool, Any]], items: list, progress: Progress | None,
             cancel_after: Callable[[int], None]) -> list:
    """Gather ``(index, ok, value or exception)`` as jobs complete; on a failure cancel the jobs after it
    and keep waiting for those before it, then raise the earliest failure (what a plain loop raises)."""
    results: list[Any] = [None] * len(items)
    pending = set(range(len(items)))
    first_bad: int | None = None
    error: BaseException | None = None
    for i, ok, value in done:
        pending.discard(i)
        if ok:
            results[i] = value
            _notify(progress, i, items[i], value)
        elif first_bad is None or i < first_bad:
            first_bad, error = i, value
            cancel_after(i)
    if error is not None:
        raise error
    if pending:  # every job is accounted for, or something above is wrong
        raise RuntimeError(f"executor: {len(pending)} of {len(items)} jobs never completed")
    return results


class LocalExecutor(Executor):
    """Threads in this process: parallel because the replay kernels are compiled with ``nogil=True``."""

    name = "local"

    def describe(self) -> str:
        return f"local: this process, up to {_count(self.workers, 'thread')}"

    def _map(self, fn, items, progress):
        n = min(len(items), self.workers)
        if n == 1:
            return _inline(fn, items, progress)
        pool = cf.ThreadPoolExecutor(max_workers=n, thread_name_prefix="mbt-job")
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        try:
            results = _collect(_completed(futures), items, progress, _canceller(futures))
        except BaseException:
            # running threads cannot be stopped: they finish their job; queued jobs are dropped
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return results


class ProcessExecutor(Executor):
    """Spawned worker processes (``concurrent.futures``), started on demand and kept until the ``with`` ends.

    "spawn" rather than fork: a forked child of a process that already runs numba or pool threads can
    deadlock, and spawn behaves the same on every platform. Workers ignore SIGINT so that Ctrl-C reaches
    only this process, which then terminates them.
    """

    name = "processes"

    def __init__(self, workers: int | None = None) -> None:
        super().__init__(workers)
        self._pool: cf.ProcessPoolExecutor | None = None

    def describe(self) -> str:
        return f"processes: up to {_count(self.workers, 'worker process', 'worker processes')} (spawn)"

    def _map(self, fn, items, progress):
        if len(items) == 1:
            return _inline(fn, items, progress)
        if self._pool is None:
            import multiprocessing

            # with spawn, processes start as jobs are submitted: min(len(items), workers) of them
            self._pool = cf.ProcessPoolExecutor(max_workers=self.workers,
                                                mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_ignore_sigint)
        job = _Job(fn)
        futures = {self._pool.submit(job, item): i for i, item in enumerate(items)}
        try:
            return _collect(_completed(futures), items, progress, _canceller(futures))
        except cf.process.BrokenProcessPool:
            self.close(abort=True)
            raise MbtError("--executor processes: a worker process died while running the jobs "
                           "(killed, or out of memory?)") from None

    def close(self, abort: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if not abort:
            pool.shutdown(wait=True)
            return
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)


class DaskExecutor(Executor):
    """A Dask cluster: a ``LocalCluster`` started for the ``with`` block, or an existing one's scheduler.

    Items are scattered to the workers (not embedded in the task graph, which the scheduler would hold and
    warn about when large), one task per item, results fetched as they complete.
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None, *,
                 connect_timeout: float = CONNECT_TIMEOUT_S) -> None:
        if scheduler is not None:
            if workers is not None:
                raise MbtError("--workers: sizes the local Dask cluster; a cluster given by --scheduler has its own")
            if not isinstance(scheduler, str) or not _ADDRESS.match(scheduler.strip()):
                raise MbtError(f"--scheduler {redact(str(scheduler))!r}: expected an address like tcp://HOST:PORT")
            scheduler = scheduler.strip()
            if redact(scheduler) != scheduler:
                raise MbtError(f"--scheduler {redact(scheduler)}: a dask address carries no user or password "
                               "(remove the 'user:password@' part; dask secures a cluster with TLS certificates)")
        super().__init__(workers)
        self.scheduler = scheduler
        self.connect_timeout = connect_timeout
        self._cluster = None
        self._client = None
        self._live: list = []

    def __enter__(self) -> DaskExecutor:
        super().__enter__()
        try:
            self._start()
        except BaseException:
            self._entered = False
            self.close(abort=True)
            raise
        return self

    def _start(self) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as e:
            raise MbtError(f"--executor dask: needs the packages dask and distributed ({e}); "
                           "pip install dask distributed") from None

        if self.scheduler is None:
            try:
                # the scheduler always serves HTTP (/health, the dashboard when bokeh is installed); ":0"
                # picks a free port, on the loopback interface only (host), so no fixed port can clash
                self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                             host="127.0.0.1", dashboard_address=":0",
                                             silence_logs=logging.WARNING)
            except OSError as e:
                raise MbtError(f"--executor dask: cannot start a local Dask cluster ({e})") from None
            self._client = Client(self._cluster, set_as_default=False)
            return
        try:
            # first a bounded probe: Client's own timeout covers the TCP connect, not distributed's
            # handshake, so a server that accepts and never answers would hang it; and a Client that
            # fails in its constructor blocks for seconds in __del__ later
            _run_async(_probe_scheduler(self.scheduler, self.connect_timeout))
            self._client = Client(self.scheduler, timeout=self.connect_timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as e:
            raise self._unreachable(e) from None
        if not self._client.nthreads():
            try:
                self._client.wait_for_workers(1, timeout=WORKER_WAIT_S)
            except TimeoutError:
                raise MbtError(f"--scheduler {self._where()}: the dask scheduler has no workers "
                               f"(none joined within {WORKER_WAIT_S:g} s)") from None
        self._check_workers()

    def _unreachable(self, e: BaseException) -> MbtError:
        reason = str(e).replace(self.scheduler, self._where()) or type(e).__name__
        if isinstance(e, socket.gaierror):
            reason = "unknown host"
        elif isinstance(e, TimeoutError) or "Timed out trying to connect" in reason:
            # distributed retries until the timeout; the last attempt's error says why
            chain = []
            while e is not None and len(chain) < 10:
                chain.append(e)
                e = e.__cause__ or e.__context__
            if any(isinstance(x, socket.gaierror) for x in chain):
                reason = "unknown host"
            elif any(isinstance(x, ConnectionRefusedError) for x in chain):
                reason = f"connection refused for {self.connect_timeout:g} s: is it running, on that port?"
            else:
                reason = f"no answer within {self.connect_timeout:g} s"
        return MbtError(f"--scheduler {self._where()}: cannot reach the dask scheduler ({reason})")

    def _check_workers(self) -> None:
        # every worker must run this mbt: the jobs unpickle our functions, and another version could
        # silently compute other numbers
        from . import __version__

        try:
            seen = self._client.run(_worker_version)
        except ImportError as e:
            raise MbtError(f"--scheduler {self._where()}: the dask workers cannot import mbt ({e}); install "
                           f"margin-backtester {__version__} in the workers' environment") from None
        other = sorted({v for v in seen.values() if v != __version__})
        if other:
            raise MbtError(f"--scheduler {self._where()}: the dask workers run margin-backtester "
                           f"{', '.join(other)}, this is {__version__}; install the same version on both")

    def _where(self) -> str:
        return redact(self.scheduler) if self.scheduler else "LocalCluster"

    def describe(self) -> str:
        if self._client is None:
            if self.scheduler is None:
                return f"dask: LocalCluster {_count(self.workers, 'worker')} × 1 thread (not started)"
            return f"dask: {self._where()} (not connected)"
        nthreads = self._client.nthreads()
        per = set(nthreads.values())
        if len(per) == 1:
            shape = f"{_count(len(nthreads), 'worker')} × {_count(per.pop(), 'thread')}"
        else:
            shape = f"{_count(len(nthreads), 'worker')}, {_count(sum(nthreads.values()), 'thread')}"
        if self.scheduler is None:
            return f"dask: LocalCluster {shape}"
        return f"dask: {self._where()} ({shape})"

    def _map(self, fn, items, progress):
        from distributed import as_completed
        from distributed.comm.core import CommClosedError

        client = self._client
        lost = (CommClosedError, OSError, cf.CancelledError)
        try:
            scattered = client.scatter(items, hash=False)
            futures = client.map(_Job(fn), scattered, pure=False)
        except lost as e:
            raise self._lost(e) from None
        self._live = [*scattered, *futures]  # cancelled by close(abort=True)
        index = {f.key: i for i, f in enumerate(futures)}
        cancelled: set[int] = set()

        def done():
            try:
                # with_results: the results are fetched by the client's event loop as the jobs end,
                # concurrently, instead of one blocking round trip per job here
                for f, value in as_completed(futures, loop=client.loop, with_results=True, raise_errors=False):
                    i = index[f.key]
                    if f.status == "finished":
                        yield i, *_unwrap(value)
                    elif f.status != "cancelled":
                        yield i, False, self._task_error(f)
                    elif i not in cancelled:  # not by us: the scheduler went away
                        yield i, False, self._lost(cf.CancelledError("it cancelled the jobs: did it stop or restart?"))
            except lost as e:
                raise self._lost(e) from None

        def cancel_after(i):
            later = [f for f in futures[i + 1:] if not f.done()]
            cancelled.update(index[f.key] for f in later)
            client.cancel(later)

        results = _collect(done(), items, progress, cancel_after)
        self._live = []
        return results

    def _lost(self, e: BaseException) -> MbtError:
        reason = str(e) or type(e).__name__
        if self.scheduler:
            reason = reason.replace(self.scheduler, self._where())
        return MbtError(f"--executor dask: lost the dask scheduler at {self._where()} ({reason})")

    def _task_error(self, future) -> BaseException:
        # a job's own exceptions come back as values (_Failure); an error here is the cluster's
        from distributed import KilledWorker

        exc = future.exception()
        if isinstance(exc, KilledWorker):
            return MbtError(f"--executor dask: workers died while running a job, which was given up "
                            f"(out of memory?): {exc}")
        if isinstance(exc, ImportError):
            return MbtError(f"--executor dask: the workers cannot load the job ({exc}); install "
                            f"margin-backtester in the workers' environment")
        return exc

    def close(self, abort: bool = False) -> None:
        client, self._client = self._client, None
        cluster, self._cluster = self._cluster, None
        live, self._live = self._live, []
        quiet = _quieter("distributed", logging.CRITICAL) if abort else contextlib.nullcontext()
        with quiet:  # stopping workers in the middle of a job makes dask warn; that is expected here
            try:
                if abort and cluster is not None:
                    _kill_workers(cluster)  # ours, and busy with jobs that cannot be interrupted
                if client is not None:
                    if live:  # release the jobs and scattered items first, so no worker dies holding them
                        try:
                            client.cancel(live, force=True)
                        except Exception:  # noqa: BLE001 - closing anyway
                            pass
                    client.close()
            finally:
                if cluster is not None:
                    cluster.close()


# ---- what runs in the workers ------------------------------------------------------------------------


class _Job:
    """``fn`` as run in a worker: the job's exception comes back as a value (``_Failure``), so that any
    exception class crosses the process boundary with its type and message, and no worker logs it."""

    def __init__(self, fn: Callable) -> None:
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", "job")  # names the Dask tasks

    def __call__(self, item):
        try:
            return self.fn(aligned(item))
        except Exception as exc:  # noqa: BLE001 - re-raised in the caller
            return _Failure.capture(exc)


def aligned(obj: Any, _memo: dict | None = None) -> Any:
    """``obj`` with every NumPy array in it (inside dataclasses, lists, tuples, dicts) aligned in memory.

    Dask deserialises arrays at whatever offset they had in the received message, often not a multiple of
    the item size. NumPy then reduces them through a buffered loop that sums in another order (e.g. a
    float64 ``sum`` differs in the last bits), and numba compiles a separate, slower ``aligned=False``
    variant; so the jobs would not compute what they compute in this process. An aligned array is kept as
    is; an unaligned one is copied once (shared arrays stay shared). Returns ``obj`` itself when nothing
    needed copying.
    """
    import numpy as np

    memo = {} if _memo is None else _memo
    key = id(obj)
    if key in memo:
        return memo[key]
    out = obj
    if isinstance(obj, np.ndarray):
        if not obj.flags.aligned:
            out = obj.copy(order="K")
            out.flags.writeable = obj.flags.writeable
    elif isinstance(obj, list):
        items = [aligned(x, memo) for x in obj]
        if any(a is not b for a, b in zip(items, obj)):
            out = copy.copy(obj)  # keeps a subclass and its attributes
            out[:] = items
    elif isinstance(obj, tuple):
        items = [aligned(x, memo) for x in obj]
        if any(a is not b for a, b in zip(items, obj)):
            out = obj._make(items) if hasattr(obj, "_make") else type(obj)(items)  # namedtuple or tuple
    elif isinstance(obj, dict):
        items = {k: aligned(v, memo) for k, v in obj.items()}
        if any(items[k] is not obj[k] for k in obj):
            out = copy.copy(obj)  # keeps a subclass (defaultdict's factory, ...)
            out.update(items)
    elif hasattr(obj, "__dataclass_fields__") and not isinstance(obj, type):
        changed = {}
        for name in obj.__dataclass_fields__:
            value = getattr(obj, name, None)
            new = aligned(value, memo)
            if new is not value:
                changed[name] = new
        if changed:
            out = copy.copy(obj)
            for name, value in changed.items():
                object.__setattr__(out, name, value)  # also for frozen dataclasses; no __init__ re-run
    memo[key] = out
    return out


class _RemoteTraceback(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n" + self.text


@dataclass
class _Failure:
    module: str
    qualname: str
    args: tuple
    state: dict
    payload: bytes | None  # the pickled exception, when it pickles and unpickles to an equal one
    traceback: str

    @classmethod
    def capture(cls, exc: BaseException) -> _Failure:
        payload = None
        try:
            data = pickle.dumps(exc)
            back = pickle.loads(data)
            if type(back) is type(exc) and str(back) == str(exc):
                payload = data
        except Exception:  # noqa: BLE001 - then rebuild from class, args and attributes
            pass
        args, state = exc.args, dict(getattr(exc, "__dict__", {}))
        try:
            pickle.dumps((args, state))
        except Exception:  # noqa: BLE001
            args, state = (str(exc),), {}
        return cls(type(exc).__module__, type(exc).__qualname__, args, state, payload,
                   "".join(traceback.format_exception(exc)))

    def rebuild(self) -> BaseException:
        exc = None
        if self.payload is not None:
            try:
                exc = pickle.loads(self.payload)
            except Exception:  # noqa: BLE001
                exc = None
        if exc is None:
            try:
                kind: Any = importlib.import_module(self.module)
                for part in self.qualname.split("."):
                    kind = getattr(kind, part)
                exc = kind.__new__(kind)
                exc.args = self.args
                exc.__dict__.update(self.state)
            except Exception:  # noqa: BLE001 - a class the caller cannot import
                message = str(self.args[0]) if len(self.args) == 1 else str(self.args)
                exc = RuntimeError(f"{self.module}.{self.qualname}: {message}")
        exc.__cause__ = _RemoteTraceback(self.traceback)
        return exc


def _unwrap(value: Any) -> tuple[bool, Any]:
    if isinstance(value, _Failure):
        return False, value.rebuild()
    return True, aligned(value)  # results cross the same wire as items


def _completed(futures: dict[cf.Future, int]) -> Iterator[tuple[int, bool, Any]]:
    for f in cf.as_completed(futures):
        if f.cancelled():
            continue
        exc = f.exception()
        if exc is not None:
            yield futures[f], False, exc
        else:
            yield futures[f], *_unwrap(f.result())


def _canceller(futures: dict[cf.Future, int]) -> Callable[[int], None]:
    def cancel_after(i: int) -> None:
        for f, j in futures.items():
            if j > i:
                f.cancel()
    return cancel_after


async def _probe_scheduler(address: str, timeout: float) -> None:
    import asyncio

    from distributed.comm import connect
    from distributed.security import Security

    async def identify() -> dict:
        # the TLS settings, if any, come from dask's configuration, as for a Client
        comm = await connect(address, timeout=timeout, **Security().get_connection_args("client"))
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    if address.startswith("tcp://"):
        # a plain TCP connect first, retried until the timeout: its error says for certain why nothing
        # answers (refused, unknown host), however slowly distributed's own retry loop would run
        await _tcp_reachable(address[len("tcp://"):], timeout)
    try:
        # connect() gives up after `timeout` with the reason; this bounds the handshake that follows it
        reply = await asyncio.wait_for(identify(), timeout + 1.0)
    except asyncio.TimeoutError:
        raise TimeoutError(f"no answer within {timeout:g} s") from None
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        kind = reply.get("type") if isinstance(reply, dict) else None
        raise OSError(f"the server there is a dask {kind}, not a scheduler" if kind else
                      "the server there does not speak dask's protocol")


async def _tcp_reachable(hostport: str, timeout: float) -> None:
    import asyncio
    import time

    host, _, port = hostport.rpartition(":")
    host = host.strip("[]")
    try:
        port_no = int(port)
    except ValueError:
        return  # not host:port; distributed's own parser says what is wrong with it
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port_no), max(left, 0.05))
        except ConnectionRefusedError as e:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no answer within {timeout:g} s") from e
            await asyncio.sleep(min(0.2, max(deadline - time.monotonic(), 0.0)))
            continue
        except socket.gaierror:
            raise
        except (asyncio.TimeoutError, TimeoutError):
            raise TimeoutError(f"no answer within {timeout:g} s") from None
        writer.close()
        return


def _run_async(coro) -> Any:
    """``coro`` to completion from synchronous code, also when this thread already runs an event loop."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with cf.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _kill_workers(cluster) -> None:
    for nanny in list(getattr(cluster, "workers", {}).values()):
        try:
            pid = nanny.process.process.pid
            if pid:
                os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        except (AttributeError, OSError):  # not a nanny with a process (any more): closing handles it
            pass


@contextlib.contextmanager
def _quieter(name: str, level: int) -> Iterator[None]:
    # dask's logging config gives some children (distributed.client, ...) their own level: raise them all
    names = [name, *(n for n in list(logging.Logger.manager.loggerDict) if n.startswith(name + "."))]
    loggers = [logging.getLogger(n) for n in names]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(level, lg.level))
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, before):
            lg.setLevel(lvl)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_version() -> str:
    from . import __version__

    return __version__


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "ProcessExecutor", "DaskExecutor", "get_executor",
           "aligned", "redact", "cores"]
