"""Nothing personal is stored: after every kind of submission, a quarantined one, a skipped
spreadsheet row, a deletion and a file ingest, no table of the analytics database, no
published snapshot, no export and no inbox file holds a receipt number, an A-number, an
e-mail address or a name that was in the inputs."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipeline.inbox.consent import give_consent
from pipeline.inbox.folder import request_deletion, write_submission
from pipeline.jobs import ingest as ingest_job
from pipeline.jobs import refresh as refresh_job
from pipeline.jobs.inbox import process_inbox
from pipeline.parse.redact import personal_identifiers
from pipeline.prepare.anonymize import load_key
from pipeline.prepare.preview import preview_submission
from pipeline.publish.export import export_tables
from pipeline.publish.reader import current_snapshot
from pipeline.settings import Settings
from tests.support.submission_inputs import (
    A_NUMBER,
    APPLICANT,
    EMAIL,
    REPRESENTATIVE,
    all_kinds,
    api_answer,
    simplified,
)

NOW = datetime(2025, 6, 1, 12, 0)
RECEIPTS = ("IOE0900000002", "LIN9999106499", "MSC2490000123", "SRC2490000777")
NAMES = (APPLICANT, REPRESENTATIVE, "GONZALEZ", "OKONKWO", "Jane Roe")


def leaks(text: str) -> list[str]:
    found = personal_identifiers(text)
    found += [s for s in (*RECEIPTS, *NAMES, EMAIL, A_NUMBER) if s.lower() in text.lower()]
    return found


def database_text(path: Path) -> dict[str, str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [t for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()]
        return {t: json.dumps(con.execute(f'SELECT * FROM "{t}"').fetchall(), default=str) for t in tables}
    finally:
        con.close()


def files_text(folder: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            texts[str(path)] = json.dumps(pl.read_parquet(path).rows(), default=str)
        else:
            texts[str(path)] = path.read_text(errors="replace")
    return texts


def submit(settings: Settings, text: str, skip_invalid: bool = False) -> str:
    preview = preview_submission(text, key=load_key(settings.key_path), now=NOW)
    return write_submission(settings.inbox_dir, preview, give_consent(NOW), now=NOW,
                            skip_invalid=skip_invalid).code


@pytest.mark.slow
def test_no_personal_data_anywhere_after_every_kind_of_input(settings: Settings, tmp_path: Path) -> None:
    settings.ensure_home()
    for text in all_kinds().values():
        submit(settings, text)
    # a conflicting form type (quarantined) and a spreadsheet with a skipped row
    submit(settings, json.dumps(simplified(form="I-485")))
    sheet = ("Name,Email,receipt_number,form_type,office,received_date,approved_date,Notes\n"
             f'"{APPLICANT}",{EMAIL},SRC2490000777,I-140,,2024-01-05,2024-03-01,{A_NUMBER}\n'
             "Jane Roe,jane@example.com,,I-140,TSC,2024-03-05,2024-01-01,call 555-123-4567\n")
    submit(settings, sheet, skip_invalid=True)
    deleted = submit(settings, json.dumps(api_answer() | {"_note": EMAIL}))
    process_inbox(settings)
    request_deletion(settings.inbox_dir, deleted, NOW)
    # a file ingest with one readable and one broken document, both full of personal data
    raw = tmp_path / "raw.jsonl"
    broken = {"case_status": {"receiptNumber": "IOE0900000002", "formType": APPLICANT,
                              "submittedDate": "01-05-2024 10:00:00"}}
    raw.write_text(json.dumps(api_answer()) + "\n" + json.dumps(broken) + "\n")
    ingest_job.ingest(settings, [raw])
    process_inbox(settings)
    refresh_job.refresh(settings)
    refresh_job.publish(settings)
    export_tables(current_snapshot(settings.published_dir), settings.exports_dir)

    stored = database_text(settings.database_path)
    assert {"cases", "status_events", "quarantine", "submissions", "submission_events"} <= set(stored)
    assert '"quarantined"' in stored["submissions"] and '"partly_stored"' in stored["submissions"]
    everything = stored | files_text(settings.published_dir) | files_text(settings.exports_dir) | files_text(
        settings.inbox_dir)
    assert any("exports" in name for name in everything)
    found = {name: leaks(text) for name, text in everything.items() if leaks(text)}
    assert found == {}


def test_the_detector_would_find_each_kind_of_identifier() -> None:
    sample = f"{APPLICANT} {EMAIL} A-123-456-789 IOE0900000002 LIN 99 991 06499"
    found = personal_identifiers(sample)
    assert EMAIL in found and "A-123-456-789" in found and "IOE0900000002" in found
    assert "LIN 99 991 06499" in found
    assert APPLICANT in " ".join(leaks(sample))
