"""Loading prepared rows into DuckDB: in transactions of whole chunks, idempotent.

Loading the same submissions again changes nothing: events are keyed by (case, date,
stage), cases are merged (first/last seen widened, sources unioned), and quarantine rows
are keyed by a fingerprint of their input. A failure rolls back the transaction it is in;
a large load commits every so many rows (`load_chunks`), so a re-run finishes what a stopped
one began.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import polars as pl

from pipeline.model import Rejection
from pipeline.prepare.funnel import PreparedChunk
from pipeline.store.db import first_row, query_frame
from pipeline.store.stored_cases import StoredCases

KEEP_REJECTIONS = 1_000

# Told how far a load has gone: what it stored so far, and how many of those cases are
# committed (kept even if the load stops now).
OnLoadProgress = Callable[["LoadResult", int], None]


@dataclass
class LoadResult:
    """What one load read and changed."""

    run_id: int
    n_read: int = 0
    n_stored: int = 0
    n_new_cases: int = 0
    n_new_events: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    # table rows (CSV/TSV): rows_read == rows_stored + rows_quarantined + rows_refused
    rows_read: int = 0
    rows_stored: int = 0
    rows_quarantined: int = 0
    rows_refused: int = 0
    rows_blank: int = 0

    n_rejections: int = 0  # all of them; `rejections` keeps the first KEEP_REJECTIONS to show

    @property
    def n_rejected(self) -> int:
        """How many records went to quarantine."""
        return max(self.n_rejections, len(self.rejections))


def next_run_id(con: duckdb.DuckDBPyConnection) -> int:
    """Reserve a run id (the run's row is written with its load)."""
    row = first_row(con.execute("SELECT nextval('run_id_seq')"))
    assert row is not None
    return int(row[0])


def record_failed_run(
    con: duckdb.DuckDBPyConnection, run_id: int, flow: str, started_at: datetime, message: str
) -> None:
    """Record that a run failed, in its own small transaction, so the health page shows it.

    A run that had committed part of its rows keeps its counts, and its message says so."""
    before = first_row(con.execute(
        "SELECT n_stored FROM ingest_runs WHERE run_id = ? AND status = 'partial'", [run_id]))
    if before is not None:
        message = f"{message}; {PARTIAL_KEPT.format(n=before[0])}"
    con.execute(
        "INSERT INTO ingest_runs (run_id, flow, started_at, finished_at, status, message)"
        " VALUES (?, ?, ?, now()::TIMESTAMP, 'failed', ?) ON CONFLICT (run_id) DO UPDATE SET"
        " finished_at = excluded.finished_at, status = 'failed', message = excluded.message",
        [run_id, flow, started_at, message[:1000]],
    )


def record_run(
    con: duckdb.DuckDBPyConnection, run_id: int, flow: str, started_at: datetime,
    result: LoadResult, message: str | None = None, status: str = "ok",
) -> None:
    """Write the row of a run that stored `result` (inside the caller's transaction): 'ok',
    or 'partial' while a load that commits as it goes is under way."""
    con.execute(
        "INSERT OR REPLACE INTO ingest_runs VALUES (?, ?, ?, now()::TIMESTAMP, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, flow, started_at, status, result.n_read, result.n_stored, result.n_rejected,
         result.n_new_cases, result.n_new_events, message],
    )


def load_chunks(
    con: duckdb.DuckDBPyConnection,
    chunks: Iterable[PreparedChunk],
    *,
    run_id: int,
    flow: str,
    started_at: datetime,
    commit_rows: int | None = None,
    on_progress: OnLoadProgress | None = None,
) -> LoadResult:
    """Store every chunk and record the run: in one transaction, or in several of about
    `commit_rows` stored rows (cases and events) each. `on_progress` hears how far it has
    gone each time a chunk after the first arrives (a load of one chunk says nothing).

    DuckDB holds a transaction's new rows in memory until it commits: a million histories in
    one transaction took over a gigabyte. With `commit_rows`, each transaction holds whole
    chunks and ends with the run's row marked 'partial', so a load stopped part-way (killed,
    or failed) keeps what it committed and says so; loading the same input again adds only
    what is missing (every chunk is merged by key) and finishes the run.
    """
    result = LoadResult(run_id)
    pending = committed = 0
    con.execute("BEGIN TRANSACTION")
    try:
        index = StoredCases(con)
        for n, chunk in enumerate(chunks):
            if n and on_progress is not None:
                on_progress(result, committed)
            store_chunk(con, chunk, run_id, result, index=index)
            pending += chunk.cases.height + chunk.events.height
            if commit_rows is not None and pending >= commit_rows:
                record_run(con, run_id, flow, started_at, result, status="partial",
                           message=PARTIAL_MESSAGE.format(n=result.n_stored))
                con.execute("COMMIT")
                con.execute("BEGIN TRANSACTION")
                pending, committed = 0, result.n_stored
        record_run(con, run_id, flow, started_at, result)
    except BaseException:
        con.execute("ROLLBACK")
        StoredCases.drop(con)
        raise
    con.execute("COMMIT")
    StoredCases.drop(con)
    return result


PARTIAL_KEPT = (
    "{n} cases were stored before it stopped; run the same ingest again to finish it (what is "
    "stored already is not stored twice)"
)
PARTIAL_MESSAGE = "stopped part-way: " + PARTIAL_KEPT


PROVENANCES = ("verified", "self_reported", "operator")


def store_chunk(
    con: duckdb.DuckDBPyConnection, chunk: PreparedChunk, run_id: int, result: LoadResult,
    provenance: str = "operator", index: StoredCases | None = None,
) -> None:
    """Merge one chunk into the tables (the caller holds the transaction).

    `provenance` says who vouches for the rows: 'verified' (polled from the official API)
    takes a case over: its form, office and events replace whatever self-reported or
    operator rows said about it. Others merge as before, and never change a verified case.
    `index` (a load of many chunks) spares looking up cases that cannot be stored.
    """
    if provenance not in PROVENANCES:
        raise ValueError(f"provenance must be one of {PROVENANCES}, not {provenance!r}")
    cases, events = chunk.cases, chunk.events
    stored = _stored_rows(con, cases, index)  # one look at the table: what is known of these cases
    if provenance == "verified":
        _take_over(con, cases, stored)
        taken = cases.select("case_id", pl.col("form_type").alias("taken_form"))
        was_verified = pl.col("provenance").eq_missing("verified")
        stored = stored.join(taken, on="case_id", how="left").with_columns(
            form_type=pl.when(was_verified).then(pl.col("form_type")).otherwise(pl.col("taken_form")),
            provenance=pl.lit("verified")).drop("taken_form")
    else:
        verified = stored.filter(pl.col("provenance") == "verified").select("case_id")
        if verified.height:  # nothing but the official API changes a verified case
            cases = cases.join(verified, on="case_id", how="anti")
            events = events.join(verified, on="case_id", how="anti")
            stored = stored.join(verified, on="case_id", how="anti")
    cases = cases.with_columns(pl.lit(provenance).alias("provenance"))
    events = events.with_columns(pl.lit(provenance).alias("provenance"))
    conflicts = _conflicting_form_types(cases, stored)
    rejections = [*chunk.rejections, *(
        Rejection(
            origin=chunk.origins.get(row["case_id"], "input"),
            reasons=(_conflict_reason(row),),
            fingerprint=f"conflict:{row['case_id']}:{row['incoming_form']}:{row['incoming_category']}",
            case_id=row["case_id"],
        )
        for row in conflicts.iter_rows(named=True)
    )]
    if conflicts.height:
        cases = cases.join(conflicts.select("case_id"), on="case_id", how="anti")
        events = events.join(conflicts.select("case_id"), on="case_id", how="anti")
        stored = stored.join(conflicts.select("case_id"), on="case_id", how="anti")
    new_cases, new_events = _merge_rows(con, cases, events, stored.select("case_id"), run_id, index)
    result.n_new_cases += new_cases
    result.n_new_events += new_events
    quarantine_rejections(con, run_id, rejections)
    result.n_read += chunk.n_documents
    result.n_stored += cases.height
    result.n_rejections += len(rejections)
    room = KEEP_REJECTIONS - len(result.rejections)
    if room > 0:
        # every rejection is in the quarantine table; memory keeps only what a summary shows
        result.rejections.extend(rejections[:room])
    if chunk.rows_per_case is not None:
        _count_rows(result, chunk, set(cases["case_id"].to_list()))


def _count_rows(result: LoadResult, chunk: PreparedChunk, stored: set[str]) -> None:
    """Say what became of each table row: stored, quarantined (its case failed) or refused."""
    assert chunk.rows_per_case is not None
    rows_stored = sum(n for case_id, n in chunk.rows_per_case.items() if case_id in stored)
    result.rows_read += chunk.n_documents
    result.rows_blank += chunk.n_blank_rows
    result.rows_refused += chunk.n_refused_rows
    result.rows_stored += rows_stored
    result.rows_quarantined += chunk.n_documents - chunk.n_refused_rows - rows_stored


def _merge_rows(
    con: duckdb.DuckDBPyConnection, cases: pl.DataFrame, events: pl.DataFrame,
    stored: pl.DataFrame, run_id: int, index: StoredCases | None = None,
) -> tuple[int, int]:
    """Add the cases not stored yet, merge the others, add the events not stored yet.

    The tables have no index (migration 0013): a case is inserted only when no row has its
    id, an event only when none has its (case, date, stage), so the keys stay keys. Only
    the events of cases already stored are looked up among the stored events.
    """
    if cases["case_id"].n_unique() != cases.height:
        raise ValueError("a chunk holds a case twice: merge its rows before storing it")
    n_stored = stored.height
    # one row per event key, the first one given (the table's key)
    events = events.unique(subset=["case_id", "event_date", "stage"], keep="first")
    con.register("incoming_cases", cases)
    con.register("incoming_events", events)
    con.register("incoming_stored", stored)
    try:
        [(n_new_cases,)] = con.execute(_INSERT_NEW_CASES).fetchall()
        if index is not None:
            index.add()
        if n_stored:
            con.execute(_UPDATE_STORED_CASES).fetchall()
        [(n_new_events,)] = con.execute(
            _INSERT_EVENTS_OF_STORED if n_stored else _INSERT_EVENTS, [run_id]).fetchall()
    finally:
        con.unregister("incoming_cases")
        con.unregister("incoming_events")
        con.unregister("incoming_stored")
    return int(n_new_cases), int(n_new_events)


_INSERT_NEW_CASES = """
INSERT INTO cases BY NAME
SELECT case_id, form_type, intake_office, current_office, fiscal_year, received_date,
       premium, [source] AS sources, observed_at AS first_seen,
       observed_at AS last_seen, last_modified, synthetic,
       category, processing, tracked_since, last_checked, received_estimated,
       provenance, source AS provenance_source
FROM incoming_cases ANTI JOIN incoming_stored USING (case_id)
"""
# The merge rule for a case stored before (pipeline.prepare.merge documents it): `cases` is
# the stored row, `excluded` the incoming one.
_UPDATE_STORED_CASES = """
UPDATE cases SET
    current_office = coalesce(excluded.current_office, cases.current_office),
    fiscal_year = coalesce(cases.fiscal_year, excluded.fiscal_year),
    received_date = CASE
        WHEN cases.received_estimated AND NOT excluded.received_estimated THEN excluded.received_date
        WHEN excluded.received_estimated AND NOT cases.received_estimated THEN cases.received_date
        ELSE least(cases.received_date, excluded.received_date) END,
    received_estimated = cases.received_estimated AND excluded.received_estimated,
    premium = coalesce(cases.premium OR excluded.premium, excluded.premium, cases.premium),
    processing = CASE WHEN cases.premium OR excluded.premium THEN 'premium' ELSE 'regular' END,
    category = coalesce(cases.category, excluded.category),
    tracked_since = least(cases.tracked_since, excluded.tracked_since),
    last_checked = greatest(cases.last_checked, excluded.last_checked),
    sources = list_sort(list_distinct(list_concat(cases.sources, [excluded.source]))),
    first_seen = least(cases.first_seen, excluded.observed_at),
    last_seen = greatest(cases.last_seen, excluded.observed_at),
    last_modified = greatest(cases.last_modified, excluded.last_modified),
    synthetic = cases.synthetic AND excluded.synthetic
FROM (SELECT * FROM incoming_cases SEMI JOIN incoming_stored USING (case_id)) AS excluded
WHERE cases.case_id = excluded.case_id
"""
_EVENT_KEYS = """
SELECT case_id, event_date, stage, title, source, $1 AS run_id, provenance FROM incoming_events
"""
_INSERT_EVENTS = "INSERT INTO status_events BY NAME " + _EVENT_KEYS
# events of stored cases: only those cases' stored events are looked at
_INSERT_EVENTS_OF_STORED = f"""
INSERT INTO status_events BY NAME
WITH incoming AS ({_EVENT_KEYS}),
stored AS (
  SELECT case_id, event_date, stage FROM status_events SEMI JOIN incoming_stored USING (case_id)
)
SELECT * FROM incoming ANTI JOIN stored USING (case_id, event_date, stage)
"""


def _stored_rows(con: duckdb.DuckDBPyConnection, cases: pl.DataFrame,
                 index: StoredCases | None = None) -> pl.DataFrame:
    """The stored form, category and provenance of those of `cases` already stored."""
    empty = pl.DataFrame(schema={"case_id": pl.Utf8, "form_type": pl.Utf8,
                                 "category": pl.Utf8, "provenance": pl.Utf8})
    ids = cases.select("case_id")
    if index is not None and ids.height:
        ids = index.candidates(ids)
    if ids.height == 0:
        return empty
    con.register("incoming_ids", ids)
    try:
        found = query_frame(
            con, "SELECT case_id, form_type, category, provenance FROM cases"
                 " SEMI JOIN incoming_ids USING (case_id)")
    finally:
        con.unregister("incoming_ids")
    return found.cast(empty.schema) if found.height else empty


def _take_over(con: duckdb.DuckDBPyConnection, cases: pl.DataFrame, stored: pl.DataFrame) -> None:
    """Verified answers replace what anyone else said about these cases."""
    others = stored.filter(pl.col("provenance").ne_missing("verified")).select("case_id")
    if others.height == 0:
        return
    con.register("verified_cases", cases.join(others, on="case_id").select(
        "case_id", "form_type", "intake_office", "received_date", "source"))
    try:
        con.execute(
            "DELETE FROM status_events WHERE provenance IS DISTINCT FROM 'verified'"
            " AND case_id IN (SELECT case_id FROM verified_cases)")
        con.execute(
            "UPDATE cases SET form_type = v.form_type, intake_office = v.intake_office,"
            " received_date = v.received_date, provenance = 'verified', provenance_source = v.source FROM verified_cases v"
            " WHERE cases.case_id = v.case_id AND cases.provenance IS DISTINCT FROM 'verified'")
    finally:
        con.unregister("verified_cases")


def _conflicting_form_types(cases: pl.DataFrame, stored: pl.DataFrame) -> pl.DataFrame:
    """Incoming cases whose form or category disagrees with the stored one (a NULL agrees)."""
    joined = cases.select("case_id", pl.col("form_type").alias("incoming_form"),
                          pl.col("category").alias("incoming_category")).join(
        stored.select("case_id", pl.col("form_type").alias("stored_form"),
                      pl.col("category").alias("stored_category")), on="case_id")
    return joined.filter(
        (pl.col("stored_form") != pl.col("incoming_form"))
        | (pl.col("stored_category") != pl.col("incoming_category"))
    ).select("case_id", "stored_form", "incoming_form", "stored_category", "incoming_category")


def _conflict_reason(row: dict[str, object]) -> str:
    if row["stored_form"] != row["incoming_form"]:
        return (
            f"this case is already stored as {row['stored_form']} but this history says "
            f"{row['incoming_form']}; one of them is wrong, so neither is changed"
        )
    return (
        f"this case is already stored in category {row['stored_category']} but this history says "
        f"{row['incoming_category']}; one of them is wrong, so neither is changed"
    )


def quarantine_rejections(
    con: duckdb.DuckDBPyConnection, run_id: int, rejections: list[Rejection]
) -> None:
    """Keep rejected records in quarantine with their reasons; a repeat adds nothing."""
    if not rejections:
        return
    # one set-based insert: executemany costs milliseconds per row, too slow for a sheet with
    # thousands of bad rows
    frame = pl.DataFrame(
        {
            "fingerprint": [r.fingerprint for r in rejections],
            "origin": [r.origin for r in rejections],
            "case_id": [r.case_id for r in rejections],
            "reasons": [list(r.reasons) for r in rejections],
            "attempt": [json.dumps(r.attempt) if r.attempt is not None else None for r in rejections],
        },
        schema={"fingerprint": pl.Utf8, "origin": pl.Utf8, "case_id": pl.Utf8,
                "reasons": pl.List(pl.Utf8), "attempt": pl.Utf8},
    ).unique(subset="fingerprint", keep="first", maintain_order=True)
    con.register("incoming_rejections", frame)
    try:
        con.execute(
            "INSERT INTO quarantine (fingerprint, run_id, origin, case_id, reasons, attempt, created_at)"
            " SELECT fingerprint, ?, origin, case_id, reasons, CAST(attempt AS JSON), now()::TIMESTAMP"
            " FROM incoming_rejections ON CONFLICT DO NOTHING",
            [run_id],
        ).fetchall()
    finally:
        con.unregister("incoming_rejections")
