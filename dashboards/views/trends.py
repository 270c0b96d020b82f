"""Trends: how waits change by filing cohort and by decision month (or quarter)."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import streamlit as st

from dashboards import charts, data, filters, notices, queries
from dashboards.formatting import TOO_FEW, days_with_interval, percent
from dashboards.tables import show_table
from pipeline.analytics.comparisons import Share
from pipeline.publish.reader import Snapshot

PERIOD_LABELS = {"month": "by month", "quarter": "by quarter"}


def render() -> None:
    """Draw the trends page."""
    settings = data.app_settings()
    st.title("Trends")
    st.caption("Are waits getting longer or shorter? Two views: by when cases were filed, and "
               "by when they were decided.")
    snapshot = notices.require_snapshot(settings)
    k = notices.min_group_size(snapshot, settings)
    durations = notices.require_table(
        snapshot, "durations",
        "This snapshot has no per-case durations yet: run `timelines refresh` to publish them.",
    )
    cols = st.columns([1, 1.4, 1])
    form = filters.form_filter(durations, cols[0])
    office = filters.office_filter(durations, form, "intake_office", cols[1])
    period = filters.url_choice(cols[2], "Group", list(PERIOD_LABELS), "period",
                                format_func=PERIOD_LABELS.__getitem__,
                                help="Quarters gather more cases per point when months are thin.")
    view = queries.cached_trend_view(str(snapshot.path), form, office, "intake", k, period)
    what = f"{form} cases" + (f" at {office}" if office else "")
    if view.n_cases < k:
        notices.too_few(k, what)
        return

    _getting_worse(snapshot, form, office, k)

    st.subheader(f"By {period} filed")
    st.caption(
        f"Median days to a decision for the cases filed each {period}, with its 95% interval. "
        "Recent cohorts have many cases still waiting: their median appears only once half "
        f"of them are decided. Cohorts of fewer than {k} cases are not shown."
    )
    cohorts = view.cohorts
    if cohorts.filter(~pl.col("suppressed")).height == 0:
        hint = ": try grouping by quarter" if period == "month" else (
            ": choose all offices, or a form with more cases")
        notices.too_few(k, f"any single {period} of {what}{hint}")
    else:
        if cohorts.filter(pl.col("median_days").is_not_null()).height:
            st.altair_chart(charts.cohort_chart(cohorts), width="stretch")
        else:
            st.info(f"No filing {period} has half of its cases decided yet.")
        st.altair_chart(charts.pending_share_chart(cohorts), width="stretch")
        with st.expander(f"Table by {period} filed"):
            show_table(_cohort_cells(cohorts, k, period), "cohorts")

    st.subheader(f"By {period} decided")
    st.caption(
        f"Decisions each {period}, coloured by the median wait of the cases decided then. This "
        "counts finished cases only, like USCIS's published times, so it runs shorter than the "
        "wait of everyone filed at the same time."
    )
    decisions = view.decisions
    if decisions.filter(~pl.col("suppressed")).height:
        st.altair_chart(charts.decisions_chart(decisions), width="stretch")
    else:
        notices.too_few(k, f"any single {period} of decisions on {what}")

    _backlog(snapshot, form, office, k)
    _silent_updates(snapshot, office)


def _getting_worse(snapshot: Snapshot, form: str, office: str | None, k: int) -> None:
    st.subheader("Is it getting worse?")
    seen = data.meta_time(snapshot, "data_seen_until")
    as_of = seen.date() if seen else date.today()
    changes = queries.cached_cohort_changes(str(snapshot.path), form, as_of, k)
    chosen = next((c for c in changes if c.group == (office or "all offices")), changes[0])
    st.markdown(f"**{chosen.sentence(form)}**")
    st.caption(
        "The latest filings are mostly still waiting, so the comparison takes the latest "
        "filing months that have all had the form's typical wait, and compares them with the "
        "same months a year earlier at the same "
        f"point: the share decided within {chosen.horizon_days} days of filing, which every "
        "recent case has had time to reach. 95% intervals; a change is stated only when the "
        "interval of the difference leaves out zero. Offices with fewer than "
        f"{k} cases in either period show no figures."
    )
    rows = []
    for change in changes:
        diff = change.difference
        rows.append({
            "office": change.group,
            "recent": _share_cell(change.recent, k),
            "a year earlier": _share_cell(change.year_before, k),
            "difference (95% CI)": "–" if diff is None else (
                f"{100 * diff[0]:+.0f} points ({100 * diff[1]:+.0f} to {100 * diff[2]:+.0f})"),
            "verdict": change.verdict,
        })
    with st.expander("Every office"):
        show_table(pl.DataFrame(rows, schema=dict.fromkeys(
            ["office", "recent", "a year earlier", "difference (95% CI)", "verdict"], pl.String)),
            "worse")


def _share_cell(share: Share | None, k: int) -> str:
    if share is None:
        return f"fewer than {k} cases"
    return (f"{percent(share.share)} ({percent(share.ci_low)}–{percent(share.ci_high)}), "
            f"n={share.n_cases:,}")


def _backlog(snapshot: Snapshot, form: str, office: str | None, k: int) -> None:
    trends = data.read_table(snapshot, "decision_trends")
    if trends is None:
        return
    place = pl.col("office").is_null() if office is None else pl.col("office") == office
    seen_until = data.meta_time(snapshot, "data_seen_until") or datetime.now()
    unfinished = date(seen_until.year, seen_until.month, 1)  # its month-end is still to come
    rows = trends.filter((pl.col("form_type") == form) & place & ~pl.col("suppressed")
                         & (pl.col("decision_month") < unfinished))
    st.subheader("Known backlog")
    st.caption("Cases we know were still waiting at the end of each month, next to the "
               f"decisions of that month. Months with fewer than {k} decisions, and the month "
               "under way, are left out.")
    if rows.filter(pl.col("n_pending_end").is_not_null()).height == 0:
        notices.too_few(k, "any single month")
        return
    st.altair_chart(charts.backlog_chart(rows), width="stretch")


def _silent_updates(snapshot: Snapshot, office: str | None) -> None:
    updates = data.read_table(snapshot, "silent_updates")
    if updates is None:
        return
    st.subheader("Updates without a status change")
    rows = updates.filter(~pl.col("suppressed"))
    if office is not None:
        rows = rows.filter(pl.col("office") == office)
    if rows.height == 0:
        st.caption("None observed yet: seeing one needs a case polled at least twice, with "
                   "USCIS's last-modified date moving and the status staying the same.")
        return
    st.caption("Polled cases whose last-modified date moved with no new status, per office and "
               "week. Often a sign that someone is working on the case.")
    st.altair_chart(charts.silent_updates_chart(rows), width="stretch")


def _cohort_cells(cohorts: pl.DataFrame, k: int, period: str) -> pl.DataFrame:
    rows = []
    for row in cohorts.sort("received_month", descending=True).iter_rows(named=True):
        start = row["received_month"]
        label = f"{start:%b %Y}" if period == "month" else f"{start.year} Q{(start.month + 2) // 3}"
        if row["suppressed"]:
            rows.append({"filed": label, "cases": f"fewer than {k}", "still waiting": "–",
                         "median days (95% CI)": TOO_FEW})
            continue
        rows.append({
            "filed": label, "cases": f"{row['n_cases']:,}",
            "still waiting": percent(row["pending_share"]),
            "median days (95% CI)": days_with_interval(
                row["median_days"], row["median_ci_low"], row["median_ci_high"]),
        })
    return pl.DataFrame(rows, schema=dict.fromkeys(
        ["filed", "cases", "still waiting", "median days (95% CI)"], pl.String))


render()
