"""The inbox flow: carry out deletion requests, store waiting submissions, then recompute
and publish statistics if anything changed. Meant for a deployment on a short schedule
(e.g. every 5 minutes); `timelines ingest --inbox` runs the same job once, in-process."""

from __future__ import annotations

from prefect import flow

from flows.steps import retrying_task
from pipeline.jobs import inbox as inbox_job
from pipeline.jobs.inbox import InboxResult
from pipeline.settings import load_settings

# Inbox steps read and move files and wait for the database: they get retries. Each step is
# idempotent (a submission stored twice is stored once), so a retry is safe.
INBOX_RETRY_DELAYS_S = [2, 10]


@flow(name="ingest-inbox", log_prints=True)
def inbox_flow() -> InboxResult:
    """Process the submissions inbox."""
    result = inbox_job.process_inbox(
        load_settings(), io_step=retrying_task(INBOX_RETRY_DELAYS_S)
    )
    print(result.describe())
    return result
