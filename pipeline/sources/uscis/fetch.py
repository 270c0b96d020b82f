"""Fetching for a poll: several requests in flight through one client and one paced limiter.

`fetch_answers` starts `max_in_flight` threads that take receipts one at a time, ask the Case
Status API (each request waits for its slot in the shared limiter, so the threads together
never send faster than the pace), and put what came back on a queue. The calling thread
takes the results as they arrive and calls `on_tick` every `tick_s` seconds, which is where
the poll job stores them and renews its lease: a slow answer stalls only its own thread, and
storing never stalls the fetchers. Receipt numbers stay in memory and in the registry.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pipeline.sources.files import scrub
from pipeline.sources.uscis.client import (
    ApiSettings,
    AuthenticationFailed,
    CaseNotFound,
    CaseStatusClient,
    InvalidReceipt,
    QuotaExhausted,
    RateLimited,
    ServiceUnavailable,
    UscisApiError,
)
from pipeline.sources.uscis.ratelimit import DailyQuotaExhausted
from pipeline.sources.uscis.schedule import ERROR, INVALID, NOT_FOUND, QUOTA, schedule_from_env

__all__ = [
    "Answer",
    "Failure",
    "FetchProgress",
    "ServiceDown",
    "answers_are_synthetic",
    "api_label",
    "fetch_answers",
    "rate_limit_path",
    "schedule_from_env",
]

RATE_LIMIT_FILE: Final = "ratelimit.sqlite"
RATE_LIMIT_EMULATOR_FILE: Final = "ratelimit-emulator.sqlite"
# This many receipts in a row with no usable answer (after the client's own retries) means the
# service is down (the sandbox closes nights and weekends): stop instead of burning the quota.
SERVICE_DOWN_AFTER: Final = 5
SANDBOX_HOURS: Final = "the sandbox answers Monday to Friday, 7am to 8pm US Eastern time"
# After a stop, wait this long for the answers already on their way.
STOP_GRACE_S: Final = 3.0
GIL_SWITCH_S: Final = 0.0005

Clock = Callable[[], float]
OnProgress = Callable[[int, int, str], None]  # (done, total, outcome of the last receipt)


def api_label(base_url: str) -> str:
    """Label the API a base URL points at, for the traffic table: sandbox, emulator, ..."""
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "api-int.uscis.gov":
        return "sandbox"
    if host in {"127.0.0.1", "localhost", "::1"}:
        return "emulator"
    if host.endswith("uscis.gov"):
        return "production"
    return host or "unknown"


def rate_limit_path(home: Path, label: str) -> Path:
    """Return the limiter file for an API: emulator traffic must not spend the real quota."""
    return home / (RATE_LIMIT_EMULATOR_FILE if label == "emulator" else RATE_LIMIT_FILE)


def answers_are_synthetic(label: str) -> bool:
    """Tell whether an API serves made-up cases (the sandbox's staging data, the emulator)."""
    return label in {"sandbox", "emulator"}


@dataclass(frozen=True)
class Answer:
    """A 200 answer of the Case Status API."""

    body: dict[str, Any]
    fetched_at: datetime


@dataclass(frozen=True)
class Failure:
    """A poll that brought no usable answer."""

    outcome: str
    status: int | None
    reason: str
    at: datetime


class ServiceDown(RuntimeError):
    """Several receipts in a row got no usable answer: the API is down or refusing us."""


@dataclass
class FetchProgress:
    """What the fetch has brought so far, and which of it is not stored yet.

    A plain object on purpose: a retried fetch skips the receipts already settled, and the
    traffic of every attempt is counted once.
    """

    answers: dict[str, Answer] = field(default_factory=dict)
    failures: dict[str, Failure] = field(default_factory=dict)
    traffic: Counter[tuple[date, str, int]] = field(default_factory=Counter)
    quota_resets_at: datetime | None = None
    problem: str | None = None
    unstored: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def settled(self, receipt: str) -> bool:
        """Tell whether a receipt needs no further request in this run."""
        failure = self.failures.get(receipt)
        return receipt in self.answers or (failure is not None and failure.outcome != ERROR)

    def answer(self, receipt: str, answer: Answer) -> None:
        """Keep a 200 answer (replacing an earlier failure of this run)."""
        with self._lock:
            self.failures.pop(receipt, None)
            self.answers[receipt] = answer
            self.unstored.add(receipt)

    def fail(self, receipt: str, failure: Failure) -> None:
        """Keep a failed poll."""
        with self._lock:
            self.answers.pop(receipt, None)
            self.failures[receipt] = failure
            self.unstored.add(receipt)

    def count(self, day: date, endpoint: str, status: int) -> None:
        """Count one request (called from the fetch threads)."""
        with self._lock:
            self.traffic[(day, endpoint, status)] += 1

    def take_unstored(self) -> FetchProgress:
        """Return the answers, failures and traffic not stored yet, and forget them here."""
        with self._lock:
            batch = FetchProgress(
                answers={r: self.answers[r] for r in self.unstored if r in self.answers},
                failures={r: self.failures[r] for r in self.unstored if r in self.failures},
                traffic=self.traffic,
            )
            self.traffic = Counter()
            self.unstored = set()
        return batch


@dataclass(frozen=True)
class _Result:
    receipt: str
    answer: Answer | None = None
    failure: Failure | None = None
    stop: str | None = None  # why nothing more should be sent: "quota", "credentials"
    down: bool = False  # no usable answer from the service (5xx, timeouts, spike arrests)
    resets_at: datetime | None = None  # when the spent quota resets


class _Feed:
    """Hand out receipts to the fetch threads, one at a time, until told to stop."""

    def __init__(self, receipts: Sequence[str], down_after: int) -> None:
        self._items: Iterator[str] = iter(receipts)
        self._lock = threading.Lock()
        self._down_after = down_after
        self.down_in_a_row = 0
        self.stopped = threading.Event()

    def take(self) -> str | None:
        with self._lock:
            return None if self.stopped.is_set() else next(self._items, None)

    def settle(self, result: _Result) -> None:
        """Stop handing out receipts at once when a result says so (before the next take)."""
        with self._lock:
            self.down_in_a_row = self.down_in_a_row + 1 if result.down else 0
            if result.stop or self.down_in_a_row >= self._down_after:
                self.stopped.set()


def fetch_answers(
    client: CaseStatusClient,
    api: ApiSettings,
    receipts: Sequence[str],
    progress: FetchProgress,
    *,
    clock: Clock = time.time,
    on_progress: OnProgress | None = None,
    on_tick: Callable[[], None] | None = None,
    tick_s: float = 1.0,
    service_down_after: int = SERVICE_DOWN_AFTER,
    stop_grace_s: float = STOP_GRACE_S,
) -> FetchProgress:
    """Ask the API about each receipt not yet settled, `api.max_in_flight` at a time.

    Stops sending when the day's quota is spent or the credentials are refused (the problem
    is kept in `progress.problem`), and raises ServiceDown after storing-ready results when
    `service_down_after` receipts in a row got no usable answer. On any exception in this
    thread (SIGTERM, Ctrl+C) it stops sending, waits up to `stop_grace_s` for the answers on
    their way and keeps them before the exception goes on.
    """
    todo = [r for r in receipts if not progress.settled(r)]
    feed, results = _Feed(todo, service_down_after), queue.Queue[_Result]()
    zone = ZoneInfo(api.quota_reset_zone)
    progress.problem = None

    def moment() -> datetime:
        return datetime.fromtimestamp(clock())

    def worker() -> None:
        while (receipt := feed.take()) is not None:
            result = _ask(client, api, receipt, moment)
            feed.settle(result)
            results.put(result)

    def count(receipt: str | None, status: int, elapsed: float) -> None:
        day = datetime.fromtimestamp(clock(), zone).date()
        progress.count(day, "token" if receipt is None else "case_status", status)

    client.on_response = count
    # A fetch thread that got its permit must not wait 5 ms (Python's default) for each
    # hand-over of the interpreter lock while this thread parses and stores: that delay,
    # different for each request, would bring two requests closer together at the server.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(switch_interval, GIL_SWITCH_S))
    threads = [
        threading.Thread(target=worker, name=f"poll-fetch-{i}", daemon=True)
        for i in range(min(api.max_in_flight, max(1, len(todo))))
    ]
    for thread in threads:
        thread.start()
    done, down_in_a_row, next_tick = 0, 0, time.monotonic() + tick_s
    try:
        while any(t.is_alive() for t in threads) or not results.empty():
            try:
                result = results.get(timeout=0.2)
            except queue.Empty:
                result = None
            if result is not None:
                done += 1
                down_in_a_row = down_in_a_row + 1 if result.down else 0
                _keep(progress, result, api)
                if down_in_a_row == service_down_after and result.failure is not None:
                    progress.problem = (
                        f"{api.server} gave no usable answer for {down_in_a_row} receipts in a "
                        f"row (last: {result.failure.reason}); stopped this run. If you use the "
                        f"sandbox: {SANDBOX_HOURS}"
                    )
                if on_progress is not None:
                    outcome = result.failure.outcome if result.failure else "ok"
                    on_progress(done, len(todo), outcome)
            if on_tick is not None and time.monotonic() >= next_tick:
                on_tick()
                next_tick = time.monotonic() + tick_s
    finally:
        feed.stopped.set()
        deadline = time.monotonic() + stop_grace_s
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            for thread in threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        while not results.empty():
            _keep(progress, results.get_nowait(), api)
        sys.setswitchinterval(switch_interval)
    if down_in_a_row >= service_down_after:
        raise ServiceDown(progress.problem or f"{api.server} is not answering")
    return progress


def _ask(
    client: CaseStatusClient, api: ApiSettings, receipt: str, moment: Callable[[], datetime]
) -> _Result:
    """Ask about one receipt and say what came back (never raises for an API problem)."""
    try:
        body = client.fetch_case_status(receipt)
    except (DailyQuotaExhausted, QuotaExhausted) as error:
        resets = (
            error.resets_at
            if isinstance(error, DailyQuotaExhausted)
            else api.rate_policy().next_reset(time.time())
        )
        status = error.status if isinstance(error, QuotaExhausted) else None
        reason = f"the daily quota is spent; it resets at {resets:%Y-%m-%d %H:%M %Z}"
        failure = Failure(QUOTA, status, reason, moment())
        return _Result(receipt, failure=failure, stop="quota", resets_at=resets)
    except AuthenticationFailed as error:
        failure = Failure(ERROR, error.status, scrub(str(error)), moment())
        return _Result(receipt, failure=failure, stop="credentials")
    except (CaseNotFound, InvalidReceipt) as error:
        outcome = NOT_FOUND if isinstance(error, CaseNotFound) else INVALID
        return _Result(receipt, failure=Failure(outcome, error.status, scrub(error.message), moment()))
    except UscisApiError as error:
        failure = Failure(ERROR, error.status, scrub(str(error)), moment())
        return _Result(receipt, failure=failure, down=isinstance(error, ServiceUnavailable | RateLimited))
    except Exception as error:  # a bug or a closed client: this receipt stays due
        failure = Failure(ERROR, None, scrub(f"{type(error).__name__}: {error}"), moment())
        return _Result(receipt, failure=failure)
    return _Result(receipt, answer=Answer(body, moment()))


def _keep(progress: FetchProgress, result: _Result, api: ApiSettings) -> None:
    if result.answer is not None:
        progress.answer(result.receipt, result.answer)
    elif result.failure is not None:
        progress.fail(result.receipt, result.failure)
    if result.resets_at is not None:
        progress.quota_resets_at = progress.quota_resets_at or result.resets_at
    if result.stop == "credentials" and result.failure is not None:
        progress.problem = f"{api.server} refused our credentials: {result.failure.reason}"
