"""State that several poll processes share: the registry's file or database, and the budget.

On one machine both live in SQLite files under TIMELINES_HOME. Across machines (a Prefect work
pool with workers on several hosts) SQLite on a network file system is unsafe, so set
TIMELINES_REGISTRY_URL=postgresql://...: the registry (receipts, leases) and the request
budget (the last grant, the day's count) then live in that Postgres database, and
every worker paces itself by it. Postgres's clock is the one that orders reservations, so
the workers' clocks need not agree.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any, Final, Protocol

from pipeline.sources.uscis.ratelimit import (
    SENDING_POLL_S,
    SENDING_STUCK_S,
    RatePolicy,
    Sleep,
    SlotLimiter,
)

ENV_REGISTRY_URL: Final = "TIMELINES_REGISTRY_URL"
POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")


def registry_url_from_env(env: Mapping[str, str]) -> str | None:
    """Return the shared registry's Postgres URL, or None to use the SQLite file in the home."""
    url = env.get(ENV_REGISTRY_URL, "").strip()
    if not url:
        return None
    if not url.startswith(POSTGRES_SCHEMES):
        raise ValueError(f"{ENV_REGISTRY_URL} must be a postgresql:// URL, got {url[:20]!r}...")
    return url


class Rows(Protocol):
    """The part of a DB-API cursor the registry uses."""

    @property
    def rowcount(self) -> int:
        """How many rows the statement changed."""
        ...

    def fetchone(self) -> Any:
        """Return the next row or None."""
        ...

    def fetchall(self) -> list[Any]:
        """Return the remaining rows."""
        ...


class SqlConnection(Protocol):
    """One connection, SQLite or Postgres, with ? placeholders and a writer transaction."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """Run one statement."""
        ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each row."""
        ...

    def write_transaction(self, table: str) -> Any:
        """Return a context manager: one writer at a time on `table`; commit or roll back."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


class SqliteConnection:
    """SQLite with BEGIN IMMEDIATE as the writer lock."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """Run one statement."""
        return self.db.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each row."""
        self.db.executemany(sql, [tuple(r) for r in rows])

    @contextmanager
    def write_transaction(self, table: str) -> Iterator[None]:
        """Hold SQLite's write lock for the block; commit, or roll back on error."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        self.db.close()


class PostgresConnection:
    """Postgres through psycopg, with a table lock as the writer lock."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.db = psycopg.connect(url, autocommit=True, connect_timeout=10)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """Run one statement (? placeholders become %s)."""
        return self.db.execute(sql.replace("?", "%s"), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each row."""
        with self.db.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])

    @contextmanager
    def write_transaction(self, table: str) -> Iterator[None]:
        """Lock `table` against other writers for the block; commit, or roll back on error."""
        with self.db.transaction():
            self.db.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
            yield

    def close(self) -> None:
        """Close the connection."""
        self.db.close()


_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS uscis_pace (id INTEGER PRIMARY KEY CHECK (id = 1),
    last_slot DOUBLE PRECISION NOT NULL, paused_until DOUBLE PRECISION NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS uscis_daily_usage (day DATE PRIMARY KEY, used INTEGER NOT NULL);
ALTER TABLE uscis_pace ADD COLUMN IF NOT EXISTS sending_since DOUBLE PRECISION;
INSERT INTO uscis_pace (id, last_slot) VALUES (1, 0) ON CONFLICT (id) DO NOTHING
"""
_PG_NOW: Final = "extract(epoch FROM clock_timestamp())::double precision"


class PostgresRateLimiter(SlotLimiter):
    """Keep the budget in Postgres so that poll processes on every machine share it.

    Each attempt is one short transaction that locks the pace row and reads Postgres's clock:
    it grants (counting the request for the day and moving the last grant to now) or says
    how long to wait, which the caller sleeps on its own clock. Thread-safe.
    """

    def __init__(self, url: str, policy: RatePolicy, *, sleep: Sleep = time.sleep) -> None:
        super().__init__(policy, clock=self._db_now, sleep=sleep)
        import psycopg

        self._lock = threading.Lock()
        self._db = psycopg.connect(url, autocommit=True, connect_timeout=10)
        with self._lock, self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(13013)")  # concurrent CREATEs
            for statement in _PG_SCHEMA.strip().split(";\n"):
                self._db.execute(statement)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def _db_now(self) -> float:
        with self._lock:
            row = self._db.execute(f"SELECT {_PG_NOW}").fetchone()
        assert row is not None
        return float(row[0])

    def _try_grant(self) -> float:
        with self._lock, self._db.transaction():
            row = self._db.execute(
                f"SELECT last_slot, paused_until, {_PG_NOW}, sending_since FROM uscis_pace"
                " WHERE id = 1 FOR UPDATE"
            ).fetchone()
            assert row is not None
            last, paused, now = float(row[0]), float(row[1]), float(row[2])
            sending = None if row[3] is None else float(row[3])
            day = self.policy.quota_day(now)
            self._check_quota(self._used(day), now)
            slot = self.policy.next_slot(now, min(last, now), min(paused, now + 3600.0))
            if slot > now:
                return slot - now
            if sending is not None and 0 <= now - sending < SENDING_STUCK_S:
                return SENDING_POLL_S  # the last one granted, anywhere, has not gone out yet
            self._db.execute(
                "UPDATE uscis_pace SET last_slot = %s, sending_since = %s WHERE id = 1", (now, now)
            )
            self._db.execute(
                "INSERT INTO uscis_daily_usage (day, used) VALUES (%s, 1)"
                " ON CONFLICT (day) DO UPDATE SET used = uscis_daily_usage.used + 1",
                (day,),
            )
            return 0.0

    def used_today(self) -> int:
        """Return how many permits were granted in the current quota day."""
        day = self.policy.quota_day(self._db_now())
        with self._lock:
            return self._used(day)

    def mark_sent(self) -> None:
        """Move the shared last grant to Postgres's now: the request went out just now."""
        with self._lock:
            self._db.execute(
                f"UPDATE uscis_pace SET last_slot = greatest(last_slot, {_PG_NOW}),"
                " sending_since = NULL WHERE id = 1"
            )

    def record_retry_after(self, seconds: float) -> None:
        """Pause every process sharing this database for ``seconds``."""
        with self._lock:
            self._db.execute(
                f"UPDATE uscis_pace SET paused_until = greatest(paused_until, {_PG_NOW} + %s)"
                " WHERE id = 1",
                (seconds,),
            )

    def record_quota_exhausted(self) -> None:
        """Mark the current day as spent for every process sharing this database."""
        day = self.policy.quota_day(self._db_now())
        with self._lock:
            self._db.execute(
                "INSERT INTO uscis_daily_usage (day, used) VALUES (%s, %s) ON CONFLICT (day)"
                " DO UPDATE SET used = greatest(uscis_daily_usage.used, excluded.used)",
                (day, self.policy.daily_quota),
            )
            self._db.execute(
                "DELETE FROM uscis_daily_usage WHERE day < %s", (day - timedelta(days=7),)
            )

    def _used(self, day: date) -> int:
        row = self._db.execute(
            "SELECT used FROM uscis_daily_usage WHERE day = %s", (day,)
        ).fetchone()
        return int(row[0]) if row else 0
