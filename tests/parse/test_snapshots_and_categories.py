"""Status snapshots (one status per receipt) and the per-form category vocabulary."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from pipeline.parse.categories import category_of_subtype, read_category
from pipeline.parse.csv_import import parse_csv
from pipeline.parse.errors import ParseError
from pipeline.parse.snapshots import _working_days, estimate_receipt_date
from pipeline.prepare.merge import read_cases


def test_a_legacy_receipt_gives_its_fiscal_year_and_working_day() -> None:
    # FY2021 starts Thu 2020-10-01: workday 1 is that day; Columbus Day (Oct 12) is skipped
    assert estimate_receipt_date("LIN2100150001") == date(2020, 10, 1)
    assert estimate_receipt_date("LIN2100750001") == date(2020, 10, 9)
    assert estimate_receipt_date("LIN2100850001") == date(2020, 10, 13)
    # lockbox intake: PPP YY 9 DDD NNNN
    assert estimate_receipt_date("MSC2190010001") == date(2020, 10, 1)
    assert estimate_receipt_date("IOE0900000002") is None


def test_working_days_skip_weekends_and_federal_holidays() -> None:
    days = _working_days(2024)
    assert all(d.weekday() < 5 for d in days)
    assert date(2023, 11, 23) not in days  # Thanksgiving
    assert date(2023, 12, 25) not in days and date(2024, 7, 4) not in days
    assert 245 <= len(days) <= 255
    assert days[0] == date(2023, 10, 2) and days[-1] - days[0] < timedelta(days=366)


def test_a_json_snapshot_is_an_observation_with_an_estimated_receipt_date() -> None:
    [case] = read_cases({"receipt_number": "LIN2100150001", "form_type": "I-765",
                         "status": "Case Was Approved", "status_date": "2021-02-01",
                         "checked_at": "2021-03-01"})
    assert (case.source, case.received_date, case.received_estimated) == (
        "status_snapshot", date(2020, 10, 1), True)
    assert [(e.event_date, e.stage) for e in case.events] == [
        (date(2020, 10, 1), "received"), (date(2021, 2, 1), "approved")]
    assert case.last_checked == date(2021, 3, 1)


def test_a_list_of_snapshots_and_a_given_receipt_date() -> None:
    cases = read_cases([
        {"receiptNumber": "EAC2100150002", "formType": "I-130", "currentStatus": "Case Is Being Actively Reviewed By USCIS",
         "lastUpdated": "2021-04-01"},
        {"receipt": "EAC2100150003", "form": "I-130", "status": "Case Was Denied", "date": "2021-05-01",
         "received_date": "2020-10-05"},
    ])
    pending, denied = cases
    assert pending.received_estimated and pending.events[-1].stage == "review"
    assert (denied.received_date, denied.received_estimated) == (date(2020, 10, 5), False)


def test_an_ioe_snapshot_without_a_receipt_date_says_what_a_history_needs() -> None:
    with pytest.raises(ParseError, match=r"IOE receipt.*Received Date"):
        read_cases({"receipt_number": "IOE0900000002", "status": "Case Was Approved", "status_date": "2024-01-01"})


def test_a_snapshot_table_loads_the_same_way() -> None:
    rows = parse_csv("Receipt,Form,Status,Status Date\nLIN2100150001,I-765,Case Was Approved,2/1/21\n"
                     "IOE0900000002,I-765,Case Was Approved,2/1/21\n")
    [timeline] = rows.timelines
    assert (timeline.received_date, timeline.received_estimated) == (date(2020, 10, 1), True)
    assert [e.stage for e in timeline.events] == ["received", "approved"]
    assert len(rows.errors) == 1 and "IOE receipt" in rows.errors[0]


@pytest.mark.parametrize("form, written, canonical", [
    ("I-140", "EB2", "E21"), ("I-140", "EB-2", "E21"), ("I-140", "E21", "E21"),
    ("I-140", "eb2 niw", "NIW"), ("I-140", "NIW", "NIW"), ("I-140", "EB-1A", "E11"),
    ("I-140", "eb1c", "E13"), ("I-140", "EB3", "EB-3"), ("I-140", "EW3", "EW3"),
    ("I-765", "(c)(9)", "(c)(9)"), ("I-765", "c9", "(c)(9)"), ("I-765", "C09", "(c)(9)"),
    ("I-765", "c8,", "(c)(8)"), ("I-765", "(a)(12)", "(a)(12)"), ("I-765", "c3b", "(c)(3)(B)"),
    ("I-485", "EB2", "employment"), ("I-485", "Family based", "family"), ("I-485", "asylee", "asylee"),
    ("I-130", "IR1", "IR"), ("I-130", "F2A", "F2A"), ("I-130", "spouse of LPR", "F2A"),
])
def test_common_spellings_read_into_one_canonical_code(form: str, written: str, canonical: str) -> None:
    assert read_category(form, written) == canonical


def test_official_and_myuscis_subtypes_meet_the_same_codes() -> None:
    assert category_of_subtype("I-140", "Extraordinary ability (E11)") == "E11"
    assert category_of_subtype("I-140", "136A-E11") == "E11"
    assert category_of_subtype("I-765", "Based on a pending asylum application [(c)(8)]") == "(c)(8)"
    assert category_of_subtype("I-765", "147-C9") == "(c)(9)"


def test_an_unknown_category_is_refused_with_the_accepted_ones() -> None:
    with pytest.raises(ParseError, match="use one of E11, E12"):
        read_category("I-140", "EB9")
    with pytest.raises(ParseError, match="no categories for N-400"):
        read_category("N-400", "military")
    assert read_category("I-140", " . ") is None
