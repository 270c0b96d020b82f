"""Anonymized submission records: built from typed timelines, checked with messages a
submitter understands, merged per case, and written to / read from the inbox as JSON.

Reading a record back is strict: the inbox is a file system folder, so a record is
re-checked field by field and any title that is not one of our canonical titles is
replaced, so no free text can reach the database through it.
"""

from __future__ import annotations

from datetime import date, datetime

from pipeline.model import CaseRecord, ParsedCase, StatusEvent
from pipeline.parse.categories import all_categories, eligibility_code
from pipeline.parse.typed_form import TypedTimeline
from pipeline.prepare.anonymize import PseudonymKey, anonymize_case, keyed_id
from pipeline.prepare.validate import EARLIEST
from pipeline.receipts import OFFICES
from pipeline.stages import GENERIC_TITLES, STAGES, event_order, title_catalog

_DECISIONS = {"approved", "denied", "card_production", "card_mailed", "withdrawn"}


class RecordError(ValueError):
    """An inbox record that is damaged or was not written by this program."""


def timeline_case_id(timeline: TypedTimeline, key: PseudonymKey, occurrence: int) -> str:
    """The pseudonym of a timeline without a receipt number.

    With a spreadsheet reference (case_ref) it is keyed by that reference, the form, office
    and received date, so an updated row merges with its earlier version. Without one it is
    keyed by the whole timeline (and its position among identical ones), so re-submitting the
    same timeline changes nothing.
    """
    if timeline.case_ref:
        identity = ["ref", timeline.case_ref, timeline.form_type, timeline.intake_office,
                    timeline.received_date.isoformat()]
    else:
        identity = ["timeline", timeline.form_type, timeline.intake_office,
                    timeline.received_date.isoformat(),
                    *(f"{e.event_date.isoformat()}:{e.stage}" for e in timeline.events),
                    str(occurrence)]
    return keyed_id("\x1f".join(identity), key)


def timeline_record(
    timeline: TypedTimeline, key: PseudonymKey, now: datetime, occurrence: int = 0
) -> CaseRecord:
    """Anonymize a typed timeline; one with a receipt gets the same pseudonym as a polled case."""
    observed = timeline.observed_at or now
    if timeline.receipt_number is not None:
        parsed = ParsedCase(
            receipt_number=timeline.receipt_number,
            source=timeline.source,
            form_type=timeline.form_type,
            received_date=timeline.received_date,
            current_office=timeline.current_office,
            premium=timeline.premium,
            events=list(timeline.events),
            observed_at=observed,
            category=timeline.category,
            tracked_since=timeline.tracked_since,
            last_checked=timeline.last_checked,
            received_estimated=timeline.received_estimated,
        )
        return anonymize_case(parsed, key, now)
    received = timeline.received_date
    return CaseRecord(
        case_id=timeline_case_id(timeline, key, occurrence),
        source=timeline.source,
        form_type=timeline.form_type,
        intake_office=timeline.intake_office,
        current_office=timeline.current_office,
        fiscal_year=received.year + 1 if received.month >= 10 else received.year,
        received_date=received,
        premium=timeline.premium,
        observed_at=observed,
        last_modified=None,
        synthetic=False,
        events=list(timeline.events),
        category=timeline.category,
        tracked_since=timeline.tracked_since,
        last_checked=timeline.last_checked,
        received_estimated=timeline.received_estimated,
    )


def date_problems(record: CaseRecord, today: date) -> list[str]:
    """Every date that cannot be right, each said so that the submitter can fix it."""
    problems: list[str] = []
    received = record.received_date
    if record.form_type is None:
        problems.append("the form type is missing: it is printed on the receipt notice (e.g. I-485)")
    if received is None:
        problems.append(
            "this history does not say when USCIS received the case; add the answer that has "
            "it (myUSCIS cases/<receipt> has submissionDate) or type the received date in the form"
        )
    elif received < EARLIEST:
        problems.append(f"the received date {received} is before 1990; check the year")
    elif received > today:
        problems.append(f"the received date {received} is in the future; check the year")
    for event in record.events:
        what = f"the {event.stage.replace('_', ' ')} date {event.event_date}"
        if event.event_date < EARLIEST:
            problems.append(f"{what} is before 1990; check the year")
        elif event.event_date > today:
            problems.append(f"{what} is in the future; check the year")
        elif received is not None and event.event_date < received:
            kind = "a decision" if event.stage in _DECISIONS else "a status"
            problems.append(
                f"{what} is before USCIS received the case ({received}): {kind} cannot come "
                "before the receipt; check the dates (month/day/year)"
            )
    if record.observed_at.date() > today:
        problems.append(f"the last-checked date {record.observed_at.date()} is in the future")
    if not record.events:
        problems.append("the history has no dated status at all")
    return problems


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def record_to_json(record: CaseRecord) -> dict[str, object]:
    """The record as stored in the inbox: only whitelisted fields, dates as ISO strings."""
    return {
        "case_id": record.case_id,
        "source": record.source,
        "form_type": record.form_type,
        "intake_office": record.intake_office,
        "current_office": record.current_office,
        "fiscal_year": record.fiscal_year,
        "received_date": _iso(record.received_date),
        "premium": record.premium,
        "observed_at": _iso(record.observed_at),
        "last_modified": _iso(record.last_modified),
        "synthetic": record.synthetic,
        "events": [[e.event_date.isoformat(), e.stage, e.title] for e in record.events],
        "category": record.category,
        "tracked_since": _iso(record.tracked_since),
        "last_checked": _iso(record.last_checked),
        "received_estimated": record.received_estimated,
    }


def attempt_to_json(record: CaseRecord) -> dict[str, object]:
    """The anonymized view of a rejected record, as kept in quarantine."""
    return {
        "form_type": record.form_type,
        "intake_office": record.intake_office,
        "current_office": record.current_office,
        "fiscal_year": record.fiscal_year,
        "received_date": _iso(record.received_date),
        "category": record.category,
        "processing": record.processing,
        "events": [{"date": e.event_date.isoformat(), "stage": e.stage} for e in record.events],
    }


def canonical_title(stage: str, title: object) -> str:
    """The title if it is one of ours for that stage, else the stage's generic title."""
    known = title_catalog().get(str(title).strip().lower())
    if known is not None and known[1] == stage:
        return known[0]
    return GENERIC_TITLES[stage]


def _text(value: object, name: str, allowed: tuple[str, ...] | None = None,
          optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > 40 or (allowed and value not in allowed):
        raise RecordError(f"{name} is not valid")
    return value


def _day(value: object, name: str, optional: bool = False) -> date | None:
    if value is None and optional:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError as error:
        raise RecordError(f"{name} is not a date") from error


def _stamp(value: object, name: str, optional: bool = False) -> datetime | None:
    if value is None and optional:
        return None
    try:
        return datetime.fromisoformat(str(value)).replace(tzinfo=None)
    except ValueError as error:
        raise RecordError(f"{name} is not a timestamp") from error


def record_from_json(data: object) -> CaseRecord:
    """Read an inbox record back, re-checking every field; raise RecordError if damaged."""
    if not isinstance(data, dict):
        raise RecordError("a record must be an object")
    raw_events = data.get("events")
    if not isinstance(raw_events, list):
        raise RecordError("events must be a list")
    events: list[StatusEvent] = []
    for entry in raw_events:
        if not isinstance(entry, list) or len(entry) != 3:
            raise RecordError("an event must be [date, stage, title]")
        stage = _text(entry[1], "stage", STAGES)
        day = _day(entry[0], "event date")
        assert stage is not None and day is not None
        events.append(StatusEvent(day, canonical_title(stage, entry[2]), stage))
    fiscal_year = data.get("fiscal_year")
    if fiscal_year is not None and (not isinstance(fiscal_year, int) or isinstance(fiscal_year, bool)):
        raise RecordError("fiscal_year is not a year")
    observed = _stamp(data.get("observed_at"), "observed_at")
    assert observed is not None
    case_id = _text(data.get("case_id"), "case_id")
    source = _text(data.get("source"), "source")
    assert case_id is not None and source is not None
    return CaseRecord(
        case_id=case_id,
        source=source,
        form_type=_text(data.get("form_type"), "form_type", optional=True),
        intake_office=_text(data.get("intake_office"), "intake_office", OFFICES, optional=True),
        current_office=_text(data.get("current_office"), "current_office", OFFICES, optional=True),
        fiscal_year=fiscal_year,
        received_date=_day(data.get("received_date"), "received_date", optional=True),
        premium=data.get("premium") if isinstance(data.get("premium"), bool) else None,
        observed_at=observed,
        last_modified=_stamp(data.get("last_modified"), "last_modified", optional=True),
        synthetic=data.get("synthetic") is True,
        events=sorted(set(events), key=lambda e: event_order(e.event_date, e.stage)),
        category=_category(data.get("category")),
        tracked_since=_day(data.get("tracked_since"), "tracked_since", optional=True),
        last_checked=_day(data.get("last_checked"), "last_checked", optional=True),
        received_estimated=data.get("received_estimated") is True,
    )


def _category(value: object) -> str | None:
    text = _text(value, "category", optional=True)
    if text is not None and text not in all_categories() and eligibility_code(text) != text:
        raise RecordError("category is not valid")
    return text
