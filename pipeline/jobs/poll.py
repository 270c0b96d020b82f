"""The poll job: select the due receipts, fetch, prepare, store, record, publish.

Each step is a plain function so the `poll` flow can wrap it in a task and a test can call it:
`pipeline.sources.uscis.fetch` selects and fetches, `pipeline.jobs.poll_results` prepares, stores
and records. Receipt numbers stay in memory and in the registry file; everything written to the
analytics database is keyed by the case's pseudonym. `run_poll` runs every step in-process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime

from pipeline.jobs import refresh as refresh_job
from pipeline.jobs.poll_results import (
    PollOutcome,
    PollSummary,
    PreparedPoll,
    StoredPoll,
    prepare_answers,
    record_outcomes,
    store_poll,
    summarize,
)
from pipeline.prepare.anonymize import key_of
from pipeline.settings import Settings
from pipeline.sources.uscis.client import ApiSettings
from pipeline.sources.uscis.fetch import (
    Answer,
    Clock,
    Failure,
    FetchProgress,
    OnProgress,
    PollBatch,
    ServiceDown,
    answers_are_synthetic,
    api_label,
    fetch_answers,
    schedule_from_env,
    select_due_receipts,
)
from pipeline.sources.uscis.registry import PollSchedule, Registry, registry_path

__all__ = [
    "Answer",
    "Failure",
    "FetchProgress",
    "PollBatch",
    "PollOutcome",
    "PollSummary",
    "PreparedPoll",
    "ServiceDown",
    "StoredPoll",
    "answers_are_synthetic",
    "api_label",
    "fetch_answers",
    "prepare_answers",
    "record_outcomes",
    "run_poll",
    "schedule_from_env",
    "select_due_receipts",
    "store_poll",
    "summarize",
]

def run_poll(
    settings: Settings,
    api: ApiSettings,
    *,
    schedule: PollSchedule | None = None,
    force: bool = False,
    limit: int | None = None,
    clock: Clock = time.time,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: OnProgress | None = None,
    publish: bool = True,
) -> PollSummary:
    """Run every step of a poll in this process (what `timelines poll` does without Prefect)."""
    schedule = schedule or schedule_from_env(settings.env)
    label = api_label(api.base_url)
    now = datetime.fromtimestamp(clock())
    batch = select_due_receipts(
        settings, schedule, now=now, force=force, limit=limit,
        requests_per_second=api.requests_per_second,
    )
    progress = FetchProgress()
    if not batch.receipts:
        return summarize(label, batch, progress, None, None)
    try:
        # ServiceDown is recorded in progress.problem; what was fetched is still stored.
        with suppress(ServiceDown):
            fetch_answers(settings, api, batch, progress, clock=clock, sleep=sleep,
                          on_progress=on_progress)
        key = key_of(settings)
        prepared = prepare_answers(
            progress, key, synthetic=answers_are_synthetic(label), now=now
        )
        message = summarize(label, batch, progress, prepared, None).describe()
        stored = store_poll(settings, prepared, progress, started_at=now, api=label, message=message)
        record_outcomes(settings, batch, prepared, schedule)
    finally:
        with Registry(registry_path(settings.home)) as registry:
            registry.release(batch.claim_id)
    if publish:
        refresh_job.publish(settings)
    return summarize(label, batch, progress, prepared, stored)
