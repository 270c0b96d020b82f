"""The official Case Status API answer (developer.uscis.gov) as a ParsedCase."""

from __future__ import annotations

from typing import Any

from pipeline.model import ParsedCase, StatusEvent
from pipeline.parse.errors import ParseError
from pipeline.parse.fields import date_in_text, normalize_form_type, parse_date, parse_datetime
from pipeline.receipts import InvalidReceiptError, normalize_receipt
from pipeline.stages import classify, clean_text, event_order

SOURCE = "case_status_api"


def looks_like_case_status_api(payload: object) -> bool:
    """Tell whether a payload has the {"case_status": {...}} shape."""
    return isinstance(payload, dict) and isinstance(payload.get("case_status"), dict)


def parse_case_status_api(payload: dict[str, Any]) -> ParsedCase:
    """Read one Case Status API answer; Spanish fields are ignored."""
    body = payload["case_status"]
    try:
        receipt = normalize_receipt(body.get("receiptNumber") or "")
    except InvalidReceiptError as exc:
        raise ParseError(f"case_status.receiptNumber: {exc}") from exc
    submitted = parse_datetime(body.get("submittedDate"))
    modified = parse_datetime(body.get("modifiedDate"))

    events: list[StatusEvent] = []
    history = body.get("hist_case_status") or []
    if not isinstance(history, list):
        raise ParseError("case_status.hist_case_status must be a list of {date, completed_text_en}")
    for entry in history:
        if not isinstance(entry, dict):
            raise ParseError("case_status.hist_case_status must be a list of {date, completed_text_en}")
        text = entry.get("completed_text_en") or ""
        when = parse_date(entry.get("date")) or date_in_text(clean_text(text))
        if when is None:
            raise ParseError("a hist_case_status entry has no date")
        title, stage = classify(text)
        events.append(StatusEvent(when, title, stage))

    current_title = body.get("current_case_status_text_en")
    description = clean_text(body.get("current_case_status_desc_en") or "")
    if current_title:
        when = date_in_text(description) or (modified.date() if modified else None)
        if when is not None:
            title, stage = classify(current_title)
            events.append(StatusEvent(when, title, stage))
    if not events and submitted is None:
        raise ParseError(
            "this Case Status API answer has no dates at all (no submittedDate, no history, "
            "no date in the status text), so it cannot go on a timeline"
        )
    received = submitted.date() if submitted else None
    if received is None:
        received_events = [e.event_date for e in events if e.stage == "received"]
        received = min(received_events) if received_events else None
    return ParsedCase(
        receipt_number=receipt,
        source=SOURCE,
        form_type=normalize_form_type(body.get("formType")),
        received_date=received,
        events=sorted(set(events), key=lambda e: event_order(e.event_date, e.stage)),
        last_modified=modified,
        synthetic=bool(payload.get("_synthetic", False)),
    )
