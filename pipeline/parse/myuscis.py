"""JSON a signed-in user copies from myUSCIS, as ParsedCases.

Four endpoints are understood: cases/{r} (events carry codes only, plus the applicant's
name, which is never read), case_status/{r} (titles, office, code->title history),
cases/{r}/documents (nothing kept) and receipt_info/{r} (form, receipt date, premium).
They may be pasted one at a time or several together: as a JSON list, as a "bundle" object
keyed by endpoint or address ({"case_status": {...}, "cases": {...}}), or as the account's
cases list ({"data": [case, case]}); each with or without the {"data": ...} wrapper.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pipeline.model import ParsedCase, StatusEvent
from pipeline.parse.categories import category_of_subtype, has_categories
from pipeline.parse.errors import ParseError
from pipeline.parse.event_codes import coded_events
from pipeline.parse.fields import normalize_form_type, parse_bool, parse_date, parse_datetime
from pipeline.receipts import InvalidReceiptError, normalize_receipt, office_of
from pipeline.stages import classify

SOURCE = "myuscis"
WRAPPER_KEYS = {"data", "message", "error", "errors", "status", "success", "code", "timestamp",
                "_synthetic", "_note"}
_STATUS_KEYS = {"historicalCaseStatuses", "currentActionCode", "statusTitle"}
_DETAIL_KEYS = {"submissionDate", "submissionTimestamp", "formName", "applicantName",
                "updatedAtTimestamp", "actionRequired", "closed", "notices"}
_CASE_KINDS = {"case_status", "case_detail", "receipt_info"}


def unwrap(payload: object) -> object:
    """Return the inside of a {"data": ...} wrapper, or the payload as it is."""
    if isinstance(payload, dict) and "data" in payload and set(payload) <= WRAPPER_KEYS:
        return payload["data"]
    return payload


def _is_case_detail(inner: dict[str, object]) -> bool:
    if "receiptNumber" not in inner:
        return False
    if _DETAIL_KEYS & set(inner):
        return True
    events = inner.get("events")
    return isinstance(events, list) and any(
        isinstance(e, dict) and "eventCode" in e for e in events
    )


def myuscis_kind(payload: object) -> str | None:
    """Name the myUSCIS endpoint a payload came from ('bundle' for several), or None."""
    inner = unwrap(payload)
    wrapped = inner is not payload
    if inner is None and wrapped:
        return "not_signed_in"
    if isinstance(inner, list):
        if inner and all(isinstance(d, dict) and "contentId" in d for d in inner):
            return "documents"
        if inner and all(isinstance(d, dict) and _is_case_detail(d) for d in inner):
            return "case_list"
        return None
    if not isinstance(inner, dict):
        return None
    if _STATUS_KEYS & set(inner):
        return "case_status"
    if "receipt_details" in inner or ({"form", "location"} <= set(inner)):
        return "receipt_info"
    if _is_case_detail(inner):
        return "case_detail"
    if not wrapped and inner and _is_bundle(inner):
        return "bundle"
    return None


def _is_bundle(inner: dict[str, object]) -> bool:
    kinds = [myuscis_kind(v) if v is not None else "empty" for v in inner.values()]
    return all(k is not None for k in kinds) and any(
        k in _CASE_KINDS | {"case_list", "bundle"} for k in kinds
    )


def flatten(payloads: Iterable[object]) -> list[object]:
    """Expand bundles and case lists into single endpoint answers."""
    flat: list[object] = []
    for payload in payloads:
        kind = myuscis_kind(payload)
        if kind == "bundle":
            inner = unwrap(payload)
            assert isinstance(inner, dict)
            flat.extend(flatten(v for v in inner.values() if v is not None))
        elif kind == "case_list":
            inner = unwrap(payload)
            assert isinstance(inner, list)
            synthetic = _synthetic(payload)
            flat.extend({"data": d, "_synthetic": synthetic} for d in inner)
        elif kind is not None:
            flat.append(payload)
    return flat


def _receipt(raw: object, where: str) -> str:
    try:
        return normalize_receipt(str(raw or ""))
    except InvalidReceiptError as exc:
        raise ParseError(f"{where}: {exc}") from exc


def _entries(value: object, where: str, shape: str) -> list[dict[str, object]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise ParseError(f"{where} must be a list of {shape}")
    return value


def code_titles(payload: object) -> dict[str, str]:
    """Learn event-code -> status-title pairs from a case_status answer's history."""
    inner = unwrap(payload)
    pairs: dict[str, str] = {}
    if isinstance(inner, dict):
        history = inner.get("historicalCaseStatuses")
        for entry in history if isinstance(history, list) else []:
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
    history = _entries(data.get("historicalCaseStatuses"), "historicalCaseStatuses",
                       "{date, actionCode, statusTitle}")
    for entry in history:
        when = parse_date(entry.get("date"))
        if when is None:
            raise ParseError("an entry of historicalCaseStatuses has no date")
        title, stage = classify(str(entry.get("statusTitle") or ""))
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
        current_office=office_of(_text(data.get("jurisdiction")))
        or office_of(_text(data.get("jurisdictionDescription"))),
        premium=parse_bool(data.get("isPremiumProcessed")),
        events=events,
        last_modified=parse_datetime(data.get("currentActionCodeDate")),
        synthetic=_synthetic(payload),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def unnamed_codes(payloads: list[object]) -> set[str]:
    """Event codes of cases/{r} answers that no history, notice or known-code table explains."""
    flat = flatten(payloads)
    titles: dict[str, str] = {}
    for payload in flat:
        titles |= code_titles(payload)
    codes: set[str] = set()
    for payload in flat:
        data = unwrap(payload)
        if myuscis_kind(payload) == "case_detail" and isinstance(data, dict):
            codes |= coded_events(data, titles).unmapped
    return codes


def parse_case_detail(payload: object, titles: dict[str, str]) -> ParsedCase:
    """Read a cases/{r} answer; event codes get titles from `titles` when known."""
    data = unwrap(payload)
    assert isinstance(data, dict)
    receipt = _receipt(data.get("receiptNumber"), "cases.receiptNumber")
    _entries(data.get("events"), "cases.events", "{eventCode, eventDateTime}")
    _entries(data.get("notices"), "cases.notices", "{generationDate, actionType}")
    events = coded_events(data, titles).events
    form = normalize_form_type(data.get("formType"))
    return ParsedCase(
        receipt_number=receipt,
        source=SOURCE,
        form_type=form,
        received_date=parse_date(data.get("submissionDate") or data.get("submissionTimestamp")),
        premium=parse_bool(data.get("isPremiumProcessed")),
        events=events,
        last_modified=parse_datetime(data.get("updatedAtTimestamp") or data.get("updatedAt")),
        synthetic=_synthetic(payload),
        category=_category(form, data.get("formName")),
    )


def _category(form: str | None, text: object) -> str | None:
    """A category named in a form name or subtype ('... (E11)', '147-C9'), else None."""
    return category_of_subtype(form, text) if has_categories(form) else None


def _receipt_details(payload: object) -> dict[str, object]:
    data = unwrap(payload)
    assert isinstance(data, dict)
    details = data.get("receipt_details")
    return details if isinstance(details, dict) else data


def parse_receipt_info(payload: object) -> ParsedCase | None:
    """Read a receipt_info/{r} answer; None when it carries no receipt number."""
    details = _receipt_details(payload)
    if not details.get("receipt_number"):
        return None
    form = normalize_form_type(details.get("form"))
    return ParsedCase(
        receipt_number=_receipt(details["receipt_number"], "receipt_details.receipt_number"),
        source=SOURCE,
        form_type=form,
        received_date=_receipt_date(details.get("receipt_date")),
        premium=parse_bool(details.get("premproc")),
        synthetic=_synthetic(payload),
        category=_category(form, details.get("subtype")),
    )


def _receipt_date(raw: object) -> date | None:
    try:
        return parse_date(raw)
    except ParseError:
        return None  # a placeholder such as '<date>': the other answers carry the date


def _synthetic(payload: object) -> bool:
    return isinstance(payload, dict) and bool(payload.get("_synthetic", False))


def parse_myuscis(payloads: list[object]) -> list[ParsedCase]:
    """Read one or several myUSCIS answers pasted together.

    A receipt_info answer without a receipt number ({form, location, subtype}) lends its
    form type to the case when the other answers are all about one receipt.
    """
    flat = flatten(payloads)
    titles: dict[str, str] = {}
    for payload in flat:
        titles |= code_titles(payload)
    cases: list[ParsedCase] = []
    loose_forms: list[tuple[str, str | None]] = []
    for payload in flat:
        kind = myuscis_kind(payload)
        if kind == "case_status":
            cases.append(parse_case_status(payload))
        elif kind == "case_detail":
            cases.append(parse_case_detail(payload, titles))
        elif kind == "receipt_info":
            info = parse_receipt_info(payload)
            if info is not None:
                cases.append(info)
            else:
                details = _receipt_details(payload)
                form = normalize_form_type(details.get("form"))
                if form:
                    loose_forms.append((form, _category(form, details.get("subtype"))))
    receipts = {c.receipt_number for c in cases}
    if len(receipts) == 1:
        (receipt,) = receipts
        synthetic = all(c.synthetic for c in cases)
        cases.extend(
            ParsedCase(receipt_number=receipt, source=SOURCE, form_type=f, synthetic=synthetic,
                       category=category)
            for f, category in loose_forms
        )
    return cases
