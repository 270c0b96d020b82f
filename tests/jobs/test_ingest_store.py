"""The ingest job against a real DuckDB file: idempotent, transactional, receipts never stored."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pytest

from flows.progress import ingest_progress
from pipeline.jobs import ingest as ingest_job
from pipeline.jobs import refresh as refresh_job
from pipeline.prepare.anonymize import key_of
from pipeline.settings import Secret, Settings
from pipeline.sources.files import RawDocument, read_documents
from pipeline.sources.sample import write_sample
from pipeline.store.db import DatabaseBusyError, connect
from pipeline.store.load import LoadResult

RECEIPT = re.compile(r"[A-Z]{3}[0-9]{10}")


def table_contents(db: Path) -> dict[str, list[tuple[object, ...]]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            "cases": con.execute("SELECT * EXCLUDE (first_seen, last_seen) FROM cases ORDER BY case_id").fetchall(),
            "events": con.execute("SELECT * EXCLUDE (run_id) FROM status_events ORDER BY ALL").fetchall(),
            "quarantine": con.execute("SELECT fingerprint, reasons FROM quarantine ORDER BY 1").fetchall(),
        }
    finally:
        con.close()


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    out = tmp_path / "sample"
    write_sample(out, 400, seed=11, as_of=date(2025, 6, 1))
    bad = {"case_status": {"receiptNumber": "EAC2490000001", "formType": "I-765",
                           "submittedDate": "01-10-2024 10:00:00", "modifiedDate": "01-01-2099 10:00:00",
                           "current_case_status_text_en": "Case Was Approved"}}
    (out / "future.json").write_text(json.dumps(bad))
    (out / "broken.json").write_text('{"case_status": ')
    return out


def test_ingesting_twice_changes_nothing(settings: Settings, sample_dir: Path) -> None:
    first = ingest_job.ingest(settings, [sample_dir])
    assert (first.n_read, first.n_stored, first.n_rejected) == (402, 400, 2)
    assert first.n_new_cases == 400 and first.n_new_events > 400
    before = table_contents(settings.database_path)
    second = ingest_job.ingest(settings, [sample_dir])
    assert (second.n_new_cases, second.n_new_events) == (0, 0)
    assert table_contents(settings.database_path) == before


def test_rejections_say_why_in_plain_words(settings: Settings, sample_dir: Path) -> None:
    result = ingest_job.ingest(settings, [sample_dir])
    reasons = {r.origin: " ".join(r.reasons) for r in result.rejections}
    # origins are opaque (the file's number in the run), never the file's name
    assert all(re.fullmatch(r"file \d+( line \d+)?", origin) for origin in reasons)
    assert any("in the future" in why for why in reasons.values())
    assert any("not valid JSON" in why for why in reasons.values())


def test_no_receipt_number_reaches_the_database(settings: Settings, sample_dir: Path) -> None:
    ingest_job.ingest(settings, [sample_dir])
    refresh_job.refresh(settings)
    con = duckdb.connect(str(settings.database_path), read_only=True)
    try:
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall():
            dump = str(con.execute(f"SELECT * FROM {table}").fetchall())
            assert not RECEIPT.search(dump), f"receipt-like text in {table}"
    finally:
        con.close()


def test_a_bad_chunk_rolls_back_the_whole_load(
    settings: Settings, sample_dir: Path, tmp_path: Path
) -> None:
    ingest_job.ingest(settings, [sample_dir])
    before = table_contents(settings.database_path)
    more = tmp_path / "more"
    write_sample(more, 300, seed=13, as_of=date(2025, 6, 1))
    documents = read_documents(ingest_job.discover_inputs([more]))

    def failing_source() -> Iterator[RawDocument]:  # a source that breaks part-way through
        for n, document in enumerate(documents):
            if n == 200:
                raise OSError("disk vanished")
            yield document

    with pytest.raises(OSError, match="disk vanished"):
        ingest_job.ingest_documents(settings, failing_source(), chunk_size=50)
    assert table_contents(settings.database_path) == before
    con = duckdb.connect(str(settings.database_path), read_only=True)
    try:
        status = con.execute("SELECT status, message FROM ingest_runs ORDER BY run_id DESC LIMIT 1").fetchone()
    finally:
        con.close()
    assert status is not None and status[0] == "failed" and "disk vanished" in status[1]


@pytest.fixture
def documents(tmp_path: Path) -> list[RawDocument]:
    """300 synthetic histories, read as the per-document path reads them."""
    more = tmp_path / "more"
    write_sample(more, 300, seed=13, as_of=date(2025, 6, 1))
    return list(read_documents(ingest_job.discover_inputs([more])))


def test_a_load_stopped_after_some_commits_keeps_whole_chunks_and_a_rerun_finishes_it(
    settings: Settings, tmp_path: Path, documents: list[RawDocument]
) -> None:

    def failing_source() -> Iterator[RawDocument]:  # breaks in its fifth chunk of 50
        for n, document in enumerate(documents):
            if n == 220:
                raise OSError("disk vanished")
            yield document

    with pytest.raises(OSError, match="disk vanished"):
        # a commit after every chunk: each holds 50 cases and their events, over 100 rows
        ingest_job.ingest_documents(settings, failing_source(), chunk_size=50, commit_rows=100)
    con = duckdb.connect(str(settings.database_path), read_only=True)
    try:
        n_cases = con.execute("SELECT count(*) FROM cases").fetchall()[0][0]
        status, n_stored, message = con.execute(
            "SELECT status, n_stored, message FROM ingest_runs ORDER BY run_id DESC LIMIT 1").fetchall()[0]
    finally:
        con.close()
    assert n_cases == 200  # the four whole chunks committed, nothing of the fifth
    assert (status, n_stored) == ("failed", 200)
    assert "disk vanished" in message and "200 cases were stored before it stopped" in message
    assert "run the same ingest again" in message

    again = ingest_job.ingest_documents(settings, iter(documents), chunk_size=50, commit_rows=100)
    assert (again.n_stored, again.n_new_cases) == (300, 100)
    clean = replace(settings, home=tmp_path / "clean",
                    pseudonym_key=Secret(key_of(settings).secret.decode()))
    ingest_job.ingest_documents(clean, iter(documents), chunk_size=50)
    assert table_contents(settings.database_path) == table_contents(clean.database_path)


def test_a_long_load_tells_how_far_it_has_gone_and_what_is_committed(
    settings: Settings, documents: list[RawDocument]
) -> None:
    heard: list[tuple[int, int, int]] = []
    lines: list[str] = []
    print_line = ingest_progress(lines.append, every=100)

    def hear(result: LoadResult, committed: int) -> None:
        heard.append((result.n_read, result.n_stored, committed))
        print_line(result, committed)

    # chunks of 50 histories (over 200 rows each): a commit after every second chunk
    ingest_job.ingest_documents(settings, iter(documents), chunk_size=50, commit_rows=400,
                                on_progress=hear)
    assert heard == [(50, 50, 0), (100, 100, 100), (150, 150, 100), (200, 200, 200), (250, 250, 200)]
    assert [line.split(" read so far")[0] for line in lines] == [
        "ingesting: 50", "ingesting: 100", "ingesting: 200"]  # the first, then on each commit
    assert lines[1].endswith("(100 cases committed: kept if it stops now)")

    heard.clear()  # a load of one chunk says nothing until its summary
    ingest_job.ingest_documents(settings, iter(documents[:40]), chunk_size=50, on_progress=hear)
    assert heard == []


def test_a_held_database_gives_a_clear_message(settings: Settings, sample_dir: Path) -> None:
    ingest_job.ingest(settings, [sample_dir])
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb,time; c=duckdb.connect({str(settings.database_path)!r}); print('held', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(DatabaseBusyError, match="in use by another process"):
            connect(settings.database_path, wait_seconds=0.5)
    finally:
        holder.kill()
        holder.wait()


def test_an_unreadable_file_is_quarantined_and_the_rest_ingested(
    settings: Settings, sample_dir: Path
) -> None:
    result = ingest_job.ingest(settings, [sample_dir, Path("/proc/self/mem")])
    assert result.n_stored == 400
    reasons = {r.origin: " ".join(r.reasons) for r in result.rejections}
    assert any("could not be read" in why for why in reasons.values())
