"""Two questions a journalist asks: is it getting worse, and do offices differ?

Plain polars/numpy over the published durations table. Both answer with intervals, and both
make a plain statement only when the intervals support it; otherwise they say the data do not
show a difference. Groups under k give no figures.

*Getting worse*: the latest filing months are mostly still waiting, so their median is not
known yet. The comparison takes the latest three filing months whose cases have all had the
form's typical (median) wait by now, and the same months a year earlier, and compares them at
the same horizon: the share decided within D days, D being the follow-up every case of the
recent months has had. Kaplan–Meier for each, Greenwood variance for the difference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from pipeline.analytics.survival import kaplan_meier, survival_quantile

Z95 = 1.959963984540054
MIN_HORIZON_DAYS = 60


@dataclass(frozen=True)
class Share:
    """A share decided within the horizon, with its 95% interval and the cases behind it."""

    share: float
    ci_low: float
    ci_high: float
    variance: float
    n_cases: int


@dataclass(frozen=True)
class CohortChange:
    """Recent filing months against the same months a year earlier, at the same horizon."""

    group: str  # "all offices" or an office code
    recent_start: date
    recent_end: date  # exclusive
    horizon_days: int
    recent: Share | None  # None: fewer than k cases
    year_before: Share | None

    @property
    def difference(self) -> tuple[float, float, float] | None:
        """Recent minus year-before share decided, with its 95% interval."""
        if self.recent is None or self.year_before is None:
            return None
        diff = self.recent.share - self.year_before.share
        half = Z95 * math.sqrt(self.recent.variance + self.year_before.variance)
        return diff, diff - half, diff + half

    @property
    def verdict(self) -> str:
        """'slower', 'faster', 'no clear change' or 'too few cases'."""
        diff = self.difference
        if diff is None:
            return "too few cases"
        if diff[2] < 0:
            return "slower"
        if diff[1] > 0:
            return "faster"
        return "no clear change"

    def sentence(self, form: str) -> str:
        """One plain sentence with both figures, their intervals and n."""
        months = _months(self.recent_start, self.recent_end)
        before = _months(_year_earlier(self.recent_start), _year_earlier(self.recent_end))
        place = "" if self.group == "all offices" else f" at {self.group}"
        if self.recent is None or self.year_before is None:
            return (f"Too few {form} cases{place} filed in {months} or in {before} to compare "
                    "them.")
        r, b = self.recent, self.year_before
        figures = (f"{_pct(r.share)} of {form} cases{place} filed in {months} were decided within "
                   f"{self.horizon_days} days ({_pct(r.ci_low)}–{_pct(r.ci_high)}, n={r.n_cases:,}), "
                   f"against {_pct(b.share)} of those filed in {before} ({_pct(b.ci_low)}–"
                   f"{_pct(b.ci_high)}, n={b.n_cases:,})")
        verdict = self.verdict
        if verdict == "slower":
            return f"Slower than a year earlier: {figures}."
        if verdict == "faster":
            return f"Faster than a year earlier: {figures}."
        return f"No clear change from a year earlier (the intervals overlap): {figures}."


def regular_only(frame: pl.DataFrame) -> pl.DataFrame:
    """Regular-processing rows when the table tells processing apart (premium is not pooled)."""
    if "processing" in frame.columns:
        return frame.filter(pl.col("processing") == "regular")
    return frame


def _pct(share: float) -> str:
    return f"{100 * share:.0f}%"


def _months(start: date, end: date) -> str:
    last = end - timedelta(days=1)
    if (start.year, start.month) == (last.year, last.month):
        return f"{start:%b %Y}"
    if start.year == last.year:
        return f"{start:%b}–{last:%b %Y}"
    return f"{start:%b %Y}–{last:%b %Y}"


def _year_earlier(day: date) -> date:
    return day.replace(year=day.year - 1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def share_decided_within(cases: pl.DataFrame, horizon_days: int, k: int) -> Share | None:
    """Kaplan–Meier share decided within the horizon, with its interval; None under k."""
    if cases.height < k:
        return None
    km = kaplan_meier(cases["duration_days"].to_numpy(), cases["decided"].to_numpy())
    idx = int(np.searchsorted(km.timeline, horizon_days, side="right") - 1)
    return Share(1.0 - float(km.survival[idx]), 1.0 - float(km.ci_high[idx]),
                 1.0 - float(km.ci_low[idx]), float(km.greenwood_var[idx]), cases.height)


def recent_window(as_of: date, months: int = 3,
                  min_days: int = MIN_HORIZON_DAYS) -> tuple[date, date, int]:
    """The latest `months` filing months with at least `min_days` of follow-up.

    Returns [start, end) and the horizon: the days from `end` to `as_of`.
    """
    end = (as_of - timedelta(days=min_days)).replace(day=1)
    return _add_months(end, -months), end, (as_of - end).days


def typical_horizon(cases: pl.DataFrame) -> int:
    """The horizon that tells cohorts apart: the form's median wait (at least 60 days).

    A horizon much shorter than the usual wait compares shares near 0% (nobody is decided
    that fast); at the median, half of the cases are decided, where shares move the most.
    """
    if cases.height == 0:
        return MIN_HORIZON_DAYS
    km = kaplan_meier(cases["duration_days"].to_numpy(), cases["decided"].to_numpy())
    median = survival_quantile(km, 0.5).value
    return MIN_HORIZON_DAYS if median is None else max(MIN_HORIZON_DAYS, int(median))


def cohort_changes(cases: pl.DataFrame, as_of: date, k: int, office_col: str = "intake_office",
                   months: int = 3, min_days: int | None = None) -> list[CohortChange]:
    """The latest cohort that has had the form's typical wait, against a year earlier, for
    all offices and then each office."""
    cases = regular_only(cases)
    horizon_floor = typical_horizon(cases) if min_days is None else min_days
    start, end, horizon = recent_window(as_of, months, horizon_floor)
    recent = cases.filter(pl.col("received_month").is_between(start, end, closed="left"))
    before = cases.filter(pl.col("received_month").is_between(
        _year_earlier(start), _year_earlier(end), closed="left"))
    changes = [CohortChange("all offices", start, end, horizon,
                            share_decided_within(recent, horizon, k),
                            share_decided_within(before, horizon, k))]
    offices = sorted(cases[office_col].drop_nulls().unique().to_list())
    for office in offices:
        mine = pl.col(office_col) == office
        changes.append(CohortChange(office, start, end, horizon,
                                    share_decided_within(recent.filter(mine), horizon, k),
                                    share_decided_within(before.filter(mine), horizon, k)))
    return changes


@dataclass(frozen=True)
class OfficeMedian:
    """One office's Kaplan–Meier median wait with its 95% interval (None: not reached)."""

    office: str
    n_cases: int
    median_days: float | None
    ci_low: float | None
    ci_high: float | None


def office_medians(cases: pl.DataFrame, k: int, office_col: str = "intake_office") -> list[OfficeMedian]:
    """The median wait per office with at least k cases, shortest first."""
    out = []
    for (office,), group in regular_only(cases).group_by(office_col):
        if office is None or group.height < k:
            continue
        km = kaplan_meier(group["duration_days"].to_numpy(), group["decided"].to_numpy())
        q = survival_quantile(km, 0.5)
        out.append(OfficeMedian(str(office), group.height, q.value, q.ci_low, q.ci_high))
    return sorted(out, key=lambda m: (m.median_days is None, m.median_days or 0.0, m.office))


def office_differences(medians: list[OfficeMedian]) -> list[tuple[OfficeMedian, OfficeMedian]]:
    """Pairs (faster, slower) whose median intervals do not overlap."""
    return [(fast, slow) for fast in medians for slow in medians
            if fast is not slow and fast.ci_high is not None and slow.ci_low is not None
            and slow.ci_low > fast.ci_high]


def offices_statement(form: str, medians: list[OfficeMedian]) -> str:
    """A plain statement of which offices differ, only where the intervals separate."""
    if len(medians) < 2:
        return f"Fewer than two offices have enough {form} cases to compare."
    pairs = office_differences(medians)
    if not pairs:
        return (f"The data do not show that {form} offices differ: every office's 95% interval "
                "for the median wait overlaps the others'.")
    slower: dict[str, list[str]] = {}
    for fast, slow in pairs:
        slower.setdefault(fast.office, []).append(slow.office)
    clauses = "; ".join(f"{fast} is faster than {', '.join(sorted(slows))}"
                        for fast, slows in slower.items())
    return (f"Clear differences between {form} offices (the 95% intervals of their median waits "
            f"do not overlap): {clauses}. Other pairs of offices are within the uncertainty.")
