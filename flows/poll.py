"""The `poll` flow: ask the Case Status API about every opted-in receipt that is due.

A thin recipe over `pipeline.jobs.poll.run_poll` (the same job `timelines poll` runs): the
flow only wraps the network step in a task that retries when the API stops answering (not on
a bug or bad credentials), and publishes through the refresh flow's task. No task persists
its result, so receipt numbers never reach Prefect's storage. `timelines serve` runs it on a
schedule (flows/schedules.py); Prefect workers run its deployment (docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.progress import poll_progress
from flows.refresh import publish_snapshot
from pipeline.jobs import poll as polling
from pipeline.settings import Settings, load_settings
from pipeline.sources.uscis.client import ApiSettings, Secret, api_settings_from_env
from pipeline.sources.uscis.registry import open_registry

ENV_FETCH_RETRY_DELAYS = "TIMELINES_POLL_FETCH_RETRY_DELAYS"  # seconds, e.g. "30,120"
FETCH_RETRY_DELAYS_S = [30, 120]
DEMO_CONSENT_VERSION = "demo"


class PollFailed(RuntimeError):
    """The poll stopped on a problem the operator must look at (credentials, API down)."""


def _retry_when_down(task: Any, task_run: Any, state: Any) -> bool:
    """Retry the fetch only when the API stopped answering, not on a bug or bad credentials."""
    try:
        state.result()
    except polling.ServiceDown:
        return True
    except Exception:
        return False
    return False


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


def run_poll_in_flow(
    settings: Settings, api: ApiSettings, *, force: bool, limit: int | None, show_progress: bool
) -> polling.PollSummary:
    """Run the poll job with its fetch step as a retried task; raise PollFailed on a problem."""
    delays = fetch_retry_delays(settings.env)
    fetch_task = task(
        name="fetch-and-store",
        retries=len(delays),
        retry_delay_seconds=delays,
        retry_condition_fn=_retry_when_down,
        cache_policy=NO_CACHE,
        persist_result=False,
    )
    with poll_progress(show_progress) as on_progress:
        summary = polling.run_poll(
            settings, api, force=force, limit=limit, on_progress=on_progress,
            wrap_fetch=fetch_task, publish=lambda _: publish_snapshot(),
        )
    print(summary.describe())
    if summary.problem:
        raise PollFailed(summary.problem)
    return summary


@flow(name="poll", log_prints=True)
def poll_flow(
    force: bool = False, limit: int | None = None, show_progress: bool = False
) -> polling.PollSummary:
    """Poll the Case Status API for the tracked receipts that are due (all with force)."""
    settings = load_settings()
    api = api_settings_from_env(settings.env)
    return run_poll_in_flow(settings, api, force=force, limit=limit, show_progress=show_progress)


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
        with open_registry(settings.ensure_home(), settings.env) as registry:
            registry.add(
                sorted(load_sandbox_receipts()),
                now=datetime.now(),
                consent_version=DEMO_CONSENT_VERSION,
            )
        print(f"polling the sandbox emulator at {server.base_url}")
        return run_poll_in_flow(settings, api, force=False, limit=None, show_progress=False)
