"""The prepare step for bulk JSON lines, in DuckDB: the same funnel as prepare_chunk, faster.

A batch of lines (pipeline.sources.bulk) is parsed, unnested and turned into case and event
rows in SQL (pipeline.prepare.bulk_sql). What needs our rules rather than SQL is computed in
Python once per distinct value, with the very functions the parsers use: stage and title of
each distinct status text (`classify`), dates (`parse_datetime`), form types
(`normalize_form_type`), offices (`office_of`), yes/no flags (`parse_bool`). Pseudonyms are the same keyed HMAC as
`pseudonymize`, computed in SQL from the key's inner and outer pads (RFC 2104). The rows are
then validated by the same pandera schemas (`validate_frames`), and their rejections are made
by the same `record_rejection`.

A line the SQL cannot vouch for is odd and is handed back as a RawDocument for the
per-document path, so every line is stored, rejected with the usual reason, or both paths
agree on it; `tests/prepare/test_bulk.py` checks that both store identical tables.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from queue import Queue

import duckdb
import polars as pl

from pipeline.model import CaseRecord, Rejection, StatusEvent
from pipeline.parse.errors import ParseError
from pipeline.parse.fields import normalize_form_type, parse_bool, parse_datetime
from pipeline.prepare import bulk_sql
from pipeline.prepare.anonymize import PseudonymKey
from pipeline.prepare.funnel import PreparedChunk, prepare_chunk, record_rejection
from pipeline.prepare.validate import (
    ANCHOR_COLUMNS,
    CASE_COLUMNS,
    EVENT_COLUMNS,
    FIRST_OF,
    load_pandera_soon,
    validate_frames,
)
from pipeline.receipts import OFFICE_ALIASES, office_of
from pipeline.sources.bulk import BATCH_BYTES, LineBatch, LineFile, line_batches
from pipeline.sources.files import RawDocument
from pipeline.stages import GENERIC_TITLES, STAGE_ORDER, classify, event_order

MEMORY_LIMIT = "256MB"
_ANCHORED_EVENT_COLUMNS = {**EVENT_COLUMNS, **{name: pl.Date for name in ANCHOR_COLUMNS}}
_BATCH_TABLES = ("docs", "bad_keys", "history", "ok", "all_events")


@dataclass
class BulkPrepared:
    """What the bulk path made of a batch, and the documents it leaves to the per-document path."""

    chunk: PreparedChunk
    odd: list[RawDocument]


def hmac_pads(key: PseudonymKey) -> tuple[bytes, bytes]:
    """The inner and outer pads of HMAC-SHA256 under this key (RFC 2104)."""
    secret = key.secret
    if len(secret) > 64:
        secret = hashlib.sha256(secret).digest()
    block = secret.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


class BulkPreparer:
    """One in-memory DuckDB (a compute engine, not the store) that prepares batch after batch."""

    def __init__(self, key: PseudonymKey, now: datetime, today: date | None = None,
                 threads: int | None = None) -> None:
        self.key = key
        self.now = now
        self.today = today
        self.con = duckdb.connect()
        self.con.execute("SET enable_progress_bar = false")
        # one batch at a time lives here; the store and the batch's own bytes need the rest
        self.con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        self.con.execute("SET preserve_insertion_order = false")
        if threads is not None:
            self.con.execute(f"SET threads = {int(threads)}")
        self.con.execute(bulk_sql.MACROS)
        intake = pl.DataFrame({"prefix": [k for k in OFFICE_ALIASES if len(k) == 3],
                               "office": [v for k, v in OFFICE_ALIASES.items() if len(k) == 3]})
        _replace(self.con, "intake_offices", intake)
        _replace(self.con, "stage_rank", pl.DataFrame(
            {"stage": list(STAGE_ORDER), "rank": list(STAGE_ORDER.values())},
            schema={"stage": pl.Utf8, "rank": pl.Int32}))

    def close(self) -> None:
        """Release the in-memory database."""
        self.con.close()

    def prepare(self, batch: LineBatch) -> BulkPrepared:
        """Prepare the lines of one batch; odd lines come back for the per-document path."""
        con = self.con
        files = pl.DataFrame(
            {"file": list(range(len(batch.files))),
             "name": [f.name for f in batch.files],
             "unit": [f.unit for f in batch.files],
             "observed_at": [f.observed_at for f in batch.files]},
            schema={"file": pl.Int32, "name": pl.Utf8, "unit": pl.Utf8, "observed_at": pl.Datetime("us")},
        )
        lines = batch.lines
        # JSON DuckDB reads but orjson refuses (polars' regex engine is the fastest to hand);
        # DuckDB reads the lines' Arrow table itself, not a copy of it made by polars
        text = pl.from_arrow(lines.column("text"))
        assert isinstance(text, pl.Series)
        lines = lines.append_column("lenient", text.str.contains(bulk_sql.LENIENT_JSON).to_arrow())
        del text
        con.register("lines", lines)
        con.register("files", files)
        try:
            con.execute(bulk_sql.render(bulk_sql.DOCS, shape=bulk_sql.SHAPE))
            con.execute(bulk_sql.BAD_KEYS)
            if con.execute("SELECT count(*) FROM bad_keys").fetchall() != [(0,)]:
                con.execute(bulk_sql.KEYS_ODD)
            con.execute(bulk_sql.HISTORY)
            self._lookups()
            year = (self.today or date.today()).year  # two digits above next year are 19xx
            inner, outer = hmac_pads(self.key)
            con.execute(bulk_sql.render(
                bulk_sql.OK, on_date=bulk_sql.ON_DATE, any_date=bulk_sql.ANY_DATE,
                safe=bulk_sql.SAFE_TEXT, max_year=year + 1), [outer, inner])
            con.execute(bulk_sql.render(bulk_sql.ALL_EVENTS, received_title=GENERIC_TITLES["received"]))
            taken = con.sql(_CASES_OUT).pl()
            events = _frame(con.sql(_EVENTS_OUT).pl(), _ANCHORED_EVENT_COLUMNS)
            # every line was taken, or some are odd
            odd_rows = con.sql(_ODD).pl() if taken.height < batch.n_lines else None
        finally:
            con.unregister("lines")
            con.unregister("files")
            for table in _BATCH_TABLES:
                con.execute(f"DROP TABLE IF EXISTS {table}")
        cases = _frame(taken, CASE_COLUMNS)
        origins = LineOrigins(taken.select("case_id", "file", "line"), batch.files)
        odd = list(batch.odd) + (_documents(batch, odd_rows) if odd_rows is not None else [])
        checked = validate_frames(cases, events, self.today, anchored=True)
        rejections = _rejections(cases, events, checked.reasons, origins)
        chunk = PreparedChunk(checked.cases, checked.events, rejections, origins, n_documents=cases.height)
        return BulkPrepared(chunk, odd)

    def _lookups(self) -> None:
        """Our rules, once per distinct value: status texts, form types, offices, flags."""
        con = self.con
        texts = [row[0] for row in con.execute(bulk_sql.DISTINCT_TEXTS).fetchall()]
        classified = [classify(t) for t in texts]
        odd_text = pl.Series(texts, dtype=pl.Utf8).str.contains("^" + bulk_sql.NOT_A_STRING + "$")
        _replace(con, "titles", pl.DataFrame(
            {"raw": texts, "title": [c[0] for c in classified], "stage": [c[1] for c in classified],
             "odd": odd_text}, schema={"raw": pl.Utf8, "title": pl.Utf8, "stage": pl.Utf8, "odd": pl.Boolean}))
        forms_raw = [row[0] for row in con.execute(bulk_sql.DISTINCT_FORMS).fetchall()]
        forms: list[str | None] = []
        for raw in forms_raw:
            try:
                forms.append(normalize_form_type(raw))
            except ParseError:
                forms.append("?")  # the parser refuses it: the document is odd
        _replace(con, "forms", pl.DataFrame({"raw": forms_raw, "form": forms},
                                            schema={"raw": pl.Utf8, "form": pl.Utf8}))
        offices_raw = [row[0] for row in con.execute(bulk_sql.DISTINCT_OFFICES).fetchall()]
        _replace(con, "offices", pl.DataFrame({"raw": offices_raw, "office": [office_of(o) for o in offices_raw]},
                                              schema={"raw": pl.Utf8, "office": pl.Utf8}))
        stamps_raw = [row[0] for row in con.execute(bulk_sql.DISTINCT_STAMPS).fetchall()]
        stamps: list[datetime | None] = []
        odd_stamps: list[bool] = []
        for raw in stamps_raw:
            try:
                stamps.append(parse_datetime(raw))
                odd_stamps.append(False)
            except ParseError:
                stamps.append(None)
                odd_stamps.append(True)
        _replace(con, "stamps", pl.DataFrame(
            {"raw": stamps_raw, "ts": stamps, "odd": odd_stamps},
            schema={"raw": pl.Utf8, "ts": pl.Datetime("us"), "odd": pl.Boolean}))
        flags_raw = [row[0] for row in con.execute(bulk_sql.DISTINCT_PREMIUM).fetchall()]
        _replace(con, "flags", pl.DataFrame({"raw": flags_raw, "value": [parse_bool(f) for f in flags_raw]},
                                            schema={"raw": pl.Utf8, "value": pl.Boolean}))


def _replace(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> None:
    con.register(f"{name}_frame", frame)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_frame")
    finally:
        con.unregister(f"{name}_frame")


def _frame(frame: pl.DataFrame, schema: dict[str, pl.DataType | type[pl.DataType]]) -> pl.DataFrame:
    return frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])


# the case attributes of issue 11 as anonymize_case and to_frames make them for these shapes:
# no category or tracked_since in them, last_checked = CaseRecord.checked_on
_CASES_OUT = """
SELECT case_id, file, line, source, form AS form_type, intake_office, current_office,
       fiscal_year, received_date, premium, observed_at, last_modified, synthetic,
       NULL::VARCHAR AS category, CASE WHEN premium THEN 'premium' ELSE 'regular' END AS processing,
       NULL::DATE AS tracked_since, greatest(observed_at::DATE, latest) AS last_checked,
       false AS received_estimated
FROM ok ORDER BY file, line  -- in the files' order, as the per-document path has them
"""
# each event with the dates validate_frames checks it against (its case's receipt, and the
# first of some stages), made here from whole numbers rather than in polars from pseudonyms
_EVENTS_OUT = """
WITH firsts AS (
  SELECT file, line, {firsts} FROM all_events GROUP BY file, line
)
SELECT case_id, e.event_date, e.stage, e.title, ok.source, ok.received_date, firsts.* EXCLUDE (file, line)
FROM ok JOIN all_events e USING (file, line) JOIN firsts USING (file, line)
""".format(firsts=", ".join(f"min(event_date) FILTER (WHERE stage = {bulk_sql.literal(stage)}) AS {name}"
                            for name, stage in FIRST_OF.items()))
_ODD = "SELECT file, line, text FROM lines ANTI JOIN ok USING (file, line) ORDER BY file, line"


class LineOrigins(Mapping[str, str]):
    """Where each case of a batch came from ("file N line M"), made only when asked: only a
    rejection says it, and most batches have none."""

    def __init__(self, lines: pl.DataFrame, files: list[LineFile]) -> None:
        self._lines = lines  # case_id, file (index into files), line
        self._files = files

    @cached_property
    def _origins(self) -> dict[str, str]:
        return {case_id: _origin(self._files[f], n) for case_id, f, n in self._lines.iter_rows()}

    def __getitem__(self, case_id: str) -> str:
        return self._origins[case_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._origins)

    def __len__(self) -> int:
        return self._lines.height


def _origin(file: LineFile, number: int) -> str:
    """Where a line came from, as the per-document reader says it: "file N line M"."""
    return f"{file.name} {file.unit} {number}"


def _documents(batch: LineBatch, rows: pl.DataFrame) -> list[RawDocument]:
    """The odd lines as the RawDocuments the per-document reader would have made of them."""
    files = batch.files
    return [
        RawDocument(_origin(files[f], n), t.encode(), files[f].observed_at)
        for f, n, t in zip(rows["file"].to_list(), rows["line"].to_list(),
                           rows["text"].to_list(), strict=True)
    ]


def _rejections(cases: pl.DataFrame, events: pl.DataFrame, reasons: dict[str, list[str]],
                origins: Mapping[str, str]) -> list[Rejection]:
    """Rejections of the records validation refused, made exactly as prepare_chunk makes them."""
    if not reasons:
        return []
    wanted = pl.DataFrame({"case_id": list(reasons)}, schema={"case_id": pl.Utf8})
    by_case: dict[str, list[StatusEvent]] = {}
    for row in events.join(wanted, on="case_id").iter_rows(named=True):
        by_case.setdefault(row["case_id"], []).append(
            StatusEvent(row["event_date"], row["title"], row["stage"]))
    rejections = []
    for row in cases.join(wanted, on="case_id").drop("processing", "last_checked").iter_rows(named=True):
        record = CaseRecord(**row, events=sorted(set(by_case.get(row["case_id"], [])),
                                                  key=lambda e: event_order(e.event_date, e.stage)))
        rejections.append(record_rejection(origins[record.case_id], record, reasons[record.case_id]))
    return rejections


def bulk_chunks(files: list[Path], key: PseudonymKey, now: datetime, chunk_size: int,
                today: date | None = None, batch_bytes: int = BATCH_BYTES,
                observed_at: datetime | None = None,
                numbers: Mapping[Path, int] | None = None,
                workers: int = 1) -> Iterator[PreparedChunk]:
    """Prepared chunks of JSON-lines files: bulk where it can, per document where it cannot.

    Batches follow the files' order, and within a batch the odd lines are prepared after the
    rest, by `prepare_chunk`, in chunks of `chunk_size`. `observed_at` (ingest --as-of)
    replaces the files' times, as it does for the per-document path. With `workers` above
    one, that many threads prepare batches side by side, each in its own in-memory DuckDB
    (DuckDB and polars let go of the interpreter lock while they work); the chunks still
    come out in the files' order, and at most `workers + 1` batches are in hand at once.
    """
    if not files:
        return
    load_pandera_soon()
    workers = max(1, workers)
    preparers: Queue[BulkPreparer] = Queue()
    for _ in range(workers):
        preparers.put(BulkPreparer(key, now, today, threads=1 if workers > 1 else None))

    def prepare(batch: LineBatch) -> BulkPrepared:
        preparer = preparers.get()
        try:
            return preparer.prepare(batch)
        finally:
            preparers.put(preparer)

    batches = line_batches(files, batch_bytes, observed_at=observed_at, numbers=numbers)
    if workers > 1:
        batches = _read_ahead(batches)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bulk-prepare")
    pending: deque[Future[BulkPrepared]] = deque()
    try:
        for batch in batches:
            pending.append(pool.submit(prepare, batch))
            del batch
            while len(pending) > workers:
                yield from _chunks_of(pending.popleft().result(), key, now, today, chunk_size)
        while pending:
            yield from _chunks_of(pending.popleft().result(), key, now, today, chunk_size)
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)
        while not preparers.empty():
            preparers.get().close()


def _read_ahead(batches: Iterator[LineBatch]) -> Iterator[LineBatch]:
    """The same batches, read one ahead by a thread of their own (reading and splitting a
    file's blocks then overlaps with storing the chunks before them)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-read") as reader:
        ahead = reader.submit(next, batches, None)
        try:
            while (batch := ahead.result()) is not None:
                ahead = reader.submit(next, batches, None)
                yield batch
        finally:
            ahead.cancel()


def _chunks_of(prepared: BulkPrepared, key: PseudonymKey, now: datetime, today: date | None,
               chunk_size: int) -> Iterator[PreparedChunk]:
    yield prepared.chunk
    for start in range(0, len(prepared.odd), chunk_size):
        yield prepare_chunk(prepared.odd[start:start + chunk_size], key, now, today)
