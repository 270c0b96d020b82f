"""Selecting and fetching for a poll: claim the due receipts, ask the Case Status API about
each through one client and the shared rate limiter, keep every answer and failure.

Receipt numbers stay in memory and in the registry file; `pipeline.jobs.poll` runs these steps
and `pipeline.jobs.poll_results` prepares and stores what they brought.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pipeline.settings import Settings
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
    build_http_client,
)
from pipeline.sources.uscis.ratelimit import DailyQuotaExhausted, SqliteRateLimiter
from pipeline.sources.uscis.registry import (
    ERROR,
    INVALID,
    NOT_FOUND,
    OK,
    QUOTA,
    PollSchedule,
    Registry,
    registry_path,
)

ENV_INTERVAL: Final = "TIMELINES_POLL_INTERVAL_HOURS"
ENV_DECIDED_INTERVAL: Final = "TIMELINES_POLL_DECIDED_INTERVAL_HOURS"
ENV_GRACE: Final = "TIMELINES_POLL_DECIDED_GRACE_DAYS"
RATE_LIMIT_FILE: Final = "ratelimit.sqlite"
RATE_LIMIT_EMULATOR_FILE: Final = "ratelimit-emulator.sqlite"
# This many receipts in a row with no usable answer (after the client's own retries) means the
# service is down (the sandbox closes nights and weekends): stop instead of burning the quota.
SERVICE_DOWN_AFTER: Final = 5
SANDBOX_HOURS: Final = "the sandbox answers Monday to Friday, 7am to 8pm US Eastern time"

Clock = Callable[[], float]
OnProgress = Callable[[int, int, str], None]  # (done, total, outcome of the last receipt)


def schedule_from_env(env: Mapping[str, str]) -> PollSchedule:
    """Read the poll schedule from TIMELINES_POLL_* variables (hours and days)."""

    def number(name: str, default: float) -> float:
        raw = env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError as exc:
            raise ValueError(f"{name}={raw!r} is not a number") from exc
        if value <= 0:
            raise ValueError(f"{name}={raw!r} must be more than 0")
        return value

    return PollSchedule(
        interval=timedelta(hours=number(ENV_INTERVAL, 24)),
        decided_interval=timedelta(hours=number(ENV_DECIDED_INTERVAL, 24 * 7)),
        decided_grace=timedelta(days=number(ENV_GRACE, 60)),
    )


def api_label(base_url: str) -> str:
    """Name the API a base URL points at: sandbox, emulator, production or its host name."""
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
class PollBatch:
    """The receipts one run claimed, and how many are tracked in all."""

    claim_id: str
    receipts: list[str]
    n_tracked: int
    started_at: datetime


def select_due_receipts(
    settings: Settings,
    schedule: PollSchedule,
    *,
    now: datetime,
    force: bool = False,
    limit: int | None = None,
    requests_per_second: int = 10,
) -> PollBatch:
    """Claim the receipts due now (every tracked one with `force`), at most `limit`."""
    with Registry(registry_path(settings.ensure_home())) as registry:
        expected = min(len(registry.receipts()), limit if limit is not None else 10**9)
        # Long enough to poll them all with retries; a crashed run frees them when it ends.
        lease = timedelta(minutes=10, seconds=3 * expected / max(1, requests_per_second))
        claim = registry.claim_due(now=now, schedule=schedule, force=force, limit=limit, lease=lease)
    return PollBatch(claim.claim_id, claim.receipts, claim.n_tracked, now)


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


class FetchProgress:
    """What the fetch step has done so far.

    A plain object on purpose: the flow passes it to the fetch task by reference, so a retried
    fetch skips the receipts already settled and the traffic of every attempt is counted.
    """

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.failures: dict[str, Failure] = {}
        self.traffic: Counter[tuple[date, str, int]] = Counter()
        self.quota_resets_at: datetime | None = None
        self.problem: str | None = None

    def settled(self, receipt: str) -> bool:
        """Tell whether a receipt needs no further request in this run."""
        failure = self.failures.get(receipt)
        return receipt in self.answers or (failure is not None and failure.outcome != ERROR)

    def answer(self, receipt: str, answer: Answer) -> None:
        """Keep a 200 answer (replacing an earlier failure of this run)."""
        self.failures.pop(receipt, None)
        self.answers[receipt] = answer

    def fail(self, receipt: str, failure: Failure) -> None:
        """Keep a failed poll."""
        self.failures[receipt] = failure


def fetch_answers(
    settings: Settings,
    api: ApiSettings,
    batch: PollBatch,
    progress: FetchProgress,
    *,
    clock: Clock = time.time,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: OnProgress | None = None,
    service_down_after: int = SERVICE_DOWN_AFTER,
) -> FetchProgress:
    """Ask the API about each claimed receipt through ONE client and the shared rate limiter.

    Stops cleanly when the day's quota is spent or the credentials are refused, and raises
    ServiceDown when `service_down_after` receipts in a row got no usable answer.
    """
    zone = ZoneInfo(api.quota_reset_zone)

    def count(receipt: str | None, status: int, elapsed: float) -> None:
        day = datetime.fromtimestamp(clock(), zone).date()
        progress.traffic[(day, "token" if receipt is None else "case_status", status)] += 1

    def moment() -> datetime:
        return datetime.fromtimestamp(clock())

    progress.problem = None
    total, down_in_a_row = len(batch.receipts), 0
    with (
        SqliteRateLimiter(
            rate_limit_path(settings.home, api_label(api.base_url)),
            api.rate_policy(),
            clock=clock,
            sleep=sleep,
        ) as limiter,
        build_http_client(api.base_url, api.timeout_s) as http,
    ):
        client = CaseStatusClient(http, api, limiter=limiter, on_response=count, clock=clock, sleep=sleep)
        for done, receipt in enumerate(batch.receipts, start=1):
            if progress.settled(receipt):
                continue
            try:
                body = client.fetch_case_status(receipt)
            except (DailyQuotaExhausted, QuotaExhausted) as error:
                resets = (
                    error.resets_at
                    if isinstance(error, DailyQuotaExhausted)
                    else api.rate_policy().next_reset(clock())
                )
                progress.quota_resets_at = resets
                status = error.status if isinstance(error, QuotaExhausted) else None
                reason = f"the daily quota is spent; it resets at {resets:%Y-%m-%d %H:%M %Z}"
                progress.fail(receipt, Failure(QUOTA, status, reason, moment()))
                _report(on_progress, done, total, QUOTA)
                break
            except AuthenticationFailed as error:
                progress.problem = f"the Case Status API refused our credentials: {error}"
                progress.fail(receipt, Failure(ERROR, error.status, scrub(str(error)), moment()))
                _report(on_progress, done, total, ERROR)
                break
            except (CaseNotFound, InvalidReceipt) as error:
                outcome = NOT_FOUND if isinstance(error, CaseNotFound) else INVALID
                progress.fail(receipt, Failure(outcome, error.status, scrub(error.message), moment()))
                down_in_a_row = 0
                _report(on_progress, done, total, outcome)
                continue
            except UscisApiError as error:
                progress.fail(receipt, Failure(ERROR, error.status, scrub(str(error)), moment()))
                _report(on_progress, done, total, ERROR)
                if isinstance(error, ServiceUnavailable | RateLimited):
                    down_in_a_row += 1
                    if down_in_a_row >= service_down_after:
                        progress.problem = (
                            f"the Case Status API gave no usable answer for {down_in_a_row} "
                            f"receipts in a row (last: {scrub(str(error))}); stopped this run. "
                            f"If you use the sandbox: {SANDBOX_HOURS}"
                        )
                        raise ServiceDown(progress.problem) from error
                else:
                    down_in_a_row = 0
                continue
            progress.answer(receipt, Answer(body, moment()))
            down_in_a_row = 0
            _report(on_progress, done, total, OK)
    return progress


def _report(on_progress: OnProgress | None, done: int, total: int, outcome: str) -> None:
    if on_progress is not None:
        on_progress(done, total, outcome)


