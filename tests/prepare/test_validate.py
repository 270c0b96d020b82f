"""Lazy pandera validation: valid rows pass, each invalid case is rejected with every reason."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from pipeline.model import ParsedCase, StatusEvent
from pipeline.prepare.anonymize import PseudonymKey
from pipeline.prepare.funnel import anonymize_cases, validate_records

KEY = PseudonymKey(b"k" * 64)
TODAY = date(2025, 6, 1)


def case(receipt: str, events: list[tuple[date, str]], form: str = "I-765",
         received: date | None = date(2024, 1, 10)) -> ParsedCase:
    return ParsedCase(
        receipt_number=receipt, source="myuscis", form_type=form, received_date=received,
        events=[StatusEvent(d, s.title(), s) for d, s in events],
    )


def check(*cases: ParsedCase):  # type: ignore[no-untyped-def]
    batch = anonymize_cases([(f"doc{i}", c) for i, c in enumerate(cases)], KEY, datetime(2025, 5, 1))
    checked = validate_records(batch, today=TODAY)
    checked.rejections[:0] = batch.rejections
    return checked


def test_valid_rows_load_and_invalid_ones_carry_every_reason() -> None:
    good = case("EAC2490000001", [(date(2024, 1, 10), "received"), (date(2024, 5, 1), "approved")])
    bad = case(
        "EAC2490000002",
        [(date(2024, 1, 10), "received"), (date(2023, 12, 1), "approved"), (date(2026, 1, 1), "other")],
    )
    result = check(good, bad)
    assert result.cases.height == 1 and result.events.height == 2
    [rejection] = result.rejections
    assert rejection.origin == "doc1"
    assert any("before USCIS received the case" in r for r in rejection.reasons)
    assert any("in the future" in r for r in rejection.reasons)


@pytest.mark.parametrize(
    ("parsed", "reason"),
    [
        (case("EAC2490000003", [(date(1985, 1, 1), "received")], received=date(1985, 1, 1)), "before 1990"),
        (case("EAC2490000004", [(date(2024, 1, 10), "received")], form=None), "form type is missing"),  # type: ignore[arg-type]
        (case("EAC2490000005", [(date(2024, 3, 1), "approved")], received=None), "received the case is missing"),
        (case("EAC2490000006", [(date(2024, 1, 10), "received"), (date(2024, 2, 1), "rfe_response"),
                                (date(2024, 3, 1), "rfe")]), "response is dated before the request"),
    ],
)
def test_each_kind_of_bad_record_gets_its_message(parsed: ParsedCase, reason: str) -> None:
    result = check(parsed)
    assert result.cases.height == 0
    [rejection] = result.rejections
    assert any(reason in r for r in rejection.reasons), rejection.reasons
    assert rejection.attempt is not None and "EAC" not in str(rejection.attempt)


def test_two_answers_for_one_receipt_merge_into_one_case() -> None:
    first = case("EAC2490000007", [(date(2024, 1, 10), "received")])
    second = case("EAC2490000007", [(date(2024, 1, 10), "received"), (date(2024, 4, 2), "approved")])
    result = check(first, second)
    assert result.cases.height == 1
    assert sorted(result.events["stage"].to_list()) == ["approved", "received"]


def test_conflicting_form_types_are_rejected_not_guessed() -> None:
    first = case("EAC2490000008", [(date(2024, 1, 10), "received")], form="I-765")
    second = case("EAC2490000008", [(date(2024, 1, 10), "received")], form="I-131")
    result = check(first, second)
    assert result.cases.height == 0
    assert "different form types" in result.rejections[0].reasons[0]


VALIDATE_IN_A_FRESH_PROCESS = """
import json, sys
{first}
from datetime import date
from tests.prepare.test_validate import case, check
cases = [
    case("EAC2490000001", [(date(2024, 1, 10), "received"), (date(2024, 5, 1), "approved")]),
    case("EAC2490000002", [(date(2024, 1, 10), "received"), (date(2023, 12, 1), "approved"),
                           (date(2026, 1, 1), "other")]),
    case("EAC2490000003", [(date(1985, 1, 1), "received")], received=date(1985, 1, 1)),
    case("EAC2490000004", [(date(2024, 1, 10), "received")], form=None),
    case("EAC2490000005", [(date(2024, 3, 1), "approved")], received=None),
    case("EAC2490000006", [(date(2024, 1, 10), "received"), (date(2024, 2, 1), "rfe_response"),
                           (date(2024, 3, 1), "rfe")]),
    case("EAC2490000007", [(date(2024, 1, 10), "received")], form="Z-99"),
]
result = check(*cases)
print(json.dumps({{"pandas": "pandas" in sys.modules, "hypothesis": "hypothesis" in sys.modules,
                  "stored": result.cases.height,
                  "reasons": sorted((r.origin, sorted(r.reasons)) for r in result.rejections)}}))
"""


def test_pandera_validates_alike_with_and_without_its_pandas_and_hypothesis_layers() -> None:
    # an ingest loads pandera's polars API without pandas and hypothesis (1.2 s less at every
    # start); where they were loaded first (the dashboard, tests), pandera is whole: both must
    # judge alike
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    answers = {}
    for first in ("", "import pandas, hypothesis"):
        child = subprocess.run([sys.executable, "-c", VALIDATE_IN_A_FRESH_PROCESS.format(first=first)],
                               cwd=root, capture_output=True, text=True, check=True, timeout=120)
        answers[first] = json.loads(child.stdout.strip().splitlines()[-1])
    without, whole = answers[""], answers["import pandas, hypothesis"]
    assert without["pandas"] is False and whole["pandas"] is True
    assert without["hypothesis"] is False and whole["hypothesis"] is True
    assert without["stored"] == whole["stored"] == 1
    assert without["reasons"] == whole["reasons"]
    assert len(without["reasons"]) == 6
