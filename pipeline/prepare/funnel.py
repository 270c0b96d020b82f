"""The steps between raw documents and storable rows: parse, anonymize, validate.

Each step is a plain function so a Prefect task can wrap it and a test can call it.
Nothing here touches the database; `pipeline.store.load` does that in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl

from pipeline.model import CaseRecord, ParsedCase, Rejection
from pipeline.parse import ParseError, parse_document
from pipeline.parse.redact import redact_for_storage
from pipeline.prepare.anonymize import PseudonymKey, anonymize_case
from pipeline.prepare.child_processes import exit_with_parent
from pipeline.prepare.merge import merge_by_id, merge_parsed
from pipeline.prepare.validate import ValidatedBatch, to_frames, validate_frames
from pipeline.receipts import InvalidReceiptError
from pipeline.sources.files import RawDocument, decode, fingerprint


@dataclass
class ParsedBatch:
    """Cases read from documents, and the documents that could not be read."""

    cases: list[tuple[str, ParsedCase]] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    n_documents: int = 0


def parse_documents(documents: Iterable[RawDocument], key: PseudonymKey) -> ParsedBatch:
    """Decode and parse every document; unreadable ones become rejections with a reason."""
    batch = ParsedBatch()
    for document in documents:
        batch.n_documents += 1
        try:
            for case in merge_parsed(parse_document(decode(document))):
                if case.observed_at is None:
                    case.observed_at = document.observed_at
                batch.cases.append((document.origin, case))
        except (ParseError, InvalidReceiptError, ValueError) as error:
            batch.rejections.append(
                Rejection(
                    origin=document.origin,
                    reasons=(redact_for_storage(str(error)),),
                    fingerprint=fingerprint(document.origin.encode() + b"\0" + document.content, key.secret),
                )
            )
    return batch


def attempt_of(record: CaseRecord) -> dict[str, object]:
    """The anonymized view of a record, as kept in quarantine."""
    return {
        "form_type": record.form_type,
        "intake_office": record.intake_office,
        "current_office": record.current_office,
        "received_date": _iso(record.received_date),
        "category": record.category,
        "processing": record.processing,
        "events": [
            {"date": e.event_date.isoformat(), "stage": e.stage, "title": e.title}
            for e in record.events
        ],
    }


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def record_rejection(origin: str, record: CaseRecord, reasons: Iterable[str]) -> Rejection:
    """A rejection for an anonymized record, fingerprinted by its content."""
    attempt = attempt_of(record)
    reasons = tuple(reasons)
    digest = hashlib.sha256(
        json.dumps([record.case_id, attempt, reasons], sort_keys=True).encode()
    ).hexdigest()[:40]
    return Rejection(origin, reasons, digest, record.case_id, attempt)


@dataclass
class AnonymizedBatch:
    """Records keyed by pseudonym (duplicates merged), and the ones that conflicted."""

    records: list[CaseRecord]
    origins: dict[str, str]
    rejections: list[Rejection]


def anonymize_cases(
    cases: Iterable[tuple[str, ParsedCase]], key: PseudonymKey, observed_at: datetime
) -> AnonymizedBatch:
    """Pseudonymize and merge cases that share a receipt (pipeline.prepare.merge); conflicting
    views (form type, category) are rejected as a whole."""
    records = [(origin, anonymize_case(case, key, observed_at)) for origin, case in cases]
    first_of = {r.case_id: r for _, r in reversed(records)}
    merged, conflicts = merge_by_id(records)
    rejections = [
        record_rejection(origins[0], first_of[case_id],
                         [f"the same case was submitted with {problem}"])
        for case_id, (problem, origins) in conflicts.items()
    ]
    return AnonymizedBatch(
        [record for _, record in merged.values()],
        {case_id: origin for case_id, (origin, _) in merged.items()},
        rejections,
    )


@dataclass
class CheckedBatch:
    """Rows ready to store and the records that failed validation."""

    cases: pl.DataFrame
    events: pl.DataFrame
    rejections: list[Rejection]


def validate_records(
    batch: AnonymizedBatch, today: date | None = None
) -> CheckedBatch:
    """Validate anonymized records with the pandera schemas; failures carry every reason."""
    cases, events = to_frames(batch.records)
    checked: ValidatedBatch = validate_frames(cases, events, today)
    by_id = {r.case_id: r for r in batch.records}
    rejections = [
        record_rejection(batch.origins[case_id], by_id[case_id], reasons)
        for case_id, reasons in checked.reasons.items()
    ]
    return CheckedBatch(checked.cases, checked.events, rejections)


@dataclass
class PreparedChunk:
    """One chunk of documents (or table rows) turned into storable rows plus its rejections.

    For table rows, `rows_per_case` counts the rows behind each case id and `n_refused_rows`
    / `n_blank_rows` the rows that could not be read / were empty, so that the load can say
    what became of every row.
    """

    cases: pl.DataFrame
    events: pl.DataFrame
    rejections: list[Rejection]
    origins: Mapping[str, str]  # case id -> where it came from, for its rejections
    n_documents: int
    rows_per_case: dict[str, int] | None = None
    n_refused_rows: int = 0
    n_blank_rows: int = 0

    @classmethod
    def empty(cls) -> PreparedChunk:
        """A chunk with nothing to store."""
        cases, events = to_frames([])
        return cls(cases, events, [], {}, 0)


def prepare_chunk(
    documents: Iterable[RawDocument], key: PseudonymKey, now: datetime, today: date | None = None
) -> PreparedChunk:
    """Parse, anonymize and validate one chunk of documents."""
    parsed = parse_documents(documents, key)
    anonymized = anonymize_cases(parsed.cases, key, now)
    checked = validate_records(anonymized, today)
    return PreparedChunk(
        cases=checked.cases,
        events=checked.events,
        rejections=[*parsed.rejections, *anonymized.rejections, *checked.rejections],
        origins=anonymized.origins,
        n_documents=parsed.n_documents,
    )


def chunked(documents: Iterable[RawDocument], size: int) -> Iterable[list[RawDocument]]:
    """Split a stream of documents into lists of at most `size`."""
    batch: list[RawDocument] = []
    for document in documents:
        batch.append(document)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def prepare_in_pool(
    batches: Iterable[list[RawDocument]], key: PseudonymKey, now: datetime, workers: int
) -> Iterator[PreparedChunk]:
    """Prepare batches in a pool of processes, yielding chunks in input order.

    At most `workers + 1` chunks are in flight, so memory stays bounded however large the
    input. The pool uses fresh (spawned) processes: forking a process that holds a DuckDB
    connection and polars' thread pool can deadlock the child.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context,
        initializer=exit_with_parent, initargs=(os.getpid(),),
    ) as pool:
        pending: deque[Future[PreparedChunk]] = deque()
        try:
            for batch in batches:
                pending.append(pool.submit(_prepare_columns, _columns(batch), key, now))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


_DocumentColumns = tuple[list[str], list[bytes], list[datetime], list[str | None]]


def _columns(batch: list[RawDocument]) -> _DocumentColumns:
    # plain lists pickle several times faster than thousands of small dataclasses
    return (
        [d.origin for d in batch],
        [d.content for d in batch],
        [d.observed_at for d in batch],
        [d.read_error for d in batch],
    )


def _prepare_columns(columns: _DocumentColumns, key: PseudonymKey, now: datetime) -> PreparedChunk:
    documents = [RawDocument(*fields) for fields in zip(*columns, strict=True)]
    return prepare_chunk(documents, key, now)
