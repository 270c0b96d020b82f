"""The opt-in registry: the only place receipt numbers are kept, with consent and poll schedule.

It is its own SQLite file, TIMELINES_HOME/registry.sqlite (mode 0600), never the analytics
database: that one holds only keyed pseudonyms. Poll runs claim the receipts they poll with a
lease, so two runs at once never poll the same receipt.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Final

from pipeline.receipts import normalize_receipt

REGISTRY_FILE: Final = "registry.sqlite"
CONSENT_VERSION: Final = "1"
CONSENT_TEXT: Final = (
    "I am the applicant, petitioner or their representative for these receipt numbers. "
    "I agree that uscis-timelines asks the official USCIS Case Status API about them "
    "(at most about once a day), stores their case history under a keyed pseudonym (never "
    "the receipt number) in community statistics published in aggregate, and keeps the "
    "receipt numbers only in this computer's registry until I run `timelines track remove`, "
    "which also deletes the case's data."
)

# Outcomes of one poll of one receipt.
OK: Final = "ok"
NOT_FOUND: Final = "not_found"
INVALID: Final = "invalid"
ERROR: Final = "error"
QUOTA: Final = "quota"
OUTCOMES: Final = (OK, NOT_FOUND, INVALID, ERROR, QUOTA)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tracked (
    receipt          TEXT PRIMARY KEY,
    consent_at       TEXT NOT NULL,
    consent_version  TEXT NOT NULL,
    added_at         TEXT NOT NULL,
    last_polled_at   TEXT,
    last_outcome     TEXT,
    last_reason      TEXT,
    decided_at       TEXT,
    next_due         TEXT,
    claimed_by       TEXT,
    claimed_until    TEXT
)
"""


def mask_receipt(receipt: str) -> str:
    """Hide most digits of a receipt number: EAC2390000001 -> EAC23*****001."""
    return receipt[:5] + "*" * (len(receipt) - 8) + receipt[-3:]


@dataclass(frozen=True)
class PollSchedule:
    """How often a receipt is polled: undecided cases every `interval`, decided ones less.

    A decided case (approved, denied, card produced or mailed, withdrawn, rejected) is polled
    every `decided_interval` until `decided_grace` after its decision, then no more. A run may
    poll a receipt up to `early_by` before it is due, so a daily run at a fixed time does not
    skip receipts polled a few minutes later the day before.
    """

    interval: timedelta = timedelta(hours=24)
    decided_interval: timedelta = timedelta(days=7)
    decided_grace: timedelta = timedelta(days=60)

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0) or self.decided_interval <= timedelta(0):
            raise ValueError("poll intervals must be positive")
        if self.decided_grace < timedelta(0):
            raise ValueError("the grace period after a decision must not be negative")

    def next_due(
        self,
        *,
        added_at: datetime,
        last_polled_at: datetime | None,
        last_outcome: str | None,
        decided_at: date | None,
    ) -> datetime | None:
        """Return when a receipt is next due (None: never again unless forced)."""
        if last_polled_at is None or last_outcome is None:
            return added_at
        if last_outcome in (ERROR, QUOTA):
            return last_polled_at  # try again at the next run
        if last_outcome == INVALID:
            return None  # USCIS says the number is malformed: asking again cannot help
        if decided_at is not None:
            due = last_polled_at + self.decided_interval - _early_by(self.decided_interval)
            stop = datetime.combine(decided_at, datetime.min.time()) + self.decided_grace
            return due if due <= stop else None
        return last_polled_at + self.interval - _early_by(self.interval)


def _early_by(interval: timedelta) -> timedelta:
    return min(timedelta(hours=1), interval / 10)


@dataclass(frozen=True)
class TrackedReceipt:
    """One opted-in receipt number and what the poller knows about it."""

    receipt: str
    consent_at: datetime
    consent_version: str
    added_at: datetime
    last_polled_at: datetime | None
    last_outcome: str | None
    last_reason: str | None
    decided_at: date | None
    next_due: datetime | None

    @property
    def masked(self) -> str:
        """Return the receipt number with most digits hidden."""
        return mask_receipt(self.receipt)


@dataclass(frozen=True)
class PollRecord:
    """What one poll of one receipt found, as the registry keeps it."""

    receipt: str
    polled_at: datetime
    outcome: str
    reason: str | None = None
    decided_on: date | None = None


@dataclass(frozen=True)
class Claim:
    """Receipts a poll run holds until it records them or its lease runs out."""

    claim_id: str
    receipts: list[str]
    n_tracked: int


class Registry:
    """The registry file: add, list and remove receipts; claim due ones; record polls."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        if not self.path.name.startswith("registry"):
            raise ValueError(f"the registry file name must start with 'registry': {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _create_private(self.path)
        self._db = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None)
        self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def add(
        self, receipts: Sequence[str], *, now: datetime, consent_version: str = CONSENT_VERSION
    ) -> list[str]:
        """Track receipt numbers (all or none); return the ones that were not tracked yet."""
        canonical = list(dict.fromkeys(normalize_receipt(r) for r in receipts))
        stamp = _text(now)
        added = []
        with self._transaction():
            for receipt in canonical:
                cursor = self._db.execute(
                    "INSERT INTO tracked (receipt, consent_at, consent_version, added_at, next_due)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (receipt) DO NOTHING",
                    (receipt, stamp, consent_version, stamp, stamp),
                )
                if cursor.rowcount:
                    added.append(receipt)
        return added

    def tracked(self, schedule: PollSchedule | None = None) -> list[TrackedReceipt]:
        """Return every tracked receipt, oldest first; `schedule` recomputes next_due."""
        rows = self._db.execute(
            "SELECT receipt, consent_at, consent_version, added_at, last_polled_at,"
            " last_outcome, last_reason, decided_at, next_due FROM tracked"
            " ORDER BY added_at, receipt"
        ).fetchall()
        found = [_row_to_tracked(row) for row in rows]
        if schedule is None:
            return found
        return [
            TrackedReceipt(**{**t.__dict__, "next_due": _next_due(t, schedule)}) for t in found
        ]

    def receipts(self) -> set[str]:
        """Return the set of tracked receipt numbers."""
        return {row[0] for row in self._db.execute("SELECT receipt FROM tracked")}

    def remove(self, receipt: str) -> bool:
        """Stop tracking a receipt; return whether it was tracked."""
        with self._transaction():
            cursor = self._db.execute(
                "DELETE FROM tracked WHERE receipt = ?", (normalize_receipt(receipt),)
            )
        return bool(cursor.rowcount)

    def claim_due(
        self,
        *,
        now: datetime,
        schedule: PollSchedule,
        force: bool = False,
        limit: int | None = None,
        lease: timedelta = timedelta(minutes=30),
    ) -> Claim:
        """Claim the receipts due now (all unclaimed ones with `force`), most overdue first."""
        claim_id = uuid.uuid4().hex
        with self._transaction():
            rows = self._db.execute(
                "SELECT receipt, consent_at, consent_version, added_at, last_polled_at,"
                " last_outcome, last_reason, decided_at, next_due, claimed_until FROM tracked"
            ).fetchall()
            free = [
                _row_to_tracked(row[:9])
                for row in rows
                if row[9] is None or _parse(row[9]) <= now
            ]
            due = []
            for entry in free:
                when = _next_due(entry, schedule)
                if force or (when is not None and when <= now):
                    due.append((when or now, entry.receipt))
            due.sort()
            chosen = [receipt for _, receipt in due[: limit if limit is not None else None]]
            self._db.executemany(
                "UPDATE tracked SET claimed_by = ?, claimed_until = ? WHERE receipt = ?",
                [(claim_id, _text(now + lease), receipt) for receipt in chosen],
            )
        return Claim(claim_id, chosen, len(rows))

    def record_polls(self, records: Iterable[PollRecord], schedule: PollSchedule) -> None:
        """Store each poll's outcome and next due time, and release those receipts."""
        with self._transaction():
            for record in records:
                row = self._db.execute(
                    "SELECT added_at, decided_at FROM tracked WHERE receipt = ?",
                    (record.receipt,),
                ).fetchone()
                if row is None:
                    continue  # removed while it was being polled
                decided = record.decided_on or (date.fromisoformat(row[1]) if row[1] else None)
                due = schedule.next_due(
                    added_at=_parse(row[0]),
                    last_polled_at=record.polled_at,
                    last_outcome=record.outcome,
                    decided_at=decided,
                )
                self._db.execute(
                    "UPDATE tracked SET last_polled_at = ?, last_outcome = ?, last_reason = ?,"
                    " decided_at = ?, next_due = ?, claimed_by = NULL, claimed_until = NULL"
                    " WHERE receipt = ?",
                    (
                        _text(record.polled_at),
                        record.outcome,
                        record.reason,
                        decided.isoformat() if decided else None,
                        _text(due) if due else None,
                        record.receipt,
                    ),
                )

    def release(self, claim_id: str) -> None:
        """Release every receipt still held by a claim (those it did not poll)."""
        with self._transaction():
            self._db.execute(
                "UPDATE tracked SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ?",
                (claim_id,),
            )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def registry_path(home: Path) -> Path:
    """Return where the registry lives under TIMELINES_HOME."""
    return home / REGISTRY_FILE


def _create_private(path: Path) -> None:
    """Create the file readable by its owner only (it holds receipt numbers)."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _next_due(entry: TrackedReceipt, schedule: PollSchedule) -> datetime | None:
    return schedule.next_due(
        added_at=entry.added_at,
        last_polled_at=entry.last_polled_at,
        last_outcome=entry.last_outcome,
        decided_at=entry.decided_at,
    )


def _row_to_tracked(row: Sequence[str | None]) -> TrackedReceipt:
    receipt, consent_at, version, added_at, polled, outcome, reason, decided, due = row
    assert receipt and consent_at and version and added_at
    return TrackedReceipt(
        receipt=receipt,
        consent_at=_parse(consent_at),
        consent_version=version,
        added_at=_parse(added_at),
        last_polled_at=_parse(polled) if polled else None,
        last_outcome=outcome,
        last_reason=reason,
        decided_at=date.fromisoformat(decided) if decided else None,
        next_due=_parse(due) if due else None,
    )


def _text(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)
