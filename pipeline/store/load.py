"""Loading prepared rows into DuckDB: one transaction per load, idempotent.

Loading the same submissions again changes nothing: events are keyed by (case, date,
stage), cases are merged (first/last seen widened, sources unioned), and quarantine rows
are keyed by a fingerprint of their input. A failure anywhere rolls the whole load back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import polars as pl

from pipeline.model import Rejection
from pipeline.prepare.funnel import PreparedChunk
from pipeline.store.db import first_row, query_frame, transaction

KEEP_REJECTIONS = 1_000


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
    """Record that a run failed, in its own small transaction, so the health page shows it."""
    con.execute(
        "INSERT OR REPLACE INTO ingest_runs (run_id, flow, started_at, finished_at, status, message)"
        " VALUES (?, ?, ?, now()::TIMESTAMP, 'failed', ?)",
        [run_id, flow, started_at, message[:1000]],
    )


def record_run(
    con: duckdb.DuckDBPyConnection, run_id: int, flow: str, started_at: datetime,
    result: LoadResult, message: str | None = None,
) -> None:
    """Write the row of a successful run (inside the caller's transaction)."""
    con.execute(
        "INSERT OR REPLACE INTO ingest_runs VALUES (?, ?, ?, now()::TIMESTAMP, 'ok', ?, ?, ?, ?, ?, ?)",
        [run_id, flow, started_at, result.n_read, result.n_stored, result.n_rejected,
         result.n_new_cases, result.n_new_events, message],
    )


def load_chunks(
    con: duckdb.DuckDBPyConnection,
    chunks: Iterable[PreparedChunk],
    *,
    run_id: int,
    flow: str,
    started_at: datetime,
) -> LoadResult:
    """Store every chunk and record the run, all in one transaction."""
    result = LoadResult(run_id)
    with transaction(con):
        for chunk in chunks:
            store_chunk(con, chunk, run_id, result)
        record_run(con, run_id, flow, started_at, result)
    return result


PROVENANCES = ("verified", "self_reported", "operator")


def store_chunk(
    con: duckdb.DuckDBPyConnection, chunk: PreparedChunk, run_id: int, result: LoadResult,
    provenance: str = "operator",
) -> None:
    """Merge one chunk into the tables (the caller holds the transaction).

    `provenance` says who vouches for the rows: 'verified' (polled from the official API)
    takes a case over: its form, office and events replace whatever self-reported or
    operator rows said about it. Others merge as before, and never change a verified case.
    """
    if provenance not in PROVENANCES:
        raise ValueError(f"provenance must be one of {PROVENANCES}, not {provenance!r}")
    cases, events = chunk.cases, chunk.events
    if provenance == "verified":
        _take_over(con, cases)
    else:
        cases, events = _without_verified(con, cases, events)
    cases = cases.with_columns(pl.lit(provenance).alias("provenance"))
    events = events.with_columns(pl.lit(provenance).alias("provenance"))
    conflicts = _conflicting_form_types(con, cases)
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
    con.register("incoming_cases", cases)
    con.register("incoming_events", events)
    try:
        # rows are only ever added here, so the growth of each table is what was new; a count
        # is cheap where an anti-join would scan the whole table once per chunk
        n_cases, n_events = _table_sizes(con)
        con.execute(_UPSERT_CASES).fetchall()
        con.execute(_INSERT_EVENTS, [run_id]).fetchall()
        after_cases, after_events = _table_sizes(con)
        result.n_new_cases += after_cases - n_cases
        result.n_new_events += after_events - n_events
    finally:
        con.unregister("incoming_cases")
        con.unregister("incoming_events")
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


_UPSERT_CASES = """
INSERT INTO cases BY NAME
SELECT case_id, form_type, intake_office, current_office, fiscal_year, received_date,
       premium, [source] AS sources, observed_at AS first_seen,
       observed_at AS last_seen, last_modified, synthetic,
       category, processing, tracked_since, last_checked, received_estimated,
       provenance, source AS provenance_source
FROM incoming_cases
ON CONFLICT (case_id) DO UPDATE SET
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
    sources = list_sort(list_distinct(list_concat(cases.sources, excluded.sources))),
    first_seen = least(cases.first_seen, excluded.first_seen),
    last_seen = greatest(cases.last_seen, excluded.last_seen),
    last_modified = greatest(cases.last_modified, excluded.last_modified),
    synthetic = cases.synthetic AND excluded.synthetic
"""
_INSERT_EVENTS = """
INSERT INTO status_events BY NAME
SELECT case_id, event_date, stage, any_value(title) AS title,
       any_value(source) AS source, ? AS run_id, any_value(provenance) AS provenance
FROM incoming_events GROUP BY case_id, event_date, stage
ON CONFLICT DO NOTHING
"""


def _take_over(con: duckdb.DuckDBPyConnection, cases: pl.DataFrame) -> None:
    """Verified answers replace what anyone else said about these cases."""
    if cases.height == 0:
        return
    con.register("verified_cases", cases.select(
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


def _without_verified(
    con: duckdb.DuckDBPyConnection, cases: pl.DataFrame, events: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Leave out rows about verified cases: nothing but the official API changes them."""
    if cases.height == 0:
        return cases, events
    con.register("incoming_ids", cases.select("case_id"))
    try:
        verified = query_frame(
            con, "SELECT case_id FROM cases WHERE provenance = 'verified'"
                 " AND case_id IN (SELECT case_id FROM incoming_ids)")
    finally:
        con.unregister("incoming_ids")
    if verified.height == 0:
        return cases, events
    return (cases.join(verified, on="case_id", how="anti"),
            events.join(verified, on="case_id", how="anti"))


def _conflicting_form_types(con: duckdb.DuckDBPyConnection, cases: pl.DataFrame) -> pl.DataFrame:
    con.register("incoming_cases", cases)
    try:
        return query_frame(
            con,
            "SELECT i.case_id, c.form_type AS stored_form, i.form_type AS incoming_form,"
            " c.category AS stored_category, i.category AS incoming_category"
            " FROM incoming_cases i JOIN cases c USING (case_id)"
            " WHERE c.form_type <> i.form_type OR c.category <> i.category",
        )
    finally:
        con.unregister("incoming_cases")


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


def _table_sizes(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    [(n_cases, n_events)] = con.execute(
        "SELECT (SELECT count(*) FROM cases), (SELECT count(*) FROM status_events)"
    ).fetchall()
    return int(n_cases), int(n_events)


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
