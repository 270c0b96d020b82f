"""The inbox recipes as plain Python: what the inbox flow runs as tasks and what
`timelines ingest --inbox`, `timelines submit` and `timelines delete` run in-process.

Order matters: deletion requests first (a submission deleted while waiting is never
stored), then pending submissions oldest first, then, only if anything changed, the
statistics are recomputed and a new snapshot is published.
"""

from __future__ import annotations

import hashlib
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pipeline.inbox.folder import (
    Envelope,
    SubmissionStatus,
    deletion_requested,
    deletion_requests,
    pending_files,
    read_envelope,
    read_status,
    set_aside,
    write_status,
)
from pipeline.jobs.refresh import refresh_and_publish
from pipeline.jobs.steps import IoStep, plain_step
from pipeline.model import Rejection
from pipeline.parse.redact import redact_for_storage
from pipeline.prepare.records import RecordError
from pipeline.settings import Settings
from pipeline.store.db import open_store, transaction
from pipeline.store.deletion import DeletionOutcome, delete_submission
from pipeline.store.load import LoadResult, next_run_id, quarantine_rejections, record_run
from pipeline.store.submissions import StoreOutcome, store_submission

FLOW_NAME = "inbox"


@dataclass
class InboxResult:
    """What one pass over the inbox did."""

    deletions: list[DeletionOutcome] = field(default_factory=list)
    stored: list[StoreOutcome] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    published: bool = False

    def describe(self) -> str:
        """One line for a person: what this pass did."""
        return (
            f"{sum(d.found for d in self.deletions)} submission(s) deleted, {len(self.stored)} "
            f"stored or quarantined, {len(self.unreadable)} unreadable file(s) set aside"
        )

    @property
    def changed(self) -> bool:
        """True when the database changed, so statistics must be recomputed."""
        return any(d.found for d in self.deletions) or any(not s.already_stored for s in self.stored)


def _stamp(now: datetime) -> str:
    return now.isoformat(timespec="seconds")


def unreadable_file(name: str, error: str, number: int = 1) -> Rejection:
    """The quarantine entry of an inbox file that could not be read: an opaque reference
    (its number in the run; the run id is stored beside it) and why, never its name."""
    reason = (f"the submission file could not be read, so it was set aside in "
              f"inbox/unreadable/ for an operator: {redact_for_storage(error)}")
    digest = hashlib.sha256(f"inbox\0{name}\0{reason}".encode()).hexdigest()[:40]
    return Rejection(origin=f"inbox file {number}", reasons=(reason,), fingerprint=digest)


def public_status(envelope: Envelope, outcome: StoreOutcome, now: datetime) -> SubmissionStatus:
    """What the submitter may see: nothing that depends on what else is stored.

    Whether a case was merged, kept apart or conflicted with stored data is never said (it
    would tell anyone holding a receipt number whether its owner opted in, and the form):
    only what the submission itself decided (the rows its submitter chose to skip).
    """
    skipped = len(envelope.rejected)
    return SubmissionStatus(
        "received", envelope.submission_id, _stamp(envelope.submitted_at), _stamp(now),
        n_cases=len(envelope.records) + skipped, n_stored=len(envelope.records),
        n_quarantined=skipped,
        reasons=tuple(f"{r.label}: {m}" for r in envelope.rejected for m in r.reasons),
    )


def _read_pending(inbox: Path) -> tuple[list[tuple[Path, Envelope]], list[tuple[Path, str]]]:
    """Read every pending file before the database is opened (a slow file holds nothing)."""
    good: list[tuple[Path, Envelope]] = []
    bad: list[tuple[Path, str]] = []
    for path in pending_files(inbox):
        try:
            good.append((path, read_envelope(path)))
        except FileNotFoundError:
            continue  # deleted while waiting, or taken by another run
        except RecordError as error:
            bad.append((path, str(error)))
    return good, bad


def apply_deletion_requests(settings: Settings, now: datetime | None = None) -> list[DeletionOutcome]:
    """Carry out every waiting deletion request; each in its own transaction."""
    now = now or datetime.now()
    inbox = settings.inbox_dir
    requests = list(deletion_requests(inbox))
    if not requests:
        return []
    outcomes: list[DeletionOutcome] = []
    with open_store(settings.database_path) as con:
        for digest, path in requests:
            outcome = delete_submission(con, digest)
            outcomes.append(outcome)
            old = read_status(inbox, digest)
            write_status(inbox, digest, SubmissionStatus(
                "deleted", old.submission_id if old else "?", old.submitted_at if old else "?",
                _stamp(now), old.n_cases if old else 0,
            ))
            with suppress(FileNotFoundError):
                path.unlink()
    return outcomes


def store_pending_submissions(settings: Settings, now: datetime | None = None) -> InboxResult:
    """Store every pending submission (or quarantine it), oldest first, and record the run."""
    now = now or datetime.now()
    inbox = settings.inbox_dir
    result = InboxResult()
    if not pending_files(inbox):
        return result
    envelopes, damaged = _read_pending(inbox)
    if not envelopes and not damaged:
        return result
    settings.ensure_home()
    with open_store(settings.database_path) as con:
        run_id = next_run_id(con)
        for number, (path, error) in enumerate(damaged, start=1):
            # the reason is kept first, so a crash before the move only repeats it
            quarantine_rejections(con, run_id, [unreadable_file(path.name, error, number)])
            result.unreadable.append(set_aside(inbox, path).name)
        for path, envelope in envelopes:
            if deletion_requested(inbox, envelope.deletion_hash):
                with suppress(FileNotFoundError):
                    path.unlink()
                continue
            outcome = store_submission(con, envelope, run_id, now)
            result.stored.append(outcome)
            if not deletion_requested(inbox, envelope.deletion_hash):
                write_status(inbox, envelope.deletion_hash, public_status(envelope, outcome, now))
            with suppress(FileNotFoundError):
                path.unlink()
        # The run row is published (health page): it says how many cases the submissions
        # held, not how many were new, merged or kept apart, which would tell anyone who
        # submitted a receipt whether it was already known.
        summary = LoadResult(
            run_id,
            n_read=len(result.stored),
            n_stored=sum(len(e.records) for _, e in envelopes),
        )
        with transaction(con):
            record_run(con, run_id, FLOW_NAME, now, summary,
                       message=f"{len(result.stored)} submission(s), "
                               f"{len(result.unreadable)} unreadable")
    return result


def process_inbox(
    settings: Settings, now: datetime | None = None, io_step: IoStep = plain_step
) -> InboxResult:
    """The whole inbox job: deletions, pending submissions, then statistics if anything changed.

    `io_step` wraps the two steps that read the inbox and wait for the database: the inbox
    flow passes a Prefect task with retries; in-process they run as they are.
    """
    deletions = io_step(apply_deletion_requests)(settings, now)
    result = io_step(store_pending_submissions)(settings, now)
    result.deletions = deletions
    if result.changed:
        refresh_and_publish(settings)
        result.published = True
    return result
