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
from datetime import date, datetime
from functools import lru_cache

from pipeline.model import StatusEvent
from pipeline.parse.categories import read_category
from pipeline.parse.cells import (
    check_plain,
    clean_cell,
    is_missing,
    parse_office,
    parse_processing,
    parse_receipt_field,
    parse_sheet_date,
)
from pipeline.parse.columns import FIELDS, MILESTONES, field_name
from pipeline.parse.errors import ParseError
from pipeline.parse.forms import known_form_type
from pipeline.parse.snapshots import NEEDS as SNAPSHOT_NEEDS
from pipeline.parse.snapshots import estimate_receipt_date
from pipeline.receipts import office_of
from pipeline.stages import GENERIC_TITLES, classify

__all__ = [
    "FIELDS", "MILESTONES", "TimelineRows", "TypedTimeline", "field_name", "is_missing",
    "parse_sheet_date", "read_timeline",
]
SOURCE = "typed_form"
_LABELS = {name: name.replace("_", " ") for name in MILESTONES}


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
    category: str | None = None
    tracked_since: date | None = None
    last_checked: date | None = None
    received_estimated: bool = False


@dataclass
class TimelineRows:
    """Timelines read from a form or a sheet, every problem found, and the fields ignored."""

    timelines: list[TypedTimeline] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


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
    dates: dict[str, object] = {
        name: None if is_missing(values.get(name))
        else attempt(lambda name=name: parse_sheet_date(values.get(name), _LABELS[name]))
        for name in MILESTONES
    }
    checked = attempt(lambda: parse_sheet_date(
        values.get("last_checked"), "last checked"))
    tracked = attempt(lambda: parse_sheet_date(values.get("tracked_since"), "tracked since"))
    premium = attempt(lambda: _premium(values.get("premium"), values.get("processing")))
    category = attempt(lambda: read_category(
        form if isinstance(form, str) else None, _present(values.get("category"))))
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
    status = attempt(lambda: _snapshot_status(values, receipt, checked))
    estimated = False
    if is_missing(values.get("received_date")):
        guess = estimate_receipt_date(receipt) if isinstance(receipt, str) and status else None
        if guess is not None:
            dates["received_date"], estimated = guess, True
        elif status is not None and isinstance(receipt, str):
            problems.append(f"this row is a status snapshot of an IOE receipt: {SNAPSHOT_NEEDS}")
        else:
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
    ) + ((status,) if isinstance(status, StatusEvent) else ())
    return TypedTimeline(
        label=label,
        form_type=form,
        intake_office=intake,
        received_date=dates["received_date"],
        receipt_number=receipt if isinstance(receipt, str) else None,
        case_ref=None if is_missing(ref) else " ".join(str(ref).split()).lower(),
        current_office=current if isinstance(current, str) else None,
        premium=premium if isinstance(premium, bool) else None,
        events=tuple(sorted(events, key=lambda e: (e.event_date, e.stage))),
        observed_at=datetime.combine(checked, datetime.min.time())
        if isinstance(checked, date) else None,
        source=source,
        category=category if isinstance(category, str) else None,
        tracked_since=tracked if isinstance(tracked, date) else None,
        last_checked=checked if isinstance(checked, date) else None,
        received_estimated=estimated,
    )


def _snapshot_status(
    values: Mapping[str, object], receipt: object, checked: object
) -> StatusEvent | None:
    """A `status` column (a snapshot's current status) as a dated event, or None."""
    raw = values.get("status")
    if is_missing(raw):
        return None
    when = parse_sheet_date(values.get("status_date"), "status date")
    when = when or (checked if isinstance(checked, date) else None)
    if when is None:
        raise ParseError("the status has no date: give a status_date (or last_checked) column")
    check_plain(str(raw), "status")
    title, stage = classify(clean_cell(raw))
    return StatusEvent(when, title, stage)


def _present(raw: object) -> object:
    return None if is_missing(raw) else raw


def _form(raw: object) -> str | None:
    if is_missing(raw):
        return None
    return _form_of_text(clean_cell(raw))


@lru_cache(maxsize=1024)  # a sheet repeats a handful of forms
def _form_of_text(text: str) -> str | None:
    check_plain(text, "form type")
    return known_form_type(text)


def _premium(premium: object, processing: object) -> bool | None:
    """A `premium` column (yes/no, PP, x) or a `processing` column (premium/regular)."""
    first = parse_processing(premium, "premium")
    return first if first is not None else parse_processing(processing, "processing")


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
