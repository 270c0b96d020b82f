"""Pipeline health: last runs of each flow, poll outcomes, quota used, quarantine by reason."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import charts, data, notices
from dashboards.formatting import age, when
from pipeline.analytics.snapshot import Snapshot

POLL_TABLES = ("poll_outcomes",)
QUOTA_TABLES = ("poll_quota",)


def render() -> None:
    """Draw the pipeline-health page."""
    settings = data.app_settings()
    st.title("Pipeline health")
    st.caption("What the flows did: when each last ran and how it went, what the poller saw, "
               "and why records were turned away.")
    activity = data.writer_activity(settings)
    if activity.message:
        st.info(activity.message, icon=":material/sync:")
    snapshot = notices.require_snapshot(settings)

    st.subheader("Last run of each flow")
    runs = data.read_table(snapshot, "runs")
    if runs is None or runs.height == 0:
        st.info("No flow has recorded a run yet.")
    else:
        _last_runs(runs)

    st.subheader("Polling the Case Status API")
    _polling(snapshot)

    st.subheader("Quarantine: records turned away, by reason")
    reasons = data.read_table(snapshot, "quarantine_reasons")
    if reasons is None or reasons.height == 0:
        st.success("No record has been turned away.", icon=":material/check_circle:")
    else:
        total = int(reasons["n_records"].sum())
        st.caption(f"{data.meta_int(snapshot, 'n_quarantined'):,} records in quarantine; a record "
                   f"can have several reasons ({total:,} reasons in all). Raw payloads are never "
                   "kept, only the anonymized attempt and why.")
        st.altair_chart(charts.bar_chart(reasons.head(15), "reason", "n_records", "reason",
                                         "records"), width="stretch")
        st.dataframe(reasons.rename({"n_records": "records", "last_seen": "last seen"}),
                     hide_index=True, width="stretch")

    st.subheader("This snapshot")
    st.markdown(
        f"- Snapshot `{snapshot.stamp}`, published {age(data.meta_time(snapshot, 'published_at'))}\n"
        f"- {data.meta_int(snapshot, 'n_cases'):,} cases, "
        f"{data.meta_int(snapshot, 'n_events'):,} status events, schema version "
        f"{data.meta_int(snapshot, 'schema_version')}\n"
        f"- Tables: {', '.join(data.published_tables(snapshot))}"
    )


def _last_runs(runs: pl.DataFrame) -> None:
    latest = runs.sort("started_at", descending=True).group_by("flow", maintain_order=True).first()
    cols = st.columns(min(4, latest.height))
    for i, row in enumerate(latest.iter_rows(named=True)):
        ok = row["status"] == "ok"
        cols[i % len(cols)].metric(
            row["flow"], "ok" if ok else row["status"],
            delta=age(row["finished_at"] or row["started_at"]),
            delta_color="off" if ok else "inverse", delta_arrow="off",
        )
    failed = latest.filter(pl.col("status") != "ok")
    for row in failed.iter_rows(named=True):
        st.error(f"The last {row['flow']} run ({when(row['started_at'])}) did not finish: "
                 f"{row['message'] or 'no message'}", icon=":material/error:")
    with st.expander("Recent runs"):
        st.dataframe(
            runs.sort("started_at", descending=True).head(50).select(
                "run_id", "flow", "status", "started_at", "finished_at", "n_read", "n_stored",
                "n_rejected", "n_new_cases", "n_new_events", "message",
            ),
            hide_index=True, width="stretch",
        )


def _polling(snapshot: Snapshot) -> None:
    outcomes = _first_table(snapshot, POLL_TABLES)
    quota = _first_table(snapshot, QUOTA_TABLES)
    if outcomes is None and quota is None:
        st.info("No polling is recorded in this snapshot. Polling starts once receipts are "
                "tracked (`timelines track add RECEIPT --consent`) and `timelines poll` runs.",
                icon=":material/info:")
        return
    if quota is not None and quota.height:
        st.dataframe(quota, hide_index=True, width="stretch")
    if outcomes is not None and outcomes.height:
        st.dataframe(outcomes, hide_index=True, width="stretch")


def _first_table(snapshot: Snapshot, names: tuple[str, ...]) -> pl.DataFrame | None:
    for name in names:
        table = data.read_table(snapshot, name)
        if table is not None:
            return table
    return None


render()
