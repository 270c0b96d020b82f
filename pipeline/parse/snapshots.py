"""Status snapshots: one current status per receipt, as receipt-range crawlers collect them.

A snapshot has no history, but it is still one observation of the time to a decision: the
receipt date, and either the decision (its status and date) or "still pending on the day it
was checked". When the snapshot does not give the receipt date, it is estimated from a
legacy receipt number (`PPP YY DDD NNNNN`, or `PPP YY 9 DDD NNNN` for lockbox intake: fiscal
year YY, DDD-th working day of that fiscal year, which starts on October 1) and the case is
marked `received_estimated`. An IOE receipt has no public decomposition, so a snapshot of one
without a receipt date is refused with what a history needs.

Accepted: a JSON object (or a list of them, or JSON lines) with a receipt number and a status
(`{"receipt_number", "form_type", "status", "status_date", "checked_at"}`, common spellings
too), and CSV rows with `receipt_number`, `form_type`, `status`, `status_date` columns.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

from pipeline.model import ParsedCase, StatusEvent
from pipeline.parse.errors import ParseError
from pipeline.parse.fields import normalize_form_type, parse_date
from pipeline.receipts import InvalidReceiptError, normalize_receipt
from pipeline.stages import classify, clean_text

SOURCE = "status_snapshot"
_KEYS: dict[str, tuple[str, ...]] = {
    "receipt": ("receipt_number", "receiptNumber", "receipt", "receiptNum", "case_number"),
    "status": ("status", "status_title", "statusTitle", "current_status", "currentStatus",
               "caseStatus", "title"),
    "date": ("status_date", "statusDate", "date", "action_date", "updated", "modifiedDate",
             "lastUpdated", "last_updated"),
    "form": ("form_type", "formType", "form"),
    "checked": ("checked_at", "checkedAt", "crawled_at", "fetched_at", "last_checked", "scraped_at"),
    "received": ("received_date", "receivedDate", "receipt_date", "submittedDate"),
}
_HISTORY_KEYS = {"events", "history", "hist_case_status", "historicalCaseStatuses", "case_status"}
NEEDS = (
    "a history needs the date USCIS received the case (the 'Received Date' on the I-797C "
    "notice): add a received_date to each snapshot, or give the case's status history instead"
)


def _get(payload: dict[str, object], name: str) -> object:
    for key in _KEYS[name]:
        if payload.get(key) not in (None, ""):
            return payload[key]
    return None


def looks_like_snapshot(payload: object) -> bool:
    """Tell whether a JSON object (or list of them) is a status snapshot: receipt + status, no history."""
    parts = payload if isinstance(payload, list) else [payload]
    return bool(parts) and all(
        isinstance(p, dict) and _get(p, "receipt") is not None and _get(p, "status") is not None
        and not (_HISTORY_KEYS & set(p))
        for p in parts
    )


def parse_snapshots(payload: object) -> list[ParsedCase]:
    """Read one snapshot or a list of them."""
    parts = payload if isinstance(payload, list) else [payload]
    return [snapshot_case(p) for p in parts if isinstance(p, dict)]


def snapshot_case(part: dict[str, object]) -> ParsedCase:
    """One snapshot as a case: an (estimated) receipt event and its one dated status."""
    try:
        receipt = normalize_receipt(str(_get(part, "receipt") or ""))
    except InvalidReceiptError as error:
        raise ParseError(f"snapshot receipt number: {error}") from error
    status = clean_text(str(_get(part, "status")))
    checked = parse_date(_get(part, "checked"))
    when = parse_date(_get(part, "date")) or checked
    if when is None:
        raise ParseError(
            f"the snapshot's status {status[:40]!r} has no date: give status_date (the day of "
            "the status) or checked_at (the day it was looked up)"
        )
    received = parse_date(_get(part, "received"))
    estimated = False
    if received is None:
        received = estimate_receipt_date(receipt)
        estimated = received is not None
    if received is None:
        raise ParseError(f"this is a status snapshot of an IOE receipt: {NEEDS}")
    title, stage = classify(status)
    events = [StatusEvent(when, title, stage)]
    return ParsedCase(
        receipt_number=receipt,
        source=SOURCE,
        form_type=normalize_form_type(_get(part, "form")),
        received_date=received,
        events=events,
        last_checked=checked,  # None: censored at --as-of or when the input was observed
        received_estimated=estimated,
    )


def estimate_receipt_date(receipt: str) -> date | None:
    """The receipt date a legacy receipt number encodes (fiscal year and workday), or None."""
    if receipt.startswith("IOE") or "*" in receipt or not receipt[3:].isdigit():
        return None
    year = 2000 + int(receipt[3:5])
    fiscal_year = year if year <= date.today().year + 1 else year - 100
    lockbox = receipt[5] == "9"
    workday = int(receipt[6:9] if lockbox else receipt[5:8])
    if not 1 <= workday <= 262:
        return None
    return _working_days(fiscal_year)[workday - 1] if workday <= len(_working_days(fiscal_year)) else None


@cache
def _working_days(fiscal_year: int) -> tuple[date, ...]:
    start, end = date(fiscal_year - 1, 10, 1), date(fiscal_year, 9, 30)
    holidays = _federal_holidays(fiscal_year - 1) | _federal_holidays(fiscal_year)
    days: list[date] = []
    day = start
    while day <= end:
        if day.weekday() < 5 and day not in holidays:
            days.append(day)
        day += timedelta(days=1)
    return tuple(days)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    offset = (weekday - first.weekday()) % 7
    if n > 0:
        return first + timedelta(days=offset + 7 * (n - 1))
    last = date(year, month + 1, 1) - timedelta(days=1) if month < 12 else date(year, 12, 31)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


def _federal_holidays(year: int) -> set[date]:
    fixed = [date(year, 1, 1), date(year, 7, 4), date(year, 11, 11), date(year, 12, 25)]
    if year >= 2021:
        fixed.append(date(year, 6, 19))
    return {_observed(d) for d in fixed} | {
        _nth_weekday(year, 1, 0, 3), _nth_weekday(year, 2, 0, 3), _nth_weekday(year, 5, 0, -1),
        _nth_weekday(year, 9, 0, 1), _nth_weekday(year, 10, 0, 2), _nth_weekday(year, 11, 3, 4),
    }
