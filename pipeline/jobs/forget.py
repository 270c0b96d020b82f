"""Forgetting one case everywhere: what `timelines track remove` does.

Every table of the analytics database that has a `case_id` column loses that case's rows
(cases, status events, quarantine, observations, poll outcomes, derived durations, and any
table added later, such as per-submission provenance). This includes events a user submitted
for the same receipt: the case's owner asked for it to be gone. Statistics are then recomputed
and a new snapshot published, so the case leaves the published figures too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from pipeline.jobs.refresh import refresh_and_publish
from pipeline.prepare.anonymize import key_of, pseudonymize
from pipeline.receipts import normalize_receipt
from pipeline.settings import Settings
from pipeline.sources.uscis.registry import open_registry
from pipeline.store.db import first_row, open_store, transaction


@dataclass(frozen=True)
class Forgotten:
    """What removing one receipt did."""

    was_tracked: bool
    deleted: dict[str, int] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        """How many rows were deleted from the analytics database."""
        return sum(self.deleted.values())


def tables_with_cases(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Return every table that holds rows keyed by a case pseudonym."""
    rows = con.execute(
        "SELECT c.table_name FROM information_schema.columns c"
        " JOIN information_schema.tables t USING (table_catalog, table_schema, table_name)"
        " WHERE c.column_name = 'case_id' AND t.table_type = 'BASE TABLE'"
        " AND t.table_schema = current_schema() ORDER BY c.table_name"
    ).fetchall()
    return [str(row[0]) for row in rows]


def delete_case(con: duckdb.DuckDBPyConnection, case_id: str) -> dict[str, int]:
    """Delete one case's rows from every table, in one transaction; return counts per table."""
    deleted: dict[str, int] = {}
    with transaction(con):
        for table in tables_with_cases(con):
            row = first_row(con.execute(f'DELETE FROM "{table}" WHERE case_id = ?', [case_id]))
            if row and row[0]:
                deleted[table] = int(row[0])
    return deleted


def forget_receipt(settings: Settings, receipt: str) -> Forgotten:
    """Stop tracking a receipt and delete its case everywhere, then re-publish."""
    canonical = normalize_receipt(receipt)
    settings.ensure_home()
    # The registry first: a poll that is running then drops this case before storing it.
    with open_registry(settings.home, settings.env) as registry:
        was_tracked = registry.remove(canonical)
    case_id = pseudonymize(canonical, key_of(settings))
    if not settings.database_path.exists():
        return Forgotten(was_tracked)
    with open_store(settings.database_path) as con:
        deleted = delete_case(con, case_id)
    if deleted:
        refresh_and_publish(settings)
    return Forgotten(was_tracked, deleted)
