"""Turning figures into the words and table cells the pages show."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

import polars as pl

TOO_FEW = "too few cases to publish"
NOT_REACHED = "not reached yet"


def days(value: float | None) -> str:
    """'183 days', or 'not reached yet' when the curve has not gone that low."""
    return NOT_REACHED if value is None else f"{value:,.0f} days"


def days_with_interval(value: float | None, low: float | None, high: float | None) -> str:
    """'183 (170–195)'; an open upper end is '?' (a longer wait cannot be ruled out yet)."""
    if value is None:
        return NOT_REACHED
    if low is None and high is None:
        return f"{value:,.0f}"
    return f"{value:,.0f} ({interval(low, high)})"


def interval(low: float | None, high: float | None) -> str:
    """'170–195', with '?' for an end the data cannot pin down yet."""
    low_text = "?" if low is None else f"{low:,.0f}"
    high_text = "?" if high is None else f"{high:,.0f}"
    return f"{low_text}–{high_text}"


def percent(share: float | None, digits: int = 0) -> str:
    """'42%', or '–' when unknown."""
    return "–" if share is None else f"{100 * share:.{digits}f}%"


def when(value: datetime | date | None) -> str:
    """A timestamp as 'Nov 22, 2026 04:50', a date as 'Nov 22, 2026'."""
    if value is None:
        return "unknown"
    if isinstance(value, datetime):
        return f"{value:%b %d, %Y %H:%M}"
    return f"{value:%b %d, %Y}"


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in words: 'just now', '5 minutes ago', '3 hours ago', '2 days ago'."""
    if moment is None:
        return "never"
    seconds = ((now or datetime.now()) - moment).total_seconds()
    if seconds < 90:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "just now"


def percentile_cells(table: pl.DataFrame, group_col: str, group_title: str, k: int) -> pl.DataFrame:
    """The percentile table as text cells; suppressed groups say so and show no figure."""
    rows = []
    for row in table.iter_rows(named=True):
        if row["suppressed"]:
            rows.append({group_title: row[group_col], "cases": f"fewer than {k}",
                         "decided": "–", "still waiting": "–", "median days (95% CI)": TOO_FEW,
                         "80th pct days (95% CI)": "–", "90th pct days (95% CI)": "–",
                         "median of finished cases only": "–"})
            continue
        rows.append({
            group_title: row[group_col],
            "cases": f"{row['n_cases']:,}",
            "decided": f"{row['n_decided']:,}",
            "still waiting": f"{row['n_pending']:,}",
            "median days (95% CI)": _interval(row, "median"),
            "80th pct days (95% CI)": _interval(row, "p80"),
            "90th pct days (95% CI)": _interval(row, "p90"),
            "median of finished cases only": (
                "–" if row["naive_median_days"] is None else f"{row['naive_median_days']:,.0f}"
            ),
        })
    return pl.DataFrame(rows, schema=dict.fromkeys(
        [group_title, "cases", "decided", "still waiting", "median days (95% CI)",
         "80th pct days (95% CI)", "90th pct days (95% CI)", "median of finished cases only"],
        pl.String,
    ))


def _interval(row: Mapping[str, object], name: str) -> str:
    def number(key: str) -> float | None:
        value = row.get(key)
        return None if value is None else float(str(value))

    return days_with_interval(
        number(f"{name}_days"), number(f"{name}_ci_low"), number(f"{name}_ci_high")
    )


def stage_cells(stages: pl.DataFrame, k: int) -> pl.DataFrame:
    """Stage-to-stage rows in the pipeline's order, as text; suppressed rows say so."""
    from pipeline.analytics.stage_times import STAGE_INTERVALS

    order = {name: i for i, name in enumerate(STAGE_INTERVALS)}
    rows = []
    for row in sorted(stages.iter_rows(named=True), key=lambda r: order.get(r["segment"], 99)):
        label = STAGE_INTERVALS.get(row["segment"], ("", "", row["segment"]))[2]
        if row["suppressed"]:
            rows.append({"step": label, "cases": f"fewer than {k}", "still waiting": "–",
                         "median days (95% CI)": TOO_FEW, "80% within (days)": "–"})
            continue
        rows.append({
            "step": label, "cases": f"{row['n_cases']:,}", "still waiting": f"{row['n_pending']:,}",
            "median days (95% CI)": _interval(row, "median"),
            "80% within (days)": _interval(row, "p80"),
        })
    return pl.DataFrame(rows, schema=dict.fromkeys(
        ["step", "cases", "still waiting", "median days (95% CI)", "80% within (days)"], pl.String))


# What the submit page's preview columns mean, in words (the stored names stay in the CLI/JSON)
PREVIEW_LABELS = {
    "case": "case", "pseudonym": "stored as (keyed pseudonym)", "form_type": "form",
    "intake_office": "office that received it", "current_office": "office that has it now",
    "fiscal_year": "fiscal year", "received_date": "received", "premium": "premium processing",
    "latest_stage": "latest status", "n_events": "dated steps", "date": "date", "stage": "step",
    "title": "status as USCIS words it",
}


def plain_cell(value: object) -> str:
    """A preview cell in words: '–' for nothing, yes/no, dates as 'Sep 15, 2025'."""
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return when(value)
    return str(value).replace("_", " ") if isinstance(value, str) and value.islower() else str(value)


def plain_rows(rows: list[dict[str, object]]) -> pl.DataFrame:
    """Preview rows with plain column names and cells (no raw field names, no 'None')."""
    if not rows:
        return pl.DataFrame()
    columns = list(rows[0])
    return pl.DataFrame(
        {PREVIEW_LABELS.get(c, c.replace("_", " ")): [plain_cell(r.get(c)) for r in rows]
         for c in columns},
        schema={PREVIEW_LABELS.get(c, c.replace("_", " ")): pl.String for c in columns},
    )


_MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()#+-.!|<>~$:&=\"'")


def plain(text: object) -> str:
    """Text that Streamlit's Markdown shows exactly as written: no link, image, HTML or math.

    For any message that may quote what a user typed or uploaded; every ASCII punctuation
    character is backslash-escaped (CommonMark allows that for all of them) and line breaks
    are kept.
    """
    escaped = "".join(f"\\{c}" if c in _MARKDOWN_SPECIAL else c for c in str(text))
    return escaped.replace("\n", "  \n")
