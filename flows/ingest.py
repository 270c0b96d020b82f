"""The ingest flow: files and folders of case histories into the store, then a snapshot."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.progress import ingest_progress
from flows.refresh import publish_snapshot
from pipeline.jobs import ingest as ingest_job
from pipeline.parse.columns import parse_column_map
from pipeline.settings import load_settings
from pipeline.store.load import LoadResult


# File-system reads are the flaky part: they get retries. Parsing and validating do not.
@task(retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def discover_inputs(paths: list[str]) -> list[Path]:
    """Find the input files."""
    return ingest_job.discover_inputs(Path(p) for p in paths)


@task(cache_policy=NO_CACHE)
def load_inputs(files: list[Path], as_of: str | None = None, columns: str | None = None) -> LoadResult:
    """Parse, anonymize, validate and store the files, committing as the load goes."""
    return ingest_job.ingest_files(
        load_settings(), files,
        as_of=date.fromisoformat(as_of) if as_of else None,
        columns=parse_column_map(columns),
        on_progress=ingest_progress(print),  # the flow logs prints
    )


@flow(name="ingest", log_prints=True)
def ingest_flow(paths: list[str], as_of: str | None = None, columns: str | None = None) -> LoadResult:
    """Ingest files or folders of case histories (tables: --as-of DATE, --columns A=b,...)."""
    files = discover_inputs(paths)
    result = load_inputs(files, as_of, columns)
    publish_snapshot()
    return result
