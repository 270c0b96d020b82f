"""Schema migrations: versioned, applied once, in order, including late-arriving ones."""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline.store.db import available_migrations, migrate, open_store, schema_version


def test_a_new_database_gets_every_migration_once(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    with open_store(db) as con:
        assert schema_version(con) == available_migrations()[-1][0]
        assert migrate(con) == []  # already up to date
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert {"cases", "status_events", "ingest_runs", "quarantine", "case_stats"} <= tables


def test_a_skipped_migration_is_still_applied(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    with open_store(db):
        pass
    con = duckdb.connect(str(db))
    try:
        # simulate a database that never got migration 2 (e.g. it arrived on a later branch)
        con.execute("DELETE FROM schema_migrations WHERE version = 2")
        con.execute("DROP TABLE case_durations")
        applied = migrate(con)
        assert applied and applied[0].startswith("0002")
        assert con.execute("SELECT count(*) FROM case_durations").fetchone() == (0,)
    finally:
        con.close()
