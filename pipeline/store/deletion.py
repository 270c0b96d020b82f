"""Deleting a submission and everything derived from it from the analytics database.

Removed: the events only this submission brought, the cases nothing else supports (no
other submission, no poll or file ingest, no remaining event, no row of a poll) together
with their rows in the tables derived from them, the submission's quarantine rows and its
lineage. Kept: what another submission or another source also supports. The statistics are recomputed
and re-published by the caller afterwards, so the dashboard stops counting it.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from pipeline.store.db import first_row, transaction
from pipeline.store.submissions import origin_of

_OWN_TABLES = {"cases", "status_events", "quarantine", "submissions", "submission_cases",
               "submission_events", "claims_apart"}
# Tables recomputed from `cases` by the refresh: their rows of a deleted case go with it. A row
# of a deleted case in any other table keyed by case_id (poll outcomes, observations) means
# another source knows the case, so the case is kept.
DERIVED_TABLES = {"case_durations"}

_DOOMED_EVENTS = """
CREATE OR REPLACE TEMP TABLE doomed_events AS
SELECT e.case_id, e.event_date, e.stage FROM submission_events e
WHERE e.submission_id IN (SELECT submission_id FROM doomed_submissions) AND NOT e.backed
  AND NOT EXISTS (
      SELECT 1 FROM submission_events o
      WHERE o.submission_id NOT IN (SELECT submission_id FROM doomed_submissions)
        AND o.case_id = e.case_id AND o.event_date = e.event_date AND o.stage = e.stage)
"""
_DOOMED_CASES = """
CREATE OR REPLACE TEMP TABLE doomed_cases AS
SELECT DISTINCT s.case_id FROM submission_cases s
WHERE s.submission_id IN (SELECT submission_id FROM doomed_submissions) AND NOT s.backed
  AND NOT EXISTS (
      SELECT 1 FROM submission_cases o
      WHERE o.submission_id NOT IN (SELECT submission_id FROM doomed_submissions)
        AND o.case_id = s.case_id)
  AND NOT EXISTS (SELECT 1 FROM status_events e WHERE e.case_id = s.case_id)
"""
_NOT_KNOWN_TO = '  AND NOT EXISTS (SELECT 1 FROM "{table}" o WHERE o.case_id = s.case_id)\n'


@dataclass(frozen=True)
class DeletionOutcome:
    """What a deletion removed."""

    found: bool
    submission_ids: tuple[str, ...] = ()
    n_cases: int = 0
    n_events: int = 0
    n_quarantined: int = 0


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = first_row(con.execute(sql))
    return int(row[0]) if row else 0


def _case_keyed_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "SELECT DISTINCT table_name FROM information_schema.columns"
        " WHERE column_name = 'case_id' AND table_schema = 'main'"
        " AND table_name IN (SELECT table_name FROM information_schema.tables"
        "                    WHERE table_type = 'BASE TABLE')"
    ).fetchall()
    return sorted(str(r[0]) for r in rows if str(r[0]) not in _OWN_TABLES)


def delete_submission(con: duckdb.DuckDBPyConnection, deletion_hash: str) -> DeletionOutcome:
    """Remove the submission with this code hash and what only it supports, in one transaction."""
    with transaction(con):
        ids = tuple(str(r[0]) for r in con.execute(
            "SELECT submission_id FROM submissions WHERE deletion_hash = ?", [deletion_hash]
        ).fetchall())
        if not ids:
            return DeletionOutcome(found=False)
        con.execute("CREATE OR REPLACE TEMP TABLE doomed_submissions AS"
                    " SELECT unnest(?::VARCHAR[]) AS submission_id", [list(ids)])
        con.execute(_DOOMED_EVENTS)
        n_events = _count(con, "SELECT count(*) FROM doomed_events")
        con.execute(
            "DELETE FROM status_events s USING doomed_events d WHERE s.case_id = d.case_id"
            " AND s.event_date = d.event_date AND s.stage = d.stage"
        )
        keyed = _case_keyed_tables(con)
        others = [t for t in keyed if t not in DERIVED_TABLES]
        con.execute(_DOOMED_CASES + "".join(_NOT_KNOWN_TO.format(table=t) for t in others))
        n_cases = _count(con, "SELECT count(*) FROM doomed_cases")
        for table in (t for t in keyed if t in DERIVED_TABLES):
            con.execute(f'DELETE FROM "{table}" WHERE case_id IN (SELECT case_id FROM doomed_cases)')
        con.execute("DELETE FROM cases WHERE case_id IN (SELECT case_id FROM doomed_cases)")
        origins = [origin_of(i) for i in ids]
        row = first_row(con.execute("SELECT count(*) FROM quarantine WHERE origin IN"
                          " (SELECT unnest(?::VARCHAR[]))", [origins]))
        n_quarantined = int(row[0]) if row else 0
        con.execute("DELETE FROM quarantine WHERE origin IN (SELECT unnest(?::VARCHAR[]))", [origins])
        for table in ("claims_apart", "submission_events", "submission_cases", "submissions"):
            con.execute(f"DELETE FROM {table} WHERE submission_id IN"
                        " (SELECT submission_id FROM doomed_submissions)")
        for temp in ("doomed_events", "doomed_cases", "doomed_submissions"):
            con.execute(f"DROP TABLE {temp}")
    return DeletionOutcome(True, ids, n_cases, n_events, n_quarantined)
