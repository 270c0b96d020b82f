"""Loading validated rows into DuckDB: one transaction per load, idempotent.

Loading the same submissions again changes nothing: events are keyed by (case, date,
stage), cases are merged (first/last seen widened, sources unioned), and quarantine rows
are keyed by a fingerprint of their input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from pipeline.model import Rejection
from pipeline.store.db import query_frame


@dataclass(frozen=True)
class LoadResult:
    """What one load changed."""

    run_id: int
    n_stored: int
    n_new_cases: int
    n_new_events: int
    n_rejected: int
    conflicts: list[Rejection]


def start_run(con: duckdb.DuckDBPyConnection, flow: str, started_at: datetime) -> int:
    """Reserve a run id for a flow run (the run row is written with the load)."""
    row = con.execute("SELECT nextval('run_id_seq')").fetchone()
    assert row is not None
    return int(row[0])


def finish_failed_run(
    con: duckdb.DuckDBPyConnection, run_id: int, flow: str, started_at: datetime, message: str
) -> None:
    """Record that a run failed, in its own small transaction, so the health page shows it."""
    con.execute(
        "INSERT OR REPLACE INTO ingest_runs (run_id, flow, started_at, finished_at, status, message)"
        " VALUES (?, ?, ?, now()::TIMESTAMP, 'failed', ?)",
        [run_id, flow, started_at, message[:1000]],
    )


def _conflicting_form_types(
    con: duckdb.DuckDBPyConnection, cases: pl.DataFrame
) -> pl.DataFrame:
    con.register("incoming_cases", cases)
    try:
        return query_frame(
            con,
            "SELECT i.case_id, c.form_type AS stored_form, i.form_type AS incoming_form"
            " FROM incoming_cases i JOIN cases c USING (case_id)"
            " WHERE c.form_type <> i.form_type",
        )
    finally:
        con.unregister("incoming_cases")


def store_batch(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: int,
    flow: str,
    started_at: datetime,
    n_read: int,
    cases: pl.DataFrame,
    events: pl.DataFrame,
    rejections: list[Rejection],
    origins: dict[str, str] | None = None,
) -> LoadResult:
    """Store valid rows and rejections and record the run, all in one transaction."""
    con.execute("BEGIN TRANSACTION")
    try:
        conflicts = _conflicting_form_types(con, cases)
        conflict_rejections = [
            Rejection(
                origin=(origins or {}).get(row["case_id"], "input"),
                reasons=(
                    f"this case is already stored as {row['stored_form']} but this history says "
                    f"{row['incoming_form']}; one of them is wrong, so neither is changed",
                ),
                fingerprint=f"conflict:{row['case_id']}:{row['incoming_form']}",
                case_id=row["case_id"],
            )
            for row in conflicts.iter_rows(named=True)
        ]
        if conflicts.height:
            bad = conflicts["case_id"]
            cases = cases.filter(~pl.col("case_id").is_in(bad))
            events = events.filter(~pl.col("case_id").is_in(bad))
        all_rejections = [*rejections, *conflict_rejections]

        con.register("incoming_cases", cases)
        con.register("incoming_events", events)
        new_cases = _scalar(
            con, "SELECT count(*) FROM incoming_cases i ANTI JOIN cases c USING (case_id)"
        )
        new_events = _scalar(
            con,
            "SELECT count(*) FROM (SELECT DISTINCT case_id, event_date, stage FROM incoming_events) i"
            " ANTI JOIN status_events s USING (case_id, event_date, stage)",
        )
        con.execute(
            """
            INSERT INTO cases BY NAME
            SELECT case_id, form_type, intake_office, current_office, fiscal_year, received_date,
                   premium, [source] AS sources, observed_at AS first_seen,
                   observed_at AS last_seen, last_modified, synthetic
            FROM incoming_cases
            ON CONFLICT (case_id) DO UPDATE SET
                current_office = coalesce(excluded.current_office, cases.current_office),
                fiscal_year = coalesce(cases.fiscal_year, excluded.fiscal_year),
                received_date = least(cases.received_date, excluded.received_date),
                premium = coalesce(excluded.premium, cases.premium),
                sources = list_sort(list_distinct(list_concat(cases.sources, excluded.sources))),
                first_seen = least(cases.first_seen, excluded.first_seen),
                last_seen = greatest(cases.last_seen, excluded.last_seen),
                last_modified = greatest(cases.last_modified, excluded.last_modified),
                synthetic = cases.synthetic AND excluded.synthetic
            """
        )
        con.execute(
            """
            INSERT INTO status_events BY NAME
            SELECT case_id, event_date, stage, any_value(title) AS title,
                   any_value(source) AS source, ? AS run_id
            FROM incoming_events GROUP BY case_id, event_date, stage
            ON CONFLICT DO NOTHING
            """,
            [run_id],
        )
        _insert_rejections(con, run_id, all_rejections)
        con.execute(
            "INSERT INTO ingest_runs VALUES (?, ?, ?, now()::TIMESTAMP, 'ok', ?, ?, ?, ?, ?, NULL)",
            [run_id, flow, started_at, n_read, cases.height, len(all_rejections), new_cases, new_events],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for view in ("incoming_cases", "incoming_events"):
            try:
                con.unregister(view)
            except duckdb.Error:
                pass
    return LoadResult(run_id, cases.height, new_cases, new_events, len(all_rejections), conflict_rejections)


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _insert_rejections(
    con: duckdb.DuckDBPyConnection, run_id: int, rejections: list[Rejection]
) -> None:
    if not rejections:
        return
    con.executemany(
        "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?, now()::TIMESTAMP) ON CONFLICT DO NOTHING",
        [
            [
                r.fingerprint,
                run_id,
                r.origin,
                r.case_id,
                list(r.reasons),
                json.dumps(r.attempt) if r.attempt is not None else None,
            ]
            for r in rejections
        ],
    )
