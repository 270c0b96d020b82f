"""The simplified {receiptNumber, formType, currentStatus, events:[{date, description}]} shape
and the public case-status page answer (egov csol)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from pipeline.parse import ParseError
from pipeline.prepare.merge import read_cases
from tests.conftest import REFERENCE_PAYLOADS


def simplified(**changes: Any) -> dict[str, Any]:
    return {
        "receiptNumber": "MSC2490000123",
        "formType": "I-765",
        "currentStatus": "Card Was Mailed To Me",
        "submittedDate": "2024-01-05",
        "lastUpdated": "2024-04-20",
        "events": [
            {"date": "2024-01-05", "description": "We received your Form I-765."},
            {"date": "2024-02-01", "description": "Fingerprints taken at the ASC, call me at 555-123-4567"},
            {"date": "2024-04-02", "description": "Case Was Approved"},
        ],
    } | changes


def test_simplified_history_becomes_dated_stages_without_its_words() -> None:
    [case] = read_cases(simplified())
    assert (case.source, case.form_type, case.received_date) == ("simplified", "I-765", date(2024, 1, 5))
    assert [(e.event_date, e.stage) for e in case.events] == [
        (date(2024, 1, 5), "received"), (date(2024, 2, 1), "biometrics"),
        (date(2024, 4, 2), "approved"), (date(2024, 4, 20), "card_mailed")]
    assert "555" not in repr(case) and "ASC" not in repr(case)


def test_snake_case_spellings_and_dates_in_descriptions() -> None:
    [case] = read_cases({
        "receipt_number": "msc-249-000-0123", "form_type": "i765",
        "events": [{"description": "On January 5, 2024, we received your Form I-765."}]})
    assert case.receipt_number == "MSC2490000123"
    assert case.events[0].event_date == date(2024, 1, 5)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"receiptNumber": "ABC123"}, "not a USCIS receipt number"),
        ({"events": [{"description": "Case Was Approved"}]}, "event 1 has no date"),
        ({"events": "approved"}, "events must be a list"),
        ({"formType": "Form 12"}, "not a USCIS form number"),
    ],
)
def test_bad_simplified_input_says_what_to_fix(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ParseError, match=message):
        read_cases(simplified(**changes))


def egov(part: str) -> Any:
    return json.loads((REFERENCE_PAYLOADS / "egov_csol_case_status.json").read_text())[part]


def test_case_status_page_answer_gives_its_current_status() -> None:
    [case] = read_cases(egov("valid"))
    assert (case.source, case.form_type) == ("egov_csol", "I-765")
    assert [(e.event_date, e.stage) for e in case.events] == [(date(2021, 5, 18), "card_mailed")]
    assert case.received_date is None  # the page does not say when it was received


def test_case_status_page_invalid_receipt_is_explained() -> None:
    with pytest.raises(ParseError, match="not valid"):
        read_cases(egov("invalid"))
