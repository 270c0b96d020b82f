"""The traffic report of `timelines poll --report`: requests per day and status code.

USCIS grants production access to the Case Status API after five consecutive days of sandbox
traffic with both 200 and 4xx answers. The sandbox runs Monday to Friday only, so the days
counted here are weekdays; emulator traffic does not count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

import polars as pl

REQUIRED_DAYS: Final = 5
COUNTED_API: Final = "sandbox"


@dataclass(frozen=True)
class DayCheck:
    """One weekday of the production-access check."""

    day: date
    n_ok: int
    n_client_errors: int

    @property
    def qualifies(self) -> bool:
        """Tell whether the day had both a 200 and a 4xx case-status answer."""
        return self.n_ok > 0 and self.n_client_errors > 0

    def problem(self) -> str:
        """Say what the day lacks."""
        if self.n_ok == 0 and self.n_client_errors == 0:
            return "no answers"
        return "no 200 answer" if self.n_ok == 0 else "no 4xx answer"


@dataclass(frozen=True)
class Readiness:
    """Whether the last five weekdays of sandbox traffic meet USCIS's requirement."""

    days: list[DayCheck]
    streak: int  # consecutive qualifying weekdays ending with the last day checked

    @property
    def qualifies(self) -> bool:
        """Tell whether all five days qualify."""
        return len(self.days) == REQUIRED_DAYS and all(d.qualifies for d in self.days)

    def describe(self) -> str:
        """Say in words whether the requirement is met, and what is missing."""
        span = f"{self.days[0].day:%a %Y-%m-%d} to {self.days[-1].day:%a %Y-%m-%d}"
        if self.qualifies:
            return (
                f"The last {REQUIRED_DAYS} weekdays ({span}) each had 200 and 4xx sandbox "
                "answers: this meets USCIS's requirement for production access."
            )
        missing = "; ".join(
            f"{d.day:%a %Y-%m-%d}: {d.problem()}" for d in self.days if not d.qualifies
        )
        return (
            f"Not yet: the last {REQUIRED_DAYS} weekdays ({span}) need 200 and 4xx sandbox "
            f"answers every day ({missing}). Current streak: {self.streak} of {REQUIRED_DAYS}."
        )


def weekdays_before(end: date, n: int) -> list[date]:
    """Return the n weekdays up to and including `end` (or before it, on a weekend), oldest first."""
    found: list[date] = []
    day = end
    while len(found) < n:
        if day.weekday() < 5:
            found.append(day)
        day -= timedelta(days=1)
    return found[::-1]


def daily_checks(traffic: pl.DataFrame, days: list[date]) -> list[DayCheck]:
    """Count 200 and 4xx case-status answers from the sandbox on each day."""
    rows = traffic.filter((pl.col("api") == COUNTED_API) & (pl.col("endpoint") == "case_status"))
    checks = []
    for day in days:
        today = rows.filter(pl.col("day") == day)
        ok = int(today.filter(pl.col("status") == 200)["n_requests"].sum())
        # 429 is the gateway's rate limit, not an answer about a case: it does not count.
        client = today.filter(pl.col("status").is_between(400, 499) & (pl.col("status") != 429))
        checks.append(DayCheck(day, ok, int(client["n_requests"].sum())))
    return checks


def production_readiness(traffic: pl.DataFrame, today: date) -> Readiness:
    """Check the last five weekdays; today counts only once it has qualifying traffic."""
    end = today
    if today.weekday() >= 5 or not daily_checks(traffic, [today])[0].qualifies:
        end = weekdays_before(today - timedelta(days=1), 1)[0]
    history = daily_checks(traffic, weekdays_before(end, 60))
    streak = 0
    for check in reversed(history):
        if not check.qualifies:
            break
        streak += 1
    return Readiness(history[-REQUIRED_DAYS:], streak)


def traffic_table(traffic: pl.DataFrame, since: date) -> pl.DataFrame:
    """Pivot traffic into one row per day and API, one column per HTTP status (0 = no answer)."""
    recent = traffic.filter(pl.col("day") >= since)
    if recent.is_empty():
        return pl.DataFrame(schema={"day": pl.Date, "api": pl.String, "total": pl.Int64})
    per_status = recent.group_by("day", "api", "status").agg(pl.col("n_requests").sum())
    table = per_status.pivot(
        on="status", index=["day", "api"], values="n_requests", sort_columns=True
    ).fill_null(0)
    statuses = [c for c in table.columns if c not in {"day", "api"}]
    return table.with_columns(pl.sum_horizontal(statuses).alias("total")).sort("day", "api")
