"""A timeline typed by hand: `field: value` lines or the submit page's JSON."""

from __future__ import annotations

from datetime import date

import pytest

from pipeline.parse.errors import ParseError
from pipeline.parse.typed_form import (
    field_name,
    looks_like_key_value_text,
    parse_sheet_date,
    parse_typed_payload,
)


def one(text_or_fields: object):  # type: ignore[no-untyped-def]
    rows = parse_typed_payload(text_or_fields)
    assert not rows.errors, rows.errors
    [timeline] = rows.timelines
    return timeline


def test_typed_lines_become_a_timeline() -> None:
    timeline = one("# my I-485\nForm: I-485  # the green card\nService center = Nebraska Service Center\n"
                   "Receipt date: 5/29/24\nBio: 2024-06-20\nApproved: .\nName: Jane Roe\n")
    assert (timeline.form_type, timeline.intake_office, timeline.received_date) == (
        "I-485", "NSC", date(2024, 5, 29))
    assert [(e.event_date, e.stage) for e in timeline.events] == [
        (date(2024, 5, 29), "received"), (date(2024, 6, 20), "biometrics")]
    assert timeline.receipt_number is None
    assert parse_typed_payload("form: I-485\noffice: NSC\nreceived: 2024-01-01\nName: Jane").ignored == ["Name"]


def test_the_page_json_with_a_receipt_takes_the_office_from_the_receipt() -> None:
    timeline = one({"kind": "typed_form", "receipt_number": "lin 24 900 00123", "form_type": "I-765",
                    "office": "NBC", "received_date": "2024-01-05", "approved_date": "2024-03-01"})
    assert timeline.receipt_number == "LIN2490000123"
    assert (timeline.intake_office, timeline.current_office) == ("NSC", "NBC")


def test_milestones_may_be_nested() -> None:
    timeline = one({"form": "N-400", "office": "ELIS",
                    "milestones": {"received": "2024-02-02", "interview": "2024-08-01"}})
    assert [e.stage for e in timeline.events] == ["received", "interview"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("office: NSC\nreceived: 2024-01-01", "the form type is missing"),
        ("form: I-485\nreceived: 2024-01-01", "the office is missing"),
        ("form: I-485\noffice: NSC", "the received date is missing"),
        ("form: I-999\noffice: NSC\nreceived: 2024-01-01", "I-999 is not a USCIS form we know"),
        ("form: I-485\noffice: Chicago\nreceived: 2024-01-01", "not a USCIS service center or lockbox we know"),
        ("receipt: ABC123\nform: I-485\nreceived: 2024-01-01", "not a USCIS receipt number"),
        ("receipt: A123456789\nform: I-485\nreceived: 2024-01-01", "looks like an A-number"),
        ("form: I-485\noffice: NSC\nreceived: soon", "'soon' is not a date"),
        ("form: I-485\noffice: NSC\nreceived: 2024-02-30", "not a real calendar date"),
        ("form: I-485\noffice: <b>NSC</b>\nreceived: 2024-01-01", "contains HTML or script"),
        ("form: I-485\noffice: NSC\nreceived: 2024-01-01\njust a sentence", "line 4 is not 'field: value'"),
    ],
)
def test_each_problem_has_its_own_message(text: str, message: str) -> None:
    rows = parse_typed_payload(text)
    assert not rows.timelines
    assert any(message in e for e in rows.errors), rows.errors


def test_all_problems_of_a_timeline_are_listed_together() -> None:
    [error] = parse_typed_payload("form: I-999\nreceived: someday").errors
    assert "I-999" in error and "office is missing" in error and "'someday' is not a date" in error


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-29", date(2024, 5, 29)), ("5/29/2024", date(2024, 5, 29)),
        ("5/29/24", date(2024, 5, 29)), (" 05/29/2024 ", date(2024, 5, 29)),
        ("29-May-24", date(2024, 5, 29)), ("May 29, 2024", date(2024, 5, 29)),
        ("2024/05/29", date(2024, 5, 29)), ("45441", date(2024, 5, 29)),
        ("5/29/99", date(1999, 5, 29)), ("2024-05-29 00:00:00", date(2024, 5, 29)),
        ("", None), (".", None), ("-", None), ("n/a", None), ("Pending", None), (None, None),
    ],
)
def test_spreadsheet_dates(raw: object, expected: date | None) -> None:
    assert parse_sheet_date(raw, "approved date") == expected


def test_day_first_dates_are_refused_with_the_order_to_use() -> None:
    with pytest.raises(ParseError, match=r"looks like day/month/year.*1/13/2024"):
        parse_sheet_date("13/01/2024", "approved date")


@pytest.mark.parametrize(
    ("header", "field"),
    [("Receipt Date", "received_date"), ("Receipt #", "receipt_number"), ("RD", "received_date"),
     ("Bio Date", "biometrics_date"), ("Approval", "approved_date"), ("Service Center", "office"),
     ("\ufeffform_type", "form_type"), ("RFE response", "rfe_response_date"), ("Notes", None)],
)
def test_header_spellings(header: str, field: str | None) -> None:
    assert field_name(header) == field


def test_key_value_text_is_recognised() -> None:
    assert looks_like_key_value_text("form: I-485\nreceived: 2024-01-01")
    assert not looks_like_key_value_text("hello: world")
