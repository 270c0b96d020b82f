"""Parsing the official API answer and myUSCIS case_status into the canonical model."""

from __future__ import annotations

import json
from datetime import date

import pytest

from pipeline.parse import ParseError
from pipeline.prepare.merge import read_cases
from pipeline.receipts import InvalidReceiptError, fiscal_year, intake_office, normalize_receipt
from pipeline.stages import classify
from tests.conftest import REFERENCE_PAYLOADS


def body(name: str) -> object:
    return json.loads((REFERENCE_PAYLOADS / name).read_text())["body"]


def test_api_answer_with_history_becomes_dated_stages() -> None:
    [case] = read_cases(body("torch_case_status_success_with_history.json"))
    assert case.receipt_number == "LIN9999106499"
    assert case.form_type == "I-485"
    assert case.received_date == date(2023, 3, 15)
    assert [(e.event_date, e.stage) for e in case.events] == [
        (date(2023, 3, 15), "received"),
        (date(2023, 4, 10), "biometrics"),
        (date(2023, 7, 15), "rfe"),
        (date(2023, 9, 28), "rfe_response"),
        (date(2024, 1, 20), "approved"),
    ]


def test_api_answer_without_history_keeps_current_status() -> None:
    [case] = read_cases(body("torch_case_status_success_no_history.json"))
    assert [(e.stage, e.title) for e in case.events][-1] == ("approved", "Case Approval Was Affirmed")


def test_ioe_answer_without_dates_takes_the_date_from_the_description() -> None:
    [case] = read_cases(body("torch_case_status_success_ioe_variant.json"))
    assert case.received_date == date(2024, 5, 29)
    assert (date(2024, 7, 9), "review") in [(e.event_date, e.stage) for e in case.events]


@pytest.mark.parametrize("hist_date", ["2023-03-15", "03-15-2023 00:00:00"])
def test_both_history_date_formats(hist_date: str) -> None:
    payload = {"case_status": {
        "receiptNumber": "EAC2390000001", "formType": "I-130",
        "current_case_status_text_en": "Case Was Received",
        "current_case_status_desc_en": "On March 15, 2023, we received your Form I-130 &#39;x&#39; <a href='#'>y</a>",
        "hist_case_status": [{"date": hist_date, "completed_text_en": "We received your Form I-130."}],
    }}
    [case] = read_cases(payload)
    assert case.received_date == date(2023, 3, 15)
    assert all("<" not in e.title for e in case.events)


def test_myuscis_case_status_gives_current_office() -> None:
    [case] = read_cases(body("myuscis_case_status.json"))
    assert case.current_office == "NSC"
    assert case.receipt_number == "IOE0900000002"


def test_not_signed_in_answer_says_so() -> None:
    with pytest.raises(ParseError, match="not signed in"):
        read_cases({"data": None})


def test_unknown_shape_lists_what_is_expected() -> None:
    with pytest.raises(ParseError, match="shape we do not recognise"):
        read_cases({"hello": "world"})


@pytest.mark.parametrize("raw", ["EAC 23-900-00001", "eac2390000001", "EAC-2390000001"])
def test_receipt_normalisation(raw: str) -> None:
    assert normalize_receipt(raw) == "EAC2390000001"


@pytest.mark.parametrize("raw", ["ABC2390000001", "EAC239000000", "hello", "A123456789"])
def test_malformed_receipts_are_refused_with_the_expected_format(raw: str) -> None:
    with pytest.raises(InvalidReceiptError, match="receipt"):
        normalize_receipt(raw)


@pytest.mark.parametrize(
    ("receipt", "office", "year"),
    [("EAC2390000001", "VSC", 2023), ("WAC2190000001", "CSC", 2021), ("LIN9999106499", "NSC", 1999),
     ("SRC2490000001", "TSC", 2024), ("MSC2390000001", "NBC", 2023), ("YSC2390000001", "PSC", 2023),
     ("IOE0900000001", "ELIS", None)],
)
def test_offices_and_fiscal_years_from_receipts(receipt: str, office: str, year: int | None) -> None:
    assert intake_office(receipt) == office
    assert fiscal_year(receipt) == year


@pytest.mark.parametrize(
    ("text", "stage"),
    [("Case Was Approved", "approved"), ("CASE WAS APPROVED", "approved"),
     ("We sent you a request for evidence.", "rfe"),
     ("We received your response to our request for evidence.", "rfe_response"),
     ("We scheduled your biometrics appointment.", "biometrics"),
     ("Case Was Transferred And A New Office Has Jurisdiction", "transferred"),
     ("We mailed your new card.", "card_mailed"), ("Something nobody has seen", "other")],
)
def test_titles_and_sentences_map_to_stages(text: str, stage: str) -> None:
    assert classify(text)[1] == stage
