"""Parsers: every input shape people have, turned into the canonical ParsedCase.

`parse_document` recognises the shape of one decoded JSON document (a dict, or a list of
answers pasted together), dispatches to the right parser and merges answers that describe
the same receipt into one case.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.model import ParsedCase, StatusEvent
from pipeline.parse.case_status_api import looks_like_case_status_api, parse_case_status_api
from pipeline.parse.egov_csol import looks_like_egov_csol, parse_egov_csol
from pipeline.parse.error_answers import explain_error_answer
from pipeline.parse.errors import ParseError
from pipeline.parse.myuscis import myuscis_kind, parse_myuscis
from pipeline.parse.simplified import looks_like_simplified, parse_simplified
from pipeline.stages import GENERIC_TITLES, event_order

__all__ = ["ParseError", "merge_cases", "parse_document"]

# Shapes recognised after the official and myUSCIS ones: (recogniser, parser). A new input
# shape is a module of this package plus one line here (docs/architecture.md).
_EXTRA_SHAPES: tuple[tuple[Callable[[object], bool], Callable[[object], list[ParsedCase]]], ...] = (
    (looks_like_simplified, parse_simplified),
    (looks_like_egov_csol, parse_egov_csol),
)

KNOWN_SHAPES_HELP = (
    "expected one of: an official Case Status API answer ({\"case_status\": ...}), "
    "myUSCIS JSON from cases/<receipt>, case_status/<receipt>, cases/<receipt>/documents or "
    "receipt_info/<receipt> (with or without the {\"data\": ...} wrapper), or the simplified "
    "{receiptNumber, formType, events: [{date, description}]} shape, or the case status "
    "page's {\"CaseStatusResponse\": ...} answer"
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
    return [with_receipt_event(case) for case in merge_cases(cases)]


def with_receipt_event(case: ParsedCase) -> ParsedCase:
    """Make the receipt date an explicit 'received' event when no event says so."""
    if case.received_date is not None and not any(e.stage == "received" for e in case.events):
        title = GENERIC_TITLES["received"]
        case.events = sorted(
            [*case.events, StatusEvent(case.received_date, title, "received")],
            key=lambda e: event_order(e.event_date, e.stage),
        )
    return case


def merge_cases(cases: list[ParsedCase]) -> list[ParsedCase]:
    """Merge parsed answers about the same receipt; disagreeing form types are an error."""
    merged: dict[str, ParsedCase] = {}
    for case in cases:
        seen = merged.get(case.receipt_number)
        if seen is None:
            merged[case.receipt_number] = case
            continue
        if seen.form_type and case.form_type and seen.form_type != case.form_type:
            raise ParseError(
                f"the answers pasted together disagree on the form type "
                f"({seen.form_type} and {case.form_type}) for the same receipt"
            )
        seen.form_type = seen.form_type or case.form_type
        seen.current_office = seen.current_office or case.current_office
        seen.premium = seen.premium if seen.premium is not None else case.premium
        dates = [d for d in (seen.received_date, case.received_date) if d is not None]
        seen.received_date = min(dates) if dates else None
        seen.events = sorted(set(seen.events) | set(case.events), key=lambda e: event_order(e.event_date, e.stage))
        stamps = [t for t in (seen.last_modified, case.last_modified) if t is not None]
        seen.last_modified = max(stamps) if stamps else None
        seen.synthetic = seen.synthetic or case.synthetic
    return list(merged.values())
