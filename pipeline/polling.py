"""Poll the Case Status API for the opted-in receipts: select, fetch, prepare, store, record.

Each step is a plain function so the `poll` flow can wrap it in a task and a test can call it.
Receipt numbers stay in memory and in the registry file; everything written to the analytics
database is keyed by the case's pseudonym. `run_poll` runs every step in-process.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import orjson
import polars as pl

from pipeline import jobs
from pipeline.analytics.silent_updates import OBSERVATION_COLUMNS, record_observations
from pipeline.anonymize import PseudonymKey, load_key, pseudonymize
from pipeline.ingest import PreparedChunk, anonymize_cases, validate_records
from pipeline.model import ParsedCase, Rejection
from pipeline.parse import ParseError, parse_document
from pipeline.receipts import InvalidReceiptError
from pipeline.registry import (
    ERROR,
    INVALID,
    NOT_FOUND,
    OK,
    QUOTA,
    PollRecord,
    PollSchedule,
    Registry,
    registry_path,
)
from pipeline.settings import Settings
from pipeline.sources.files import fingerprint, scrub
from pipeline.sources.ratelimit import DailyQuotaExhausted, SqliteRateLimiter
from pipeline.sources.uscis_api import (
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
from pipeline.stages import TERMINAL_STAGES, event_order
from pipeline.store.db import open_store
from pipeline.store.load import LoadResult, next_run_id, record_failed_run, record_run, store_chunk

ENV_INTERVAL: Final = "TIMELINES_POLL_INTERVAL_HOURS"
ENV_DECIDED_INTERVAL: Final = "TIMELINES_POLL_DECIDED_INTERVAL_HOURS"
ENV_GRACE: Final = "TIMELINES_POLL_DECIDED_GRACE_DAYS"
RATE_LIMIT_FILE: Final = "ratelimit.sqlite"
RATE_LIMIT_EMULATOR_FILE: Final = "ratelimit-emulator.sqlite"
FLOW_NAME: Final = "poll"
ORIGIN: Final = "Case Status API poll"
# This many receipts in a row with no usable answer (after the client's own retries) means the
# service is down (the sandbox closes nights and weekends): stop instead of burning the quota.
SERVICE_DOWN_AFTER: Final = 5
SANDBOX_HOURS: Final = "the sandbox answers Monday to Friday, 7am to 8pm US Eastern time"

Clock = Callable[[], float]
OnProgress = Callable[[int, int, str], None]  # (done, total, outcome of the last receipt)


def schedule_from_env(env: Mapping[str, str] = os.environ) -> PollSchedule:
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


@dataclass(frozen=True)
class PollOutcome:
    """One poll of one case as recorded for the health page (keyed by pseudonym)."""

    case_id: str
    polled_at: datetime
    outcome: str
    http_status: int | None
    reason: str | None
    decided_on: date | None = None


@dataclass
class PreparedPoll:
    """Rows to store from one poll run, and every receipt's outcome."""

    chunk: PreparedChunk
    observations: pl.DataFrame
    outcomes: dict[str, PollOutcome]


def prepare_answers(
    progress: FetchProgress,
    key: PseudonymKey,
    *,
    synthetic: bool,
    now: datetime,
    today: date | None = None,
) -> PreparedPoll:
    """Parse, anonymize and validate the answers; a failure becomes that receipt's outcome."""
    outcomes: dict[str, PollOutcome] = {
        receipt: PollOutcome(
            pseudonymize(receipt, key), failure.at, failure.outcome, failure.status, failure.reason
        )
        for receipt, failure in progress.failures.items()
    }
    parsed: list[tuple[str, ParsedCase]] = []
    rejections: list[Rejection] = []
    observations: list[dict[str, object]] = []
    for receipt, answer in progress.answers.items():
        case_id = pseudonymize(receipt, key)
        try:
            case = _parse_answer(receipt, answer.body)
        except (ParseError, InvalidReceiptError, ValueError) as error:
            reason = scrub(f"USCIS's answer could not be read: {error}")
            content = b"poll\0" + orjson.dumps(answer.body, option=orjson.OPT_SORT_KEYS)
            rejections.append(
                Rejection(ORIGIN, (reason,), fingerprint(content, key.secret), case_id)
            )
            outcomes[receipt] = PollOutcome(case_id, answer.fetched_at, ERROR, 200, reason)
            continue
        case.observed_at = answer.fetched_at
        case.synthetic = case.synthetic or synthetic
        parsed.append((ORIGIN, case))
        events = sorted(case.events, key=lambda e: event_order(e.event_date, e.stage))
        decisions = [e.event_date for e in events if e.stage in TERMINAL_STAGES]
        outcomes[receipt] = PollOutcome(
            case_id, answer.fetched_at, OK, 200, None, min(decisions) if decisions else None
        )
        observations.append(
            {
                "case_id": case_id,
                "observed_at": answer.fetched_at,
                "last_modified": case.last_modified,
                "last_stage": events[-1].stage if events else None,
            }
        )
    anonymized = anonymize_cases(parsed, key, now)
    checked = validate_records(anonymized, today)
    receipt_of = {o.case_id: r for r, o in outcomes.items()}
    for rejection in [*anonymized.rejections, *checked.rejections]:
        rejected = receipt_of.get(rejection.case_id or "")
        if rejected is None:
            continue
        reason = scrub("USCIS's answer was quarantined: " + "; ".join(rejection.reasons))
        before = outcomes[rejected]
        outcomes[rejected] = PollOutcome(before.case_id, before.polled_at, ERROR, 200, reason)
    chunk = PreparedChunk(
        cases=checked.cases,
        events=checked.events,
        rejections=[*rejections, *anonymized.rejections, *checked.rejections],
        origins=anonymized.origins,
        n_documents=len(progress.answers),
    )
    frame = pl.DataFrame(observations, schema=OBSERVATION_COLUMNS)
    stored_ids = set(checked.cases["case_id"].to_list())
    return PreparedPoll(chunk, frame.filter(pl.col("case_id").is_in(stored_ids)), outcomes)


def _parse_answer(receipt: str, body: dict[str, Any]) -> ParsedCase:
    cases = parse_document(body)
    if len(cases) != 1 or cases[0].receipt_number != receipt:
        raise ParseError("the answer is about a different receipt number than the one asked for")
    return cases[0]


@dataclass(frozen=True)
class StoredPoll:
    """What storing one poll run changed."""

    run_id: int
    n_new_cases: int
    n_new_events: int
    n_updated_cases: int
    n_rejected: int


def store_poll(
    settings: Settings,
    prepared: PreparedPoll,
    progress: FetchProgress,
    *,
    started_at: datetime,
    api: str,
    message: str,
) -> StoredPoll:
    """Merge the answers, observations, outcomes and traffic in one transaction."""
    settings.ensure_home()
    with open_store(settings.database_path) as con:
        # Checked while holding the database: a `track remove` that ran meanwhile wins.
        with Registry(registry_path(settings.home)) as registry:
            still_tracked = registry.receipts()
        outcomes = {r: o for r, o in prepared.outcomes.items() if r in still_tracked}
        kept = pl.Series("case_id", [o.case_id for o in outcomes.values()], dtype=pl.String)
        chunk = _only_cases(prepared.chunk, kept)
        run_id = next_run_id(con)
        result = LoadResult(run_id)
        con.execute("BEGIN TRANSACTION")
        try:
            new_by_case = _new_events_by_case(con, chunk.events)
            store_chunk(con, chunk, run_id, result)
            record_observations(
                con, prepared.observations.filter(pl.col("case_id").is_in(kept.implode()))
            )
            _insert_outcomes(con, run_id, outcomes.values(), new_by_case)
            _add_traffic(con, api, progress.traffic)
            record_run(con, run_id, FLOW_NAME, started_at, result, message=message)
            con.execute("COMMIT")
        except BaseException as error:
            con.execute("ROLLBACK")
            record_failed_run(con, run_id, FLOW_NAME, started_at, f"{type(error).__name__}: {error}")
            raise
    return StoredPoll(
        run_id,
        result.n_new_cases,
        result.n_new_events,
        sum(1 for n in new_by_case.values() if n),
        result.n_rejected,
    )


def _only_cases(chunk: PreparedChunk, case_ids: pl.Series) -> PreparedChunk:
    keep = pl.col("case_id").is_in(case_ids.implode())
    return PreparedChunk(
        cases=chunk.cases.filter(keep),
        events=chunk.events.filter(keep),
        rejections=[r for r in chunk.rejections if r.case_id in set(case_ids.to_list())],
        origins=chunk.origins,
        n_documents=chunk.n_documents,
    )


def _new_events_by_case(con: Any, events: pl.DataFrame) -> dict[str, int]:
    con.register("polled_events", events)
    try:
        rows = con.execute(
            "SELECT case_id, count(*) FROM"
            " (SELECT DISTINCT case_id, event_date, stage FROM polled_events) i"
            " ANTI JOIN status_events s USING (case_id, event_date, stage) GROUP BY case_id"
        ).fetchall()
    finally:
        con.unregister("polled_events")
    return {str(case_id): int(n) for case_id, n in rows}


def _insert_outcomes(
    con: Any, run_id: int, outcomes: Any, new_by_case: Mapping[str, int]
) -> None:
    rows = [
        [run_id, o.case_id, o.polled_at, o.outcome, o.http_status, o.reason,
         new_by_case.get(o.case_id, 0)]
        for o in outcomes
    ]
    if rows:
        con.executemany(
            "INSERT INTO poll_outcomes VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows
        )


def _add_traffic(con: Any, api: str, traffic: Counter[tuple[date, str, int]]) -> None:
    rows = [[day, api, endpoint, status, n] for (day, endpoint, status), n in traffic.items()]
    if rows:
        con.executemany(
            "INSERT INTO api_traffic VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE"
            " SET n_requests = api_traffic.n_requests + excluded.n_requests",
            rows,
        )


def record_outcomes(
    settings: Settings, batch: PollBatch, prepared: PreparedPoll, schedule: PollSchedule
) -> None:
    """Write each receipt's outcome and next due time to the registry; free the rest."""
    with Registry(registry_path(settings.home)) as registry:
        registry.record_polls(
            (
                PollRecord(receipt, o.polled_at, o.outcome, o.reason, o.decided_on)
                for receipt, o in prepared.outcomes.items()
            ),
            schedule,
        )
        registry.release(batch.claim_id)


@dataclass(frozen=True)
class PollSummary:
    """What one poll run did, for the CLI and the flow's return value."""

    api: str
    n_tracked: int
    n_due: int
    outcomes: dict[str, int] = field(default_factory=dict)
    n_left: int = 0
    requests: dict[int, int] = field(default_factory=dict)
    run_id: int | None = None
    n_new_cases: int = 0
    n_new_events: int = 0
    n_updated_cases: int = 0
    quota_resets_at: datetime | None = None
    problem: str | None = None

    @property
    def n_polled(self) -> int:
        """How many receipts got an outcome in this run."""
        return sum(self.outcomes.values())

    def describe(self) -> str:
        """Say in one paragraph what the run did."""
        if self.n_tracked == 0:
            return "no receipts are tracked: add yours with `timelines track add RECEIPT --consent`"
        if self.n_due == 0:
            return f"nothing is due: all {self.n_tracked} tracked receipts were polled recently"
        counts = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in self.outcomes.items() if n)
        text = f"polled {self.n_polled} of {self.n_due} due receipts ({counts or 'none'})"
        if self.run_id is not None:
            text += (
                f"; {self.n_new_events} new events in {self.n_updated_cases} cases, "
                f"{self.n_new_cases} new cases"
            )
        if self.quota_resets_at is not None:
            text += (
                f". The daily quota is spent: it resets at "
                f"{self.quota_resets_at:%Y-%m-%d %H:%M %Z}; {self.n_left} receipts wait for the "
                "next run"
            )
        elif self.n_left:
            text += f". {self.n_left} receipts were not polled and stay due"
        return text


def summarize(
    api: str,
    batch: PollBatch,
    progress: FetchProgress,
    prepared: PreparedPoll | None,
    stored: StoredPoll | None,
) -> PollSummary:
    """Put together what the run did."""
    outcomes = Counter(o.outcome for o in prepared.outcomes.values()) if prepared else Counter()
    requests: Counter[int] = Counter()
    for (_, _, status), n in progress.traffic.items():
        requests[status] += n
    return PollSummary(
        api=api,
        n_tracked=batch.n_tracked,
        n_due=len(batch.receipts),
        outcomes={name: outcomes[name] for name in (OK, NOT_FOUND, INVALID, ERROR, QUOTA)},
        n_left=len(batch.receipts) - len(progress.answers) - len(progress.failures),
        requests=dict(sorted(requests.items())),
        run_id=stored.run_id if stored else None,
        n_new_cases=stored.n_new_cases if stored else 0,
        n_new_events=stored.n_new_events if stored else 0,
        n_updated_cases=stored.n_updated_cases if stored else 0,
        quota_resets_at=progress.quota_resets_at,
        problem=progress.problem,
    )


def run_poll(
    settings: Settings,
    api: ApiSettings,
    *,
    schedule: PollSchedule | None = None,
    force: bool = False,
    limit: int | None = None,
    clock: Clock = time.time,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: OnProgress | None = None,
    publish: bool = True,
) -> PollSummary:
    """Run every step of a poll in this process (what `timelines poll` does without Prefect)."""
    schedule = schedule or schedule_from_env()
    label = api_label(api.base_url)
    now = datetime.fromtimestamp(clock())
    batch = select_due_receipts(
        settings, schedule, now=now, force=force, limit=limit,
        requests_per_second=api.requests_per_second,
    )
    progress = FetchProgress()
    if not batch.receipts:
        return summarize(label, batch, progress, None, None)
    try:
        # ServiceDown is recorded in progress.problem; what was fetched is still stored.
        with suppress(ServiceDown):
            fetch_answers(settings, api, batch, progress, clock=clock, sleep=sleep,
                          on_progress=on_progress)
        key = load_key(settings.key_path)
        prepared = prepare_answers(
            progress, key, synthetic=answers_are_synthetic(label), now=now
        )
        message = summarize(label, batch, progress, prepared, None).describe()
        stored = store_poll(settings, prepared, progress, started_at=now, api=label, message=message)
        record_outcomes(settings, batch, prepared, schedule)
    finally:
        with Registry(registry_path(settings.home)) as registry:
            registry.release(batch.claim_id)
    if publish:
        jobs.publish(settings)
    return summarize(label, batch, progress, prepared, stored)
