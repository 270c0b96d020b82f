"""The `poll` flow: ask the Case Status API about every opted-in receipt that is due.

A thin recipe over `pipeline.jobs.poll`. Only the fetch task retries (the network is the flaky
part); parsing, anonymizing, validating and storing do not. No task persists its result, so
receipt numbers never reach Prefect's storage; task parameters are not recorded by Prefect.
`timelines serve` runs it on a schedule (flows/schedules.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from datetime import datetime
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.progress import poll_progress
from flows.refresh import publish_snapshot
from pipeline.jobs import poll as polling
from pipeline.prepare.anonymize import key_of
from pipeline.settings import load_settings
from pipeline.sources.uscis.client import ApiSettings, Secret, api_settings_from_env
from pipeline.sources.uscis.registry import PollSchedule, Registry, registry_path

ENV_FETCH_RETRY_DELAYS = "TIMELINES_POLL_FETCH_RETRY_DELAYS"  # seconds, e.g. "30,120"
FETCH_RETRY_DELAYS_S = [30, 120]
DEMO_CONSENT_VERSION = "demo"


def _retry_when_down(task: Any, task_run: Any, state: Any) -> bool:
    """Retry the fetch only when the API stopped answering, not on a bug or bad credentials."""
    try:
        state.result()
    except polling.ServiceDown:
        return True
    except Exception:
        return False
    return False


@task(cache_policy=NO_CACHE, persist_result=False)
def select_due(
    schedule: PollSchedule, now: datetime, force: bool, limit: int | None, rate: int
) -> polling.PollBatch:
    """Claim the receipts that are due in the registry."""
    return polling.select_due_receipts(
        load_settings(), schedule, now=now, force=force, limit=limit, requests_per_second=rate
    )


@task(
    retries=len(FETCH_RETRY_DELAYS_S),
    retry_delay_seconds=FETCH_RETRY_DELAYS_S,
    retry_condition_fn=_retry_when_down,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def fetch(
    api: ApiSettings, batch: polling.PollBatch, progress: polling.FetchProgress, show_progress: bool
) -> polling.FetchProgress:
    """Fetch every claimed receipt's status; a retry resumes where the last attempt stopped."""
    with poll_progress(show_progress) as on_progress:
        return polling.fetch_answers(load_settings(), api, batch, progress, on_progress=on_progress)


@task(cache_policy=NO_CACHE, persist_result=False)
def prepare(progress: polling.FetchProgress, synthetic: bool, now: datetime) -> polling.PreparedPoll:
    """Parse, anonymize and validate the answers (no retries: a retry would repeat a bug)."""
    key = key_of(load_settings())
    return polling.prepare_answers(progress, key, synthetic=synthetic, now=now)


@task(cache_policy=NO_CACHE, persist_result=False)
def store(
    prepared: polling.PreparedPoll,
    progress: polling.FetchProgress,
    started_at: datetime,
    api: str,
    message: str,
) -> polling.StoredPoll:
    """Merge answers, observations, outcomes and traffic in one transaction."""
    return polling.store_poll(
        load_settings(), prepared, progress, started_at=started_at, api=api, message=message
    )


@task(cache_policy=NO_CACHE, persist_result=False)
def record_outcomes(
    batch: polling.PollBatch, prepared: polling.PreparedPoll, schedule: PollSchedule
) -> None:
    """Write each receipt's outcome and next due time to the registry."""
    polling.record_outcomes(load_settings(), batch, prepared, schedule)


class PollFailed(RuntimeError):
    """The poll stopped on a problem the operator must look at (credentials, API down)."""


def fetch_retry_delays(env: Mapping[str, str]) -> list[int]:
    """Return the pauses before each retry of the fetch task (TIMELINES_POLL_FETCH_RETRY_DELAYS)."""
    raw = env.get(ENV_FETCH_RETRY_DELAYS, "").strip()
    if not raw:
        return FETCH_RETRY_DELAYS_S
    try:
        delays = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError as exc:
        raise ValueError(f"{ENV_FETCH_RETRY_DELAYS}={raw!r} is not a list of seconds") from exc
    if any(d < 0 for d in delays):
        raise ValueError(f"{ENV_FETCH_RETRY_DELAYS}={raw!r} must not be negative")
    return delays


def poll_steps(
    api: ApiSettings, *, force: bool, limit: int | None, show_progress: bool
) -> polling.PollSummary:
    """Run the poll's tasks in order (inside a flow); raise PollFailed after storing a problem."""
    settings = load_settings()
    schedule = polling.schedule_from_env(settings.env)
    label = polling.api_label(api.base_url)
    now = datetime.now()
    batch = select_due(schedule, now, force, limit, api.requests_per_second)
    progress = polling.FetchProgress()
    if not batch.receipts:
        summary = polling.summarize(label, batch, progress, None, None)
        print(summary.describe())
        return summary
    try:
        # ServiceDown is recorded in progress.problem; what was fetched is still stored.
        with suppress(polling.ServiceDown):
            delays = fetch_retry_delays(settings.env)
            retried = fetch.with_options(retries=len(delays), retry_delay_seconds=delays)
            retried(api, batch, progress, show_progress)
        prepared = prepare(progress, polling.answers_are_synthetic(label), now)
        message = polling.summarize(label, batch, progress, prepared, None).describe()
        stored = store(prepared, progress, now, label, message)
        record_outcomes(batch, prepared, schedule)
    finally:
        with Registry(registry_path(load_settings().home)) as registry:
            registry.release(batch.claim_id)
    publish_snapshot()
    summary = polling.summarize(label, batch, progress, prepared, stored)
    print(summary.describe())
    if summary.problem:
        raise PollFailed(summary.problem)
    return summary


@flow(name="poll", log_prints=True)
def poll_flow(
    force: bool = False, limit: int | None = None, show_progress: bool = False
) -> polling.PollSummary:
    """Poll the Case Status API for the tracked receipts that are due (all with force)."""
    return poll_steps(api_settings_from_env(load_settings().env), force=force, limit=limit, show_progress=show_progress)


@flow(name="demo-poll", log_prints=True)
def demo_poll_flow() -> polling.PollSummary:
    """Track the 50 sandbox receipts and poll them from an emulator started in this process."""
    from pipeline.sources.uscis.emulator import (
        EmulatorConfig,
        EmulatorServer,
        load_sandbox_receipts,
    )

    settings = load_settings()
    with EmulatorServer(EmulatorConfig(requests_per_second=10)) as server:
        api = ApiSettings(
            client_id=Secret("demo"),
            client_secret=Secret("demo"),
            base_url=server.base_url,
            requests_per_second=10,
        )
        with Registry(registry_path(settings.ensure_home())) as registry:
            registry.add(
                sorted(load_sandbox_receipts()),
                now=datetime.now(),
                consent_version=DEMO_CONSENT_VERSION,
            )
        print(f"polling the sandbox emulator at {server.base_url}")
        return poll_steps(api, force=False, limit=None, show_progress=False)
