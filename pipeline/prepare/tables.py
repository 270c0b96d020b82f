"""Tables of timelines (CSV/TSV, one row per case) turned into storable chunks, streamed.

Each row is accounted for: it is stored (as its own case, or merged into a case another row
of the same receipt or reference describes), quarantined with the reasons its case failed
the checks, or refused with the reason it could not be read. Blank rows are counted apart.
Only `chunk_size` rows are in memory at a time, plus one small digest per identical-timeline
group (so that two identical rows without a receipt stay two cases).
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import date, datetime

from pipeline.model import CaseRecord, Rejection
from pipeline.parse.csv_import import TableRow, iter_rows
from pipeline.parse.errors import ParseError
from pipeline.parse.redact import redact_for_storage
from pipeline.parse.typed_form import TypedTimeline
from pipeline.prepare.anonymize import PseudonymKey
from pipeline.prepare.funnel import (
    AnonymizedBatch,
    PreparedChunk,
    record_rejection,
    validate_records,
)
from pipeline.prepare.merge import merge_by_id
from pipeline.prepare.records import timeline_record
from pipeline.sources.files import fingerprint


def prepare_table(
    lines: Iterable[str],
    origin: str,
    key: PseudonymKey,
    observed_at: datetime,
    *,
    overrides: dict[str, str | None] | None = None,
    chunk_size: int = 20_000,
    today: date | None = None,
) -> Iterator[PreparedChunk]:
    """Stream a table's rows as prepared chunks; a table that cannot be read is one refusal.

    `observed_at` dates rows without a last_checked of their own (ingest's --as-of, else
    when the file was written).
    """
    stream = iter(lines)
    occurrences: Counter[bytes] = Counter()
    batch: list[TableRow] = []
    last_row = 0
    try:
        for row in iter_rows(stream, overrides):
            last_row = row.number
            batch.append(row)
            if len(batch) >= chunk_size:
                yield prepare_rows(batch, origin, key, observed_at, occurrences, today)
                batch = []
    except (ParseError, csv.Error) as error:
        if batch:
            yield prepare_rows(batch, origin, key, observed_at, occurrences, today)
        yield _refused_rest(stream, origin, key, error, last_row)
        return
    if batch:
        yield prepare_rows(batch, origin, key, observed_at, occurrences, today)


def _refused_rest(
    stream: Iterator[str], origin: str, key: PseudonymKey, error: Exception, last_row: int
) -> PreparedChunk:
    # the rows after the header, or the row that failed and those after it
    rest = sum(1 for line in stream if line.strip()) + (1 if last_row else 0)
    where = f"from row {last_row + 1} on, " if last_row else ""
    message = str(error) if isinstance(error, ParseError) else f"the file is damaged ({error})"
    reason = redact_for_storage(
        f"{where}{message}; {rest} line{'s' if rest != 1 else ''} of this file were not read"
    )
    rejection = Rejection(origin, (reason,), fingerprint(f"{origin}\0{reason}".encode(), key.secret))
    empty = PreparedChunk.empty()
    empty.rejections.append(rejection)
    empty.n_documents = rest
    empty.rows_per_case = {}
    empty.n_refused_rows = rest
    return empty


def _identity(timeline: TypedTimeline) -> bytes | None:
    if timeline.receipt_number is not None or timeline.case_ref is not None:
        return None
    text = repr((timeline.form_type, timeline.intake_office, timeline.received_date, timeline.events))
    return hashlib.blake2b(text.encode(), digest_size=12).digest()


def prepare_rows(
    rows: list[TableRow],
    origin: str,
    key: PseudonymKey,
    observed_at: datetime,
    occurrences: Counter[bytes],
    today: date | None = None,
) -> PreparedChunk:
    """Anonymize, merge and validate one chunk of rows; count what became of each row."""
    labelled: list[tuple[str, CaseRecord]] = []
    rows_of: Counter[str] = Counter()
    rejections: list[Rejection] = []
    refused = blank = 0
    for row in rows:
        where = f"{origin}:row {row.number}"
        if row.timeline is None:
            if row.error is None:
                blank += 1
                continue
            refused += 1
            rejections.append(Rejection(
                where, (redact_for_storage(row.error),),
                fingerprint(f"{origin}\0{row.text}".encode(), key.secret),
            ))
            continue
        identity = _identity(row.timeline)
        occurrence = 0
        if identity is not None:
            occurrence = occurrences[identity]
            occurrences[identity] += 1
        record = timeline_record(row.timeline, key, observed_at, occurrence)
        labelled.append((where, record))
        rows_of[record.case_id] += 1
    first_of = {r.case_id: r for _, r in reversed(labelled)}
    merged, conflicts = merge_by_id(labelled)
    conflicting = [
        record_rejection(labels[0], first_of[case_id],
                         [f"rows {', '.join(labels)} are the same case but give {problem}"])
        for case_id, (problem, labels) in conflicts.items()
    ]
    anonymized = AnonymizedBatch(
        [record for _, record in merged.values()],
        {case_id: label for case_id, (label, _) in merged.items()},
        conflicting,
    )
    checked = validate_records(anonymized, today)
    return PreparedChunk(
        cases=checked.cases,
        events=checked.events,
        rejections=[*rejections, *conflicting, *checked.rejections],
        origins=anonymized.origins,
        n_documents=len(rows) - blank,
        rows_per_case=dict(rows_of),
        n_refused_rows=refused,
        n_blank_rows=blank,
    )
