"""cases and status_events have no index (migration 0013): their keys are kept by the load.

Every kind of write goes through `store_chunk`; after each, no two cases share an id and no
two events share a (case, date, stage). A database from before 0013 keeps every row."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb

from pipeline.jobs import ingest as ingest_job
from pipeline.prepare.anonymize import key_of
from pipeline.prepare.funnel import prepare_chunk
from pipeline.settings import Settings
from pipeline.sources.files import read_documents
from pipeline.sources.sample import write_sample
from pipeline.store.db import available_migrations, migrate, open_store
from pipeline.store.load import LoadResult, next_run_id, store_chunk

DUPLICATE_CASES = "SELECT count(*) FROM (SELECT case_id FROM cases GROUP BY 1 HAVING count(*) > 1)"
DUPLICATE_EVENTS = ("SELECT count(*) FROM (SELECT 1 FROM status_events"
                    " GROUP BY case_id, event_date, stage HAVING count(*) > 1)")


def duplicates(db: Path) -> tuple[int, int, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return (con.execute(DUPLICATE_CASES).fetchall()[0][0],
                con.execute(DUPLICATE_EVENTS).fetchall()[0][0],
                con.execute("SELECT count(*) FROM cases").fetchall()[0][0])
    finally:
        con.close()


def test_every_kind_of_load_keeps_one_row_per_key(settings: Settings, tmp_path: Path) -> None:
    sample = tmp_path / "sample"
    write_sample(sample, 600, seed=5, as_of=date(2025, 6, 1), per_file=100)
    later = tmp_path / "later"  # a later sample: some receipts again, many new ones
    write_sample(later, 600, seed=5, as_of=date(2025, 10, 1), per_file=100)
    files = ingest_job.discover_inputs([sample])

    ingest_job.ingest_files(settings, files)                      # bulk
    assert duplicates(settings.database_path) == (0, 0, 600)
    ingest_job.ingest_files(settings, files, bulk=False)          # per document, same input
    ingest_job.ingest_files(settings, ingest_job.discover_inputs([later]), chunk_size=70)
    _, _, n_cases = duplicates(settings.database_path)
    assert n_cases > 600
    # both again in one run: a case in two chunks of the same load, commits between them
    ingest_job.ingest_files(settings, ingest_job.discover_inputs([sample, later]),
                            bulk=False, chunk_size=90, commit_rows=200)
    assert duplicates(settings.database_path) == (0, 0, n_cases)

    # a poll's verified answers take some cases over, twice
    documents = list(read_documents(ingest_job.discover_inputs([later])))[:150]
    key = key_of(settings)
    with open_store(settings.database_path) as con:
        for _ in range(2):
            chunk = prepare_chunk(documents, key, datetime.now(), date(2025, 10, 2))
            result = LoadResult(next_run_id(con))
            con.execute("BEGIN TRANSACTION")
            store_chunk(con, chunk, result.run_id, result, provenance="verified")
            con.execute("COMMIT")
        verified = con.execute("SELECT count(*) FROM cases WHERE provenance = 'verified'").fetchall()
    assert verified == [(150,)]
    assert duplicates(settings.database_path) == (0, 0, n_cases)


def test_a_case_in_several_chunks_of_one_load_into_an_empty_store_is_stored_once(
        settings: Settings, tmp_path: Path) -> None:
    # the load looks up in `cases` only the ids it has seen stored (StoredCases): the ones
    # it stores itself must count, in the transaction they are in and across its commits
    sample = tmp_path / "sample"
    write_sample(sample, 300, seed=5, as_of=date(2025, 6, 1), per_file=100)
    later = tmp_path / "later"  # the same receipts among others, seen months later
    write_sample(later, 300, seed=5, as_of=date(2025, 10, 1), per_file=100)
    inputs = ingest_job.discover_inputs([sample, later])
    result = ingest_job.ingest_files(settings, inputs, bulk=False, chunk_size=40, commit_rows=300)
    n_duplicates, n_event_duplicates, n_cases = duplicates(settings.database_path)
    assert (n_duplicates, n_event_duplicates) == (0, 0)
    assert result.n_new_cases == n_cases < result.n_stored  # some cases came twice


def test_a_database_from_before_0013_keeps_every_row_and_loses_only_the_index(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    try:
        con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
                    " name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)")
        for version, name, sql in available_migrations():
            if version < 13:
                con.execute(sql)
                con.execute("INSERT INTO schema_migrations VALUES (?, ?, now()::TIMESTAMP)",
                            [version, name])
        con.execute("INSERT INTO cases (case_id, form_type, intake_office, received_date, sources,"
                    " first_seen, last_seen) VALUES ('c_1', 'I-485', 'NBC', DATE '2024-01-02',"
                    " ['myuscis'], TIMESTAMP '2024-02-01', TIMESTAMP '2024-03-01')")
        con.execute("INSERT INTO status_events (case_id, event_date, stage, title, source)"
                    " VALUES ('c_1', DATE '2024-01-02', 'received', 'Case Was Received', 'myuscis')")
        before = (con.execute("SELECT * FROM cases").fetchall(),
                  con.execute("SELECT * FROM status_events").fetchall())
        applied = migrate(con)
        assert applied and applied[0].startswith("0013")
        assert (con.execute("SELECT * FROM cases").fetchall(),
                con.execute("SELECT * FROM status_events").fetchall()) == before
        keys = con.execute(
            "SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'"
            " AND table_name IN ('cases', 'status_events')").fetchall()
        assert keys == []
        defaults = con.execute(
            "SELECT synthetic, processing, provenance FROM cases").fetchall()
        assert defaults == [(False, "regular", "operator")]
    finally:
        con.close()
