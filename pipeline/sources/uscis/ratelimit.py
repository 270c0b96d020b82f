"""Share one request budget (per second and per day) between threads and between processes."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
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

# Sleep a hair longer than strictly needed so a waiter does not wake up just before its turn.
_WAKE_SLACK_S = 0.002


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
    """Limits to keep: at most N requests in any wall-clock second and a daily quota.

    ``safety_margin_s`` widens the 1-second window so that jitter in network latency
    cannot push N+1 requests into one second as the server counts them.
    ``min_interval_s`` optionally spaces requests evenly (Apigee spike arrest smooths
    bursts: 5/s may in practice mean one request per 200 ms).
    """

    requests_per_second: int
    daily_quota: int
    reset_time: dtime = dtime(0, 0)
    reset_zone: str = "America/New_York"
    safety_margin_s: float = 0.1
    min_interval_s: float = 0.0

    def __post_init__(self) -> None:
        if self.requests_per_second < 1:
            raise ValueError("requests_per_second must be at least 1")
        if self.daily_quota < 0:
            raise ValueError("daily_quota must not be negative")
        if self.safety_margin_s < 0 or self.min_interval_s < 0:
            raise ValueError("safety_margin_s and min_interval_s must not be negative")
        ZoneInfo(self.reset_zone)  # fail now, not at the first request, on an unknown zone

    @property
    def window_s(self) -> float:
        """Return the length of the sliding window in which at most N permits are granted."""
        return 1.0 + self.safety_margin_s

    def quota_day(self, now: float) -> date:
        """Return the quota day that the POSIX time ``now`` falls in."""
        local = datetime.fromtimestamp(now, ZoneInfo(self.reset_zone))
        shift = timedelta(hours=self.reset_time.hour, minutes=self.reset_time.minute)
        return (local - shift).date()

    def next_reset(self, now: float) -> datetime:
        """Return when the quota day containing ``now`` ends."""
        following = self.quota_day(now) + timedelta(days=1)
        return datetime.combine(following, self.reset_time, tzinfo=ZoneInfo(self.reset_zone))

    def wait_needed(self, now: float, recent: Sequence[float], paused_until: float) -> float:
        """Return how long to wait before a permit may be granted (0 if it may be now).

        ``recent`` holds earlier grant times inside the window, oldest first.
        """
        waits = [paused_until - now]
        n = self.requests_per_second
        if len(recent) >= n:
            waits.append(recent[-n] + self.window_s - now)
        if self.min_interval_s and recent:
            waits.append(recent[-1] + self.min_interval_s - now)
        return max(0.0, *waits)


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


class InMemoryRateLimiter:
    """Keep the budget in this process only: for tests and single-process runs."""

    def __init__(
        self, policy: RatePolicy, *, clock: Clock = time.time, sleep: Sleep = time.sleep
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._grants: deque[float] = deque()
        self._day: date | None = None
        self._used = 0
        self._paused_until = 0.0

    def acquire(self) -> None:
        """Block until a request may be sent; raise DailyQuotaExhausted when the day is spent."""
        while True:
            with self._lock:
                now = self._clock()
                self._roll_day(now)
                if self._used >= self.policy.daily_quota:
                    raise DailyQuotaExhausted(
                        self._used, self.policy.daily_quota, self.policy.next_reset(now)
                    )
                while self._grants and self._grants[0] <= now - self.policy.window_s:
                    self._grants.popleft()
                wait = self.policy.wait_needed(now, list(self._grants), self._paused_until)
                if wait <= 0:
                    self._grants.append(now)
                    self._used += 1
                    return
            self._sleep(wait + _WAKE_SLACK_S)

    def used_today(self) -> int:
        """Return how many permits were granted in the current quota day."""
        with self._lock:
            self._roll_day(self._clock())
            return self._used

    def remaining_today(self) -> int:
        """Return how many permits are left in the current quota day."""
        return max(0, self.policy.daily_quota - self.used_today())

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


_SCHEMA = """
CREATE TABLE IF NOT EXISTS grants (t REAL NOT NULL);
CREATE INDEX IF NOT EXISTS grants_by_time ON grants (t);
CREATE TABLE IF NOT EXISTS daily_usage (day TEXT PRIMARY KEY, used INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pause (id INTEGER PRIMARY KEY CHECK (id = 1), until REAL NOT NULL);
"""


class SqliteRateLimiter:
    """Keep the budget in a SQLite file so that every process on the machine shares it.

    Each decision runs in a ``BEGIN IMMEDIATE`` transaction (one writer at a time across
    processes); waiting happens outside it. Grant times are read from the clock inside
    the transaction, so they are ordered across processes. Create one instance per
    process (do not carry it across ``fork``).
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
        self.path = Path(path)
        self.policy = policy
        self._clock = clock
        self._sleep = sleep
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

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> SqliteRateLimiter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def acquire(self) -> None:
        """Block until a request may be sent; raise DailyQuotaExhausted when the day is spent."""
        while True:
            wait = self._try_grant()
            if wait <= 0:
                return
            self._sleep(wait + _WAKE_SLACK_S)

    def used_today(self) -> int:
        """Return how many permits were granted in the current quota day."""
        with self._lock:
            return self._used(self.policy.quota_day(self._clock()))

    def remaining_today(self) -> int:
        """Return how many permits are left in the current quota day."""
        return max(0, self.policy.daily_quota - self.used_today())

    def record_retry_after(self, seconds: float) -> None:
        """Pause every process sharing this file for ``seconds``."""
        with self._transaction():
            until = self._clock() + seconds
            self._db.execute(
                "INSERT INTO pause (id, until) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET until = max(until, excluded.until)",
                (until,),
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
        """Grant a permit and return 0, or return how long to wait before trying again."""
        with self._transaction():
            now = self._clock()
            day = self.policy.quota_day(now)
            used = self._used(day)
            if used >= self.policy.daily_quota:
                quota = self.policy.daily_quota
                raise DailyQuotaExhausted(used, quota, self.policy.next_reset(now))
            window = self.policy.window_s
            self._db.execute("DELETE FROM grants WHERE t <= ?", (now - window,))
            # If the clock stepped back, count later grants as made now: still conservative.
            self._db.execute("UPDATE grants SET t = ? WHERE t > ?", (now, now))
            recent = [row[0] for row in self._db.execute("SELECT t FROM grants ORDER BY t")]
            pause = self._db.execute("SELECT until FROM pause WHERE id = 1").fetchone()
            wait = self.policy.wait_needed(now, recent, pause[0] if pause else 0.0)
            if wait > 0:
                return wait
            self._db.execute("INSERT INTO grants (t) VALUES (?)", (now,))
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
