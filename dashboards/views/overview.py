"""Overview: typical waits per form, how fresh the data is, counts, and what is new."""

from __future__ import annotations

from datetime import date

import polars as pl
import streamlit as st

from dashboards import charts, data, notices, queries
from dashboards.formatting import TOO_FEW, age, days, when
from dashboards.tables import show_table
from pipeline.publish.reader import Snapshot


def render() -> None:
    """Draw the overview page."""
    settings = data.app_settings()
    st.title("How long do USCIS cases take?")
    st.markdown(
        "Processing times computed from case histories that people chose to share, anonymized. "
        "Cases **still waiting count as waiting**, so the figures do not look shorter than "
        "they are while a backlog grows."
    )
    snapshot = notices.require_snapshot(settings)
    k = notices.min_group_size(snapshot, settings)
    durations = notices.require_table(
        snapshot, "durations",
        "This snapshot has no per-case durations yet: run `timelines refresh` to publish them.",
    )
    view = queries.cached_overview_view(str(snapshot.path), k)

    n_cases = durations.height
    n_decided = int(durations["decided"].sum())
    cols = st.columns(4)
    cols[0].metric("Cases", f"{n_cases:,}")
    cols[1].metric("Decided", f"{n_decided:,}")
    cols[2].metric("Still waiting", f"{n_cases - n_decided:,}")
    cols[3].metric("Last new data", age(data.meta_time(snapshot, "last_ingest_at")))
    st.caption(
        f"Data seen until {when(data.meta_time(snapshot, 'data_seen_until'))} · statistics "
        f"computed {when(data.meta_time(snapshot, 'stats_computed_at'))} · snapshot "
        f"`{snapshot.stamp}`"
    )

    st.subheader("Typical waits per form")
    st.caption("Dot: half of cases decided by then (median). Tick: 80% decided (the share "
               "USCIS publishes). All offices together; pending cases count as still waiting.")
    waits = view.waits
    if waits.filter(~pl.col("suppressed")).height:
        st.altair_chart(charts.typical_waits_chart(waits), width="stretch")
    show_table(_waits_cells(waits, k), "waits")
    st.page_link("views/processing_times.py", label="Filter by office and filing date",
                 icon=":material/arrow_forward:")

    st.subheader("What is new")
    _what_is_new(snapshot, view.latest)


def _waits_cells(waits: pl.DataFrame, k: int) -> pl.DataFrame:
    rows = []
    for row in waits.iter_rows(named=True):
        if row["suppressed"]:
            rows.append({"form": row["form_type"], "cases": f"fewer than {k}",
                         "still waiting": "–", "median": TOO_FEW, "80% decided by": "–"})
            continue
        rows.append({"form": row["form_type"], "cases": f"{row['n_cases']:,}",
                     "still waiting": f"{row['n_pending']:,}", "median": days(row["median_days"]),
                     "80% decided by": days(row["p80_days"])})
    return pl.DataFrame(rows, schema=dict.fromkeys(
        ["form", "cases", "still waiting", "median", "80% decided by"], pl.String))


def _what_is_new(snapshot: Snapshot, latest: pl.DataFrame) -> None:
    runs = data.read_table(snapshot, "runs")
    loads = None if runs is None else runs.filter(
        (pl.col("flow") != "refresh") & (pl.col("status") == "ok")
    ).sort("finished_at", descending=True, nulls_last=True)
    if loads is not None and loads.height:
        last = loads.row(0, named=True)
        st.markdown(
            f"- The last update ({when(last['finished_at'])}, {last['flow']}) read "
            f"{last['n_read']:,} histories: **{last['n_new_cases']:,} new cases** and "
            f"**{last['n_new_events']:,} new status events**."
        )
    if latest.height:
        month = latest["decision_month"][0]
        parts = ", ".join(f"{r['form_type']} {r['n_decisions']:,}" for r in latest.head(6).to_dicts())
        so_far = " so far" if (month.year, month.month) == (date.today().year, date.today().month) else ""
        st.markdown(f"- Decisions reported in {month:%B %Y}{so_far}: {parts}.")
    if (loads is None or not loads.height) and not latest.height:
        st.markdown("- Nothing new yet.")


render()
