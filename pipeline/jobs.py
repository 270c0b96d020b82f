"""The recipes of each job as plain Python: what the flows run as Prefect tasks, and what
a one-off CLI command runs in-process when no Prefect server is there to record it."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterable
from contextlib import closing
from datetime import datetime
from pathlib import Path

from pipeline.analytics.stats import RefreshResult, refresh_statistics
from pipeline.anonymize import PseudonymKey, load_key
from pipeline.ingest import PreparedChunk, chunked, prepare_chunk, prepare_in_pool
from pipeline.settings import Settings
from pipeline.sources.files import RawDocument, discover_files, read_documents
from pipeline.store.db import open_store
from pipeline.store.load import (
    LoadResult,
    next_run_id,
    record_failed_run,
    record_run,
)
from pipeline.store.load import (
    load_chunks as _load_chunks,
)
from pipeline.store.publish import publish_snapshot

CHUNK_SIZE = 20_000
# Inputs at least this large are prepared in a pool of processes; a smaller one is not worth
# the second or two it takes to start the pool.
PARALLEL_MIN_BYTES = 64_000_000


def discover_inputs(paths: Iterable[Path]) -> list[Path]:
    """The input files under the given paths; a missing path is an error."""
    return discover_files(paths)


def available_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def ingest_files(
    settings: Settings, files: list[Path], flow: str = "ingest", workers: int | None = None
) -> LoadResult:
    """Parse, anonymize, validate and store every document of `files` in one transaction.

    Large inputs are prepared by `workers` processes (default: one per core) while this
    process loads the finished chunks, in input order, inside the one transaction.
    """
    settings.ensure_home()
    key = load_key(settings.key_path)
    started = datetime.now()
    if workers is None:
        large = sum(_size(f) for f in files) >= PARALLEL_MIN_BYTES
        workers = available_cores() if large else 1
    with open_store(settings.database_path) as con:
        run_id = next_run_id(con)
        with closing(_prepared_chunks(read_documents(files), key, started, workers)) as chunks:
            try:
                return _load_chunks(con, chunks, run_id=run_id, flow=flow, started_at=started)
            except Exception as error:
                record_failed_run(con, run_id, flow, started, f"{type(error).__name__}: {error}")
                raise


def _prepared_chunks(
    documents: Iterable[RawDocument], key: PseudonymKey, started: datetime, workers: int
) -> Generator[PreparedChunk, None, None]:
    batches = chunked(documents, CHUNK_SIZE)
    if workers > 1:
        yield from prepare_in_pool(batches, key, started, workers)
    else:
        for batch in batches:
            yield prepare_chunk(batch, key, started)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # unreadable: read_documents reports it as a rejection


def refresh(settings: Settings) -> RefreshResult:
    """Recompute the statistics tables and record the run."""
    settings.ensure_home()
    started = datetime.now()
    with open_store(settings.database_path) as con:
        run_id = next_run_id(con)
        try:
            result = refresh_statistics(con, settings.min_group_size)
        except Exception as error:
            record_failed_run(con, run_id, "refresh", started, f"{type(error).__name__}: {error}")
            raise
        record_run(con, run_id, "refresh", started, LoadResult(run_id, n_read=result.n_cases),
                   message=f"{result.n_groups} groups, {result.n_suppressed} suppressed")
    return result


def record_failure(settings: Settings, flow: str, started_at: datetime, message: str) -> bool:
    """Record a failed run of `flow` for the health page, unless the job already recorded it.

    For failures a job cannot record itself (bad settings, a crash before its first step);
    publishes a snapshot so the dashboard shows it. Returns whether a row was written.
    """
    settings.ensure_home()
    with open_store(settings.database_path) as con:
        [(already,)] = con.execute(
            "SELECT count(*) FROM ingest_runs WHERE flow = ? AND status = 'failed'"
            " AND finished_at >= ?", [flow, started_at],
        ).fetchall()
        if already:
            return False
        record_failed_run(con, next_run_id(con), flow, started_at, message)
        publish_snapshot(con, settings.published_dir, settings.min_group_size)
    return True


def publish(settings: Settings) -> Path:
    """Publish a fresh read-only snapshot for the dashboard and the CLI."""
    with open_store(settings.database_path) as con:
        return publish_snapshot(con, settings.published_dir, settings.min_group_size)


def ingest(settings: Settings, paths: Iterable[Path]) -> LoadResult:
    """The ingest job: discover, load, publish."""
    result = ingest_files(settings, discover_inputs(paths))
    publish(settings)
    return result
