"""What a poll found, stored: parse, anonymize and validate the answers, merge each batch into
the analytics database in one small transaction, record each receipt's outcome, summarize.

A poll stores what it has every few seconds (`PollRun` keeps the run's one row in ingest_runs
up to date), opening the database only for that moment so other flows are not locked out.

Everything written to the database is keyed by the case's pseudonym, never the receipt number;
the registry gets each receipt's outcome and next due time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final

import duckdb
import orjson
import polars as pl

from pipeline.analytics.silent_updates import OBSERVATION_COLUMNS, record_observations
from pipeline.model import ParsedCase, Rejection
from pipeline.parse import ParseError, parse_document
from pipeline.prepare.anonymize import PseudonymKey, pseudonymize
from pipeline.prepare.funnel import PreparedChunk, anonymize_cases, validate_records
from pipeline.prepare.merge import merge_parsed, observed_by_poll
from pipeline.receipts import InvalidReceiptError
from pipeline.settings import Settings
from pipeline.sources.files import fingerprint, scrub
from pipeline.sources.uscis.registry import (
    ERROR,
    INVALID,
    NOT_FOUND,
    OK,
    QUOTA,
    Claim,
    PollRecord,
    PollSchedule,
    Registry,
)
from pipeline.stages import TERMINAL_STAGES, event_order
from pipeline.store.db import open_store, transaction
from pipeline.store.load import LoadResult, next_run_id, record_failed_run, record_run, store_chunk

if TYPE_CHECKING:
    from pipeline.sources.uscis.fetch import FetchProgress

FLOW_NAME: Final = "poll"
ORIGIN: Final = "Case Status API poll"


@dataclass(frozen=True)
class PollOutcome:
    """One poll of one case as recorded for the health page (keyed by pseudonym)."""

    case_id: str
    polled_at: datetime
    outcome: str
    http_status: int | None
    reason: str | None
    decided_on: date | None = None
    form_type: str | None = None
    stage: str | None = None
    stage_since: date | None = None


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
        observed_by_poll(case, answer.fetched_at)
        case.synthetic = case.synthetic or synthetic
        parsed.append((ORIGIN, case))
        events = sorted(case.events, key=lambda e: event_order(e.event_date, e.stage))
        decisions = [e.event_date for e in events if e.stage in TERMINAL_STAGES]
        outcomes[receipt] = PollOutcome(
            case_id, answer.fetched_at, OK, 200, None, min(decisions) if decisions else None,
            case.form_type, events[-1].stage if events else None,
            events[-1].event_date if events else None,
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
    cases = merge_parsed(parse_document(body))
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


@dataclass
class PollRun:
    """One poll run as ingest_runs shows it, stored batch by batch under one run id."""

    started_at: datetime
    api: str
    run_id: int | None = None
    result: LoadResult | None = None
    updated_cases: set[str] = field(default_factory=set)
    outcomes: Counter[str] = field(default_factory=Counter)
    requests: Counter[int] = field(default_factory=Counter)

    def stored(self) -> StoredPoll | None:
        """Return what the run has stored so far (None before its first batch)."""
        if self.run_id is None or self.result is None:
            return None
        return StoredPoll(
            self.run_id,
            self.result.n_new_cases,
            self.result.n_new_events,
            len(self.updated_cases),
            self.result.n_rejected,
        )


def store_poll(
    settings: Settings,
    prepared: PreparedPoll,
    progress: FetchProgress,
    run: PollRun,
    *,
    still_tracked: Callable[[], set[str]],
    message: str,
) -> StoredPoll:
    """Merge one batch of answers, observations, outcomes and traffic in one transaction."""
    settings.ensure_home()
    with open_store(settings.database_path) as con:
        # Checked while holding the database: a `track remove` that ran meanwhile wins.
        tracked = still_tracked()
        outcomes = {r: o for r, o in prepared.outcomes.items() if r in tracked}
        kept = pl.Series("case_id", [o.case_id for o in outcomes.values()], dtype=pl.String)
        chunk = _only_cases(prepared.chunk, kept)
        if run.run_id is None:
            run.run_id, run.result = next_run_id(con), LoadResult(0)
            run.result.run_id = run.run_id
        assert run.result is not None
        before = _copy(run.result)
        try:
            with transaction(con):
                new_by_case = _new_events_by_case(con, chunk.events)
                store_chunk(con, chunk, run.run_id, run.result, provenance="verified")
                record_observations(
                    con, prepared.observations.filter(pl.col("case_id").is_in(kept.implode()))
                )
                _insert_outcomes(con, run.run_id, outcomes.values(), new_by_case)
                _add_traffic(con, run.api, progress.traffic)
                record_run(con, run.run_id, FLOW_NAME, run.started_at, run.result,
                           message=message)
        except BaseException as error:
            run.result = before
            record_failed_run(
                con, run.run_id, FLOW_NAME, run.started_at, f"{type(error).__name__}: {error}"
            )
            raise
    run.updated_cases |= {case_id for case_id, n in new_by_case.items() if n}
    run.outcomes.update(o.outcome for o in prepared.outcomes.values())
    for (_, _, status), n in progress.traffic.items():
        run.requests[status] += n
    stored = run.stored()
    assert stored is not None
    return stored


def _copy(result: LoadResult) -> LoadResult:
    return LoadResult(
        result.run_id, result.n_read, result.n_stored, result.n_new_cases,
        result.n_new_events, list(result.rejections),
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


def _new_events_by_case(con: duckdb.DuckDBPyConnection, events: pl.DataFrame) -> dict[str, int]:
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
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    outcomes: Iterable[PollOutcome],
    new_by_case: Mapping[str, int],
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


def _add_traffic(con: duckdb.DuckDBPyConnection, api: str, traffic: Counter[tuple[date, str, int]]) -> None:
    rows = [[day, api, endpoint, status, n] for (day, endpoint, status), n in traffic.items()]
    if rows:
        con.executemany(
            "INSERT INTO api_traffic VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE"
            " SET n_requests = api_traffic.n_requests + excluded.n_requests",
            rows,
        )


def record_outcomes(registry: Registry, prepared: PreparedPoll, schedule: PollSchedule) -> None:
    """Write each receipt's outcome, stage and next due time to the registry (freeing it)."""
    registry.record_polls(
        (
            PollRecord(receipt, o.polled_at, o.outcome, o.reason, o.decided_on,
                       o.form_type, o.stage, o.stage_since)
            for receipt, o in prepared.outcomes.items()
        ),
        schedule,
    )


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
    server: str = "the Case Status API"
    n_claimed: int | None = None  # fewer than n_due when the day's quota or --limit cut them
    stopped_by: str | None = None  # "SIGTERM", "SIGINT": the run stopped early, stored its part
    n_held: int = 0  # tracked receipts another run was polling when this one claimed

    @property
    def n_polled(self) -> int:
        """How many receipts got an outcome in this run."""
        return sum(self.outcomes.values())

    def describe(self) -> str:
        """Say in one paragraph what the run did."""
        if self.n_tracked == 0:
            return "no receipts are tracked: add yours with `timelines track add RECEIPT --consent`"
        if self.n_due == 0 and self.n_held:
            rest = self.n_tracked - self.n_held
            return (f"nothing is due for this run: {self.n_held} of the {self.n_tracked} tracked "
                    "receipts are being polled by another run right now"
                    + (f", and the other {rest} were polled recently" if rest else ""))
        if self.n_due == 0:
            return f"nothing is due: all {self.n_tracked} tracked receipts were polled recently"
        counts = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in self.outcomes.items() if n)
        text = f"polled {self.n_polled} of {self.n_due} due receipts ({counts or 'none'})"
        if self.run_id is not None:
            text += (
                f"; {self.n_new_events} new events in {self.n_updated_cases} cases, "
                f"{self.n_new_cases} new cases"
            )
        if self.stopped_by is not None:
            text += (
                f". Stopped by {self.stopped_by}: the answers received were stored; "
                f"{self.n_left} receipts were released and stay due"
            )
        elif self.quota_resets_at is not None:
            text += (
                f". The daily quota is spent: it resets at "
                f"{self.quota_resets_at:%Y-%m-%d %H:%M %Z}; {self.n_left} receipts wait for the "
                "next run"
            )
        elif self.n_left:
            text += f". {self.n_left} receipts were not polled and stay due"
        return text


def summarize(
    server: str,
    api: str,
    claim: Claim,
    progress: FetchProgress,
    run: PollRun | None,
    stopped_by: str | None = None,
) -> PollSummary:
    """Put together what the run did."""
    outcomes = run.outcomes if run is not None else Counter()
    requests = run.requests if run is not None else Counter()
    stored = run.stored() if run is not None else None
    return PollSummary(
        api=api,
        n_tracked=claim.n_tracked,
        n_due=max(claim.n_due, len(claim.receipts)),
        outcomes={name: outcomes[name] for name in (OK, NOT_FOUND, INVALID, ERROR, QUOTA)},
        n_left=max(claim.n_due, len(claim.receipts)) - sum(outcomes.values()),
        requests=dict(sorted(requests.items())),
        run_id=stored.run_id if stored else None,
        n_new_cases=stored.n_new_cases if stored else 0,
        n_new_events=stored.n_new_events if stored else 0,
        n_updated_cases=stored.n_updated_cases if stored else 0,
        quota_resets_at=progress.quota_resets_at,
        problem=progress.problem,
        server=server,
        n_claimed=len(claim.receipts),
        stopped_by=stopped_by,
        n_held=claim.n_held,
    )
