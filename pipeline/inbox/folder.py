"""The inbox: a folder under TIMELINES_HOME where consented submissions wait, durably.

The page and the CLI never open the database (a flow may hold it); they write files here,
each atomically (temporary file, fsync, rename), so a reader never sees half a file and a
crash never loses an acknowledged submission. Layout:

    inbox/pending/<submission>.json   anonymized records + consent, waiting for the flow
    inbox/deletions/<hash>.json       a deletion request, waiting for the flow
    inbox/status/<hash>.json          what happened to a submission, looked up by its code
    inbox/unreadable/                 damaged files set aside (never deleted silently)

<hash> is the SHA-256 of the submission's deletion code; the code itself is never written.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pipeline.inbox.codes import hash_code, new_deletion_code
from pipeline.inbox.consent import Consent
from pipeline.inbox.safe_read import read_inbox_file
from pipeline.model import CaseRecord
from pipeline.parse.redact import redact_for_storage
from pipeline.prepare.preview import SubmissionPreview
from pipeline.prepare.records import RecordError, record_from_json, record_to_json

ENVELOPE_FORMAT = "timelines-submission/1"
# What a submitter can see. Neutral on purpose: no state depends on what else is stored
# (whether a receipt was already known, polled or stored with another form), so a status is
# never an oracle about someone else's case.
STATES = ("waiting", "held_for_review", "received", "deletion_requested", "deleted", "unreadable")


class SubmissionRefused(ValueError):
    """A submission that cannot be queued as it is; the message says why."""


class UnknownCodeError(LookupError):
    """No submission has this deletion code."""


@dataclass(frozen=True)
class Submitted:
    """A queued submission: its one-time deletion code (show it once, never store it)."""

    code: str
    submission_id: str
    n_cases: int
    n_rejected: int


@dataclass(frozen=True)
class RejectedAttempt:
    """A record the submitter chose to skip: kept anonymized with its reasons (quarantine)."""

    label: str
    record: CaseRecord
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Envelope:
    """One pending submission as read back from the inbox."""

    submission_id: str
    deletion_hash: str
    kind: str
    submitted_at: datetime
    consent: Consent
    labels: tuple[str, ...]
    records: tuple[CaseRecord, ...]
    rejected: tuple[RejectedAttempt, ...] = ()


@dataclass(frozen=True)
class SubmissionStatus:
    """What happened to a submission, as its submitter may look it up."""

    state: str
    submission_id: str
    submitted_at: str
    updated_at: str
    n_cases: int = 0
    n_stored: int = 0
    n_quarantined: int = 0
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        """One paragraph for the submitter."""
        skipped = (f"; {self.n_quarantined} row(s) you chose to skip were set aside for the "
                   "reasons below") if self.n_quarantined else ""
        text = {
            "waiting": "received and waiting in the inbox; it is processed at the next ingest run",
            "held_for_review": "received and waiting for an operator's review (many submissions "
                               "arrived this hour); it is processed after the review",
            "received": f"processed: {self.n_stored} case(s) taken in{skipped}. Each case counts "
                        "in the statistics once it agrees with the data already there; a claim "
                        "that does not is kept apart and never changes other data",
            "deletion_requested": "deletion requested: it is removed at the next ingest run",
            "deleted": "deleted: nothing of this submission is stored any more",
            "unreadable": "its status file is damaged; an operator has been told",
        }.get(self.state, "unknown")
        return f"Submission {self.submission_id} ({self.submitted_at}): {text}."


def _directories(inbox_dir: Path) -> dict[str, Path]:
    return {name: inbox_dir / name
            for name in ("pending", "review", "deletions", "status", "unreadable", ".tmp")}


def ensure_inbox(inbox_dir: Path) -> None:
    """Create the inbox folders, private to this user (0700)."""
    for path in (inbox_dir, *_directories(inbox_dir).values()):
        if not path.is_dir():
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(path, 0o700)


def atomic_write(path: Path, payload: dict[str, object], inbox_dir: Path) -> None:
    """Write JSON so that readers see the old file or the whole new one, and it survives a crash."""
    ensure_inbox(inbox_dir)
    temporary = inbox_dir / ".tmp" / f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
    data = json.dumps(payload, indent=1, sort_keys=True, default=str).encode()
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        with suppress(FileNotFoundError):
            temporary.unlink()
    _fsync_directory(path.parent)


def _fsync_directory(folder: Path) -> None:
    with suppress(OSError):  # not every platform can open a directory
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def new_submission_id(now: datetime) -> str:
    """A unique id that sorts by submission time."""
    return f"s_{now.strftime('%Y%m%dT%H%M%S')}_{secrets.token_hex(6)}"


def write_submission(
    inbox_dir: Path,
    preview: SubmissionPreview,
    consent: Consent,
    *,
    now: datetime,
    skip_invalid: bool = False,
    hold: bool = False,
) -> Submitted:
    """Queue a consented, previewed submission in the inbox; return its one-time deletion code.

    Refuses (SubmissionRefused) a preview with problems, unless `skip_invalid` is set and
    some records are fine: the others are then kept only as anonymized attempts with their
    reasons. The raw input is never written; the deletion code is stored only as a hash.
    With `hold` (past the hourly cap) it waits in review/ for an operator instead.
    """
    if not preview.pseudonymized:
        raise SubmissionRefused("internal: a preview made without the pseudonym key cannot be stored")
    if not preview.records:
        raise SubmissionRefused(
            "nothing can be stored: " + ("; ".join(preview.errors) or "the input holds no case")
        )
    if preview.errors and not skip_invalid:
        raise SubmissionRefused(
            "fix these problems first (or skip the invalid rows): " + "; ".join(preview.errors)
        )
    code = new_deletion_code()
    digest = hash_code(code)
    submission_id = new_submission_id(now)
    rejected = [
        {"label": r.label, "attempt": record_to_json(r.record), "reasons": [redact_for_storage(x) for x in r.reasons]}
        for r in (preview.rejected if skip_invalid else ())
    ]
    envelope: dict[str, object] = {
        "format": ENVELOPE_FORMAT,
        "submission_id": submission_id,
        "deletion_hash": digest,
        "kind": preview.kind or "unknown",
        "submitted_at": now.isoformat(timespec="seconds"),
        "consent": consent.as_json(),
        "cases": [
            {"label": label, **record_to_json(record)}
            for label, record in zip(preview.labels, preview.records, strict=True)
        ],
        "rejected": rejected,
    }
    pending = _directories(inbox_dir)["review" if hold else "pending"] / f"{submission_id}.json"
    atomic_write(pending, envelope, inbox_dir)
    write_status(inbox_dir, digest, SubmissionStatus(
        "held_for_review" if hold else "waiting", submission_id, envelope["submitted_at"], now.isoformat(timespec="seconds"),  # type: ignore[arg-type]
        n_cases=len(preview.records),
    ))
    return Submitted(code, submission_id, len(preview.records), len(rejected))


def pending_files(inbox_dir: Path) -> list[Path]:
    """Pending submissions, oldest first."""
    folder = _directories(inbox_dir)["pending"]
    return sorted(folder.glob("s_*.json")) if folder.exists() else []


def review_files(inbox_dir: Path) -> list[Path]:
    """Submissions held for an operator's review, oldest first."""
    folder = _directories(inbox_dir)["review"]
    return sorted(folder.glob("s_*.json")) if folder.exists() else []


def release_held(inbox_dir: Path, submission_id: str, *, approve: bool, now: datetime) -> bool:
    """Approve (move to pending) or reject (drop) a held submission; False if there is none."""
    path = _directories(inbox_dir)["review"] / f"{submission_id}.json"
    if "/" in submission_id or not path.exists():
        return False
    envelope = read_envelope(path)
    if approve:
        os.replace(path, _directories(inbox_dir)["pending"] / path.name)
        state = "waiting"
    else:
        path.unlink()
        state = "deleted"
    stamp = envelope.submitted_at.isoformat(timespec="seconds")
    write_status(inbox_dir, envelope.deletion_hash, SubmissionStatus(
        state, envelope.submission_id, stamp, now.isoformat(timespec="seconds"),
        n_cases=len(envelope.records)))
    return True


def read_envelope(path: Path) -> Envelope:
    """Read a pending submission back, re-checking every record; RecordError if damaged."""
    try:
        data = json.loads(read_inbox_file(path))
    except FileNotFoundError:
        raise  # taken by another run, or deleted while waiting: not damage
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecordError(f"the file cannot be read: {error}") from error
    if not isinstance(data, dict) or data.get("format") != ENVELOPE_FORMAT:
        raise RecordError("the file is not a submission written by this program")
    try:
        consent = data["consent"]
        cases = data["cases"]
        rejected = data.get("rejected") or []
        return Envelope(
            submission_id=str(data["submission_id"]),
            deletion_hash=str(data["deletion_hash"]),
            kind=str(data["kind"]),
            submitted_at=datetime.fromisoformat(str(data["submitted_at"])),
            consent=Consent(str(consent["version"]), str(consent["text_sha256"]),
                            datetime.fromisoformat(str(consent["given_at"]))),
            labels=tuple(str(c.get("label") or f"case {i}") for i, c in enumerate(cases, 1)),
            records=tuple(record_from_json(c) for c in cases),
            rejected=tuple(
                RejectedAttempt(str(r.get("label") or ""), record_from_json(r["attempt"]),
                                tuple(redact_for_storage(str(x)) for x in r["reasons"]))
                for r in rejected
            ),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise RecordError(f"the file is damaged: {error}") from error


def set_aside(inbox_dir: Path, path: Path) -> Path:
    """Move a damaged file out of the way (kept for an operator, never silently deleted)."""
    target = _directories(inbox_dir)["unreadable"] / path.name
    ensure_inbox(inbox_dir)
    with suppress(FileNotFoundError):  # another run set it aside first
        os.replace(path, target)
    return target


def status_path(inbox_dir: Path, digest: str) -> Path:
    """Where the status of the submission with this code hash lives."""
    return _directories(inbox_dir)["status"] / f"{digest}.json"


def write_status(inbox_dir: Path, digest: str, status: SubmissionStatus) -> None:
    """Record what happened to a submission (atomically)."""
    payload: dict[str, object] = {
        "state": status.state, "submission_id": status.submission_id,
        "submitted_at": status.submitted_at, "updated_at": status.updated_at,
        "n_cases": status.n_cases, "n_stored": status.n_stored,
        "n_quarantined": status.n_quarantined, "reasons": [redact_for_storage(r) for r in status.reasons],
    }
    atomic_write(status_path(inbox_dir, digest), payload, inbox_dir)


def read_status(inbox_dir: Path, digest: str) -> SubmissionStatus | None:
    """The recorded status for a code hash, or None."""
    path = status_path(inbox_dir, digest)
    try:
        data = json.loads(read_inbox_file(path))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return SubmissionStatus("unreadable", "?", "?", "?")
    return SubmissionStatus(
        state=str(data["state"]), submission_id=str(data["submission_id"]),
        submitted_at=str(data["submitted_at"]), updated_at=str(data["updated_at"]),
        n_cases=int(data.get("n_cases", 0)), n_stored=int(data.get("n_stored", 0)),
        n_quarantined=int(data.get("n_quarantined", 0)),
        reasons=tuple(str(r) for r in data.get("reasons", [])),
    )


def lookup_status(inbox_dir: Path, code: str) -> SubmissionStatus:
    """The status of the submission with this deletion code; UnknownCodeError if none."""
    status = read_status(inbox_dir, hash_code(code))
    if status is None:
        raise UnknownCodeError(
            "no submission has this deletion code here: check it for typos (it is shown once, "
            "when you submit)"
        )
    return status


def request_deletion(inbox_dir: Path, code: str, now: datetime) -> SubmissionStatus:
    """Ask for a submission to be deleted: drop it from the inbox now, from the database at
    the next ingest run. Returns the updated status; UnknownCodeError if no such code."""
    digest = hash_code(code)
    status = lookup_status(inbox_dir, code)
    if status.state == "deleted":
        return status
    for path in [*pending_files(inbox_dir), *review_files(inbox_dir)]:
        with suppress(RecordError, FileNotFoundError):
            if read_envelope(path).deletion_hash == digest:
                with suppress(FileNotFoundError):
                    path.unlink()
    request = _directories(inbox_dir)["deletions"] / f"{digest}.json"
    atomic_write(request, {"deletion_hash": digest, "requested_at": now.isoformat()}, inbox_dir)
    updated = SubmissionStatus(
        "deletion_requested", status.submission_id, status.submitted_at,
        now.isoformat(timespec="seconds"), status.n_cases, status.n_stored, status.n_quarantined,
    )
    write_status(inbox_dir, digest, updated)
    return updated


def deletion_requests(inbox_dir: Path) -> Iterator[tuple[str, Path]]:
    """Pending deletion requests as (code hash, request file)."""
    folder = _directories(inbox_dir)["deletions"]
    if folder.exists():
        for path in sorted(folder.glob("*.json")):
            yield path.stem, path


def deletion_requested(inbox_dir: Path, digest: str) -> bool:
    """Tell whether a deletion request for this code hash is waiting."""
    return (_directories(inbox_dir)["deletions"] / f"{digest}.json").exists()

