"""The public case-status page's backend answer (egov.uscis.gov/csol-api), as a ParsedCase.

{"CaseStatusResponse": {receiptNumber, isValid, detailsEng: {formNum, actionCodeText,
actionCodeDesc}}}: only the current status, dated by the "On May 18, 2021, ..." phrase of
its description. It does not say when the case was received.
"""

from __future__ import annotations

from pipeline.model import ParsedCase, StatusEvent
from pipeline.parse.errors import ParseError
from pipeline.parse.fields import date_in_text, normalize_form_type
from pipeline.receipts import InvalidReceiptError, normalize_receipt
from pipeline.stages import classify, clean_text

SOURCE = "egov_csol"


def _response(payload: object) -> dict[str, object] | None:
    if not isinstance(payload, dict):
        return None
    inner = payload.get("CaseStatusResponse", payload)
    if isinstance(inner, dict) and "receiptNumber" in inner and (
        "detailsEng" in inner or "isValid" in inner
    ):
        return inner
    return None


def looks_like_egov_csol(payload: object) -> bool:
    """Tell whether a payload is the case-status page's {"CaseStatusResponse": ...} answer."""
    return _response(payload) is not None


def parse_egov_csol(payload: object) -> list[ParsedCase]:
    """Read one case-status page answer; an invalid receipt is an error."""
    response = _response(payload)
    if response is None:
        raise ParseError("this is not a case status page answer")
    if response.get("isValid") is False:
        raise ParseError(
            "USCIS's case status page answered that this receipt number is not valid: "
            "check the number on your receipt notice (Form I-797C)"
        )
    try:
        receipt = normalize_receipt(str(response.get("receiptNumber") or ""))
    except InvalidReceiptError as error:
        raise ParseError(f"receiptNumber: {error}") from error
    details = response.get("detailsEng")
    if not isinstance(details, dict):
        raise ParseError("the answer has no English details (detailsEng), so no status to read")
    events: list[StatusEvent] = []
    title_text = details.get("actionCodeText")
    when = date_in_text(clean_text(str(details.get("actionCodeDesc") or "")))
    if title_text and when is not None:
        title, stage = classify(str(title_text))
        events.append(StatusEvent(when, title, stage))
    received = [e.event_date for e in events if e.stage == "received"]
    return [
        ParsedCase(
            receipt_number=receipt,
            source=SOURCE,
            form_type=normalize_form_type(details.get("formNum")),
            received_date=min(received) if received else None,
            events=events,
            synthetic=isinstance(payload, dict) and bool(payload.get("_synthetic", False)),
        )
    ]
