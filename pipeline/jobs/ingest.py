"""The ingest job: files and folders of case histories through the funnel into the store.

Plain Python: the ingest flow wraps its steps in tasks, and a one-off `timelines ingest` runs
it in-process when no Prefect server is there to record it."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterable
from contextlib import closing
from datetime import datetime
from pathlib import Path

from pipeline.jobs.refresh import publish
from pipeline.prepare.anonymize import PseudonymKey, key_of
from pipeline.prepare.funnel import PreparedChunk, chunked, prepare_chunk, prepare_in_pool
from pipeline.settings import Settings
from pipeline.sources.files import RawDocument, discover_files, read_documents
from pipeline.store.db import open_store
from pipeline.store.load import (
    LoadResult,
    next_run_id,
    record_failed_run,
)
from pipeline.store.load import (
    load_chunks as _load_chunks,
)

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
    settings: Settings,
    files: list[Path],
    flow: str = "ingest",
    workers: int | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> LoadResult:
    """Parse, anonymize, validate and store every document of `files` in one transaction.

    Large inputs are prepared by `workers` processes (default: one per core) while this
    process loads the finished chunks, in input order, inside the one transaction.
    """
    if workers is None:
        large = sum(_size(f) for f in files) >= PARALLEL_MIN_BYTES
        workers = available_cores() if large else 1
    return ingest_documents(
        settings, read_documents(files), flow=flow, workers=workers, chunk_size=chunk_size
    )


def ingest_documents(
    settings: Settings,
    documents: Iterable[RawDocument],
    flow: str = "ingest",
    workers: int = 1,
    chunk_size: int = CHUNK_SIZE,
) -> LoadResult:
    """Store documents from any source in one transaction: all of them, or none if one fails."""
    settings.ensure_home()
    key = key_of(settings)
    started = datetime.now()
    with open_store(settings.database_path) as con:
        run_id = next_run_id(con)
        prepared = _prepared_chunks(documents, key, started, workers, chunk_size)
        with closing(prepared) as chunks:
            try:
                return _load_chunks(con, chunks, run_id=run_id, flow=flow, started_at=started)
            except Exception as error:
                record_failed_run(con, run_id, flow, started, f"{type(error).__name__}: {error}")
                raise


def _prepared_chunks(
    documents: Iterable[RawDocument],
    key: PseudonymKey,
    started: datetime,
    workers: int,
    chunk_size: int,
) -> Generator[PreparedChunk, None, None]:
    batches = chunked(documents, chunk_size)
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


def ingest(
    settings: Settings, paths: Iterable[Path], chunk_size: int = CHUNK_SIZE
) -> LoadResult:
    """The ingest job: discover, load, publish."""
    result = ingest_files(settings, discover_inputs(paths), chunk_size=chunk_size)
    publish(settings)
    return result
