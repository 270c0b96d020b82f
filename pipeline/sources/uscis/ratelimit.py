"""Pace requests to the Case Status API and count the day's quota, shared as widely as needed.

The API sits behind Apigee's spike arrest, which smooths "10 per second" into one request per
100 ms and refuses (429) a request that arrives inside the current slot, even when the second
holds fewer than ten. So a permit is granted only when at least ``RatePolicy.interval_s`` has
passed since the previous grant *as it actually happened* (a sender that woke late pushes the
next one back, never closer); a sender that is early sleeps until then and asks again.
Keeping the last grant and the day's count in one place paces every sender that shares it:
``InMemoryRateLimiter`` (threads of one process), ``SqliteRateLimiter`` (processes on one
machine) and ``pipeline.sources.uscis.shared.PostgresRateLimiter`` (machines).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from types import TracebackType
from typing import Protocol
from zoneinfo import ZoneInfo

Clock = Callable[[], float]
Sleep = Callable[[float], None]

# The official production page: 10,000 requests a day, reset at midnight GMT, 10 per second.
DEFAULT_RATE = 10
DEFAULT_QUOTA = 10_000
DEFAULT_ZONE = "GMT"
# Reserve slots this much more than 1/rate apart, so scheduling jitter on our side does not
# land two requests inside one spike-arrest slot.
DEFAULT_MARGIN_S = 0.002


class DailyQuotaExhausted(RuntimeError):
    """The day's request quota is spent; nothing more may be sent until ``resets_at``."""

    def __init__(self, used: int, quota: int, resets_at: datetime) -> None:
        super().__init__(
            f"daily quota of {quota} requests is spent ({used} used); "
            f"it resets at {resets_at.isoformat()}"
        )
        self.used = used
        self.quota = quota
        self.resets_at = resets_at

    def __reduce__(self) -> tuple[type[DailyQuotaExhausted], tuple[int, int, datetime]]:
        return (type(self), (self.used, self.quota, self.resets_at))


@dataclass(frozen=True)
class RatePolicy:
    """Limits to keep: requests at least ``interval_s`` apart, and a daily quota.

    ``interval_s`` is ``min_interval_s`` when set, else 1/``requests_per_second`` plus
    ``margin_s``: spike arrest counts slots, not wall-clock seconds.
    """

    requests_per_second: int
    daily_quota: int
    reset_time: dtime = dtime(0, 0)
    reset_zone: str = DEFAULT_ZONE
    margin_s: float = DEFAULT_MARGIN_S
    min_interval_s: float | None = None

    def __post_init__(self) -> None:
        if self.requests_per_second < 1:
            raise ValueError("requests_per_second must be at least 1")
        if self.daily_quota < 0:
            raise ValueError("daily_quota must not be negative")
        if self.margin_s < 0 or (self.min_interval_s is not None and self.min_interval_s < 0):
            raise ValueError("margin_s and min_interval_s must not be negative")
        ZoneInfo(self.reset_zone)  # fail now, not at the first request, on an unknown zone

    @property
    def interval_s(self) -> float:
        """Return the least time between two requests leaving."""
        if self.min_interval_s is not None:
            return self.min_interval_s
        return 1.0 / self.requests_per_second + self.margin_s

    def quota_day(self, now: float) -> date:
        """Return the quota day that the POSIX time ``now`` falls in."""
        local = datetime.fromtimestamp(now, ZoneInfo(self.reset_zone))
        shift = timedelta(hours=self.reset_time.hour, minutes=self.reset_time.minute)
        return (local - shift).date()

    def next_reset(self, now: float) -> datetime:
        """Return when the quota day containing ``now`` ends."""
        following = self.quota_day(now) + timedelta(days=1)
        return datetime.combine(following, self.reset_time, tzinfo=ZoneInfo(self.reset_zone))

    def next_slot(self, now: float, last_grant: float, paused_until: float) -> float:
        """Return the moment the next request may leave, given when the last one did."""
        return max(now, last_grant + self.interval_s, paused_until)


class RateLimiter(Protocol):
    """A source of permission to send one request to the Case Status API."""

    def acquire(self) -> None:
        """Block until a request may be sent; raise DailyQuotaExhausted when the day is spent."""
        ...

    def used_today(self) -> int:
        """Return how many permits were granted in the current quota day."""
        ...

    def remaining_today(self) -> int:
        """Return how many permits are left in the current quota day."""
        ...

    def record_retry_after(self, seconds: float) -> None:
        """Pause every holder of this limiter for ``seconds`` (a server's Retry-After)."""
        ...

    def record_quota_exhausted(self) -> None:
        """Mark the current day as spent because the server said so."""
        ...


class SlotLimiter:
    """Ask a ledger for a permit, sleeping until it may be granted; subclasses keep the ledger."""

    policy: RatePolicy

    def __init__(self, policy: RatePolicy, *, clock: Clock, sleep: Sleep) -> None:
        self.policy = policy
        self._clock = clock
        self._sleep = sleep

    def acquire(self) -> None:
        """Block until a request may be sent; raise DailyQuotaExhausted when the day is spent."""
        while (wait := self._try_grant()) > 0:
            self._sleep(wait)

    def remaining_today(self) -> int:
        """Return how many permits are left in the current quota day."""
        return max(0, self.policy.daily_quota - self.used_today())

    def used_today(self) -> int:
        """Return how many permits were granted in the current quota day."""
        raise NotImplementedError

    def record_retry_after(self, seconds: float) -> None:
        """Pause every holder of this limiter for ``seconds``."""
        raise NotImplementedError

    def record_quota_exhausted(self) -> None:
        """Mark the current day as spent."""
        raise NotImplementedError

    def mark_sent(self) -> None:
        """Move the last grant to now: the request went out later than it was permitted."""

    def close(self) -> None:
        """Let go of the ledger (nothing to do for one kept in memory)."""

    def __enter__(self) -> SlotLimiter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _try_grant(self) -> float:
        """Grant and count a permit and return 0, or return how long to wait first."""
        raise NotImplementedError

    def _check_quota(self, used: int, now: float) -> None:
        if used >= self.policy.daily_quota:
            raise DailyQuotaExhausted(used, self.policy.daily_quota, self.policy.next_reset(now))


class InMemoryRateLimiter(SlotLimiter):
    """Keep the budget in this process only: for tests and single-process runs."""

    def __init__(
        self, policy: RatePolicy, *, clock: Clock = time.time, sleep: Sleep = time.sleep
    ) -> None:
        super().__init__(policy, clock=clock, sleep=sleep)
        self._lock = threading.Lock()
        self._last_grant = float("-inf")
        self._day: date | None = None
        self._used = 0
        self._paused_until = 0.0

    def _try_grant(self) -> float:
        with self._lock:
            now = self._clock()
            self._roll_day(now)
            self._check_quota(self._used, now)
            slot = self.policy.next_slot(now, self._last_grant, self._paused_until)
            if slot > now:
                return slot - now
            self._last_grant = now
            self._used += 1
            return 0.0

    def used_today(self) -> int:
        """Return how many permits were granted in the current quota day."""
        with self._lock:
            self._roll_day(self._clock())
            return self._used

    def record_retry_after(self, seconds: float) -> None:
        """Pause every user of this limiter for ``seconds``."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def record_quota_exhausted(self) -> None:
        """Mark the current day as spent."""
        with self._lock:
            self._roll_day(self._clock())
            self._used = max(self._used, self.policy.daily_quota)

    def _roll_day(self, now: float) -> None:
        day = self.policy.quota_day(now)
        if day != self._day:
            self._day = day
            self._used = 0


# A granted request not yet reported sent blocks the next grant for at most this long.
SENDING_STUCK_S = 1.0
# How soon a sender asks again while another process's granted request is on its way out.
SENDING_POLL_S = 0.003

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pace (id INTEGER PRIMARY KEY CHECK (id = 1), last_slot REAL NOT NULL,
    paused_until REAL NOT NULL DEFAULT 0, sending_since REAL);
CREATE TABLE IF NOT EXISTS daily_usage (day TEXT PRIMARY KEY, used INTEGER NOT NULL)
"""


class SqliteRateLimiter(SlotLimiter):
    """Keep the budget in a SQLite file so that every process on the machine shares it.

    Each attempt is one short ``BEGIN IMMEDIATE`` transaction (one writer at a time across
    processes); the sleep until the next moment happens outside it. Not for a network file
    system: across machines use the Postgres limiter. One instance per process.
    """

    def __init__(
        self,
        path: Path,
        policy: RatePolicy,
        *,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
        busy_timeout_s: float = 10.0,
    ) -> None:
        super().__init__(policy, clock=clock, sleep=sleep)
        self.path = Path(path)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        with self._transaction():
            for statement in _SCHEMA.strip().split(";\n"):
                self._db.execute(statement)
            self._db.execute(
                "INSERT INTO pace (id, last_slot) VALUES (1, 0) ON CONFLICT (id) DO NOTHING"
            )
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(pace)")}
            if "sending_since" not in columns:  # a file from before requests were confirmed
                self._db.execute("ALTER TABLE pace ADD COLUMN sending_since REAL")

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def used_today(self) -> int:
        """Return how many permits were granted in the current quota day."""
        with self._lock:
            return self._used(self.policy.quota_day(self._clock()))

    def mark_sent(self) -> None:
        """Move the shared last grant to now, for every process sharing this file."""
        with self._transaction():
            now = self._clock()
            self._db.execute(
                "UPDATE pace SET last_slot = max(last_slot, ?), sending_since = NULL WHERE id = 1",
                (now,),
            )

    def record_retry_after(self, seconds: float) -> None:
        """Pause every process sharing this file for ``seconds``."""
        with self._transaction():
            until = self._clock() + seconds
            self._db.execute(
                "UPDATE pace SET paused_until = max(paused_until, ?) WHERE id = 1", (until,)
            )

    def record_quota_exhausted(self) -> None:
        """Mark the current day as spent for every process sharing this file."""
        with self._transaction():
            day = self.policy.quota_day(self._clock()).isoformat()
            self._db.execute(
                "INSERT INTO daily_usage (day, used) VALUES (?, ?) "
                "ON CONFLICT (day) DO UPDATE SET used = max(used, excluded.used)",
                (day, self.policy.daily_quota),
            )

    def _try_grant(self) -> float:
        with self._transaction():
            now = self._clock()
            day = self.policy.quota_day(now)
            self._check_quota(self._used(day), now)
            last, paused, sending = self._db.execute(
                "SELECT last_slot, paused_until, sending_since FROM pace WHERE id = 1"
            ).fetchone()
            # If the clock stepped back, count the last grant as made now: still paced.
            slot = self.policy.next_slot(now, min(last, now), min(paused, now + 3600.0))
            if slot > now:
                return slot - now
            if sending is not None and 0 <= now - sending < SENDING_STUCK_S:
                return SENDING_POLL_S  # the last one granted has not gone out yet
            self._db.execute(
                "UPDATE pace SET last_slot = ?, sending_since = ? WHERE id = 1", (now, now)
            )
            self._db.execute(
                "INSERT INTO daily_usage (day, used) VALUES (?, 1) "
                "ON CONFLICT (day) DO UPDATE SET used = used + 1",
                (day.isoformat(),),
            )
            self._db.execute(
                "DELETE FROM daily_usage WHERE day < ?", ((day - timedelta(days=7)).isoformat(),)
            )
            return 0.0

    def _used(self, day: date) -> int:
        row = self._db.execute(
            "SELECT used FROM daily_usage WHERE day = ?", (day.isoformat(),)
        ).fetchone()
        return int(row[0]) if row else 0

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Hold the thread lock and SQLite's write lock; commit, or roll back on error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except DailyQuotaExhausted:
                self._db.execute("COMMIT")  # nothing was changed; just release the lock
                raise
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

