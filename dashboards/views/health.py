"""Pipeline health: last runs of each flow, poll outcomes, quota used, quarantine by reason."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
import streamlit as st

from dashboards import charts, data, notices
from dashboards.formatting import age, percent, when
from pipeline.publish.heartbeat import scheduler_health
from pipeline.publish.reader import Snapshot
from pipeline.sources.uscis.client import ENV_QUOTA, ENV_ZONE
from pipeline.sources.uscis.ratelimit import DEFAULT_QUOTA, DEFAULT_ZONE
from pipeline.sources.uscis.traffic_report import production_readiness, traffic_table


def render() -> None:
    """Draw the pipeline-health page."""
    settings = data.app_settings()
    st.title("Pipeline health")
    st.caption("What the flows did: when each last ran and how it went, what the poller saw, "
               "and why records were turned away.")
    activity = data.writer_activity(settings)
    if activity.message:
        st.info(activity.message, icon=":material/sync:")
    _scheduler(settings.home)
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


def _scheduler(home: Path) -> None:
    """Whether `timelines serve` is alive, and whether any of its deployments is overdue."""
    st.subheader("Scheduler")
    health = scheduler_health(home, datetime.now())
    if health is None:
        st.info("No scheduler has run here: nothing polls, stores submissions or refreshes on "
                "its own. Start one with `timelines serve`.", icon=":material/schedule:")
        return
    if health.alive:
        st.success(f"The scheduler is running: last heartbeat {age(health.beat_at)}.",
                   icon=":material/monitor_heart:")
    elif health.stopped_at is not None:
        st.warning(f"The scheduler was stopped {age(health.stopped_at)} "
                   f"({when(health.stopped_at)}): no scheduled run happens until "
                   "`timelines serve` runs again.", icon=":material/pause_circle:")
    else:
        st.error(f"The scheduler is not answering: its last heartbeat was {age(health.beat_at)} "
                 f"({when(health.beat_at)}). It may have crashed or its machine is down; "
                 "restart `timelines serve`.", icon=":material/heart_broken:")
    for deployment in health.deployments:
        (st.error if deployment.overdue else st.caption)(deployment.sentence)


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
    outcomes = data.read_table(snapshot, "poll_outcomes")
    traffic = data.read_table(snapshot, "api_traffic")
    if (outcomes is None or outcomes.height == 0) and (traffic is None or traffic.height == 0):
        st.info("No polling is recorded in this snapshot. Polling starts once receipts are "
                "tracked (`timelines track add RECEIPT --consent`) and `timelines poll` runs.",
                icon=":material/info:")
        return
    if outcomes is not None and outcomes.height:
        last = outcomes["last_polled_at"].max()
        latest_day = outcomes["day"].max()
        today = outcomes.filter(pl.col("day") == latest_day)
        by_outcome = dict(today.group_by("outcome").agg(pl.col("n_polls").sum()).iter_rows())
        cols = st.columns(4)
        cols[0].metric("Last poll", age(last), delta=when(last), delta_color="off",
                       delta_arrow="off")
        cols[1].metric(f"OK on {latest_day:%b %d}", f"{by_outcome.get('ok', 0):,}")
        cols[2].metric("Not found", f"{by_outcome.get('not_found', 0):,}",
                       help="USCIS answers 404 for unknown receipts and, on purpose, for "
                            "protected cases.")
        errors = sum(v for k, v in by_outcome.items() if k not in {"ok", "not_found"})
        cols[3].metric("Errors or quota", f"{errors:,}")
        st.altair_chart(charts.poll_outcomes_chart(outcomes), width="stretch")
        problems = outcomes.filter(pl.col("outcome") != "ok").head(20)
        if problems.height:
            with st.expander("Recent problems"):
                st.dataframe(problems.select("day", "outcome", "reason", "n_polls"),
                             hide_index=True, width="stretch")
    if traffic is not None and traffic.height:
        _quota(traffic)


def _quota(traffic: pl.DataFrame) -> None:
    quota = _configured_quota()
    day = _quota_day()
    today = traffic.filter(pl.col("day") == day)
    used = int(today.filter(pl.col("api") != "emulator")["n_requests"].sum())
    emulated = int(today.filter(pl.col("api") == "emulator")["n_requests"].sum())
    share = f" of {quota:,} ({percent(used / quota)})" if quota else ""
    st.markdown(f"**Quota used today** ({day:%b %d}, in the quota's time zone): "
                f"{used:,} requests{share}"
                + (f", plus {emulated:,} to the local emulator." if emulated else "."))
    st.caption("Requests to the emulator do not count. The daily quota is configuration "
               "(USCIS_API_DAILY_QUOTA); sources disagree on the real one.")
    if traffic.filter(pl.col("api") == "sandbox").height:
        readiness = production_readiness(traffic, day)
        (st.success if readiness.qualifies else st.caption)(readiness.describe())
    with st.expander("Requests per day and HTTP status"):
        st.dataframe(traffic_table(traffic, day - timedelta(days=14)), hide_index=True,
                     width="stretch")


def _configured_quota() -> int | None:
    """The daily quota configured for the poller (the default 1,000; None when unreadable)."""
    raw = data.app_settings().env.get(ENV_QUOTA, "").strip() or str(DEFAULT_QUOTA)
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


def _quota_day() -> date:
    zone = data.app_settings().env.get(ENV_ZONE, "").strip() or DEFAULT_ZONE
    try:
        return datetime.now(ZoneInfo(zone)).date()
    except (ZoneInfoNotFoundError, ValueError):
        return date.today()


render()
