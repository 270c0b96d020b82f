"""Prefect flows: thin recipes of tasks, each wrapping one plain function of pipeline/."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from pipeline import jobs
from pipeline.analytics.stats import RefreshResult
from pipeline.settings import load_settings
from pipeline.sources.sample import write_sample
from pipeline.store.load import LoadResult


# File-system reads are the flaky part: they get retries. Parsing and validating do not.
@task(retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def discover_inputs(paths: list[str]) -> list[Path]:
    """Find the input files."""
    return jobs.discover_inputs(Path(p) for p in paths)


@task(cache_policy=NO_CACHE)
def load_inputs(files: list[Path]) -> LoadResult:
    """Parse, anonymize, validate and store the files in one transaction."""
    return jobs.ingest_files(load_settings(), files)


@task(cache_policy=NO_CACHE)
def refresh_statistics() -> RefreshResult:
    """Recompute the statistics tables."""
    return jobs.refresh(load_settings())


@task(retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def publish_snapshot() -> str:
    """Publish a read-only snapshot for the dashboard."""
    return str(jobs.publish(load_settings()))


@task(cache_policy=NO_CACHE)
def generate_sample(out_dir: str, cases: int, seed: int) -> dict[str, int]:
    """Write synthetic histories in the real input formats."""
    return write_sample(Path(out_dir), cases, seed)


@flow(name="ingest", log_prints=True)
def ingest_flow(paths: list[str]) -> LoadResult:
    """Ingest files or folders of case histories."""
    files = discover_inputs(paths)
    result = load_inputs(files)
    publish_snapshot()
    return result


@flow(name="refresh-statistics", log_prints=True)
def refresh_flow() -> RefreshResult:
    """Recompute statistics and publish them."""
    result = refresh_statistics()
    publish_snapshot()
    return result


@flow(name="demo", log_prints=True)
def demo_flow(sample_dir: str, cases: int, seed: int) -> tuple[LoadResult, RefreshResult]:
    """Generate a synthetic sample, ingest it, poll the sandbox emulator, compute statistics."""
    from flows.poll import demo_poll_flow  # here: flows.poll imports this module

    generate_sample(sample_dir, cases, seed)
    loaded = ingest_flow([sample_dir])
    demo_poll_flow()  # the 50 sandbox receipts, over HTTP from an in-process emulator
    refreshed = refresh_flow()
    return loaded, refreshed
