"""Parsers: every input shape people have, turned into the canonical ParsedCase.

`parse_document` recognises the shape of one decoded JSON document (a dict, or a list of
answers pasted together) and dispatches to the right parser: one ParsedCase per answer.
Answers about the same receipt are merged by pipeline.prepare.merge (one rule for all).
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.model import ParsedCase
from pipeline.parse.case_status_api import looks_like_case_status_api, parse_case_status_api
from pipeline.parse.egov_csol import looks_like_egov_csol, parse_egov_csol
from pipeline.parse.error_answers import explain_error_answer
from pipeline.parse.errors import ParseError
from pipeline.parse.myuscis import myuscis_kind, parse_myuscis
from pipeline.parse.simplified import looks_like_simplified, parse_simplified
from pipeline.parse.snapshots import looks_like_snapshot, parse_snapshots

__all__ = ["ParseError", "parse_document"]

# Shapes recognised after the official and myUSCIS ones: (recogniser, parser). A new input
# shape is a module of this package plus one line here (docs/architecture.md).
_EXTRA_SHAPES: tuple[tuple[Callable[[object], bool], Callable[[object], list[ParsedCase]]], ...] = (
    (looks_like_snapshot, parse_snapshots),
    (looks_like_simplified, parse_simplified),
    (looks_like_egov_csol, parse_egov_csol),
)

KNOWN_SHAPES_HELP = (
    "expected one of: an official Case Status API answer ({\"case_status\": ...}), "
    "myUSCIS JSON from cases/<receipt>, case_status/<receipt>, cases/<receipt>/documents or "
    "receipt_info/<receipt> (with or without the {\"data\": ...} wrapper), or the simplified "
    "{receiptNumber, formType, events: [{date, description}]} shape, or the case status "
    "page's {\"CaseStatusResponse\": ...} answer, or status snapshots "
    "({receipt_number, form_type, status, status_date}: one current status per receipt)"
)



def parse_document(document: object) -> list[ParsedCase]:
    """Parse one decoded JSON document into cases (one per receipt), or raise ParseError."""
    parts = document if isinstance(document, list) else [document]
    if not parts:
        raise ParseError("the input is an empty list: there is no case history in it")
    myuscis_parts: list[object] = []
    cases: list[ParsedCase] = []
    for part in parts:
        problem = explain_error_answer(part)
        if problem is not None:
            if len(parts) == 1:
                raise ParseError(problem)
            continue  # an empty or signed-out answer among real ones adds nothing
        if looks_like_case_status_api(part) and myuscis_kind(part) != "bundle":
            assert isinstance(part, dict)
            cases.append(parse_case_status_api(part))
            continue
        kind = myuscis_kind(part)
        if kind == "not_signed_in":
            if len(parts) == 1:
                raise ParseError(
                    'this myUSCIS answer is {"data": null}: you were probably not signed in when '
                    "you opened the address. Sign in to my.uscis.gov, open it again and copy the answer"
                )
            continue
        if kind is not None:
            myuscis_parts.append(part)
            continue
        for recognise, parse in _EXTRA_SHAPES:
            if recognise(part):
                cases.extend(parse(part))
                break
        else:
            raise ParseError(f"this JSON has a shape we do not recognise; {KNOWN_SHAPES_HELP}")
    if myuscis_parts:
        cases.extend(parse_myuscis(myuscis_parts))
    if not cases:
        raise ParseError(
            "nothing in this input identifies a case: the documents list and an empty "
            "receipt_info carry no receipt number or status. Paste the case_status answer too"
        )
    return cases
