"""Storing one inbox submission in the analytics database, with its lineage.

Each submission is stored in its own transaction: its valid cases are merged into `cases`
and `status_events` exactly as any other load (`pipeline.store.load.store_chunk`), its
invalid ones go to quarantine (anonymized attempt and reasons), and `submission_cases` /
`submission_events` record what it brought, so that a deletion can take it back out.
Storing the same submission again changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import polars as pl

from pipeline.inbox.folder import Envelope
from pipeline.model import CaseRecord, Rejection
from pipeline.parse.redact import redact_for_storage
from pipeline.prepare.funnel import PreparedChunk
from pipeline.prepare.records import attempt_to_json
from pipeline.prepare.validate import to_frames, validate_frames
from pipeline.store.db import first_row, query_frame, transaction
from pipeline.store.load import LoadResult, store_chunk


@dataclass
class StoreOutcome:
    """What storing one submission did."""

    submission_id: str
    state: str
    n_cases: int
    n_stored: int = 0
    n_quarantined: int = 0
    n_new_cases: int = 0
    n_new_events: int = 0
    reasons: list[str] = field(default_factory=list)
    already_stored: bool = False


def origin_of(submission_id: str) -> str:
    """The quarantine origin of a submission's rejected records."""
    return f"submission {submission_id}"


def _existing(con: duckdb.DuckDBPyConnection, submission_id: str) -> StoreOutcome | None:
    row = first_row(con.execute(
        "SELECT state, n_cases, n_stored, n_quarantined FROM submissions WHERE submission_id = ?",
        [submission_id],
    ))
    if row is None:
        return None
    reasons = [
        r[0] for r in con.execute(
            "SELECT unnest(reasons) FROM quarantine WHERE origin = ?", [origin_of(submission_id)]
        ).fetchall()
    ]
    return StoreOutcome(submission_id, str(row[0]), int(row[1]), int(row[2]), int(row[3]),
                        reasons=reasons, already_stored=True)


def _kept_apart(con: duckdb.DuckDBPyConnection, records: list[CaseRecord]) -> dict[str, str]:
    """Claims that must not be merged: about a verified or operator case, or another form.

    A self-reported claim merges only into a self-reported case of the same form; anything
    else is kept apart (case id -> why), so one person's claim never changes data others
    vouch for.
    """
    if not records:
        return {}
    frame = pl.DataFrame({"case_id": [r.case_id for r in records],
                          "form_type": [r.form_type for r in records]},
                         schema={"case_id": pl.Utf8, "form_type": pl.Utf8})
    con.register("submitted_forms", frame)
    try:
        rows = con.execute(
            "SELECT s.case_id, CASE WHEN c.provenance = 'verified' THEN 'verified_case'"
            " WHEN c.provenance IS DISTINCT FROM 'self_reported' THEN 'operator_case'"
            " ELSE 'form_conflict' END"
            " FROM submitted_forms s JOIN cases c USING (case_id)"
            " WHERE c.provenance IS DISTINCT FROM 'self_reported' OR c.form_type <> s.form_type"
        ).fetchall()
    finally:
        con.unregister("submitted_forms")
    return {str(case_id): str(why) for case_id, why in rows}


def store_submission(
    con: duckdb.DuckDBPyConnection, envelope: Envelope, run_id: int, now: datetime
) -> StoreOutcome:
    """Validate and store one submission in one transaction; quarantine what fails."""
    with transaction(con):
        outcome = _existing(con, envelope.submission_id)
        if outcome is None:
            outcome = _store(con, envelope, run_id, now)
    return outcome


def _store(
    con: duckdb.DuckDBPyConnection, envelope: Envelope, run_id: int, now: datetime
) -> StoreOutcome:
    records = list(envelope.records)
    labels = dict(zip((r.case_id for r in records), envelope.labels, strict=True))
    cases, events = to_frames(records)
    checked = validate_frames(cases, events, (now + timedelta(days=1)).date())
    reasons: dict[str, list[str]] = {k: list(v) for k, v in checked.reasons.items()}
    valid = [r for r in records if r.case_id not in reasons]
    apart = _kept_apart(con, valid)
    by_id = {r.case_id: r for r in records}
    if apart:
        con.executemany(
            "INSERT INTO claims_apart VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [[envelope.submission_id, case_id, why, json.dumps(attempt_to_json(by_id[case_id])), now]
             for case_id, why in apart.items()])
    accepted = [r for r in valid if r.case_id not in apart]
    rejections = [
        Rejection(
            origin=origin_of(envelope.submission_id),
            reasons=tuple(redact_for_storage(x) for x in why),
            fingerprint=f"submission:{envelope.submission_id}:{case_id}",
            case_id=case_id,
            attempt=attempt_to_json(by_id[case_id]),
        )
        for case_id, why in reasons.items()
    ] + [
        Rejection(
            origin=origin_of(envelope.submission_id),
            reasons=tuple(redact_for_storage(x) for x in skipped.reasons),
            fingerprint=f"submission:{envelope.submission_id}:skipped:{number}",
            case_id=None,
            attempt=attempt_to_json(skipped.record),
        )
        for number, skipped in enumerate(envelope.rejected)
    ]
    _record_lineage(con, envelope.submission_id, accepted)
    ok_cases, ok_events = to_frames(accepted)
    result = LoadResult(run_id)
    store_chunk(con, PreparedChunk(ok_cases, ok_events, rejections, {}, 1), run_id, result,
                provenance="self_reported")
    n_quarantined = len(reasons) + len(apart) + len(envelope.rejected)
    state = "stored" if not n_quarantined else ("partly_stored" if accepted else "quarantined")
    con.execute(
        "INSERT INTO submissions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [envelope.submission_id, envelope.deletion_hash, envelope.kind, envelope.consent.version,
         envelope.consent.text_sha256, envelope.consent.given_at, envelope.submitted_at, now,
         run_id, state, len(records) + len(envelope.rejected), len(accepted), n_quarantined],
    )
    messages = [f"{labels.get(case_id, 'a case')}: {m}" for case_id, why in reasons.items() for m in why]
    messages += [f"{r.label}: {m}" for r in envelope.rejected for m in r.reasons]
    return StoreOutcome(
        envelope.submission_id, state, len(records) + len(envelope.rejected), len(accepted),
        n_quarantined, result.n_new_cases, result.n_new_events,
        reasons=[redact_for_storage(m) for m in messages],
    )


_BACKED_CASES = """
SELECT s.case_id,
       c.case_id IS NOT NULL AND (
           NOT EXISTS (SELECT 1 FROM submission_cases o WHERE o.case_id = s.case_id)
           OR EXISTS (SELECT 1 FROM submission_cases o WHERE o.case_id = s.case_id AND o.backed)
       ) AS backed
FROM submitted_cases s LEFT JOIN cases c USING (case_id)
"""
_BACKED_EVENTS = """
SELECT s.case_id, s.event_date, s.stage,
       e.case_id IS NOT NULL AND (
           NOT EXISTS (SELECT 1 FROM submission_events o WHERE o.case_id = s.case_id
                       AND o.event_date = s.event_date AND o.stage = s.stage)
           OR EXISTS (SELECT 1 FROM submission_events o WHERE o.case_id = s.case_id
                      AND o.event_date = s.event_date AND o.stage = s.stage AND o.backed)
       ) AS backed
FROM (SELECT DISTINCT case_id, event_date, stage FROM submitted_events) s
LEFT JOIN status_events e USING (case_id, event_date, stage)
"""


def _record_lineage(con: duckdb.DuckDBPyConnection, submission_id: str, records: list[CaseRecord]) -> None:
    """Record which cases and events the submission brings, and which were already there."""
    if not records:
        return
    cases, events = to_frames(records)
    con.register("submitted_cases", cases.select("case_id"))
    con.register("submitted_events", events.select("case_id", "event_date", "stage"))
    try:
        backed_cases = query_frame(con, _BACKED_CASES)
        backed_events = query_frame(con, _BACKED_EVENTS)
    finally:
        con.unregister("submitted_cases")
        con.unregister("submitted_events")
    con.register("backed_cases", backed_cases)
    con.register("backed_events", backed_events)
    try:
        con.execute("INSERT INTO submission_cases SELECT ?, case_id, backed FROM backed_cases",
                    [submission_id])
        con.execute(
            "INSERT INTO submission_events SELECT ?, case_id, event_date, stage, backed"
            " FROM backed_events", [submission_id])
    finally:
        con.unregister("backed_cases")
        con.unregister("backed_events")


def quarantined_attempts(con: duckdb.DuckDBPyConnection, submission_id: str) -> list[dict[str, object]]:
    """The anonymized attempts and reasons kept for a submission (for operators and tests)."""
    rows = con.execute(
        "SELECT reasons, attempt FROM quarantine WHERE origin = ? ORDER BY fingerprint",
        [origin_of(submission_id)],
    ).fetchall()
    return [{"reasons": list(r[0]), "attempt": json.loads(r[1]) if r[1] else None} for r in rows]
