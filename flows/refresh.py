"""The refresh flow, and the refresh and publish tasks every other flow ends with."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from pipeline.analytics.stats import RefreshResult
from pipeline.jobs import refresh as refresh_job
from pipeline.settings import load_settings


@task(cache_policy=NO_CACHE)
def refresh_statistics() -> RefreshResult:
    """Recompute the statistics tables."""
    return refresh_job.refresh(load_settings())


@task(retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def publish_snapshot() -> str:
    """Publish a read-only snapshot for the dashboard."""
    return str(refresh_job.publish(load_settings()))


@flow(name="refresh-statistics", log_prints=True)
def refresh_flow() -> RefreshResult:
    """Recompute statistics and publish them."""
    result = refresh_statistics()
    publish_snapshot()
    return result
