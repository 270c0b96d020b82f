"""A timeline typed by hand: form type, office and milestone dates.

The same field vocabulary serves the submit page's form, a `key: value` text file and the
columns of a community spreadsheet (pipeline.parse.csv_import). A receipt number is
optional: without one the office must be given, and the case cannot be matched with a
polled one. Field values are read strictly (dates, codes); nothing typed is kept as text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache

from pipeline.model import StatusEvent
from pipeline.parse.errors import ParseError
from pipeline.parse.fields import parse_bool
from pipeline.parse.forms import known_form_type
from pipeline.parse.redact import A_NUMBER_RE
from pipeline.receipts import OFFICE_NAMES, InvalidReceiptError, normalize_receipt, office_of
from pipeline.stages import GENERIC_TITLES

SOURCE = "typed_form"
# Canonical field -> stage for the milestone dates, in timeline order.
MILESTONES: dict[str, str] = {
    "received_date": "received",
    "biometrics_date": "biometrics",
    "interview_date": "interview",
    "rfe_date": "rfe",
    "rfe_response_date": "rfe_response",
    "transferred_date": "transferred",
    "approved_date": "approved",
    "denied_date": "denied",
    "card_produced_date": "card_production",
    "card_mailed_date": "card_mailed",
    "withdrawn_date": "withdrawn",
}
FIELDS: tuple[str, ...] = (
    "receipt_number", "case_ref", "form_type", "office", "current_office", "premium",
    *MILESTONES, "last_checked",
)
# Spellings seen in community spreadsheets, after normalization (lower case, '_' for gaps).
_ALIASES: dict[str, str] = {
    "receipt_number": "receipt_number", "receipt": "receipt_number", "receipt_no": "receipt_number",
    "receipt_num": "receipt_number", "receipt_number_number": "receipt_number",
    "case_number": "receipt_number",
    "case_ref": "case_ref", "ref": "case_ref", "reference": "case_ref", "row_id": "case_ref",
    "form_type": "form_type", "form": "form_type", "form_number": "form_type", "type": "form_type",
    "office": "office", "intake_office": "office", "service_center": "office", "center": "office",
    "sc": "office", "receipt_office": "office", "processing_center": "office",
    "current_office": "current_office", "office_now": "current_office",
    "premium": "premium", "premium_processing": "premium", "pp": "premium",
    "received": "received_date", "receipt_date": "received_date", "rd": "received_date",
    "date_of_receipt": "received_date", "receipt_notice_date": "received_date",
    "biometrics": "biometrics_date", "bio": "biometrics_date", "biometric": "biometrics_date",
    "biometrics_appointment": "biometrics_date", "fingerprints": "biometrics_date",
    "fp": "biometrics_date", "bio_appointment": "biometrics_date",
    "interview": "interview_date",
    "rfe": "rfe_date", "rfe_issued": "rfe_date", "rfe_sent": "rfe_date",
    "rfe_response": "rfe_response_date", "rfe_responded": "rfe_response_date",
    "rfe_reply": "rfe_response_date", "response_to_rfe": "rfe_response_date",
    "rfe_response_received": "rfe_response_date",
    "transferred": "transferred_date", "transfer": "transferred_date",
    "approved": "approved_date", "approval": "approved_date",
    "denied": "denied_date", "denial": "denied_date",
    "card_produced": "card_produced_date", "card_production": "card_produced_date",
    "card_ordered": "card_produced_date",
    "card_mailed": "card_mailed_date", "card_sent": "card_mailed_date",
    "card_delivered": "card_mailed_date", "card_received": "card_mailed_date",
    "withdrawn": "withdrawn_date", "withdrawal": "withdrawn_date",
    "last_checked": "last_checked", "as_of": "last_checked", "status_as_of": "last_checked",
    "last_updated": "last_checked",
}
MISSING_MARKERS = {"", ".", "-", "--", "–", "—", "n/a", "na", "none", "null", "nil", "pending",
                   "tbd", "?", "not yet", "no", "nope"}
_HTML_RE = re.compile(r"<\s*/?\s*[a-z!][^>]*>|javascript:|\bon[a-z]+\s*=", re.IGNORECASE)
_OFFICE_WORDS = {name.split()[0].upper(): code for code, name in OFFICE_NAMES.items()} | {
    "ONLINE": "ELIS", "ELECTRONIC": "ELIS", "NATIONAL BENEFITS": "NBC",
}
_MONTH_NAMES = ("%b %d, %Y", "%B %d, %Y", "%b %d %Y", "%B %d %Y", "%d %b %Y", "%d %B %Y",
                "%d-%b-%y", "%d-%b-%Y", "%d %b %y")
_EXCEL_EPOCH = date(1899, 12, 30)


def field_name(header: str) -> str | None:
    """The canonical field a header or key means ('Receipt Date' -> 'received_date'), or None."""
    key = header.replace("\ufeff", "").strip().lower().replace("#", " number ")
    key = re.sub(r"[^a-z0-9]+", "_", key).strip("_")
    if key in _ALIASES:
        return _ALIASES[key]
    base = re.sub(r"^date_(of_)?|_(date|dt|on|day)$", "", key)
    return _ALIASES.get(base)


@dataclass(frozen=True)
class TypedTimeline:
    """One typed timeline, read and checked field by field; the receipt may be absent."""

    label: str
    form_type: str
    intake_office: str
    received_date: date
    receipt_number: str | None = None
    case_ref: str | None = None
    current_office: str | None = None
    premium: bool | None = None
    events: tuple[StatusEvent, ...] = ()
    observed_at: datetime | None = None
    source: str = SOURCE


@dataclass
class TimelineRows:
    """Timelines read from a form or a sheet, every problem found, and the fields ignored."""

    timelines: list[TypedTimeline] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def is_missing(value: object) -> bool:
    """Tell whether a cell means 'no value' (blank, '.', '-', 'n/a', 'pending', ...)."""
    return value is None or str(value).strip().lower() in MISSING_MARKERS


def check_plain(value: str, where: str) -> None:
    """Refuse HTML or script in a typed value."""
    found = _HTML_RE.search(value)
    if found:
        raise ParseError(
            f"{where} contains HTML or script ({found.group(0)[:30]!r}); type plain text only"
        )


def parse_sheet_date(raw: object, where: str) -> date | None:
    """Read a date as spreadsheets write it: 2024-05-29, 5/29/2024, 5/29/24, 29-May-24, serials."""
    if is_missing(raw):
        return None
    text = " ".join(str(raw).split())
    parsed = _date_of_text(text)
    if isinstance(parsed, date):
        return parsed
    check_plain(text, where)
    raise ParseError(f"{where} {parsed}")


@lru_cache(maxsize=4096)  # a sheet repeats the same few hundred dates
def _date_of_text(text: str) -> date | str:
    """The date a cell's text means, or what is wrong with it (after the field's name)."""
    iso = re.match(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$", text)
    us = re.match(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{2}|\d{4})(?: \d{1,2}:\d{2}(?::\d{2})?)?$", text)
    if us and int(us.group(1)) > 12 and int(us.group(2)) <= 12:
        return (
            f"{text!r} looks like day/month/year; write dates month/day/year "
            f"(US order, e.g. {int(us.group(2))}/{int(us.group(1))}/{us.group(3)}) or as 2024-05-29"
        )
    try:
        if iso:
            return date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
        if us:
            return date(_full_year(int(us.group(3))), int(us.group(1)), int(us.group(2)))
    except ValueError as error:
        return f"{text!r} is not a real calendar date ({error})"
    if re.match(r"^\d{5}(?:\.0+)?$", text):
        return _EXCEL_EPOCH + timedelta(days=int(float(text)))
    for fmt in _MONTH_NAMES:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return f"{text[:30]!r} is not a date: write it like 2024-05-29 or 5/29/2024 (month/day/year)"


def _full_year(year: int) -> int:
    if year >= 100:
        return year
    full = 2000 + year
    return full if full <= date.today().year + 1 else full - 100


def parse_office(raw: object, where: str) -> str | None:
    """Read an office as a code (NSC), a receipt prefix (LIN) or a name (Nebraska Service Center)."""
    if is_missing(raw):
        return None
    text = " ".join(str(raw).split())
    check_plain(text, where)
    upper = text.upper()
    code = office_of(upper) or office_of(upper.replace(" SERVICE CENTER", "").strip())
    if code is None:
        code = next((c for word, c in _OFFICE_WORDS.items() if upper.startswith(word)), None)
    if code is None:
        raise ParseError(
            f"{where} {text[:30]!r} is not a USCIS office we know: use NSC, TSC, VSC, CSC, NBC, "
            "PSC or ELIS, or the first three letters of your receipt number (e.g. LIN)"
        )
    return code


def parse_receipt_field(raw: object, where: str) -> str | None:
    """Read an optional receipt number; an A-number typed there gets its own message."""
    if is_missing(raw):
        return None
    text = str(raw).strip()
    check_plain(text, where)
    if A_NUMBER_RE.fullmatch(text):
        raise ParseError(
            f"{where}: this looks like an A-number (alien registration number), not a receipt "
            "number. We do not need your A-number: remove it, and give the receipt number "
            "from your I-797C notice (3 letters and 10 digits) or leave the field empty"
        )
    try:
        return normalize_receipt(text)
    except InvalidReceiptError as error:
        raise ParseError(f"{where}: {error}") from error


def read_timeline(values: Mapping[str, object], label: str, source: str = SOURCE) -> TypedTimeline:
    """Read one timeline from canonical fields; raise ParseError naming every problem."""
    problems: list[str] = []

    def attempt(read: object) -> object:
        try:
            return read() if callable(read) else read
        except ParseError as error:
            problems.append(str(error))
            return None

    def where(name: str) -> str:
        return name.replace("_", " ")

    receipt = attempt(lambda: parse_receipt_field(
        values.get("receipt_number"), where("receipt_number")))
    form = attempt(lambda: _form(values.get("form_type")))
    office = attempt(lambda: parse_office(values.get("office"), "office"))
    current = attempt(lambda: parse_office(
        values.get("current_office"), "current office"))
    dates = {
        name: attempt(lambda name=name: parse_sheet_date(values.get(name), where(name)))
        for name in MILESTONES
    }
    checked = attempt(lambda: parse_sheet_date(
        values.get("last_checked"), "last checked"))
    ref = values.get("case_ref")
    if not is_missing(ref):
        attempt(lambda: check_plain(str(ref), "case ref"))
    if is_missing(values.get("form_type")):
        problems.append("the form type is missing: give the form number, e.g. I-485 or I-765")
    if is_missing(values.get("receipt_number")) and is_missing(values.get("office")):
        problems.append(
            "the office is missing: without a receipt number, give the office on your receipt "
            "notice (NSC, TSC, VSC, CSC, NBC, PSC, ELIS, or the receipt's first three letters)"
        )
    if is_missing(values.get("received_date")):
        problems.append(
            "the received date is missing: it is the 'Received Date' printed on your receipt "
            "notice (Form I-797C)"
        )
    if problems:
        raise ParseError("; ".join(problems))
    assert isinstance(form, str) and isinstance(dates["received_date"], date)
    intake = office_of(receipt[:3]) if isinstance(receipt, str) else office
    assert isinstance(intake, str)
    if current is None and office is not None and office != intake:
        current = office  # the receipt says where it was filed; the office typed is where it is
    events = tuple(
        StatusEvent(when, GENERIC_TITLES[MILESTONES[name]], MILESTONES[name])
        for name, when in dates.items()
        if isinstance(when, date)
    )
    return TypedTimeline(
        label=label,
        form_type=form,
        intake_office=intake,
        received_date=dates["received_date"],
        receipt_number=receipt if isinstance(receipt, str) else None,
        case_ref=None if is_missing(ref) else " ".join(str(ref).split()).lower(),
        current_office=current if isinstance(current, str) else None,
        premium=_premium(values.get("premium")),
        events=tuple(sorted(events, key=lambda e: (e.event_date, e.stage))),
        observed_at=datetime.combine(checked, datetime.min.time())
        if isinstance(checked, date) else None,
        source=source,
    )


def _form(raw: object) -> str | None:
    if is_missing(raw):
        return None
    text = str(raw).strip()
    check_plain(text, "form type")
    return known_form_type(text)


def _premium(raw: object) -> bool | None:
    if is_missing(raw) and str(raw).strip().lower() != "no":
        return None
    text = str(raw).strip().lower()
    if text in {"premium", "pp", "x", "✓", "✔"}:
        return True
    return parse_bool(text)


def canonical_fields(values: Mapping[str, object]) -> tuple[dict[str, object], list[str]]:
    """Map raw keys to canonical fields; return them and the keys that mean nothing to us."""
    fields: dict[str, object] = {}
    ignored: list[str] = []
    for key, value in values.items():
        if key == "milestones" and isinstance(value, dict):
            nested, unknown = canonical_fields(
                {k if k.endswith("_date") else f"{k}_date": v for k, v in value.items()}
            )
            fields |= nested
            ignored.extend(unknown)
            continue
        name = field_name(str(key))
        if name is None:
            if key not in {"kind", "_note", "_synthetic"}:
                ignored.append(str(key))
        elif name not in fields or is_missing(fields[name]):
            fields[name] = value
    return fields, ignored


def looks_like_typed_form(payload: object) -> bool:
    """Tell whether a JSON object is a typed timeline (form type plus dates, no USCIS keys)."""
    if not isinstance(payload, dict):
        return False
    if payload.get("kind") == "typed_form":
        return True
    names = {field_name(str(k)) for k in payload} | ({"received_date"} if "milestones" in payload else set())
    return "form_type" in names and "received_date" in names and "receiptNumber" not in payload


def parse_typed_payload(payload: object) -> TimelineRows:
    """Read a typed timeline given as a JSON object or as `key: value` lines."""
    rows = TimelineRows()
    if isinstance(payload, str):
        values, rows.ignored, errors = _key_value_lines(payload)
        if errors:
            rows.errors.extend(errors)
            return rows
    elif isinstance(payload, dict):
        values, rows.ignored = canonical_fields(payload)
    else:
        rows.errors.append("a typed timeline must be fields like 'form: I-485' and dates")
        return rows
    try:
        rows.timelines.append(read_timeline(values, "the typed timeline"))
    except ParseError as error:
        rows.errors.append(str(error))
    return rows


def _key_value_lines(text: str) -> tuple[dict[str, object], list[str], list[str]]:
    values: dict[str, object] = {}
    ignored: list[str] = []
    errors: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = re.split(r"\s*[:=]\s*", stripped, maxsplit=1)
        if len(parts) != 2:
            errors.append(f"line {number} is not 'field: value' (for example 'form: I-485')")
            continue
        key, value = parts[0], re.sub(r"\s+#.*$", "", parts[1])  # an inline comment
        name = field_name(key)
        if name is None:
            ignored.append(key)
        else:
            values[name] = value
    return values, ignored, errors


def looks_like_key_value_text(text: str) -> bool:
    """Tell whether a text is `field: value` lines naming at least a form and a date."""
    names = set()
    for line in text.splitlines():
        match = re.match(r"^\s*([^:=#]+?)\s*[:=]", line)
        if match:
            names.add(field_name(match.group(1)))
    return "form_type" in names and bool(names & set(MILESTONES))
