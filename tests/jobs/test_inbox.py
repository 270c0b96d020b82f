"""The inbox: submissions are never lost, stored or quarantined with a reason the submitter
can look up, merged with the same case from any source, and deleted with all they brought."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from pipeline.inbox.consent import give_consent
from pipeline.inbox.folder import (
    Submitted,
    lookup_status,
    pending_files,
    request_deletion,
    write_submission,
)
from pipeline.jobs import ingest as ingest_job
from pipeline.jobs.inbox import process_inbox
from pipeline.prepare.anonymize import load_key, pseudonymize
from pipeline.prepare.preview import preview_submission
from pipeline.publish.reader import current_snapshot
from pipeline.settings import Settings
from pipeline.store.db import open_store
from tests.support.submission_inputs import api_answer, myuscis_pair, simplified

NOW = datetime(2025, 6, 1, 12, 0)


def submit(settings: Settings, text: str, skip_invalid: bool = False) -> Submitted:
    settings.ensure_home()
    preview = preview_submission(text, key=load_key(settings.key_path), now=NOW)
    return write_submission(settings.inbox_dir, preview, give_consent(NOW), now=NOW,
                            skip_invalid=skip_invalid)


def rows(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(settings.database_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def events_of(settings: Settings, receipt: str) -> list[str]:
    case_id = pseudonymize(receipt, load_key(settings.key_path))
    return [f"{d}:{s}" for d, s in rows(
        settings, f"SELECT event_date, stage FROM status_events WHERE case_id = '{case_id}' ORDER BY 1, 2")]


def published_cases(settings: Settings) -> int:
    return int(str(current_snapshot(settings.published_dir).meta["n_cases"]))


def test_a_submission_is_stored_counted_and_its_status_can_be_looked_up(settings: Settings) -> None:
    submitted = submit(settings, json.dumps(simplified()))
    assert lookup_status(settings.inbox_dir, submitted.code).state == "waiting"
    result = process_inbox(settings)
    assert [s.state for s in result.stored] == ["stored"] and result.published
    assert pending_files(settings.inbox_dir) == []
    assert lookup_status(settings.inbox_dir, submitted.code).state == "received"
    assert published_cases(settings) == 1
    assert rows(settings, "SELECT form_type, intake_office FROM cases") == [("I-765", "NBC")]
    [(kind, version, consented)] = rows(
        settings, "SELECT kind, consent_version, consented_at FROM submissions")
    assert kind == "simplified" and version and consented == NOW


def test_the_same_case_submitted_twice_is_one_case_with_the_union_of_events(settings: Settings) -> None:
    early = simplified()
    early["events"] = early["events"][:2]
    first = submit(settings, json.dumps(early))
    second = submit(settings, json.dumps(simplified()))
    process_inbox(settings)
    assert rows(settings, "SELECT count(*) FROM cases") == [(1,)]
    assert events_of(settings, "MSC2490000123") == [
        "2024-01-05:received", "2024-02-01:biometrics", "2024-04-02:approved"]

    request_deletion(settings.inbox_dir, second.code, NOW)
    process_inbox(settings)
    assert events_of(settings, "MSC2490000123") == ["2024-01-05:received", "2024-02-01:biometrics"]
    request_deletion(settings.inbox_dir, first.code, NOW)
    process_inbox(settings)
    assert rows(settings, "SELECT count(*) FROM cases") == [(0,)]
    assert published_cases(settings) == 0


def test_resubmitting_the_same_history_changes_nothing(settings: Settings) -> None:
    submit(settings, json.dumps(api_answer()))
    process_inbox(settings)
    before = rows(settings, "SELECT * EXCLUDE (last_seen) FROM cases")
    submit(settings, json.dumps(api_answer()))
    result = process_inbox(settings)
    assert (result.stored[0].n_new_cases, result.stored[0].n_new_events) == (0, 0)
    assert rows(settings, "SELECT * EXCLUDE (last_seen) FROM cases") == before


def test_a_claim_about_an_imported_case_is_kept_apart_and_deleting_it_keeps_the_case(
    settings: Settings, tmp_path: Path
) -> None:
    polled = api_answer()
    polled["case_status"]["hist_case_status"] = polled["case_status"]["hist_case_status"][:2]
    polled["case_status"] |= {"current_case_status_text_en": "Case Was Received",
                              "current_case_status_desc_en": "", "modifiedDate": "03-15-2023 09:12:44"}
    (tmp_path / "polled.json").write_text(json.dumps(polled))
    ingest_job.ingest(settings, [tmp_path / "polled.json"])  # as the polling registry stores it
    assert events_of(settings, "LIN9999106499") == ["2023-03-15:received", "2023-04-10:biometrics"]

    submitted = submit(settings, json.dumps(api_answer()))
    process_inbox(settings)
    assert rows(settings, "SELECT count(*), any_value(sources) FROM cases") == [
        (1, ["case_status_api"])]
    # self-reported data never changes data others vouch for: the claim is kept apart
    assert events_of(settings, "LIN9999106499") == ["2023-03-15:received", "2023-04-10:biometrics"]
    assert rows(settings, "SELECT reason FROM claims_apart") == [("operator_case",)]

    request_deletion(settings.inbox_dir, submitted.code, NOW)
    process_inbox(settings)
    assert events_of(settings, "LIN9999106499") == ["2023-03-15:received", "2023-04-10:biometrics"]
    assert rows(settings, "SELECT count(*) FROM cases") == [(1,)]
    assert rows(settings, "SELECT count(*) FROM claims_apart") == [(0,)]


def test_a_conflicting_form_type_is_kept_apart_and_the_status_does_not_say_so(
    settings: Settings,
) -> None:
    submit(settings, json.dumps(simplified(form="I-765")))
    process_inbox(settings)
    wrong = submit(settings, json.dumps(simplified(form="I-485")))
    result = process_inbox(settings)
    assert [s.state for s in result.stored] == ["quarantined"]  # the private record
    status = lookup_status(settings.inbox_dir, wrong.code)
    assert (status.state, status.reasons) == ("received", ())  # no oracle for the submitter
    assert "I-765" not in status.describe()
    assert rows(settings, "SELECT form_type FROM cases") == [("I-765",)]
    [(reason, attempt)] = rows(settings, "SELECT reason, attempt FROM claims_apart")
    assert reason == "form_conflict" and json.loads(str(attempt))["form_type"] == "I-485"
    assert "MSC2490000123" not in str(attempt)

    request_deletion(settings.inbox_dir, wrong.code, NOW)
    process_inbox(settings)
    assert rows(settings, "SELECT count(*) FROM claims_apart") == [(0,)]
    assert rows(settings, "SELECT form_type FROM cases") == [("I-765",)]


def test_skipped_rows_of_a_spreadsheet_are_kept_only_as_anonymized_attempts(settings: Settings) -> None:
    text = ("form_type,office,received_date,approved_date\n"
            "I-765,NSC,2024-01-05,2024-03-01\nI-765,NSC,2024-03-05,2024-01-01\n")
    submitted = submit(settings, text, skip_invalid=True)
    process_inbox(settings)
    status = lookup_status(settings.inbox_dir, submitted.code)
    assert (status.state, status.n_stored, status.n_quarantined) == ("received", 1, 1)
    assert status.reasons[0].startswith("row 3: the approved date 2024-01-01 is before")
    [(reasons, attempt)] = rows(settings, "SELECT reasons, attempt FROM quarantine")
    assert json.loads(str(attempt))["received_date"] == "2024-03-05"
    assert "before USCIS received the case" in str(reasons)


def test_deleting_a_submission_that_still_waits_means_it_is_never_stored(settings: Settings) -> None:
    submitted = submit(settings, json.dumps(api_answer()))
    assert request_deletion(settings.inbox_dir, submitted.code, NOW).state == "deletion_requested"
    assert pending_files(settings.inbox_dir) == []
    process_inbox(settings)
    assert lookup_status(settings.inbox_dir, submitted.code).state == "deleted"
    assert not settings.database_path.exists() or rows(settings, "SELECT count(*) FROM cases") == [(0,)]


def test_deletion_removes_every_row_derived_from_the_case(settings: Settings) -> None:
    submitted = submit(settings, "\n".join(json.dumps(p) for p in myuscis_pair()))
    process_inbox(settings)
    case_tables = [t for (t,) in rows(settings, "SELECT DISTINCT table_name FROM information_schema.columns"
                                                " WHERE column_name = 'case_id'")]
    assert rows(settings, "SELECT count(*) FROM case_durations") == [(1,)]
    request_deletion(settings.inbox_dir, submitted.code, NOW)
    process_inbox(settings)
    for table in case_tables:
        assert rows(settings, f"SELECT count(*) FROM {table}") == [(0,)], table
    durations = current_snapshot(settings.published_dir).table("durations")
    assert durations.height == 0


HOLD_THE_DATABASE = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()
con.close()
"""


@pytest.mark.slow
def test_submitting_works_while_a_flow_holds_the_database(settings: Settings) -> None:
    with open_store(settings.database_path):
        pass  # create the file
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_DATABASE, str(settings.database_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        submitted = submit(settings, json.dumps(api_answer()))
        assert lookup_status(settings.inbox_dir, submitted.code).state == "waiting"
        assert len(pending_files(settings.inbox_dir)) == 1
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=60)
    process_inbox(settings)
    assert lookup_status(settings.inbox_dir, submitted.code).state == "received"


def test_a_damaged_inbox_file_is_set_aside_and_the_others_are_stored(settings: Settings) -> None:
    good = submit(settings, json.dumps(api_answer()))
    (settings.inbox_dir / "pending" / "s_00000000T000000_damaged.json").write_text('{"format": ')
    result = process_inbox(settings)
    assert result.unreadable == ["s_00000000T000000_damaged.json"]
    assert (settings.inbox_dir / "unreadable" / "s_00000000T000000_damaged.json").exists()
    assert lookup_status(settings.inbox_dir, good.code).state == "received"


def test_free_text_smuggled_into_an_inbox_file_never_reaches_the_database(settings: Settings) -> None:
    submit(settings, json.dumps(api_answer()))
    [path] = pending_files(settings.inbox_dir)
    envelope = json.loads(path.read_text())
    envelope["cases"][0]["events"][0][2] = "Call Maria at maria@example.org"
    path.write_text(json.dumps(envelope))
    process_inbox(settings)
    assert ("Call Maria at maria@example.org",) not in rows(settings, "SELECT title FROM status_events")
    assert ("Case Was Received",) in rows(settings, "SELECT title FROM status_events")


def test_a_failure_midway_leaves_the_database_as_it_was_and_the_submission_waiting(
    settings: Settings,
) -> None:
    with open_store(settings.database_path) as con:  # the last write of a store will fail
        con.execute("ALTER TABLE submissions ADD COLUMN unexpected VARCHAR NOT NULL")
    submitted = submit(settings, json.dumps(api_answer()))
    with pytest.raises(duckdb.Error):
        process_inbox(settings)
    assert rows(settings, "SELECT count(*) FROM cases") == [(0,)]
    assert rows(settings, "SELECT count(*) FROM submission_events") == [(0,)]
    assert lookup_status(settings.inbox_dir, submitted.code).state == "waiting"
    assert len(pending_files(settings.inbox_dir)) == 1


@pytest.mark.usefixtures("prefect_harness")
def test_the_inbox_flow_stores_and_deletes(settings: Settings) -> None:
    from flows.inbox import inbox_flow

    submitted = submit(settings, json.dumps(api_answer()))
    result = inbox_flow()
    assert [s.state for s in result.stored] == ["stored"] and result.published
    assert published_cases(settings) == 1
    request_deletion(settings.inbox_dir, submitted.code, NOW)
    again = inbox_flow()
    assert [d.found for d in again.deletions] == [True]
    assert published_cases(settings) == 0


RUN_THE_INBOX = """
from pipeline.settings import load_settings
from pipeline.jobs.inbox import process_inbox
process_inbox(load_settings())
"""


@pytest.mark.slow
def test_two_inbox_runs_at_once_store_every_submission_exactly_once(settings: Settings) -> None:
    codes = [submit(settings, json.dumps(simplified(receipt=f"MSC24900001{n:02d}"))).code
             for n in range(6)]
    runs = [subprocess.Popen([sys.executable, "-c", RUN_THE_INBOX], stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    for run in runs:
        _, errors = run.communicate(timeout=300)
        assert run.returncode == 0, errors
    assert {lookup_status(settings.inbox_dir, code).state for code in codes} == {"received"}
    assert rows(settings, "SELECT count(*), count(DISTINCT submission_id) FROM submissions") == [(6, 6)]
    assert rows(settings, "SELECT count(*) FROM cases") == [(6,)]


def test_deleting_keeps_a_case_the_poller_also_knows(settings: Settings) -> None:
    submitted = submit(settings, json.dumps(api_answer()))
    process_inbox(settings)
    case_id = pseudonymize("LIN9999106499", load_key(settings.key_path))
    with open_store(settings.database_path) as con:  # the poller asked USCIS about it (not found)
        con.execute("INSERT INTO poll_outcomes (run_id, case_id, polled_at, outcome) "
                    "VALUES (99, ?, ?, 'not_found')", [case_id, NOW])
    request_deletion(settings.inbox_dir, submitted.code, NOW)
    process_inbox(settings)
    assert rows(settings, "SELECT count(*) FROM status_events") == [(0,)]
    assert rows(settings, "SELECT case_id FROM cases") == [(case_id,)]
    assert rows(settings, "SELECT count(*) FROM poll_outcomes") == [(1,)]
