"""The inbox flow: carry out deletion requests, store waiting submissions, then recompute
and publish statistics if anything changed. Meant for a deployment on a short schedule
(e.g. every 5 minutes); `timelines ingest --inbox` runs the same recipe once."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.refresh import publish_snapshot, refresh_statistics
from pipeline.jobs import inbox as jobs
from pipeline.jobs.inbox import InboxResult
from pipeline.settings import load_settings
from pipeline.store.deletion import DeletionOutcome


# Inbox steps read and move files and wait for the database: they get retries. Each step is
# idempotent (a submission stored twice is stored once), so a retry is safe.
@task(retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def apply_deletion_requests() -> list[DeletionOutcome]:
    """Delete the submissions whose submitters asked for it."""
    return jobs.apply_deletion_requests(load_settings())


@task(retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE)
def store_pending_submissions() -> InboxResult:
    """Store (or quarantine) every waiting submission."""
    return jobs.store_pending_submissions(load_settings())


@flow(name="ingest-inbox", log_prints=True)
def inbox_flow() -> InboxResult:
    """Process the submissions inbox."""
    deletions = apply_deletion_requests()
    result = store_pending_submissions()
    result.deletions = deletions
    if result.changed:
        refresh_statistics()
        publish_snapshot()
        result.published = True
    print(
        f"{sum(d.found for d in deletions)} submission(s) deleted, {len(result.stored)} stored "
        f"or quarantined, {len(result.unreadable)} unreadable file(s) set aside"
    )
    return result
