"""The case attributes survive the submit path: typed form -> preview -> inbox record -> back."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from pipeline.prepare.anonymize import PseudonymKey
from pipeline.prepare.preview import preview_submission
from pipeline.prepare.records import RecordError, record_from_json, record_to_json

KEY = PseudonymKey(b"k" * 32)
TYPED = ("form: I-140\noffice: Nebraska Service Center\nreceived: 3/4/24\ncategory: EB-2 NIW\n"
         "processing: premium\ntracked since: 4/1/24\nlast checked: 2024-06-01\n")


def test_typed_attributes_reach_the_inbox_record_and_come_back() -> None:
    shown = preview_submission(TYPED, key=KEY, now=datetime(2024, 7, 1))
    assert shown.ok, shown.errors
    [record] = shown.records
    assert (record.category, record.processing, record.tracked_since, record.checked_on) == (
        "NIW", "premium", date(2024, 4, 1), date(2024, 6, 1))
    back = record_from_json(record_to_json(record))
    assert (back.category, back.processing, back.tracked_since, back.last_checked) == (
        "NIW", "premium", date(2024, 4, 1), date(2024, 6, 1))


def test_a_tracked_since_before_the_receipt_or_after_the_last_check_is_refused() -> None:
    early = preview_submission(TYPED.replace("4/1/24", "1/1/24"), key=KEY, now=datetime(2024, 7, 1))
    assert any("tracked-since date is before USCIS received" in e for e in early.errors)
    late = preview_submission(TYPED.replace("tracked since: 4/1/24", "tracked since: 6/20/24"),
                              key=KEY, now=datetime(2024, 7, 1))
    assert any("tracked-since date is after the last-checked date" in e for e in late.errors)


def test_a_damaged_record_with_free_text_as_category_is_refused() -> None:
    [record] = preview_submission(TYPED, key=KEY, now=datetime(2024, 7, 1)).records
    damaged = record_to_json(record) | {"category": "<script>"}
    with pytest.raises(RecordError, match="category"):
        record_from_json(damaged)
