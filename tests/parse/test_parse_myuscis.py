"""myUSCIS JSON as people copy it: each endpoint alone or several together, with or without
the {"data": ...} wrapper, event codes named from historicalCaseStatuses, names ignored."""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

import pytest

from pipeline.parse import ParseError
from pipeline.parse.myuscis import myuscis_kind, unnamed_codes
from pipeline.prepare.merge import read_cases
from pipeline.stages import APPROVAL_IMPLIED_BY
from tests.conftest import REFERENCE_PAYLOADS


def payload(name: str, part: str = "body") -> Any:
    return copy.deepcopy(json.loads((REFERENCE_PAYLOADS / name).read_text())[part])


def case_status(history_title: str = "Case Was Received") -> dict[str, Any]:
    """The reference case_status answer with a real title in place of its placeholder."""
    answer = payload("myuscis_case_status.json")
    answer["data"]["historicalCaseStatuses"][0]["statusTitle"] = history_title
    return answer


def stages(document: object) -> list[tuple[date, str]]:
    [case] = read_cases(document)
    return [(e.event_date, e.stage) for e in case.events]


def test_case_status_alone_gives_office_history_and_current_status() -> None:
    [case] = read_cases(case_status())
    assert case.receipt_number == "IOE0900000002"
    assert case.current_office == "NSC"
    assert case.received_date == date(2024, 5, 30)
    assert [(e.event_date, e.stage) for e in case.events] == [
        (date(2024, 5, 30), "received"), (date(2024, 7, 9), "review")]


def test_case_detail_events_get_titles_learned_from_the_case_status_history() -> None:
    detail = payload("myuscis_case_detail.json")
    together = stages([detail, case_status()])
    # IAF is named "Case Was Received" by the history, FTA0 by the current status
    assert (date(2024, 5, 30), "received") in together
    assert (date(2024, 7, 9), "review") in together
    assert unnamed_codes([detail, case_status()]) == set()


def test_case_detail_alone_places_its_codes_from_its_notices_and_the_known_codes() -> None:
    detail = payload("myuscis_case_detail.json")
    [case] = read_cases(detail)
    assert case.form_type == "I-485"
    assert case.received_date == date(2024, 5, 29)
    # IAF: the known-code table; the notice: scheduled on its generation date; FTA0: dated on
    # the notice's appointment day, so the appointment took place (not "still to come")
    assert [(e.event_date, e.stage, e.title) for e in case.events] == [
        (date(2024, 5, 30), "received", "Case Was Received"),
        (date(2024, 6, 19), "biometrics", "Biometrics Appointment Was Scheduled"),
        (date(2024, 7, 9), "biometrics", "Case Was Updated To Show Fingerprints Were Taken"),
    ]
    assert unnamed_codes([detail]) == set()


def _with_events(detail: dict[str, Any], *codes: tuple[str, str]) -> dict[str, Any]:
    detail["data"]["events"] = [
        {"eventCode": code, "eventDateTime": day, "eventId": str(i)}
        for i, (code, day) in enumerate(codes)
    ]
    return detail


def test_an_unknown_code_is_kept_as_a_dated_other_event_and_named() -> None:
    detail = _with_events(payload("myuscis_case_detail.json"), ("IAF", "2024-05-30"), ("ZZQ9", "2024-08-01"))
    [case] = read_cases(detail)
    assert (date(2024, 8, 1), "other", "Event code ZZQ9 (meaning not known)") in [
        (e.event_date, e.stage, e.title) for e in case.events]
    assert unnamed_codes([detail]) == {"ZZQ9"}


def test_a_card_mailed_notice_names_its_same_day_code_and_decides_the_case() -> None:
    detail = _with_events(payload("myuscis_case_detail.json"), ("IAF", "2024-05-30"), ("XYZ1", "2024-10-02"))
    detail["data"]["notices"].append(
        {"generationDate": "2024-10-02T10:00:00.000Z", "actionType": "Card Was Mailed"})
    [case] = read_cases(detail)
    mailed = [(e.event_date, e.stage) for e in case.events if e.event_date == date(2024, 10, 2)]
    assert set(mailed) == {(date(2024, 10, 2), "card_mailed")}
    assert any(e.stage in APPROVAL_IMPLIED_BY for e in case.events)
    assert unnamed_codes([detail]) == set()


def test_a_known_card_code_decides_the_case_and_a_learned_title_wins_over_the_table() -> None:
    detail = _with_events(payload("myuscis_case_detail.json"), ("IAF", "2024-05-30"), ("CRD0", "2024-09-01"))
    [case] = read_cases(detail)
    assert (date(2024, 9, 1), "card_production") in [(e.event_date, e.stage) for e in case.events]
    learned = stages([detail, case_status("Case Was Denied")])  # the history says IAF = denied
    assert (date(2024, 5, 30), "denied") in learned


def test_the_category_comes_from_receipt_info_subtype() -> None:
    variants = json.loads((REFERENCE_PAYLOADS / "myuscis_receipt_info.json").read_text())["variants"]
    full = variants[2]
    full["data"]["receipt_details"]["receipt_date"] = "2024-05-29"
    [case] = read_cases(full)
    assert (case.form_type, case.category) == ("I-765", "(c)(9)")
    loose = variants[1]  # no receipt number: lends form and category to the one receipt
    status = case_status()
    status["data"]["formType"] = "I-765"
    [merged] = read_cases([status, loose])
    assert (merged.form_type, merged.category) == ("I-765", "(c)(9)")


def test_the_applicant_name_is_never_read_into_the_case() -> None:
    detail = payload("myuscis_case_detail.json")
    detail["data"]["applicantName"] = "GONZALEZ-TESTER, MARIA"
    detail["data"]["representativeName"] = "DOE, JOHN ESQ"
    [case] = read_cases(detail)
    assert "GONZALEZ" not in repr(case) and "DOE" not in repr(case)


@pytest.mark.parametrize("wrapped", [True, False])
def test_with_or_without_the_data_wrapper(wrapped: bool) -> None:
    answer = case_status()
    document = answer if wrapped else answer["data"]
    assert stages(document)[-1] == (date(2024, 7, 9), "review")


def test_several_answers_in_a_bundle_keyed_by_endpoint() -> None:
    bundle = {
        "case_status": case_status(),
        "cases": payload("myuscis_case_detail.json"),
        "documents": payload("myuscis_documents.json"),
        "receipt_info": {"data": None},
    }
    assert myuscis_kind(bundle) == "bundle"
    [case] = read_cases(bundle)
    assert case.current_office == "NSC" and case.received_date == date(2024, 5, 29)


def test_a_bundle_keyed_by_addresses() -> None:
    base = "https://my.uscis.gov/account/case-service/api"
    bundle = {f"{base}/case_status/IOE0900000002": case_status(),
              f"{base}/cases/IOE0900000002": payload("myuscis_case_detail.json")}
    [case] = read_cases(bundle)
    assert case.form_type == "I-485"


def test_the_account_cases_list_gives_one_case_per_receipt() -> None:
    first = payload("myuscis_case_detail.json")["data"]
    second = copy.deepcopy(first) | {"receiptNumber": "IOE0900000009", "formType": "I-765"}
    cases = read_cases({"data": [first, second]})
    assert sorted((c.receipt_number, c.form_type) for c in cases) == [
        ("IOE0900000002", "I-485"), ("IOE0900000009", "I-765")]


def test_receipt_info_with_details_gives_form_date_and_premium() -> None:
    info = payload("myuscis_receipt_info.json", "variants")[2]
    info["data"]["receipt_details"]["receipt_date"] = "05-29-2024"
    info["data"]["receipt_details"]["premproc"] = 1
    [case] = read_cases(info)
    assert (case.form_type, case.received_date, case.premium) == ("I-765", date(2024, 5, 29), True)


def test_receipt_info_without_receipt_lends_its_form_to_the_single_case() -> None:
    info = payload("myuscis_receipt_info.json", "variants")[1]
    status = case_status()
    del status["data"]["formType"]
    [case] = read_cases([status, info])
    assert case.form_type == "I-765"


def test_answers_that_disagree_on_the_form_type_are_refused() -> None:
    detail = payload("myuscis_case_detail.json")
    detail["data"]["formType"] = "I-765"
    with pytest.raises(ParseError, match=r"disagree: .*different form types"):
        read_cases([detail, case_status()])


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"data": None}, "you were not signed in"),
        ({"data": None, "error": {"message": "Unauthorized"}}, "signed out"),
        ({"error": "session expired"}, "signed out"),
        ({"errors": [{"code": "x", "message": "Receipt EAC2190000001 not found"}]}, "Case Status API"),
        ({"fault": {"faultstring": "Invalid access token"}}, "gateway"),
    ],
)
def test_error_and_empty_answers_say_what_happened(answer: object, message: str) -> None:
    with pytest.raises(ParseError, match=message) as error:
        read_cases(answer)
    assert "EAC2190000001" not in str(error.value)  # quoted error texts are redacted


def test_documents_alone_identify_no_case() -> None:
    with pytest.raises(ParseError, match="nothing in this input identifies a case"):
        read_cases(payload("myuscis_documents.json"))


def test_a_signed_out_answer_among_real_ones_is_skipped() -> None:
    assert stages([{"data": None}, case_status()])[-1][1] == "review"


def test_the_simplified_shape_is_not_mistaken_for_a_cases_answer() -> None:
    simplified = {"receiptNumber": "IOE0900000002", "formType": "I-485",
                  "events": [{"date": "2024-05-29", "description": "Case Was Received"}]}
    assert myuscis_kind(simplified) is None
    [case] = read_cases(simplified)
    assert case.source == "simplified"


@pytest.mark.parametrize("bad", [{"historicalCaseStatuses": 5}, {"historicalCaseStatuses": "x"}])
def test_malformed_history_is_a_parse_error_not_a_crash(bad: dict[str, object]) -> None:
    answer = case_status()
    answer["data"] |= bad
    with pytest.raises(ParseError, match="historicalCaseStatuses must be a list"):
        read_cases(answer)
