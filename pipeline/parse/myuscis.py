"""JSON a signed-in user copies from myUSCIS, as ParsedCases.

Four endpoints are understood: cases/{r} (events carry codes only, plus the applicant's
name, which is never read), case_status/{r} (titles, office, code->title history),
cases/{r}/documents (nothing kept) and receipt_info/{r} (form, receipt date, premium).
"""

from __future__ import annotations

from pipeline.model import ParsedCase, StatusEvent
from pipeline.parse.errors import ParseError
from pipeline.parse.fields import normalize_form_type, parse_bool, parse_date, parse_datetime
from pipeline.receipts import InvalidReceiptError, normalize_receipt, office_of
from pipeline.stages import classify

SOURCE = "myuscis"
_STATUS_KEYS = {"historicalCaseStatuses", "currentActionCode", "statusTitle"}
_DETAIL_KEYS = {"submissionDate", "events", "formName", "applicantName"}


def unwrap(payload: object) -> object:
    """Return the inside of a {"data": ...} wrapper, or the payload as it is."""
    if isinstance(payload, dict) and "data" in payload and set(payload) <= {
        "data", "message", "error", "errors", "_synthetic", "_note",
    }:
        return payload["data"]
    return payload


def myuscis_kind(payload: object) -> str | None:
    """Name the myUSCIS endpoint a payload came from, or None if it is not one."""
    inner = unwrap(payload)
    wrapped = inner is not payload
    if inner is None and wrapped:
        return "not_signed_in"
    if isinstance(inner, list):
        if inner and all(isinstance(d, dict) and "contentId" in d for d in inner):
            return "documents"
        return None
    if not isinstance(inner, dict):
        return None
    if _STATUS_KEYS & set(inner):
        return "case_status"
    if "receipt_details" in inner or ({"form", "location"} <= set(inner)):
        return "receipt_info"
    if "receiptNumber" in inner and _DETAIL_KEYS & set(inner):
        return "case_detail"
    return None


def _receipt(raw: object, where: str) -> str:
    try:
        return normalize_receipt(str(raw or ""))
    except InvalidReceiptError as exc:
        raise ParseError(f"{where}: {exc}") from exc


def code_titles(payload: object) -> dict[str, str]:
    """Learn event-code -> status-title pairs from a case_status answer's history."""
    inner = unwrap(payload)
    pairs: dict[str, str] = {}
    if isinstance(inner, dict):
        for entry in inner.get("historicalCaseStatuses") or []:
            if isinstance(entry, dict) and entry.get("actionCode") and entry.get("statusTitle"):
                pairs[str(entry["actionCode"])] = str(entry["statusTitle"])
        if inner.get("currentActionCode") and inner.get("statusTitle"):
            pairs[str(inner["currentActionCode"])] = str(inner["statusTitle"])
    return pairs


def parse_case_status(payload: object) -> ParsedCase:
    """Read a case_status/{r} answer: current status, office, dated history."""
    data = unwrap(payload)
    assert isinstance(data, dict)
    receipt = _receipt(data.get("receiptNumber"), "case_status.receiptNumber")
    events: list[StatusEvent] = []
    for entry in data.get("historicalCaseStatuses") or []:
        if not isinstance(entry, dict):
            raise ParseError("historicalCaseStatuses must be a list of {date, actionCode, statusTitle}")
        when = parse_date(entry.get("date"))
        if when is None:
            raise ParseError("an entry of historicalCaseStatuses has no date")
        title, stage = classify(entry.get("statusTitle") or "")
        events.append(StatusEvent(when, title, stage))
    current_date = parse_date(data.get("currentActionCodeDate"))
    if data.get("statusTitle") and current_date is not None:
        title, stage = classify(str(data["statusTitle"]))
        events.append(StatusEvent(current_date, title, stage))
    received = [e.event_date for e in events if e.stage == "received"]
    return ParsedCase(
        receipt_number=receipt,
        source=SOURCE,
        form_type=normalize_form_type(data.get("formType")),
        received_date=min(received) if received else None,
        current_office=office_of(data.get("jurisdiction"))
        or office_of(data.get("jurisdictionDescription")),
        premium=parse_bool(data.get("isPremiumProcessed")),
        events=events,
        last_modified=parse_datetime(data.get("currentActionCodeDate")),
        synthetic=_synthetic(payload),
    )


def parse_case_detail(payload: object, titles: dict[str, str]) -> ParsedCase:
    """Read a cases/{r} answer; event codes get titles from `titles` when known."""
    data = unwrap(payload)
    assert isinstance(data, dict)
    receipt = _receipt(data.get("receiptNumber"), "cases.receiptNumber")
    events: list[StatusEvent] = []
    for entry in data.get("events") or []:
        if not isinstance(entry, dict):
            raise ParseError("cases.events must be a list of {eventCode, eventDateTime}")
        when = parse_date(entry.get("eventDateTime") or entry.get("eventTimestamp"))
        code = str(entry.get("eventCode") or "")
        if when is None or code not in titles:
            continue  # a code with no known title says nothing we can place on a timeline
        title, stage = classify(titles[code])
        events.append(StatusEvent(when, title, stage))
    return ParsedCase(
        receipt_number=receipt,
        source=SOURCE,
        form_type=normalize_form_type(data.get("formType")),
        received_date=parse_date(data.get("submissionDate")),
        premium=parse_bool(data.get("isPremiumProcessed")),
        events=events,
        last_modified=parse_datetime(data.get("updatedAtTimestamp") or data.get("updatedAt")),
        synthetic=_synthetic(payload),
    )


def parse_receipt_info(payload: object) -> ParsedCase | None:
    """Read a receipt_info/{r} answer; None when it carries no receipt number."""
    data = unwrap(payload)
    assert isinstance(data, dict)
    details = data.get("receipt_details") if isinstance(data.get("receipt_details"), dict) else data
    assert isinstance(details, dict)
    if not details.get("receipt_number"):
        return None
    return ParsedCase(
        receipt_number=_receipt(details["receipt_number"], "receipt_details.receipt_number"),
        source=SOURCE,
        form_type=normalize_form_type(details.get("form")),
        received_date=parse_date(details.get("receipt_date")),
        premium=parse_bool(details.get("premproc")),
        synthetic=_synthetic(payload),
    )


def _synthetic(payload: object) -> bool:
    return isinstance(payload, dict) and bool(payload.get("_synthetic", False))


def parse_myuscis(payloads: list[object]) -> list[ParsedCase]:
    """Read one or several myUSCIS answers pasted together."""
    titles: dict[str, str] = {}
    for payload in payloads:
        titles |= code_titles(payload)
    cases: list[ParsedCase] = []
    for payload in payloads:
        kind = myuscis_kind(payload)
        if kind == "case_status":
            cases.append(parse_case_status(payload))
        elif kind == "case_detail":
            cases.append(parse_case_detail(payload, titles))
        elif kind == "receipt_info":
            info = parse_receipt_info(payload)
            if info is not None:
                cases.append(info)
    return cases

