"""Submitting a history: preview exactly what is kept, consent, a one-time deletion code,
and a specific message for every kind of bad input. Nothing is stored before consent."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from pipeline.inbox.codes import InvalidCodeError, hash_code, normalize_code
from pipeline.inbox.consent import CONSENT_VERSION, give_consent
from pipeline.inbox.folder import (
    SubmissionRefused,
    lookup_status,
    pending_files,
    write_submission,
)
from pipeline.parse.redact import personal_identifiers
from pipeline.prepare.anonymize import PseudonymKey, load_key, pseudonymize
from pipeline.prepare.preview import MAX_PASTE_BYTES, preview_submission
from pipeline.settings import Settings
from tests.support.cli import timelines as run_timelines
from tests.support.submission_inputs import APPLICANT, EMAIL, all_kinds, api_answer

NOW = datetime(2025, 6, 1, 12, 0)
KEY = PseudonymKey(b"k" * 64)


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.mark.parametrize(("kind", "text"), list(all_kinds().items()))
def test_every_kind_previews_as_anonymized_rows_and_writes_nothing(
    kind: str, text: str, settings: Settings
) -> None:
    preview = preview_submission(text, key=KEY, now=NOW)
    assert preview.ok, preview.errors
    assert preview.kind == kind
    assert all(r.case_id.startswith("c_") for r in preview.records)
    shown = json.dumps([preview.case_rows(), preview.event_rows()], default=str)
    assert personal_identifiers(shown) == [] and APPLICANT not in shown
    assert files_under(settings.home) == []


def test_the_same_receipt_gets_the_polling_pseudonym() -> None:
    [record] = preview_submission(json.dumps(api_answer()), key=KEY, now=NOW).records
    assert record.case_id == pseudonymize("LIN9999106499", KEY)


def test_without_a_key_no_pseudonym_is_shown_and_nothing_can_be_stored(settings: Settings) -> None:
    preview = preview_submission(json.dumps(api_answer()), key=None, now=NOW)
    assert preview.ok and preview.case_rows()[0]["pseudonym"] is None
    with pytest.raises(SubmissionRefused):
        write_submission(settings.inbox_dir, preview, give_consent(NOW), now=NOW)


def test_an_explicit_kind_that_does_not_match_says_what_it_is() -> None:
    preview = preview_submission(json.dumps(api_answer()), "myuscis", key=KEY, now=NOW)
    assert preview.errors == ("you chose myUSCIS JSON, but this is an official Case Status API "
                              "answer: choose that kind, or 'auto'",)


BAD_INPUTS = [
    ('{"case_status": {"receiptNumber": ', "this is not valid JSON"),
    ('{"hello": "world"}', "shape we do not recognise"),
    ("x" * (MAX_PASTE_BYTES + 10), "the limit is 1 MB"),
    ("form: I-485\noffice: NSC\nreceived: 2024-01-01\napproved: 2031-01-01", "is in the future"),
    ("form: I-485\noffice: NSC\nreceived: 1985-01-01", "is before 1990"),
    ("form: I-485\noffice: NSC\nreceived: 2024-03-01\napproved: 2024-01-01",
     "a decision cannot come before the receipt"),
    ("form: I-4850\noffice: NSC\nreceived: 2024-01-01", "I-4850 is not a USCIS form we know"),
    (json.dumps({"receiptNumber": "LIN12", "formType": "I-485", "events": [
        {"date": "2024-01-01", "description": "received"}]}), "'LIN12' is not a USCIS receipt number"),
    ("EAC2190000001", "this is only a receipt number"),
    ("<!DOCTYPE html><html><body>Sign in</body></html>", "this is a web page (HTML)"),
    ('{"receiptNumber": "<script>alert(1)</script>"}', "the input contains script"),
    ("form: I-485\noffice: <img src=x>\nreceived: 2024-01-01", "contains script"),
    ("", "nothing was given"),
    ('{"data": null}', "not signed in"),
]


@pytest.mark.parametrize(("text", "message"), BAD_INPUTS)
def test_bad_input_gets_a_specific_message_and_nothing_to_store(text: str, message: str) -> None:
    preview = preview_submission(text, key=KEY, now=NOW)
    assert not preview.ok
    assert any(message in error for error in preview.errors), preview.errors


def test_future_dates_in_a_json_history_are_refused_too() -> None:
    answer = api_answer()
    answer["case_status"]["hist_case_status"][1]["date"] = "2031-04-10"
    [error] = preview_submission(json.dumps(answer), key=KEY, now=NOW).errors
    assert "the biometrics date 2031-04-10 is in the future" in error


def test_answers_pasted_one_after_another_are_read_together() -> None:
    text = all_kinds()["myuscis"]
    assert "\n" in text and preview_submission(text, key=KEY, now=NOW).ok


def test_a_consented_submission_stores_only_the_anonymized_rows_and_the_consent(settings: Settings) -> None:
    text = all_kinds()["myuscis"]
    preview = preview_submission(text, key=KEY, now=NOW)
    submitted = write_submission(settings.inbox_dir, preview, give_consent(NOW), now=NOW)
    [pending] = pending_files(settings.inbox_dir)
    stored = pending.read_text()
    assert "IOE0900000002" not in stored and APPLICANT not in stored and EMAIL not in stored
    assert submitted.code not in stored and normalize_code(submitted.code) not in stored
    envelope = json.loads(stored)
    assert envelope["deletion_hash"] == hash_code(submitted.code)
    assert envelope["consent"]["version"] == CONSENT_VERSION
    assert envelope["consent"]["given_at"] == "2025-06-01T12:00:00"
    assert [c["form_type"] for c in envelope["cases"]] == ["I-485"]
    assert lookup_status(settings.inbox_dir, submitted.code).state == "waiting"
    assert not list((settings.inbox_dir / ".tmp").iterdir())  # no temporary file left behind


def test_deletion_codes_are_random_not_derived_from_the_receipt(settings: Settings) -> None:
    preview = preview_submission(json.dumps(api_answer()), key=KEY, now=NOW)
    codes = {write_submission(settings.inbox_dir, preview, give_consent(NOW), now=NOW).code
             for _ in range(5)}
    assert len(codes) == 5
    assert all(code.startswith("TL-") and len(code) == 27 for code in codes)


def test_codes_forgive_case_spaces_and_look_alike_letters() -> None:
    assert normalize_code("tl 7kq4 m2xd 9hrw b6zp 3tnc") == normalize_code("TL-7KQ4-M2XD-9HRW-B6ZP-3TNC")
    assert normalize_code("TL-7KQ4-M2XD-9HRW-B6ZP-3TNO") == normalize_code("TL-7KQ4-M2XD-9HRW-B6ZP-3TN0")
    with pytest.raises(InvalidCodeError):
        normalize_code("EAC2190000001")


def test_a_preview_with_problems_is_refused_unless_the_bad_rows_are_skipped(settings: Settings) -> None:
    text = ("form_type,office,received_date,approved_date\n"
            "I-765,NSC,2024-01-05,2024-03-01\nI-765,NSC,2024-03-05,2024-01-01\n")
    preview = preview_submission(text, key=KEY, now=NOW)
    assert len(preview.records) == 1 and len(preview.rejected) == 1
    with pytest.raises(SubmissionRefused, match="row 3: the approved date"):
        write_submission(settings.inbox_dir, preview, give_consent(NOW), now=NOW)
    submitted = write_submission(settings.inbox_dir, preview, give_consent(NOW), now=NOW,
                                 skip_invalid=True)
    assert (submitted.n_cases, submitted.n_rejected) == (1, 1)


# --- the command line, as a user runs it -------------------------------------------------

def timelines(*args: str, home: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_timelines(*args, home=home, stdin=stdin, TIMELINES_MIN_GROUP_SIZE="1")


SUFFIXES = {"case_status_api": ".json", "myuscis": ".json", "simplified": ".json",
            "typed_form": ".txt", "csv_import": ".csv"}


@pytest.mark.slow
def test_cli_preview_without_consent_stores_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    source = tmp_path / "history.csv"
    source.write_text(all_kinds()["csv_import"])
    dry = timelines("submit", str(source), home=home)
    assert dry.returncode == 0, dry.stderr
    assert "Nothing was stored" in dry.stdout and "Consent (version" in dry.stdout
    assert "row 2" in dry.stdout and "TSC" in dry.stdout
    assert not (home / "inbox" / "pending").exists() or not any((home / "inbox" / "pending").iterdir())


@pytest.mark.slow
def test_cli_every_kind_is_stored_counted_and_deleted_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    codes: dict[str, str] = {}
    n_cases = 0
    for kind, text in all_kinds().items():
        source = tmp_path / f"{kind}{SUFFIXES[kind]}"
        source.write_text(text)
        done = timelines("submit", str(source), "--consent", "--format", "json", home=home)
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["state"] == "received" and answer["submitted"], answer
        codes[kind] = answer["deletion_code"]
        n_cases += len(answer["cases"])

    stats = json.loads(timelines("stats", "--format", "json", home=home).stdout)
    assert sum(r["n_cases"] or 0 for r in stats) == n_cases == 6

    status = timelines("submission-status", codes["myuscis"], home=home)
    assert "processed: 1 case(s) taken in" in status.stdout
    for code in codes.values():
        gone = timelines("delete", code, home=home)
        assert gone.returncode == 0 and "deleted" in gone.stdout, gone.stderr
    after = json.loads(timelines("stats", "--format", "json", home=home).stdout)
    assert sum(r["n_cases"] or 0 for r in after) == 0


@pytest.mark.slow
def test_cli_reads_standard_input_and_refuses_bad_input_with_exit_2(tmp_path: Path) -> None:
    home = tmp_path / "home"
    bad = timelines("submit", "-", "--consent", home=home, stdin='{"case_status": ')
    assert bad.returncode == 2
    assert "this is not valid JSON" in bad.stderr and "nothing was submitted" in bad.stderr
    unknown = timelines("delete", "TL-0000-0000-0000-0000-0000", home=home)
    assert unknown.returncode == 2 and "no submission has this deletion code" in unknown.stderr
    nothing = timelines("ingest", home=home)
    assert nothing.returncode == 2 and "--inbox" in nothing.stderr


@pytest.mark.slow
def test_cli_ingest_inbox_stores_what_was_queued_without_ingesting(tmp_path: Path) -> None:
    home = tmp_path / "home"
    source = tmp_path / "history.json"
    source.write_text(json.dumps(api_answer()))
    queued = json.loads(timelines("submit", str(source), "--consent", "--no-ingest", "--format",
                                  "json", home=home).stdout)
    assert queued["state"] == "waiting"
    ran = timelines("ingest", "--inbox", home=home)
    assert ran.returncode == 0, ran.stderr
    assert "1 submission(s) processed, 1 case(s) stored" in ran.stdout
    assert "processed" in timelines("submission-status", queued["deletion_code"], home=home).stdout
    assert load_key(home / "pseudonym.key")  # one key for polling and submissions
