"""The ingest job: files and folders of case histories through the funnel into the store.

JSON documents (.json, .jsonl) go through the document funnel, JSON-lines files through its
bulk implementation (`pipeline.prepare.bulk`: DuckDB, the same rules, odd lines handed to the
document funnel); tables (.csv, .tsv) through the table path (`table_chunks`). The rows are
stored in transactions of whole chunks, about COMMIT_ROWS rows each: a stopped ingest keeps
what it committed, and running it again finishes it. `as_of` censors pending cases that have no last_checked of their own at that
date (a historical file); `columns` maps a tracker's headers to ours. Plain Python: the ingest flow wraps its steps in tasks, and a
one-off `timelines ingest` runs it in-process when no Prefect server is there to record it."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date, datetime, time
from pathlib import Path

from pipeline.jobs.refresh import publish
from pipeline.model import Rejection
from pipeline.prepare.anonymize import PseudonymKey, key_of
from pipeline.prepare.bulk import bulk_chunks
from pipeline.prepare.funnel import PreparedChunk, chunked, prepare_chunk, prepare_in_pool
from pipeline.prepare.tables import prepare_table
from pipeline.settings import Settings
from pipeline.sources.bulk import BATCH_BYTES, is_bulk_file
from pipeline.sources.files import (
    INPUT_SUFFIXES,
    InputError,
    RawDocument,
    discover_files,
    fingerprint,
    is_table,
    open_table,
    read_documents,
)
from pipeline.store.db import open_store
from pipeline.store.load import (
    LoadResult,
    OnLoadProgress,
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
# DuckDB caches up to 80 % of the machine's memory by default; a load needs far less.
STORE_MEMORY_LIMIT = "384MB"
# Rows (cases and events) an ingest stores per transaction: DuckDB keeps a transaction's new
# rows in memory, about 200 bytes each, until it commits.
COMMIT_ROWS = 500_000


def discover_inputs(paths: Iterable[Path]) -> list[Path]:
    """The input files under the given paths; a missing path, or none found, is an error."""
    paths = list(paths)
    found = discover_files(paths)
    if not found:
        raise InputError(
            f"no input files under {', '.join(str(p) for p in paths)}: ingest reads "
            f"{', '.join(sorted(INPUT_SUFFIXES))} files (a folder is searched with its subfolders)"
        )
    return found


def as_of_moment(as_of: date | None, today: date | None = None) -> datetime | None:
    """The moment --as-of stands for; a date in the future is refused."""
    if as_of is None:
        return None
    if as_of > (today or date.today()):
        raise InputError(f"--as-of {as_of} is in the future: give the day the file was last brought up to date")
    return datetime.combine(as_of, time())


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
    *,
    as_of: date | None = None,
    columns: dict[str, str | None] | None = None,
    bulk: bool = True,
    commit_rows: int = COMMIT_ROWS,
    on_progress: OnLoadProgress | None = None,
) -> LoadResult:
    """Parse, anonymize, validate and store every document and table row of `files`, in
    transactions of about `commit_rows` stored rows (whole chunks; see `load_chunks`).

    JSON-lines files are prepared in bulk unless `bulk` is false. Large JSON inputs of the
    per-document path are prepared by `workers` processes (default: one per core) while this
    process loads the finished chunks, in input order, inside the one transaction. Tables are
    streamed, `chunk_size` rows at a time.
    """
    moment = as_of_moment(as_of)
    tables = [f for f in files if is_table(f)]
    lines_files = [f for f in files if bulk and is_bulk_file(f)]
    taken = set(tables) | set(lines_files)
    documents_files = [f for f in files if f not in taken]
    if workers is None:
        large = sum(_size(f) for f in documents_files) >= PARALLEL_MIN_BYTES
        workers = available_cores() if large else 1
    bulk_large = sum(_size(f) for f in lines_files) >= BATCH_BYTES
    bulk_workers = available_cores() if bulk_large else 1
    numbers = {f: n for n, f in enumerate(files, start=1)}  # one numbering for every reader
    documents: Iterable[RawDocument] = (
        read_documents(documents_files, numbers) if documents_files else ())
    if moment is not None:
        documents = (replace(d, observed_at=moment) for d in documents)

    def chunks(key: PseudonymKey, started: datetime) -> Iterator[PreparedChunk]:
        yield from _prepared_chunks(documents, key, started, workers, chunk_size)
        yield from bulk_chunks(lines_files, key, started, chunk_size, observed_at=moment,
                               numbers=numbers, workers=bulk_workers)
        yield from table_chunks(tables, key, as_of=moment, columns=columns, chunk_size=chunk_size)

    # while workers keep every core busy preparing, the store works in one thread: its second
    # thread only competed with them (a 1M-history ingest used 4% less CPU, 4% less time)
    busy = bulk_workers > 1 or workers > 1
    return _store_chunks(settings, chunks, flow, commit_rows, on_progress,
                         store_threads=1 if busy else None)


def table_chunks(
    tables: Iterable[Path],
    key: PseudonymKey,
    *,
    as_of: datetime | None = None,
    columns: dict[str, str | None] | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[PreparedChunk]:
    """Stream the rows of CSV/TSV tables as prepared chunks; an unreadable file is a refusal."""
    for number, path in enumerate(tables, start=1):
        origin = f"table {number}"  # opaque: never the file's name (it may hold a person's)
        try:
            observed = as_of or datetime.fromtimestamp(path.stat().st_mtime)
            with open_table(path) as handle:
                yield from prepare_table(handle, origin, key, observed,
                                         overrides=columns, chunk_size=chunk_size)
        except OSError as error:
            reason = f"the file could not be read ({error.strerror or error})"
            chunk = PreparedChunk.empty()
            chunk.rows_per_case = {}
            chunk.rejections.append(Rejection(
                origin, (reason,), fingerprint(f"{origin}\0{reason}".encode(), key.secret)))
            yield chunk


def ingest_documents(
    settings: Settings,
    documents: Iterable[RawDocument],
    flow: str = "ingest",
    workers: int = 1,
    chunk_size: int = CHUNK_SIZE,
    commit_rows: int = COMMIT_ROWS,
    on_progress: OnLoadProgress | None = None,
) -> LoadResult:
    """Store documents from any source, committing every `commit_rows` stored rows: a load
    that fails keeps the whole chunks it committed, and says so in its run's row."""

    def chunks(key: PseudonymKey, started: datetime) -> Iterator[PreparedChunk]:
        return _prepared_chunks(documents, key, started, workers, chunk_size)

    return _store_chunks(settings, chunks, flow, commit_rows, on_progress)


def _store_chunks(
    settings: Settings,
    make_chunks: Callable[[PseudonymKey, datetime], Iterator[PreparedChunk]],
    flow: str,
    commit_rows: int,
    on_progress: OnLoadProgress | None = None,
    store_threads: int | None = None,
) -> LoadResult:
    settings.ensure_home()
    key = key_of(settings)
    started = datetime.now()
    # the first chunk is prepared while the store opens (and waits, if another flow holds it)
    with _FirstAhead(make_chunks(key, started)) as prepared, open_store(settings.database_path) as con:
        con.execute(f"SET memory_limit = '{STORE_MEMORY_LIMIT}'")
        if store_threads is not None:
            con.execute(f"SET threads = {int(store_threads)}")
        run_id = next_run_id(con)
        try:
            return _load_chunks(con, prepared, run_id=run_id, flow=flow, started_at=started,
                                commit_rows=commit_rows, on_progress=on_progress)
        except Exception as error:
            record_failed_run(con, run_id, flow, started, f"{type(error).__name__}: {error}")
            raise


class _FirstAhead:
    """Chunks whose first one is being prepared, in a thread, from the moment this is made.

    Leaving the block (the store could not be opened, the load failed or was stopped) waits
    for that first chunk, then closes the chunks: their workers stop and nothing leaks."""

    _END = object()

    def __init__(self, chunks: Iterator[PreparedChunk]) -> None:
        self._chunks = _closing_generator(chunks)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="first-chunk")
        self._first = self._thread.submit(next, self._chunks, self._END)

    def __enter__(self) -> Iterator[PreparedChunk]:
        return self._iterate()

    def _iterate(self) -> Iterator[PreparedChunk]:
        first = self._first.result()
        if first is self._END:
            return
        assert isinstance(first, PreparedChunk)
        yield first
        yield from self._chunks

    def __exit__(self, *exc: object) -> None:
        self._thread.shutdown(wait=True)
        self._chunks.close()


def _closing_generator(chunks: Iterator[PreparedChunk]) -> Generator[PreparedChunk, None, None]:
    yield from chunks


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
    settings: Settings,
    paths: Iterable[Path],
    chunk_size: int = CHUNK_SIZE,
    *,
    as_of: date | None = None,
    columns: dict[str, str | None] | None = None,
    on_progress: OnLoadProgress | None = None,
) -> LoadResult:
    """The ingest job: discover, load, publish."""
    result = ingest_files(settings, discover_inputs(paths), chunk_size=chunk_size,
                          as_of=as_of, columns=columns, on_progress=on_progress)
    publish(settings)
    return result
