"""The numbers the dashboard pages show, computed with polars from the published snapshot.

Plain functions of DataFrames (no Streamlit), so tests and the benchmark call them directly.
Every group with fewer than k cases comes back marked suppressed, with no figures: the page
then says "too few cases to publish".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from pipeline.analytics.stats import group_statistics
from pipeline.analytics.suppression import (
    DEFAULT_MAX_SHARE,
    Relation,
    complementary,
    contributor_counts,
    contributor_rule,
    merge_small_bins,
)
from pipeline.analytics.survival import kaplan_meier_by_group

ALL = "All"
OFFICE_COLUMNS = {"intake": "intake_office", "current": "current_office"}
# Same slack as pipeline.analytics.survival: S(t) = 0.5 exactly counts as "reached".
_LEVEL_TOLERANCE = 1e-10
_COHORT_RE = re.compile(r"^(\d{4})(?:-Q([1-4]))?$")


@dataclass(frozen=True)
class Selection:
    """What the reader picked: form, office, filing cohort and which office a case counts at."""

    form: str | None = None
    office: str | None = None
    cohort: str | None = None
    office_kind: str = "intake"
    verified_only: bool = False  # only cases whose history comes from the official API
    # regular or premium; "any" pools both (the dashboard asks for one, defaulting to regular)
    processing: str = "any"

    @property
    def office_column(self) -> str:
        """The durations column the office filter and the per-office rows use."""
        return OFFICE_COLUMNS[self.office_kind]


def cohort_bounds(cohort: str) -> tuple[date, date]:
    """Return [start, end) of a filing cohort written '2025' or '2025-Q2'."""
    match = _COHORT_RE.match(cohort)
    if not match:
        raise ValueError(f"cohort {cohort!r} is not a year like 2025 or a quarter like 2025-Q2")
    year = int(match.group(1))
    if match.group(2) is None:
        return date(year, 1, 1), date(year + 1, 1, 1)
    quarter = int(match.group(2))
    start = date(year, 3 * quarter - 2, 1)
    end = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
    return start, end


def cohort_label(cohort: str) -> str:
    """Say a cohort in words: 'filed in 2025', 'filed Apr–Jun 2025'."""
    start, end = cohort_bounds(cohort)
    if end.year > start.year and start.month == 1:
        return f"filed in {start.year}"
    return f"filed {_QUARTER_MONTHS[(start.month - 1) // 3]} {start.year}"


_QUARTER_MONTHS = ("Jan–Mar", "Apr–Jun", "Jul–Sep", "Oct–Dec")


def cohort_options(durations: pl.DataFrame) -> list[str]:
    """Filing years and quarters present in the data, newest first."""
    months = durations.select(pl.col("received_month").unique()).to_series()
    cohorts: set[str] = set()
    for month in months:
        if month is None:
            continue
        cohorts.add(str(month.year))
        cohorts.add(f"{month.year}-Q{(month.month - 1) // 3 + 1}")
    return sorted(cohorts, key=lambda c: (c[:4], len(c) == 4, c), reverse=True)


def select_cases(durations: pl.DataFrame, selection: Selection) -> pl.DataFrame:
    """The cases a selection covers."""
    conditions: list[pl.Expr] = []
    if selection.verified_only and "verified" in durations.columns:
        conditions.append(pl.col("verified"))
    if selection.processing != "any" and "processing" in durations.columns:
        conditions.append(pl.col("processing") == selection.processing)
    if selection.form:
        conditions.append(pl.col("form_type") == selection.form)
    if selection.office:
        conditions.append(pl.col(selection.office_column) == selection.office)
    if selection.cohort:
        start, end = cohort_bounds(selection.cohort)
        conditions.append(pl.col("received_month").is_between(start, end, closed="left"))
    return durations.filter(*conditions) if conditions else durations


def percentile_table(
    cases: pl.DataFrame, group_col: str, k: int, all_label: str | None = None
) -> pl.DataFrame:
    """Kaplan-Meier figures per group (suppressed under k), with an optional all-groups row."""
    computed_at = datetime.now()
    table = group_statistics(cases, [group_col], k, computed_at) if cases.height else None
    if all_label is not None and cases.height:
        everyone = cases.with_columns(pl.lit(all_label).alias(group_col))
        total = group_statistics(everyone, [group_col], k, computed_at)
        table = total if table is None else pl.concat([total, table], how="vertical_relaxed")
    if table is None:
        return pl.DataFrame(schema={group_col: pl.String, "n_cases": pl.Int32})
    return publishable(table, cases, group_col, k, all_label).drop("computed_at")


def publishable(
    table: pl.DataFrame, cases: pl.DataFrame, group_col: str, k: int, all_label: str | None
) -> pl.DataFrame:
    """The publication rules on a table computed live: k contributors, the share cap, and
    complementary suppression between the all-groups row and the groups."""
    if "contributor" in cases.columns:
        counts = contributor_counts(cases, [group_col])
        if all_label is not None:
            everyone = contributor_counts(cases.with_columns(pl.lit(all_label).alias(group_col)),
                                          [group_col])
            counts = pl.concat([everyone, counts.filter(pl.col(group_col) != all_label)])
        table = contributor_rule(table, counts, [group_col], k, DEFAULT_MAX_SHARE)
    if all_label is not None:
        relation = Relation(pl.col(group_col) == all_label, pl.col(group_col) != all_label, ())
        table = table.with_columns(complementary(table, [relation], k))
    figures = [c for c in table.columns if c not in {group_col, "suppressed", "computed_at"}]
    return table.with_columns(
        pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c) for c in figures)


def typical_waits(durations: pl.DataFrame, k: int) -> pl.DataFrame:
    """Median and 80th percentile days per form, all offices together, biggest forms first."""
    if durations.height == 0:
        return percentile_table(durations, "form_type", k)
    return percentile_table(durations, "form_type", k).sort("n_cases", descending=True)


def duration_histogram(cases: pl.DataFrame, max_bins: int = 36, k: int = 1) -> pl.DataFrame:
    """Cases per duration bin, split into decided, still waiting and withdrawn/rejected.

    The last bin gathers the longest 1% so one extreme case does not squash the chart. Bins
    under k cases are merged with their neighbours (a histogram under k in all is empty).
    """
    schema = {"bin_start": pl.Int64, "bin_end": pl.Int64, "status": pl.String, "n": pl.UInt32}
    if cases.height == 0:
        return pl.DataFrame(schema=schema)
    top = int(cases["duration_days"].quantile(0.99, "higher") or 0)
    width = nice_bin_width(top, max_bins)
    last_start = (top // width) * width
    status = (
        pl.when(pl.col("decided")).then(pl.lit("decided"))
        .when(pl.col("outcome") == "pending").then(pl.lit("still waiting (so far)"))
        .otherwise(pl.lit("withdrawn or rejected"))
    )
    bins = (
        cases.select(
            ((pl.col("duration_days") // width) * width).clip(upper_bound=last_start)
            .cast(pl.Int64).alias("bin_start"),
            status.alias("status"),
        )
        .group_by("bin_start", "status")
        .agg(pl.len().alias("n"))
        .with_columns((pl.col("bin_start") + width).alias("bin_end"))
        .sort("bin_start", "status")
    )
    return merge_small_bins(bins.select(schema.keys()).cast(schema), k)  # type: ignore[arg-type]


def nice_bin_width(span_days: int, max_bins: int) -> int:
    """A readable bin width (1 day, 1 or 2 weeks, 30, 60, 90 ... days) giving <= max_bins bins."""
    for width in (1, 7, 14, 30, 60, 90, 120, 180, 365):
        if span_days / width <= max_bins:
            return width
    return 365 * math.ceil(span_days / (365 * max_bins))


def survival_curves(
    cases: pl.DataFrame, group_col: str | None, k: int, max_points: int = 250
) -> tuple[pl.DataFrame, list[str]]:
    """Kaplan-Meier curves with their bands per group, thinned for drawing.

    Returns the curves of groups with at least k cases, cut where fewer than k cases are
    still at risk (the tail rests on a handful of cases and would show single durations),
    and the names of the groups left out for being too small.
    """
    label = group_col or "group"
    frame = cases if group_col else cases.with_columns(pl.lit(ALL).alias(label))
    if frame.height == 0:
        return pl.DataFrame(schema={label: pl.String, "time": pl.Float64}), []
    sizes = frame.group_by(label).agg(pl.len().alias("n"))
    too_small = sorted(str(g) for g in sizes.filter(pl.col("n") < k)[label].to_list())
    big = sizes.filter(pl.col("n") >= k)[label]
    frame = frame.filter(pl.col(label).is_in(big.implode()))
    if frame.height == 0:
        return pl.DataFrame(schema={label: pl.String, "time": pl.Float64}), too_small
    curves = kaplan_meier_by_group(frame, [label], "duration_days", "decided")
    curves = curves.filter(pl.col("at_risk") >= k)
    longest = float(curves.select(pl.col("time").max().cast(pl.Float64)).item() or 0.0)
    step = max(1.0, math.ceil(longest / max_points))
    thinned = (
        curves.with_columns((pl.col("time") // step).alias("_bucket"))
        .group_by(label, "_bucket", maintain_order=True)
        .agg(pl.all().last())
        .drop("_bucket")
        .sort(label, "time")
    )
    return thinned, too_small


def curve_quantiles(curves: pl.DataFrame, group_cols: list[str], q: float) -> pl.DataFrame:
    """The time by which a share q is decided, with its interval, per curve (null = not reached)."""
    level = 1.0 - q + _LEVEL_TOLERANCE

    def first_time(column: str) -> pl.Expr:
        return pl.col("time").filter(pl.col(column) <= level).min()

    return curves.group_by(group_cols, maintain_order=True).agg(
        first_time("survival").alias("value"),
        first_time("ci_low").alias("ci_low"),
        first_time("ci_high").alias("ci_high"),
    )


PERIODS = {"month": "1mo", "quarter": "1q"}


def by_period(cases: pl.DataFrame, column: str, period: str) -> pl.DataFrame:
    """Cases with a month column moved to the start of its quarter when period is 'quarter'."""
    if period == "month":
        return cases
    return cases.with_columns(pl.col(column).dt.truncate(PERIODS[period]))


def cohort_trend(cases: pl.DataFrame, k: int, period: str = "month") -> pl.DataFrame:
    """Per filing month (or quarter): n, share still pending, Kaplan-Meier median and interval."""
    schema = {
        "received_month": pl.Date, "n_cases": pl.UInt32, "n_pending": pl.UInt32,
        "pending_share": pl.Float64, "median_days": pl.Float64, "median_ci_low": pl.Float64,
        "median_ci_high": pl.Float64, "suppressed": pl.Boolean,
    }
    if cases.height == 0:
        return pl.DataFrame(schema=schema)
    cases = by_period(cases, "received_month", period)
    counts = cases.group_by("received_month").agg(
        pl.len().alias("n_cases"),
        (~pl.col("decided")).sum().cast(pl.UInt32).alias("n_pending"),
    )
    curves = kaplan_meier_by_group(cases, ["received_month"], "duration_days", "decided")
    medians = curve_quantiles(curves, ["received_month"], 0.5).rename(
        {"value": "median_days", "ci_low": "median_ci_low", "ci_high": "median_ci_high"}
    )
    figures = ["n_pending", "pending_share", "median_days", "median_ci_low", "median_ci_high"]
    return (
        counts.join(medians, on="received_month", how="left")
        .with_columns(
            (pl.col("n_pending") / pl.col("n_cases")).alias("pending_share"),
            (pl.col("n_cases") < k).alias("suppressed"),
        )
        .with_columns(
            [pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c) for c in figures]
        )
        .select(schema.keys())
        .cast(schema)  # type: ignore[arg-type]
        .sort("received_month")
    )


def decision_trend(cases: pl.DataFrame, k: int, period: str = "month") -> pl.DataFrame:
    """Per decision month (or quarter): decisions, approvals, median/80th pct days of those."""
    schema = {
        "decision_month": pl.Date, "n_decisions": pl.UInt32, "n_approved": pl.UInt32,
        "median_days": pl.Float64, "p80_days": pl.Float64, "suppressed": pl.Boolean,
    }
    decided = cases.filter(pl.col("decided") & pl.col("decision_month").is_not_null())
    if decided.height == 0:
        return pl.DataFrame(schema=schema)
    decided = by_period(decided, "decision_month", period)
    figures = ["n_approved", "median_days", "p80_days"]
    return (
        decided.group_by("decision_month")
        .agg(
            pl.len().alias("n_decisions"),
            (pl.col("outcome") == "approved").sum().alias("n_approved"),
            pl.col("duration_days").median().alias("median_days"),
            pl.col("duration_days").quantile(0.8, "higher").alias("p80_days"),
        )
        .with_columns((pl.col("n_decisions") < k).alias("suppressed"))
        .with_columns(
            [pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c) for c in figures]
        )
        .select(schema.keys())
        .cast(schema)  # type: ignore[arg-type]
        .sort("decision_month")
    )


def latest_decisions(durations: pl.DataFrame, k: int) -> pl.DataFrame:
    """Decisions per form in the latest decision month of the data (groups under k hidden)."""
    decided = durations.filter(pl.col("decision_month").is_not_null())
    if decided.height == 0:
        return pl.DataFrame(schema={"form_type": pl.String, "decision_month": pl.Date,
                                    "n_decisions": pl.UInt32})
    month = decided["decision_month"].max()
    return (
        decided.filter(pl.col("decision_month") == month)
        .group_by("form_type", "decision_month")
        .agg(pl.len().alias("n_decisions"))
        .filter(pl.col("n_decisions") >= k)
        .sort("n_decisions", descending=True)
    )
