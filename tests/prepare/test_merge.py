"""One merge rule for partial views of a case, wherever they meet: pasted together, in one
ingest chunk, in a preview, and against what is already stored."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import orjson
import pytest

from pipeline.jobs import ingest as ingest_job
from pipeline.model import CaseRecord, ParsedCase, StatusEvent
from pipeline.prepare.anonymize import PseudonymKey
from pipeline.prepare.funnel import anonymize_cases
from pipeline.prepare.merge import MergeConflict, merge_by_id, merge_parsed, merge_two
from pipeline.prepare.preview import preview_submission
from pipeline.settings import Settings
from pipeline.store.db import connect

KEY = PseudonymKey(b"k" * 32)
RECEIPT = "LIN2190012345"


def view(**changes: object) -> ParsedCase:
    base: dict[str, object] = {
        "receipt_number": RECEIPT, "source": "myuscis", "form_type": "I-140",
        "received_date": date(2021, 1, 4),
        "events": [StatusEvent(date(2021, 1, 4), "Case Was Received", "received")],
        "observed_at": datetime(2021, 3, 1),
    }
    base.update(changes)
    return ParsedCase(**base)  # type: ignore[arg-type]


# The cases where the four old copies disagreed: current office (first vs last), synthetic
# (OR vs AND), premium (first non-null vs any).
def test_the_later_observation_names_the_current_office() -> None:
    early = view(current_office="NSC", observed_at=datetime(2021, 2, 1))
    late = view(current_office="TSC", observed_at=datetime(2021, 5, 1))
    assert merge_two(early, late).current_office == "TSC"
    assert merge_two(late, early).current_office == "TSC"  # order of input does not matter
    assert merge_two(late, view(current_office=None)).current_office == "TSC"


def test_a_case_is_synthetic_only_when_every_view_is() -> None:
    assert merge_two(view(synthetic=True), view(synthetic=False)).synthetic is False
    assert merge_two(view(synthetic=True), view(synthetic=True)).synthetic is True


def test_premium_if_any_view_says_premium_and_processing_follows() -> None:
    merged = merge_two(view(premium=False), view(premium=True))
    assert (merged.premium, merged.processing) == (True, "premium")
    assert merge_two(view(premium=None), view(premium=False)).premium is False
    assert merge_two(view(premium=None), view(premium=None)).processing == "regular"


def test_dates_category_and_tracking_merge_by_the_documented_rule() -> None:
    one = view(received_date=date(2021, 1, 5), category=None, tracked_since=None,
               last_checked=date(2021, 6, 1))
    two = view(received_date=date(2021, 1, 4), category="NIW", tracked_since=date(2021, 3, 1),
               last_checked=None, observed_at=datetime(2021, 9, 1))
    merged = merge_two(one, two)
    assert merged.received_date == date(2021, 1, 4)
    assert merged.category == "NIW"
    assert merged.tracked_since == date(2021, 3, 1)  # the earliest date any view gives
    assert merged.last_checked == date(2021, 9, 1)  # the latest day the case was seen


def test_a_given_receipt_date_replaces_an_estimate() -> None:
    estimated = view(received_date=date(2021, 1, 1), received_estimated=True)
    given = view(received_date=date(2021, 1, 6))
    merged = merge_two(estimated, given)
    assert (merged.received_date, merged.received_estimated) == (date(2021, 1, 6), False)


@pytest.mark.parametrize("field, a, b", [("form_type", "I-140", "I-485"), ("category", "E11", "NIW")])
def test_disagreeing_form_types_or_categories_are_refused_everywhere(field: str, a: str, b: str) -> None:
    with pytest.raises(MergeConflict, match="different"):
        merge_parsed([view(**{field: a}), view(**{field: b})])
    batch = anonymize_cases([("one.json", view(**{field: a})), ("two.json", view(**{field: b}))],
                            KEY, datetime(2021, 9, 1))
    assert not batch.records and len(batch.rejections) == 1
    assert "different" in batch.rejections[0].reasons[0]


def record(case_id: str = "c_" + "0" * 32, **changes: object) -> CaseRecord:
    base: dict[str, object] = {
        "case_id": case_id, "source": "typed_form", "form_type": "I-140", "intake_office": "NSC",
        "current_office": None, "fiscal_year": 2021, "received_date": date(2021, 1, 4),
        "premium": None, "observed_at": datetime(2021, 3, 1), "last_modified": None,
        "synthetic": False,
    }
    base.update(changes)
    return CaseRecord(**base)  # type: ignore[arg-type]


def test_merge_by_id_keeps_the_first_label_and_reports_conflicts_with_both() -> None:
    merged, conflicts = merge_by_id([
        ("row 2", record(premium=True)), ("row 3", record(current_office="TSC")),
        ("row 4", record("c_" + "1" * 32, form_type="I-485")),
        ("row 5", record("c_" + "1" * 32, form_type="I-765")),
    ])
    label, one = merged["c_" + "0" * 32]
    assert (label, one.premium, one.current_office) == ("row 2", True, "TSC")
    assert conflicts == {"c_" + "1" * 32: ("different form types (I-485 and I-765)", ["row 4", "row 5"])}


def test_the_preview_uses_the_same_rule() -> None:
    rows = ("receipt_number,form_type,received_date,premium,category\n"
            f"{RECEIPT},I-140,2021-01-04,no,\n{RECEIPT},I-140,2021-01-04,yes,EB2\n")
    shown = preview_submission(rows, "csv", key=KEY, now=datetime(2021, 9, 1))
    [merged] = shown.records
    assert (merged.processing, merged.category) == ("premium", "E21")


def test_the_store_merges_by_the_same_rule(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    first = {"receipt_number": RECEIPT, "form_type": "I-140", "status": "Case Was Received",
             "status_date": "2021-01-04", "received_date": "2021-01-04"}
    (tmp_path / "a.json").write_bytes(orjson.dumps(first))
    ingest_job.ingest_files(settings, [tmp_path / "a.json"], as_of=date(2021, 2, 1))
    table = tmp_path / "b.csv"
    table.write_text("receipt_number,form_type,received_date,premium,category,tracked_since,last_checked\n"
                     f"{RECEIPT},I-140,2021-01-04,yes,NIW,2021-01-20,2021-03-01\n")
    ingest_job.ingest_files(settings, [table])
    table.write_text("receipt_number,form_type,received_date,premium,category\n"
                     f"{RECEIPT},I-140,2021-01-04,no,E11\n")
    conflict = ingest_job.ingest_files(settings, [table], as_of=date(2021, 4, 1))
    con = connect(settings.database_path, read_only=True)
    try:
        row = con.execute("SELECT premium, processing, category, tracked_since, last_checked"
                          " FROM cases").fetchall()
    finally:
        con.close()
    assert row == [(True, "premium", "NIW", date(2021, 1, 20), date(2021, 3, 1))]
    assert conflict.rows_quarantined == 1 and "category NIW" in conflict.rejections[0].reasons[0]


def test_a_poll_of_a_pending_case_starts_its_observation_and_later_polls_keep_it() -> None:
    from pipeline.prepare.merge import observed_by_poll

    first = observed_by_poll(view(), datetime(2021, 3, 1, 9))
    assert first.tracked_since == date(2021, 3, 1)
    decided = view(events=[StatusEvent(date(2021, 1, 4), "Case Was Received", "received"),
                           StatusEvent(date(2021, 6, 1), "Case Was Approved", "approved")])
    later = observed_by_poll(decided, datetime(2021, 6, 2, 9))
    assert later.tracked_since is None  # decided at this poll: says nothing about tracking
    assert merge_two(first, later).tracked_since == date(2021, 3, 1)


def test_as_of_dates_json_documents_too(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    pending = {"receipt_number": RECEIPT, "form_type": "I-140", "status": "Case Was Received",
               "status_date": "2013-01-04", "received_date": "2013-01-04"}
    (tmp_path / "old.jsonl").write_bytes(orjson.dumps(pending) + b"\n")
    ingest_job.ingest_files(settings, [tmp_path / "old.jsonl"], as_of=date(2014, 6, 30))
    con = connect(settings.database_path, read_only=True)
    try:
        assert con.execute("SELECT last_checked FROM cases").fetchall() == [(date(2014, 6, 30),)]
    finally:
        con.close()


def test_the_preview_shows_a_code_it_cannot_name_as_a_dated_other_event() -> None:
    detail = {"data": {"receiptNumber": "IOE0900000002", "formType": "I-485", "submissionDate": "2024-05-29",
                       "events": [{"eventCode": "ZZQ9", "eventDateTime": "2024-08-01"}], "notices": []}}
    shown = preview_submission(orjson.dumps(detail).decode(), key=None, now=datetime(2024, 9, 1))
    assert {"case": "the case", "date": date(2024, 8, 1), "stage": "other",
            "title": "Event code ZZQ9 (meaning not known)"} in shown.event_rows()
    assert any("ZZQ9" in note and "kept as dated 'other' events" in note for note in shown.notes)
