"""The one rule for merging partial views of a case (answers pasted together, re-submissions,
polls): used by the funnel, the inbox records, the preview and the poll job; the store's
upsert (pipeline/store/load.py) applies the same rule in SQL.

Which fact wins when two views of one case disagree:
- form type and category: they must agree (a missing one takes the other's). Two different
  values mean one view is wrong: the case is refused with a reason, nothing is guessed.
- current office: the view observed last (by observed_at; on a tie, the later input) that
  names one: a later answer knows where the case is now.
- premium / processing: premium if any view says premium (an upgrade to premium processing
  puts the case on the premium clock); else regular if any says not premium; else unknown
  (processing 'regular').
- synthetic: only if every view is synthetic (a real input about a case makes it real).
- received date: the earliest given one; an estimate (from a legacy receipt number) only
  when no view gives one. Events: the union (one per date and stage).
- last modified, observed at, last checked: the latest.
- tracked since: the earliest date any view gives (None says nothing; a case no view gives
  a date for is under observation from its receipt).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime
from typing import TypeVar

from pipeline.model import CaseRecord, ParsedCase, StatusEvent
from pipeline.parse import parse_document
from pipeline.parse.errors import ParseError
from pipeline.stages import GENERIC_TITLES, TERMINAL_STAGES, event_order

Case = TypeVar("Case", ParsedCase, CaseRecord)


class MergeConflict(ParseError):
    """Two views of one case disagree on a fact that cannot be merged."""


def conflict(first: ParsedCase | CaseRecord, second: ParsedCase | CaseRecord) -> str | None:
    """What two views of a case disagree on (form type, category), or None."""
    if first.form_type and second.form_type and first.form_type != second.form_type:
        return f"different form types ({first.form_type} and {second.form_type})"
    if first.category and second.category and first.category != second.category:
        return f"different categories ({first.category} and {second.category})"
    return None


def merge_two(first: Case, second: Case) -> Case:
    """One view with the facts of both, by the rule above (the caller checked `conflict`)."""
    given = [c for c in (first, second) if c.received_date is not None and not c.received_estimated]
    pool = given or [c for c in (first, second) if c.received_date is not None]
    dates = [c.received_date for c in pool if c.received_date is not None]
    stamps = [t for t in (first.last_modified, second.last_modified) if t is not None]
    later = second if _observed(second) >= _observed(first) else first
    earlier = first if later is second else second
    observed = [t for t in (first.observed_at, second.observed_at) if t is not None]
    merged = replace(
        first,
        form_type=first.form_type or second.form_type,
        category=first.category or second.category,
        current_office=later.current_office or earlier.current_office,
        premium=_premium(first.premium, second.premium),
        synthetic=first.synthetic and second.synthetic,
        received_date=min(dates) if dates else None,
        events=sorted(set(first.events) | set(second.events),
                      key=lambda e: event_order(e.event_date, e.stage)),
        last_modified=max(stamps) if stamps else None,
        tracked_since=_tracked_since(first.tracked_since, second.tracked_since),
        last_checked=_last_checked(first, second),
        received_estimated=bool(pool) and not given,
    )
    if observed:
        merged.observed_at = max(observed)
    return merged


def _observed(case: ParsedCase | CaseRecord) -> datetime:
    return case.observed_at or datetime.min


def _premium(first: bool | None, second: bool | None) -> bool | None:
    if first is True or second is True:
        return True
    if first is False or second is False:
        return False
    return None


def _tracked_since(first: date | None, second: date | None) -> date | None:
    days = [d for d in (first, second) if d is not None]
    return min(days) if days else None


def _last_checked(first: ParsedCase | CaseRecord, second: ParsedCase | CaseRecord) -> date | None:
    if first.last_checked is None and second.last_checked is None:
        return None
    days = [_checked_day(c) for c in (first, second)]
    return max(d for d in days if d is not None)


def _checked_day(case: ParsedCase | CaseRecord) -> date | None:
    if case.last_checked is not None:
        return case.last_checked
    return case.observed_at.date() if case.observed_at is not None else None


def observed_by_poll(case: ParsedCase, fetched_at: datetime) -> ParsedCase:
    """Date a polled answer; a case pending at this poll is under observation from its day.

    Kept over later polls by the merge (the earliest date wins), so a polled case is at risk
    from its first poll while pending; one already decided at its first poll gets no date.
    """
    case.observed_at = fetched_at
    if not any(e.stage in TERMINAL_STAGES for e in case.events):
        case.tracked_since = fetched_at.date()
    return case


def with_receipt_event(case: Case) -> Case:
    """Make the receipt date an explicit 'received' event when no event says so."""
    if case.received_date is not None and not any(e.stage == "received" for e in case.events):
        title = GENERIC_TITLES["received"]
        case.events = sorted(
            [*case.events, StatusEvent(case.received_date, title, "received")],
            key=lambda e: event_order(e.event_date, e.stage),
        )
    return case


def merge_parsed(cases: Iterable[ParsedCase]) -> list[ParsedCase]:
    """Merge the answers of one input by receipt; raise MergeConflict if they disagree."""
    merged: dict[str, ParsedCase] = {}
    for case in cases:
        seen = merged.get(case.receipt_number)
        if seen is None:
            merged[case.receipt_number] = case
            continue
        problem = conflict(seen, case)
        if problem is not None:
            raise MergeConflict(f"the answers pasted together disagree: they give the same receipt {problem}")
        merged[case.receipt_number] = merge_two(seen, case)
    return [with_receipt_event(case) for case in merged.values()]


def merge_by_id(
    labelled: Iterable[tuple[str, CaseRecord]],
) -> tuple[dict[str, tuple[str, CaseRecord]], dict[str, tuple[str, list[str]]]]:
    """Merge anonymized records by case id, keeping the first label of each.

    Returns the merged records and, for each case id whose views conflict, the labels of
    the conflicting inputs and what they disagree on (those case ids are not in the first).
    """
    merged: dict[str, tuple[str, CaseRecord]] = {}
    conflicts: dict[str, tuple[str, list[str]]] = {}
    for label, record in labelled:
        if record.case_id in conflicts:
            conflicts[record.case_id][1].append(label)
            continue
        seen = merged.get(record.case_id)
        if seen is None:
            merged[record.case_id] = (label, record)
            continue
        problem = conflict(seen[1], record)
        if problem is not None:
            del merged[record.case_id]
            conflicts[record.case_id] = (problem, [seen[0], label])
            continue
        merged[record.case_id] = (seen[0], merge_two(seen[1], record))
    return merged, conflicts


def read_cases(document: object) -> list[ParsedCase]:
    """Parse one decoded document and merge its answers: one ParsedCase per receipt."""
    return merge_parsed(parse_document(document))
