"""The schedules `timelines serve` runs, as Prefect deployments of the flows.

  poll     daily             TIMELINES_POLL_CRON     (default "0 6 * * *")
  inbox    every 5 minutes   TIMELINES_INBOX_CRON    (default "*/5 * * * *")
  refresh  hourly            TIMELINES_REFRESH_CRON  (default "15 * * * *")

Times are in TIMELINES_SCHEDULE_TIMEZONE (an IANA name, default UTC); "off" turns a schedule
off (the deployment stays, to be run by hand). Each deployment runs one flow run at a time.
With TIMELINES_POLL_SHARDS=N (N > 1) the poll's schedule starts `poll-sharded` instead, which
splits the due receipts between N runs of `poll/tracked-receipts` that run at once, in separate
processes, under the rate limit and quota they share through the SQLite limiter.
A scheduled run that fails (after its retries) is recorded in the database's `ingest_runs`
by a hook, and a snapshot is published, so the dashboard's health page shows it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect import Flow
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType

from flows.inbox import inbox_flow
from flows.poll import poll_flow
from flows.poll_shards import sharded_poll_flow
from flows.refresh import refresh_flow
from pipeline.jobs import refresh as refresh_job
from pipeline.publish.heartbeat import Deployment, record_scheduled_run
from pipeline.settings import load_settings

log = logging.getLogger(__name__)

# deployment names say what each runs: `poll/tracked-receipts`, `ingest-inbox/submissions`
DEPLOYMENT_NAMES = {
    "scheduled_poll": "tracked-receipts", "scheduled_inbox": "submissions",
    "scheduled_refresh": "statistics", "scheduled_sharded_poll": "split-between-shards",
}
ENV_TIMEZONE = "TIMELINES_SCHEDULE_TIMEZONE"
ENV_POLL_SHARDS = "TIMELINES_POLL_SHARDS"
OFF = "off"


class ScheduleError(ValueError):
    """A schedule setting that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class ScheduledJob:
    """One job on a schedule: which flow, the variable holding its cron, its default."""

    key: str
    flow_attribute: str  # the hooked flow in this module, loaded by the runner
    env: str
    default_cron: str
    every: str
    job_name: str  # how its runs are named in ingest_runs


JOBS: tuple[ScheduledJob, ...] = (
    ScheduledJob("poll", "scheduled_poll", "TIMELINES_POLL_CRON", "0 6 * * *", "daily", "poll"),
    ScheduledJob("inbox", "scheduled_inbox", "TIMELINES_INBOX_CRON", "*/5 * * * *",
                 "every 5 minutes", "inbox"),
    ScheduledJob("refresh", "scheduled_refresh", "TIMELINES_REFRESH_CRON", "15 * * * *",
                 "hourly", "refresh"),
)
_JOB_OF_FLOW = {"poll": "poll", "poll-sharded": "poll", "ingest-inbox": "inbox",
                "refresh-statistics": "refresh", "ingest": "ingest"}


@dataclass(frozen=True)
class Schedule:
    """The cron (None when off) of one job, in a time zone."""

    job: ScheduledJob
    cron: str | None
    timezone: str


def schedules_from_env(env: Mapping[str, str] | None = None) -> list[Schedule]:
    """Read every job's cron and the time zone; ScheduleError names a bad variable."""
    from prefect._internal.schemas.validators import validate_cron_string

    env = load_settings().env if env is None else env
    timezone = env.get(ENV_TIMEZONE, "").strip() or "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ScheduleError(f"{ENV_TIMEZONE}={timezone!r} is not a time zone name like "
                            "America/New_York or UTC") from error
    found = []
    for job in JOBS:
        cron = env.get(job.env, "").strip() or job.default_cron
        if cron.lower() == OFF:
            found.append(Schedule(job, None, timezone))
            continue
        try:
            validate_cron_string(cron)
        except ValueError as error:
            raise ScheduleError(
                f"{job.env}={cron!r} is not a cron expression (five fields: minute hour "
                f"day-of-month month day-of-week, e.g. {job.default_cron!r}), or '{OFF}'"
            ) from error
        found.append(Schedule(job, cron, timezone))
    return found


def poll_shards_from_env(env: Mapping[str, str] | None = None) -> int:
    """How many processes share each poll (TIMELINES_POLL_SHARDS, default 1)."""
    env = load_settings().env if env is None else env
    raw = env.get(ENV_POLL_SHARDS, "").strip() or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= 32:
        raise ScheduleError(f"{ENV_POLL_SHARDS}={raw!r} must be a whole number from 1 to 32")
    return int(raw)


def record_failed_flow_run(flow: Flow[Any, Any], flow_run: Any, state: Any) -> None:
    """Prefect on_failure hook: put the failed run in ingest_runs, for the health page."""
    job = _JOB_OF_FLOW.get(flow.name, flow.name)
    started = flow_run.start_time
    started_at = started.astimezone().replace(tzinfo=None) if started else datetime.now()
    message = f"Prefect flow run {flow_run.name}: {state.message or state.name}"
    try:
        refresh_job.record_failure(load_settings(), job, started_at, message)
    except Exception:  # the run failed already; say why this could not be recorded
        log.exception("could not record the failed %s run in the database", job)


def record_ended_flow_run(flow: Flow[Any, Any], flow_run: Any, state: Any) -> None:
    """Prefect hook: note that a scheduled run ended (even with nothing to do), for health."""
    job = _JOB_OF_FLOW.get(flow.name, flow.name)
    started = flow_run.start_time
    try:
        record_scheduled_run(
            load_settings().home, job, str(state.name).lower(),
            started.astimezone().replace(tzinfo=None) if started else None, datetime.now(),
            str(state.message or ""))
    except Exception:  # the run itself is done; say why it could not be noted
        log.exception("could not record the end of the %s run", job)


# The flows the deployments run: the plain flows plus the hooks (and, where a whole run is
# safe to repeat, a retry of the run: the inbox and refresh are idempotent).
_ENDED = [record_ended_flow_run]
_FAILED = [record_failed_flow_run, record_ended_flow_run]
scheduled_poll = poll_flow.with_options(on_completion=_ENDED, on_failure=_FAILED)
scheduled_inbox = inbox_flow.with_options(
    on_completion=_ENDED, on_failure=_FAILED, retries=2, retry_delay_seconds=60)
scheduled_refresh = refresh_flow.with_options(
    on_completion=_ENDED, on_failure=_FAILED, retries=2, retry_delay_seconds=60)
scheduled_sharded_poll = sharded_poll_flow.with_options(on_completion=_ENDED, on_failure=_FAILED)

def served(deployments: list[RunnerDeployment], now: datetime | None = None) -> list[Deployment]:
    """What the heartbeat says about each deployment: name, job, cron, seconds between runs."""
    from cronsim import CronSim

    out = []
    for deployment in deployments:
        crons = [str(s.schedule.cron) for s in deployment.schedules or []
                 if getattr(s.schedule, "cron", None)]
        every = None
        if crons:
            fire = CronSim(crons[0], now or datetime.now())
            first = next(fire)
            every = (next(fire) - first).total_seconds()
        out.append(Deployment(f"{deployment.flow_name}/{deployment.name}",
                              _JOB_OF_FLOW.get(str(deployment.flow_name), str(deployment.flow_name)),
                              crons[0] if crons else None, every))
    return out


def build_deployments(
    schedules: list[Schedule] | None = None, poll_shards: int | None = None
) -> list[RunnerDeployment]:
    """One deployment per job, named for what it runs, on its cron (none when off).

    With several poll shards the poll's cron moves to a `poll-sharded` deployment, and the
    poll deployment itself runs only when started by it, up to `poll_shards` runs at once.
    """
    schedules = schedules_from_env() if schedules is None else schedules
    shards = poll_shards_from_env() if poll_shards is None else poll_shards
    built = []
    for schedule in schedules:
        job = schedule.job
        sharded = job.key == "poll" and shards > 1
        if sharded:
            description = f"one of {shards} poll shards, started by poll-sharded"
        else:
            when = job.every if schedule.cron else "(schedule off)"
            description = f"{job.key} {when}; set {job.env} to change it"
        built.append(_deployment(job.flow_attribute, None if sharded else schedule,
                                 shards if sharded else 1, description, [job.key]))
        if sharded:
            built.append(_deployment(
                "scheduled_sharded_poll", schedule, 1,
                f"poll, split between {shards} processes; set {job.env} to change when",
                [job.key], parameters={"shards": shards},
            ))
    return built


def _deployment(
    flow_attribute: str, schedule: Schedule | None, concurrency: int, description: str,
    tags: list[str], parameters: dict[str, Any] | None = None,
) -> RunnerDeployment:
    flow: Flow[Any, Any] = globals()[flow_attribute]
    deployment = flow.to_deployment(
        name=DEPLOYMENT_NAMES[flow_attribute],
        schedule=Cron(schedule.cron, timezone=schedule.timezone)
        if schedule is not None and schedule.cron else None,
        concurrency_limit=concurrency,
        description=description,
        tags=["timelines", *tags],
        parameters=parameters,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    # load the hooked flow from this module, not the plain one from its own module
    deployment.entrypoint = f"{__name__}.{flow_attribute}"
    return deployment
