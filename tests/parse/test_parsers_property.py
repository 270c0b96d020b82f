"""Random and mutated inputs never crash a parser or the preview, and never let a receipt
number, an A-number or an e-mail through into what would be stored."""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.parse import ParseError
from pipeline.parse.redact import personal_identifiers
from pipeline.prepare.anonymize import PseudonymKey
from pipeline.prepare.merge import read_cases
from pipeline.prepare.preview import SubmissionPreview, preview_submission
from pipeline.prepare.records import record_to_json
from pipeline.receipts import InvalidReceiptError
from tests.support.submission_inputs import (
    all_kinds,
    api_answer,
    myuscis_pair,
    reference,
    simplified,
)

NOW = datetime(2025, 6, 1, 12, 0)
KEY = PseudonymKey(b"p" * 48)
PERSONAL = st.sampled_from([
    "EAC2190000001", "IOE0912345678", "lin-24-900-00123", "A123456789", "A-987-654-321",
    "maria@example.org", "GONZALEZ, MARIA", "555-123-4567", "<b>x</b>", "2031-01-01",
    "01-05-1985 00:00:00", "", None, 0, True, [], {},
])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=False),
                    st.text(max_size=30), PERSONAL)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=5)), max_leaves=25)
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SEEDS: list[Any] = [api_answer(), *myuscis_pair(), myuscis_pair(), simplified(),
                    reference("myuscis_documents.json"), reference("egov_csol_case_status.json", "valid"),
                    {"kind": "typed_form", "form_type": "I-765", "office": "NSC",
                     "received_date": "2024-01-05", "approved_date": "2024-03-01"}]


def nothing_personal_stored(preview: SubmissionPreview) -> None:
    stored = json.dumps([record_to_json(r) for r in preview.records]
                        + [record_to_json(r.record) for r in preview.rejected], default=str)
    assert personal_identifiers(stored) == []
    assert "GONZALEZ" not in stored and "<b>" not in stored


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A reference payload with a few of its values replaced, removed or given personal data."""
    document = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        containers = [document]
        found: list[tuple[Any, Any]] = []
        while containers:
            node = containers.pop()
            keys = list(node) if isinstance(node, dict) else range(len(node)) if isinstance(node, list) else []
            for key in keys:
                found.append((node, key))
                containers.append(node[key])
        if not found:
            break
        node, key = draw(st.sampled_from(found))
        action = draw(st.sampled_from(["replace", "personal", "delete"]))
        if action == "delete" and isinstance(node, dict):
            del node[key]
        else:
            node[key] = draw(PERSONAL if action == "personal" else JSON)
    return document


@FAST
@given(JSON)
def test_random_json_is_parsed_or_refused_with_a_message(document: Any) -> None:
    try:
        cases = read_cases(document)
    except (ParseError, InvalidReceiptError, ValueError) as error:
        assert str(error)
        return
    assert all(c.receipt_number for c in cases)


@FAST
@given(mutated())
def test_mutated_payloads_never_crash_and_never_store_identifiers(document: Any) -> None:
    with contextlib.suppress(ParseError, InvalidReceiptError, ValueError):
        read_cases(document)
    preview = preview_submission(json.dumps(document), key=KEY, now=NOW)
    assert preview.errors or preview.records
    nothing_personal_stored(preview)


@FAST
@given(st.text(max_size=400), st.sampled_from([None, "json", "csv", "typed_form", "myuscis"]))
def test_any_text_gets_a_preview_not_an_exception(text: str, kind: str | None) -> None:
    preview = preview_submission(text, kind, key=KEY, now=NOW)
    assert preview.errors or preview.records
    nothing_personal_stored(preview)


CELLS = st.one_of(st.text(max_size=15), PERSONAL.map(lambda v: "" if v is None else str(v)),
                  st.sampled_from(["I-765", "NSC", "LIN", "1/5/24", "2024-02-01", ".", "-", "n/a"]))


@FAST
@given(st.lists(st.lists(CELLS, min_size=6, max_size=6), min_size=1, max_size=6),
       st.sampled_from([",", ";", "\t"]), st.sampled_from(["\n", "\r\n", "\r"]))
def test_spreadsheets_of_random_cells_never_crash_or_leak(
    cells: list[list[str]], delimiter: str, ending: str
) -> None:
    header = ["Name", "form_type", "office", "received_date", "biometrics_date", "approved_date"]
    lines = [delimiter.join(header)] + [
        delimiter.join('"' + c.replace('"', "'") + '"' for c in row) for row in cells]
    preview = preview_submission(ending.join(lines), "csv", key=KEY, now=NOW)
    assert preview.errors or preview.records
    nothing_personal_stored(preview)


def test_the_seeds_themselves_preview_cleanly() -> None:
    for text in all_kinds().values():
        preview = preview_submission(text, key=KEY, now=NOW)
        assert preview.ok, preview.errors
        nothing_personal_stored(preview)
