"""The opt-in registry: the only place receipt numbers are kept, with consent and poll schedule.

By default it is its own SQLite file, TIMELINES_HOME/registry.sqlite (mode 0600), never the
analytics database: that one holds only keyed pseudonyms. With TIMELINES_REGISTRY_URL it is a
Postgres database that poll workers on several machines share. Poll runs claim the receipts
they poll with a short lease that they renew while they work, so two runs at once never poll
the same receipt and a killed run's receipts are free again within minutes.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Final

from pipeline.receipts import normalize_receipt
from pipeline.sources.uscis.schedule import (
    ERROR,
    INVALID,
    NOT_FOUND,
    OK,
    OUTCOMES,
    QUOTA,
    PollSchedule,
    schedule_from_env,
)
from pipeline.sources.uscis.shared import (
    PostgresConnection,
    SqlConnection,
    SqliteConnection,
    registry_url_from_env,
)

__all__ = [
    "CONSENT_TEXT", "CONSENT_VERSION", "ERROR", "INVALID", "NOT_FOUND", "OK", "OUTCOMES",
    "QUOTA", "Claim", "PollRecord", "PollSchedule", "Registry", "TrackedReceipt",
    "mask_receipt", "open_registry", "registry_path", "schedule_from_env",
]

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
    claimed_until    TEXT,
    form_type        TEXT,
    stage            TEXT,
    stage_since      TEXT
)
"""
# Columns added after the first release; older registry files gain them when opened.
_ADDED_COLUMNS: Final = ("form_type", "stage", "stage_since")
_FIELDS: Final = (
    "receipt, consent_at, consent_version, added_at, last_polled_at, last_outcome,"
    " last_reason, decided_at, next_due, form_type, stage, stage_since"
)
# Rank of a due receipt when the quota cannot cover them all: higher goes first.
Priority = Callable[["TrackedReceipt", datetime], float]


def mask_receipt(receipt: str) -> str:
    """Hide most digits of a receipt number: EAC2390000001 -> EAC23*****001."""
    return receipt[:5] + "*" * (len(receipt) - 8) + receipt[-3:]


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
    form_type: str | None = None
    stage: str | None = None  # the stage of the case's latest event, as last polled
    stage_since: date | None = None  # the date of that event

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
    form_type: str | None = None
    stage: str | None = None
    stage_since: date | None = None


@dataclass(frozen=True)
class Claim:
    """Receipts a poll run holds until it records them or its lease runs out."""

    claim_id: str
    receipts: list[str]
    n_tracked: int
    n_due: int = 0  # due now; more than len(receipts) when the limit or quota cut them
    n_held: int = 0  # held by another run's lease now (it is polling them)


class Registry:
    """The registry: add, list and remove receipts; claim due ones; renew; record polls."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        connection: SqlConnection | None = None,
        busy_timeout_s: float = 30.0,
    ) -> None:
        if connection is None:
            if path is None:
                raise ValueError("a registry needs a file or a database connection")
            self.path: Path | None = Path(path)
            if not self.path.name.startswith("registry"):
                raise ValueError(f"the registry file name must start with 'registry': {path}")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(self.path)
            db = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None)
            db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            connection = SqliteConnection(db)
        else:
            self.path = path
        self._db = connection
        self._db.execute(_SCHEMA)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        present = {
            str(row[0]).lower()
            for row in self._db.execute(
                "SELECT name FROM pragma_table_info('tracked')"
                if isinstance(self._db, SqliteConnection)
                else "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'tracked'"
            ).fetchall()
        }
        for column in _ADDED_COLUMNS:
            if column not in present:
                self._db.execute(f"ALTER TABLE tracked ADD COLUMN {column} TEXT")

    def close(self) -> None:
        """Close the file or connection."""
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
        with self._db.write_transaction("tracked"):
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
            f"SELECT {_FIELDS} FROM tracked ORDER BY added_at, receipt"
        ).fetchall()
        found = [_row_to_tracked(row) for row in rows]
        if schedule is None:
            return found
        return [
            TrackedReceipt(**{**t.__dict__, "next_due": _next_due(t, schedule)}) for t in found
        ]

    def receipts(self) -> set[str]:
        """Return the set of tracked receipt numbers."""
        return {row[0] for row in self._db.execute("SELECT receipt FROM tracked").fetchall()}

    def remove(self, receipt: str) -> bool:
        """Stop tracking a receipt; return whether it was tracked."""
        with self._db.write_transaction("tracked"):
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
        lease: timedelta | None = None,
        priority: Priority | None = None,
    ) -> Claim:
        """Claim the receipts due now (all unclaimed ones with `force`), at most `limit`.

        Without `priority` the most overdue go first. With it, those waiting more than
        `schedule.max_wait` past their due time go first (most overdue first), then the
        highest `priority(receipt, now)`.
        """
        claim_id = uuid.uuid4().hex
        with self._db.write_transaction("tracked"):
            rows = self._db.execute(f"SELECT {_FIELDS}, claimed_until FROM tracked").fetchall()
            free = [
                _row_to_tracked(row[:-1])
                for row in rows
                if row[-1] is None or _parse(row[-1]) <= now
            ]
            due: list[tuple[tuple[float, ...], str]] = []
            for entry in free:
                when = _next_due(entry, schedule)
                if not (force or (when is not None and when <= now)):
                    continue
                overdue = (now - (when or now)).total_seconds()
                if priority is None:
                    rank: tuple[float, ...] = (-overdue,)
                else:
                    starved = overdue >= schedule.max_wait.total_seconds()
                    score = -overdue if starved else -priority(entry, now)
                    rank = (0.0 if starved else 1.0, score, -overdue)
                due.append((rank, entry.receipt))
            due.sort()
            chosen = [receipt for _, receipt in due[: limit if limit is not None else None]]
            until = _text(now + (lease or schedule.lease))
            self._db.executemany(
                "UPDATE tracked SET claimed_by = ?, claimed_until = ? WHERE receipt = ?",
                [(claim_id, until, receipt) for receipt in chosen],
            )
        return Claim(claim_id, chosen, len(rows), len(due), n_held=len(rows) - len(free))

    def renew(self, claim_id: str, until: datetime) -> int:
        """Extend the lease on every receipt still held by a claim; return how many."""
        with self._db.write_transaction("tracked"):
            cursor = self._db.execute(
                "UPDATE tracked SET claimed_until = ? WHERE claimed_by = ?",
                (_text(until), claim_id),
            )
        return int(cursor.rowcount)

    def record_polls(self, records: Iterable[PollRecord], schedule: PollSchedule) -> None:
        """Store each poll's outcome and next due time, and release those receipts."""
        with self._db.write_transaction("tracked"):
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
                    " decided_at = ?, next_due = ?, claimed_by = NULL, claimed_until = NULL,"
                    " form_type = coalesce(?, form_type), stage = coalesce(?, stage),"
                    " stage_since = coalesce(?, stage_since) WHERE receipt = ?",
                    (
                        _text(record.polled_at),
                        record.outcome,
                        record.reason,
                        decided.isoformat() if decided else None,
                        _text(due) if due else None,
                        record.form_type,
                        record.stage,
                        record.stage_since.isoformat() if record.stage_since else None,
                        record.receipt,
                    ),
                )

    def release(self, claim_id: str, receipts: Sequence[str] | None = None) -> None:
        """Release the receipts still held by a claim (all of them, or only `receipts`)."""
        with self._db.write_transaction("tracked"):
            if receipts is None:
                self._db.execute(
                    "UPDATE tracked SET claimed_by = NULL, claimed_until = NULL"
                    " WHERE claimed_by = ?",
                    (claim_id,),
                )
                return
            self._db.executemany(
                "UPDATE tracked SET claimed_by = NULL, claimed_until = NULL"
                " WHERE claimed_by = ? AND receipt = ?",
                [(claim_id, receipt) for receipt in receipts],
            )


def registry_path(home: Path) -> Path:
    """Return where the registry file lives under TIMELINES_HOME."""
    return home / REGISTRY_FILE


def open_registry(home: Path, env: Mapping[str, str]) -> Registry:
    """Open the shared Postgres registry (TIMELINES_REGISTRY_URL) or the file in the home."""
    url = registry_url_from_env(env)
    if url is not None:
        return Registry(connection=PostgresConnection(url))
    home.mkdir(parents=True, exist_ok=True)
    return Registry(registry_path(home))


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
    receipt, consent_at, version, added_at, polled, outcome, reason, decided, due = row[:9]
    form_type, stage, since = row[9:12]
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
        form_type=form_type,
        stage=stage,
        stage_since=date.fromisoformat(since) if since else None,
    )


def _text(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)
