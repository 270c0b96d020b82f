"""The simplified history shape some tools show their users, as a ParsedCase.

{receiptNumber, formType, currentStatus, submittedDate, lastUpdated,
 events: [{date, description}]}; snake_case spellings are accepted too. Descriptions are
free text: only the stage they name (and its catalog title) is kept, never the words.
"""

from __future__ import annotations

from pipeline.model import ParsedCase, StatusEvent
from pipeline.parse.errors import ParseError
from pipeline.parse.fields import date_in_text, normalize_form_type, parse_date, parse_datetime
from pipeline.receipts import InvalidReceiptError, normalize_receipt, office_of
from pipeline.stages import classify, clean_text

SOURCE = "simplified"
_ALIASES = {
    "receiptNumber": ("receiptNumber", "receipt_number"),
    "formType": ("formType", "form_type"),
    "currentStatus": ("currentStatus", "current_status"),
    "submittedDate": ("submittedDate", "submitted_date", "receivedDate", "received_date"),
    "lastUpdated": ("lastUpdated", "last_updated"),
    "office": ("office", "currentOffice", "current_office"),
}


def _get(payload: dict[str, object], name: str) -> object:
    for key in _ALIASES[name]:
        if payload.get(key) is not None:
            return payload[key]
    return None


def _inner(payload: object) -> object:
    if isinstance(payload, dict) and set(payload) <= {"data", "_synthetic", "_note"}:
        return payload.get("data")
    return payload


def looks_like_simplified(payload: object) -> bool:
    """Tell whether a payload has the simplified {receiptNumber, events:[{date, description}]} shape."""
    inner = _inner(payload)
    if not isinstance(inner, dict) or _get(inner, "receiptNumber") is None:
        return False
    events = inner.get("events")
    if isinstance(events, list) and events and all(
        isinstance(e, dict) and ("description" in e or "date" in e) for e in events
    ):
        return True
    return any(_get(inner, k) is not None for k in ("currentStatus", "lastUpdated", "submittedDate"))


def parse_simplified(payload: object) -> list[ParsedCase]:
    """Read one simplified history."""
    inner = _inner(payload)
    if not isinstance(inner, dict):
        raise ParseError("the simplified history must be a JSON object")
    try:
        receipt = normalize_receipt(str(_get(inner, "receiptNumber") or ""))
    except InvalidReceiptError as error:
        raise ParseError(f"receiptNumber: {error}") from error
    events: list[StatusEvent] = []
    raw_events = inner.get("events")
    if raw_events is not None and not isinstance(raw_events, list):
        raise ParseError("events must be a list of {date, description}")
    for number, entry in enumerate(raw_events or [], start=1):
        if not isinstance(entry, dict):
            raise ParseError(f"event {number} must be an object like {{date, description}}")
        description = str(entry.get("description") or entry.get("status") or "")
        when = parse_date(entry.get("date")) or date_in_text(clean_text(description))
        if when is None:
            raise ParseError(f"event {number} has no date: give each event a date like 2024-05-29")
        if not description.strip():
            raise ParseError(f"event {number} ({when}) has no description of what happened")
        title, stage = classify(description)
        events.append(StatusEvent(when, title, stage))
    modified = parse_datetime(_get(inner, "lastUpdated"))
    current = _get(inner, "currentStatus")
    if current and modified is not None:
        title, stage = classify(str(current))
        if not any(e.stage == stage for e in events):
            events.append(StatusEvent(modified.date(), title, stage))
    office = _get(inner, "office")
    synthetic = isinstance(payload, dict) and bool(payload.get("_synthetic", False))
    return [
        ParsedCase(
            receipt_number=receipt,
            source=SOURCE,
            form_type=normalize_form_type(_get(inner, "formType")),
            received_date=parse_date(_get(inner, "submittedDate")),
            current_office=office_of(office) if isinstance(office, str) else None,
            events=sorted(set(events), key=lambda e: (e.event_date, e.stage)),
            last_modified=modified,
            synthetic=synthetic or bool(inner.get("_synthetic", False)),
        )
    ]
