"""JSON-RPC over HTTP for every RPC source: retries, rate limit, fail-over, batching — one layer.

``Transport`` sends single JSON-RPC calls through web3.py's ``HTTPProvider`` (one per ``--rpc-url``) and
batches through the same provider's session and headers (matched by id here, see ``_send_batch``), and
it owns *all* retrying. web3 8's provider retries ``requests.HTTPError`` (which includes HTTP 429),
timeouts and connection errors by itself, with a fixed backoff and without reading ``Retry-After``; every
provider here is built with ``exception_retry_configuration=None`` so that layer never retries, and the
requests session has ``max_retries=0`` so urllib3 does not either. One attempt here is therefore exactly
one HTTP request, which is what the tests count at their fault-injecting proxy. ``--max-rps`` limits
HTTP requests (a batch is one).

Retried (exponential backoff with full jitter, at least ``Retry-After`` when the server sends one):
HTTP 429 and 5xx, timeouts, connection errors and resets, truncated or malformed bodies, and JSON-RPC
errors that mean "rate limited" or "try again". With several endpoints a failing one cools down and the
next one takes over (fail-over); a healthy endpoint is kept as long as it answers (stickiness). Errors
meaning "this eth_getLogs range is too large / has too many results" are raised as
:class:`RangeTooLarge` for the caller to split the range (``adapters.rpc.chain``); other JSON-RPC errors
(reverts, bad params) are raised as :class:`RpcError` at once. Nothing here opens a socket until the
first call, and every message is scrubbed of URL secrets.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from web3.providers.rpc import HTTPProvider

from mbt_errors import MbtError

from .redact import Redactor, redact_url

# Errors whose text says the *query* is too big: the caller must ask for fewer blocks.
_RANGE_PATTERNS = re.compile(
    r"block range|range (is )?too (large|wide|big)|more than \d+ (results|logs)|returned more than|"
    r"response size|too many (results|logs|blocks)|max(imum)? (block )?range|exceed(s|ed)? (the )?max|"
    r"limited to (a )?\d+|query exceeds|result set too large|query timeout|range limit",
    re.IGNORECASE)
# Errors whose text says "slow down" or "try again later": retried with backoff.
_RATE_PATTERNS = re.compile(
    r"rate limit|rate exceeded|limit exceeded|too many requests|request limit|exceeded .*(quota|limit|rate)|"
    r"capacity|throughput|compute units|"
    r"requests per second|daily request|try again|temporar|overloaded|busy",
    re.IGNORECASE)
_RETRIABLE_CODES = {429, -32603, -32002}  # rate limited; internal error; resource unavailable
# Alchemy names a range that works: "... this block range should work: [0x1, 0x7d0]".
_SUGGESTED_RANGE = re.compile(r"\[\s*(0x[0-9a-fA-F]+)\s*,\s*(0x[0-9a-fA-F]+)\s*\]")


class TransportError(MbtError):
    """Every endpoint failed for a call after all retries (message names the redacted endpoints)."""


class RpcError(Exception):
    """A JSON-RPC error object returned by the node (message already scrubbed of secrets).

    Parameters
    ----------
    code : int or None
        JSON-RPC error code.
    message : str
        Error message.
    data : Any
        The error's ``data`` member (e.g. revert data), if any.
    """

    def __init__(self, code: int | None, message: str, data: Any = None) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message
        self.data = data


class RangeTooLarge(RpcError):
    """The provider refused an ``eth_getLogs`` range or result size; ``suggested`` = a block count that works."""

    def __init__(self, code: int | None, message: str, data: Any = None, suggested: int | None = None) -> None:
        super().__init__(code, message, data)
        self.suggested = suggested


def classify_error(code: int | None, message: str) -> str:
    """Classify a JSON-RPC error object.

    Parameters
    ----------
    code : int or None
        The error's ``code``.
    message : str
        The error's ``message``.

    Returns
    -------
    str
        ``"range"`` (query too large: split it), ``"retry"`` (rate limited or transient: back off and
        retry) or ``"fatal"`` (e.g. execution reverted, invalid params: do not retry).
    """
    if _RANGE_PATTERNS.search(message or ""):
        return "range"
    if code in _RETRIABLE_CODES or _RATE_PATTERNS.search(message or ""):
        return "retry"
    return "fatal"


def suggested_span(message: str) -> int | None:
    """Block count of a range the provider suggests in its error message, if it names one."""
    found = _SUGGESTED_RANGE.search(message or "")
    if not found:
        return None
    lo, hi = int(found.group(1), 16), int(found.group(2), 16)
    return hi - lo + 1 if hi >= lo else None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from an HTTP ``Retry-After`` header (delta-seconds or HTTP-date), else None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass
class TransportStats:
    """Counters of one transport's life (reported at the end of an ingest)."""

    http_requests: int = 0          # HTTP POSTs sent (each retry is one more)
    calls: int = 0                  # JSON-RPC calls answered (a batch of n counts n)
    batches: int = 0                # HTTP requests that carried a JSON-RPC batch
    retries: int = 0                # attempts repeated after a retriable failure
    failovers: int = 0              # switches to another endpoint after a failure
    waited_s: float = 0.0           # time slept in backoff / Retry-After / rate limiting, seconds
    by_cause: dict[str, int] = field(default_factory=dict)

    def count(self, cause: str) -> None:
        """Count one retriable failure of kind ``cause`` (``http_429``, ``timeout``, ``malformed``...)."""
        self.by_cause[cause] = self.by_cause.get(cause, 0) + 1


class _Retriable(Exception):
    def __init__(self, cause: str, detail: str, wait_at_least: float = 0.0, dead: bool = False) -> None:
        super().__init__(detail)
        self.cause = cause
        self.detail = detail
        self.wait_at_least = wait_at_least
        self.dead = dead


class _Endpoint:
    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.label = redact_url(url)
        self.timeout = timeout
        self.session = requests.Session()
        # No retries below this layer: urllib3's would be invisible and ignore Retry-After.
        adapter = HTTPAdapter(max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # exception_retry_configuration=None: web3 must not retry (by default it retries HTTPError —
        # 429 included — timeouts and connection errors itself, blind to Retry-After).
        self.provider = HTTPProvider(url, request_kwargs={"timeout": timeout}, session=self.session,
                                     exception_retry_configuration=None)
        self.available_at = 0.0     # monotonic time before which this endpoint is cooling down
        self.failures = 0           # consecutive failures (resets on success)
        self.dead = False           # answered 401/403/404...: never asked again in this run
        self.batch_ok = True        # cleared when the endpoint refuses JSON-RPC batches


class _ScrubFilter(logging.Filter):
    """Rewrite log records of web3/urllib3 (which log full URLs at DEBUG) through a Redactor."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.scrub(record.getMessage())
        record.args = None
        return True


# Loggers that put the endpoint URL (path and query included) into DEBUG records.
_URL_LOGGERS = ("web3.providers.HTTPProvider", "web3._utils.http_session_manager.HTTPSessionManager",
                "urllib3.connectionpool")


class RateLimiter:
    """Token bucket: at most ``rate`` acquisitions per second on average, bursts of up to ``rate``.

    Parameters
    ----------
    rate : float or None
        Requests per second; None disables the limit.
    clock, sleep : callables
        Injected for tests (monotonic seconds; sleep seconds).
    """

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate or 1.0)
        self.tokens = self.capacity
        self.clock = clock
        self.sleep = sleep
        self.updated = clock()
        self.lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; returns the seconds slept."""
        if not self.rate:
            return 0.0
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            wait = 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate
            if wait:
                self.sleep(wait)
                self.updated = self.clock()
                self.tokens = 1.0
            self.tokens -= 1
            return wait


class Transport:
    """Send JSON-RPC calls to one of several endpoints, retrying what is worth retrying.

    Parameters
    ----------
    urls : sequence of str
        Endpoint URLs, in order of preference (they may carry API keys; never shown unredacted).
    timeout : float
        Per-request HTTP timeout, seconds.
    retries : int
        How many times one call may be repeated (over all endpoints) before :class:`TransportError`.
    max_rps : float or None
        Upper bound on HTTP requests per second (all endpoints together); None = unlimited.
    backoff : float
        Base of the exponential backoff, seconds (attempt k waits uniform(0, backoff·2^k), capped).
    max_backoff : float
        Cap of one backoff wait, seconds; a longer ``Retry-After`` is still honoured up to ``max_retry_after``.
    max_retry_after : float
        Longest ``Retry-After`` obeyed, seconds (a daily-quota 429 would otherwise stall the run for hours).
    batch_size : int
        Most calls in one JSON-RPC batch.
    sleep, clock, rng : injected for tests.
    """

    def __init__(self, urls: Sequence[str], *, timeout: float = 30.0, retries: int = 8,
                 max_rps: float | None = None, backoff: float = 0.25, max_backoff: float = 30.0,
                 max_retry_after: float = 300.0, batch_size: int = 100,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        if not urls:
            raise MbtError("--rpc-url: no endpoint given (and $ETH_RPC_URL is not set)")
        self.redactor = Redactor(tuple(urls))
        self.endpoints = [_Endpoint(u, timeout) for u in urls]
        self.labels = [e.label for e in self.endpoints]
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.batch_size = batch_size
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()
        self.limiter = RateLimiter(max_rps, clock, sleep)
        self.stats = TransportStats()
        self.current = 0
        self._log_filter = _ScrubFilter(self.redactor)
        for name in _URL_LOGGERS:
            logging.getLogger(name).addFilter(self._log_filter)

    # -- public ---------------------------------------------------------------------------------
    def describe(self) -> str:
        """The endpoints as shown to users: ``scheme://host[:port]``, comma-separated."""
        return ", ".join(self.labels)

    def call(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call; returns its ``result``.

        Raises
        ------
        RangeTooLarge
            The provider refused the query's size (eth_getLogs).
        RpcError
            Any other JSON-RPC error that retrying cannot fix (e.g. execution reverted).
        TransportError
            Every attempt failed (HTTP errors, timeouts, malformed bodies, rate limits).
        """
        return self._attempt(lambda ep: self._single(ep, method, params), what=method)

    def call_on(self, index: int, method: str, params: list[Any]) -> Any:
        """One attempt on endpoint ``index`` only: no retry, no fail-over (for up-front checks).

        Raises
        ------
        TransportError
            The attempt failed.
        """
        ep = self.endpoints[index]
        self.stats.waited_s += self.limiter.acquire()
        try:
            return self._single(ep, method, params)
        except _Retriable as exc:
            raise TransportError(exc.detail) from None

    def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """Several calls, sent as JSON-RPC batches of at most ``batch_size``.

        Returns
        -------
        list
            One entry per call, in order: the ``result``, or an :class:`RpcError` instance for a call
            that failed with a non-retriable JSON-RPC error (returned, not raised, so one revert does not
            lose the other answers).
        """
        out: list[Any] = []
        for start in range(0, len(calls), self.batch_size):
            out.extend(self._batch_chunk(list(calls[start:start + self.batch_size])))
        return out

    def close(self) -> None:
        """Release the HTTP sessions and the log filters."""
        for ep in self.endpoints:
            ep.session.close()
        for name in _URL_LOGGERS:
            logging.getLogger(name).removeFilter(self._log_filter)

    # -- retry loop -----------------------------------------------------------------------------
    def _pick(self, last: _Retriable | None) -> _Endpoint:
        # Stay on the current endpoint while it is available; otherwise take the one that cools down
        # soonest (ties: the preferred order of --rpc-url).
        now = self.clock()
        cur = self.endpoints[self.current]
        if not cur.dead and cur.available_at <= now:
            return cur
        alive = [i for i, e in enumerate(self.endpoints) if not e.dead]
        if not alive:
            raise TransportError(f"no usable endpoint left ({self.describe()}); last error: "
                                 f"{last.detail if last else 'unknown'}")
        best = min(alive, key=lambda i: (self.endpoints[i].available_at, i))
        if best != self.current:
            self.current = best
            self.stats.failovers += 1
        ep = self.endpoints[best]
        wait = ep.available_at - now
        if wait > 0:
            self.sleep(wait)
            self.stats.waited_s += wait
        return ep

    def _attempt(self, send: Callable[[_Endpoint], Any], what: str) -> Any:
        last: _Retriable | None = None
        for attempt in range(self.retries + 1):
            ep = self._pick(last)
            self.stats.waited_s += self.limiter.acquire()
            try:
                result = send(ep)
            except _Retriable as exc:
                last = exc
                self.stats.count(exc.cause)
                ep.failures += 1
                ep.dead = exc.dead
                delay = min(self.max_backoff, self.backoff * 2 ** (ep.failures - 1)) * self.rng.random()
                ep.available_at = self.clock() + max(delay, exc.wait_at_least)
                if attempt < self.retries:
                    self.stats.retries += 1
                continue
            ep.failures = 0
            return result
        assert last is not None
        raise TransportError(f"{what}: gave up after {self.retries + 1} attempts on {self.describe()}; "
                             f"last error: {last.detail}")

    # -- one HTTP request -----------------------------------------------------------------------
    def _post(self, ep: _Endpoint, send: Callable[[], Any]) -> Any:
        self.stats.http_requests += 1
        try:
            return send()
        except requests.HTTPError as exc:
            response = exc.response
            status = response.status_code if response is not None else 0
            if status == 429:
                wait = retry_after_seconds(response.headers.get("Retry-After")) or 0.0
                # A very long Retry-After (a daily quota) is honoured only up to max_retry_after: with
                # another endpoint, fail-over takes over at once; alone, the retries run out.
                raise _Retriable("http_429", f"{ep.label}: HTTP 429 Too Many Requests"
                                 + (f" (Retry-After {wait:.0f} s)" if wait else ""),
                                 min(wait, self.max_retry_after)) from None
            if status >= 500 or status in (408, 425):
                wait = retry_after_seconds(response.headers.get("Retry-After")) or 0.0
                raise _Retriable(f"http_{status}", f"{ep.label}: HTTP {status}",
                                 min(wait, self.max_retry_after)) from None
            # 401/403/404...: this endpoint will not work (bad key, wrong path); let another one try.
            raise _Retriable(f"http_{status}", f"{ep.label}: HTTP {status} (check the URL and its API key)",
                             dead=True) from None
        except requests.Timeout:
            raise _Retriable("timeout", f"{ep.label}: timed out") from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            raise _Retriable("truncated", f"{ep.label}: response body cut short") from None
        except requests.ConnectionError as exc:
            # Includes resets and bodies cut short (urllib3 ProtocolError / IncompleteRead).
            kind = "truncated" if "IncompleteRead" in repr(exc) or "ProtocolError" in repr(exc) else "connection"
            raise _Retriable(kind, f"{ep.label}: connection failed ({kind})") from None
        except requests.RequestException as exc:
            raise _Retriable("http", f"{ep.label}: {type(exc).__name__}") from None
        except (ValueError, UnicodeDecodeError):
            # json.JSONDecodeError is a ValueError: a truncated or non-JSON body.
            raise _Retriable("malformed", f"{ep.label}: malformed JSON-RPC response") from None

    def _error(self, ep: _Endpoint, error: Any) -> Exception:
        if not isinstance(error, dict):
            return _Retriable("malformed", f"{ep.label}: malformed JSON-RPC error object")
        code = error.get("code")
        message = self.redactor.scrub(str(error.get("message", "")))
        kind = classify_error(code if isinstance(code, int) else None, message)
        if kind == "range":
            return RangeTooLarge(code, message, error.get("data"), suggested_span(message))
        if kind == "retry":
            data = error.get("data")
            wait = 0.0
            if isinstance(data, dict):
                for key in ("backoff_seconds", "retry_after", "retryAfter"):
                    if isinstance(data.get(key), (int, float)):
                        wait = float(data[key])
            return _Retriable(f"rpc_{code}", f"{ep.label}: {message} (code {code})", min(wait, self.max_retry_after))
        return RpcError(code, message, error.get("data"))

    def _single(self, ep: _Endpoint, method: str, params: list[Any]) -> Any:
        reply = self._post(ep, lambda: ep.provider.make_request(method, params))
        if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
            raise _Retriable("malformed", f"{ep.label}: malformed JSON-RPC response")
        if "error" in reply and reply["error"] is not None:
            raise self._error(ep, reply["error"])
        self.stats.calls += 1
        return reply["result"]

    def _batch_chunk(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        results: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        rounds = 0
        while pending:
            rounds += 1
            if rounds > self.retries + 1:
                raise TransportError(f"batch: gave up after {self.retries + 1} attempts on {self.describe()}")
            if len(pending) == 1 or not self.endpoints[self.current].batch_ok:
                for i in pending:
                    try:
                        results[i] = self.call(*calls[i])
                    except RangeTooLarge:
                        raise
                    except RpcError as exc:
                        results[i] = exc
                return results
            retry: list[int] = []
            todo = [calls[i] for i in pending]
            answers = self._attempt(lambda ep, todo=todo: self._send_batch(ep, todo), what="batch")
            if answers is None:  # the endpoint does not do batches: go one by one
                continue
            least = 0.0
            for i, answer in zip(pending, answers):
                if isinstance(answer, _Retriable):
                    # Rate limited per item (some providers answer a batch partly) or missing: again.
                    retry.append(i)
                    least = max(least, answer.wait_at_least)
                    self.stats.count(answer.cause)
                elif isinstance(answer, RangeTooLarge):
                    raise answer
                else:
                    results[i] = answer
            if retry:
                self.stats.retries += 1
                wait = max(least, min(self.max_backoff, self.backoff * 2 ** (rounds - 1)) * self.rng.random())
                self.sleep(wait)
                self.stats.waited_s += wait
            pending = retry
        return results

    def _send_batch(self, ep: _Endpoint, calls: list[tuple[str, list[Any]]]) -> list[Any] | None:
        # web3's HTTPProvider.make_batch_request would hand back replies sorted by id and warns when a
        # reply lacks one; a batch here is matched by id explicitly instead, so a reply that drops or
        # garbles items only costs those items a retry. Same session, headers and timeout as the provider.
        self.stats.batches += 1
        payload = json.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                              for i, (m, p) in enumerate(calls)], separators=(",", ":")).encode()

        def post() -> Any:
            response = ep.session.post(ep.url, data=payload, headers=ep.provider.get_request_headers(),
                                       timeout=ep.timeout)
            response.raise_for_status()
            return json.loads(response.content)

        reply = self._post(ep, post)
        if isinstance(reply, dict):
            # One error object for the whole batch: batching refused, or rate limited as a whole.
            err = self._error(ep, reply.get("error"))
            if isinstance(err, _Retriable):
                raise err
            ep.batch_ok = False
            return None
        if not isinstance(reply, list):
            raise _Retriable("malformed", f"{ep.label}: malformed batch reply")
        by_id: dict[int, Any] = {}
        for item in reply:
            if isinstance(item, dict) and isinstance(item.get("id"), int) and ("result" in item or "error" in item):
                by_id[item["id"]] = item
        out: list[Any] = []
        for i in range(len(calls)):
            item = by_id.get(i)
            if item is None:
                out.append(_Retriable("missing_batch_item", f"{ep.label}: batch reply lacks item {i}"))
            elif item.get("error") is not None:
                out.append(self._error(ep, item["error"]))
            else:
                self.stats.calls += 1
                out.append(item["result"])
        return out
