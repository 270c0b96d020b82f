"""Processing times: filters kept in the URL; survival curves, distribution, percentile table."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import charts, data, filters, notices, queries
from dashboards.formatting import (
    NOT_REACHED,
    days,
    interval,
    percent,
    percentile_cells,
    stage_cells,
)
from dashboards.tables import show_table
from pipeline.analytics.comparisons import offices_statement
from pipeline.analytics.figures import Selection, cohort_label
from pipeline.publish.reader import Snapshot


def render() -> None:
    """Draw the processing-times page."""
    settings = data.app_settings()
    st.title("Processing times")
    st.caption("Days from the receipt date to the first decision (approval or denial). "
               "Cases still waiting count as waiting: the method section explains how.")
    snapshot = notices.require_snapshot(settings)
    k = notices.min_group_size(snapshot, settings)
    durations = notices.require_table(
        snapshot, "durations",
        "This snapshot has no per-case durations yet: run `timelines refresh` to publish them.",
    )
    selection = filters.selection_filters(durations)
    st.caption("The address bar keeps these filters: copy it to share this view.")
    view = queries.cached_processing_view(
        str(snapshot.path), selection.form, selection.office, selection.cohort,
        selection.office_kind, k, selection.processing, selection.verified_only,
    )
    what = describe(selection)
    if view.n_cases == 0:
        st.info(f"No {what} in the data. Try another office or filing date.",
                icon=":material/search_off:")
        return
    if view.n_cases < k:
        notices.too_few(k, what)
        return

    _headline(view.table.row(0, named=True), what)

    st.subheader("How long until a decision")
    st.caption("The line is the share of cases still waiting after each day since receipt; the "
               "shaded band is its 95% interval. Where the line crosses 50%, half are decided.")
    if view.curves.height:
        title = "office" if selection.office_kind == "intake" else "office now"
        st.altair_chart(charts.survival_chart(view.curves, view.group_col, title), width="stretch")
    for sentence in curve_notes(view.curves, view.group_col, k):
        st.caption(sentence)
    if view.too_small:
        st.caption(f"Not drawn, fewer than {k} cases: {', '.join(view.too_small)}.")

    st.subheader("Distribution")
    st.caption("Decided cases at the day they were decided; cases still waiting at the day "
               "they were last seen (they will take at least that long).")
    st.altair_chart(charts.histogram_chart(view.histogram), width="stretch")

    st.subheader("Percentiles")
    show_table(percentile_cells(view.table, view.group_col, "office", k), "percentiles")
    st.caption(
        "Days by which 50%, 80% and 90% of cases are decided (Kaplan–Meier), with 95% intervals. "
        f"“?”: the data cannot yet rule out a longer wait. “{NOT_REACHED}”: too few cases are "
        "decided so far to say. The finished-only median is what most trackers report; it is "
        "shorter because it leaves out everyone still waiting."
    )

    _offices_differ(snapshot, selection, k)

    st.subheader("Outcomes so far")
    _outcomes(view.table.row(0, named=True))

    st.subheader("Steps along the way")
    _stages(snapshot, selection, k)


def _outcomes(row: dict[str, object]) -> None:
    cols = st.columns(4)
    for col, (label, name, of) in zip(cols, (
        ("Approved", "approval", "of decided cases"), ("Denied", "denial", "of decided cases"),
        ("Request for evidence", "rfe", "of all cases, so far"),
        ("Transferred", "transfer", "of all cases, so far"),
    ), strict=True):
        share = row.get(f"{name}_rate")
        low, high = row.get(f"{name}_ci_low"), row.get(f"{name}_ci_high")
        value = "–" if share is None else percent(float(str(share)))
        band = (None if low is None or high is None
                else f"95% CI {percent(float(str(low)))}–{percent(float(str(high)))}")
        col.metric(label, value, delta=band, delta_color="off", delta_arrow="off", help=of)
    st.caption("Wilson 95% intervals. Requests for evidence and transfers count what has "
               "happened so far: cases still waiting may get one later.")


def _stages(snapshot: Snapshot, selection: Selection, k: int) -> None:
    if selection.cohort or selection.office_kind != "intake":
        st.caption("Stage-to-stage times are published per form and intake office, for all "
                   "filing dates: clear the filing date and count cases at the office that "
                   "received them to see them.")
        return
    stages = data.read_table(snapshot, "stage_stats")
    if stages is None:
        st.caption("Stage-to-stage times are not in this snapshot yet: `timelines refresh` "
                   "publishes them.")
        return
    office = pl.col("office").is_null() if selection.office is None else (
        pl.col("office") == selection.office)
    rows = stages.filter((pl.col("form_type") == selection.form) & office)
    if rows.height == 0:
        st.caption("No stage-to-stage times for this selection.")
        return
    show_table(stage_cells(rows, k), "stages")
    st.caption("Each row starts when a case reached the first step; cases still waiting for the "
               "second step count as waiting. Cases that never went through a step are left out.")


def _offices_differ(snapshot: Snapshot, selection: Selection, k: int) -> None:
    st.subheader("Do offices differ?")
    form = selection.form or ""
    medians = queries.cached_office_medians(str(snapshot.path), form, selection.cohort,
                                            selection.office_kind, k)
    st.markdown(offices_statement(form, medians))
    shown = [m for m in medians if m.median_days is not None]
    if len(shown) >= 2:
        top = max((m.ci_high or m.median_days or 0.0) for m in shown)
        frame = pl.DataFrame({
            "office": [m.office for m in shown], "order": list(range(len(shown))),
            "median_days": [m.median_days for m in shown],
            "ci_low": [m.ci_low for m in shown], "ci_high": [m.ci_high for m in shown],
            "ci_end": [m.ci_high if m.ci_high is not None else top for m in shown],
            "n_cases": [m.n_cases for m in shown],
        })
        st.altair_chart(charts.office_medians_chart(frame), width="stretch")
    unreached = [m.office for m in medians if m.median_days is None]
    st.caption(
        f"Median wait per office for all {what_cohort(selection)}, with its 95% interval "
        "(pending cases count as waiting). A difference is stated only where two intervals do "
        f"not overlap. Offices with fewer than {k} cases are left out"
        + (f"; not yet half decided: {', '.join(unreached)}" if unreached else "") + "."
    )


def what_cohort(selection: Selection) -> str:
    """'I-485 cases filed in 2025' (no office: the comparison is across offices)."""
    return describe(Selection(selection.form, None, selection.cohort, selection.office_kind))


def curve_notes(curves: pl.DataFrame, group_col: str, k: int) -> list[str]:
    """Say in words where a curve stops early, and why (a small group's curve is short)."""
    if curves.height == 0:
        return []
    ends = curves.group_by(group_col).agg(pl.col("time").max().alias("last_day"),
                                           pl.col("survival").min().alias("last_share"),
                                           pl.col("at_risk").max().alias("n")).sort(group_col)
    notes = []
    for row in ends.iter_rows(named=True):
        if row["last_share"] > 0.5:
            notes.append(
                f"{row[group_col]}: the curve stops at day {row['last_day']:,.0f} with "
                f"{percent(row['last_share'])} still waiting, because after that fewer than {k} "
                f"of its {row['n']:,} cases are still followed; half of them are not decided "
                "within the days seen so far.")
    if not notes:
        notes.append(f"Curves stop where fewer than {k} cases are still followed.")
    return notes


def describe(selection: Selection) -> str:
    """Say a selection in words: 'I-485 cases at NSC filed in 2025'."""
    text = f"{selection.form} cases"
    if selection.processing != "any":
        text = f"{selection.form} {selection.processing}-processing cases"
    if selection.verified_only:
        text = "verified " + text
    if selection.office:
        text += f" at {selection.office}"
    if selection.cohort:
        text += f" {cohort_label(selection.cohort)}"
    return text


def _headline(row: dict[str, object], what: str) -> None:
    if row["suppressed"]:
        return

    def get(key: str) -> float | None:
        value = row.get(key)
        return None if value is None else float(str(value))

    cols = st.columns(4)
    for col, (label, name) in zip(cols, (("Half decided by", "median"), ("80% decided by", "p80"),
                                         ("90% decided by", "p90")), strict=False):
        value, low, high = get(f"{name}_days"), get(f"{name}_ci_low"), get(f"{name}_ci_high")
        if value is None:  # short value: a long one is cut off in a narrow column
            col.metric(label, "not yet", delta="too few decided so far", delta_color="off",
                       delta_arrow="off", help=f"{NOT_REACHED}: fewer than that share of cases "
                       "is decided so far, so the wait is longer than what has been seen.")
            continue
        col.metric(label, days(value), delta=f"95% CI {interval(low, high)} days",
                   delta_color="off", delta_arrow="off")
    cols[3].metric("Cases", f"{row['n_cases']:,}", delta=f"{row['n_pending']:,} still waiting",
                   delta_color="off", delta_arrow="off")
    st.caption(f"{what}. 95% CI: the range the true figure lies in with 95% confidence; "
               "“?” means a longer wait cannot be ruled out yet.")


render()
