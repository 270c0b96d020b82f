"""When a tracked receipt is due, how long a poll run's lease on it lasts, and how long a
receipt may wait at most when the day's quota cannot cover every due one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

# Outcomes of one poll of one receipt.
OK: Final = "ok"
NOT_FOUND: Final = "not_found"
INVALID: Final = "invalid"
ERROR: Final = "error"
QUOTA: Final = "quota"
OUTCOMES: Final = (OK, NOT_FOUND, INVALID, ERROR, QUOTA)

ENV_INTERVAL: Final = "TIMELINES_POLL_INTERVAL_HOURS"
ENV_DECIDED_INTERVAL: Final = "TIMELINES_POLL_DECIDED_INTERVAL_HOURS"
ENV_GRACE: Final = "TIMELINES_POLL_DECIDED_GRACE_DAYS"
ENV_LEASE: Final = "TIMELINES_POLL_LEASE_MINUTES"
ENV_STARVATION: Final = "TIMELINES_POLL_MAX_WAIT_DAYS"


@dataclass(frozen=True)
class PollSchedule:
    """How often a receipt is polled: undecided cases every `interval`, decided ones less.

    A decided case (approved, denied, card produced or mailed, withdrawn, rejected) is polled
    every `decided_interval` until `decided_grace` after its decision, then no more. A run may
    poll a receipt up to `early_by` before it is due, so a daily run at a fixed time does not
    skip receipts polled a few minutes later the day before. A run holds its receipts for
    `lease` and renews the lease while it works (a killed run's receipts are free again after
    at most `lease`). When the quota cannot cover every due receipt, those most likely to have
    changed go first, except that none waits more than `max_wait` past its due time.
    """

    interval: timedelta = timedelta(hours=24)
    decided_interval: timedelta = timedelta(days=7)
    decided_grace: timedelta = timedelta(days=60)
    lease: timedelta = timedelta(minutes=2)
    max_wait: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0) or self.decided_interval <= timedelta(0):
            raise ValueError("poll intervals must be positive")
        if self.decided_grace < timedelta(0):
            raise ValueError("the grace period after a decision must not be negative")
        if self.lease <= timedelta(0) or self.max_wait <= timedelta(0):
            raise ValueError("the lease and the longest wait must be positive")

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


def schedule_from_env(env: Mapping[str, str]) -> PollSchedule:
    """Read the poll schedule from TIMELINES_POLL_* variables (hours, minutes and days)."""

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
        lease=timedelta(minutes=number(ENV_LEASE, 2)),
        max_wait=timedelta(days=number(ENV_STARVATION, 7)),
    )
