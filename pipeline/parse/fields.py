"""Field-level readers shared by the parsers: dates, form types, offices."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from pipeline.parse.errors import ParseError

_FORM_RE = re.compile(r"^(I|N|G|EOIR)[-\s]?([0-9]{1,4})([A-Z]{0,3})$")
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"]
_TEXT_DATE_RE = re.compile(
    r"\b(?:on|as of)\s+(" + "|".join(_MONTHS) + r")\s+([0-9]{1,2}),\s*([0-9]{4})",
    re.IGNORECASE,
)
_ANY_TEXT_DATE_RE = re.compile(
    r"\b(" + "|".join(_MONTHS) + r")\s+([0-9]{1,2}),\s*([0-9]{4})", re.IGNORECASE
)
# "05-29-2024 00:00:00" / "05-29-2024" and "2024-05-29": matched exactly like their strptime formats
_US_STAMP_RE = re.compile(r"([0-9]{2})-([0-9]{2})-([0-9]{4})(?: ([0-9]{2}):([0-9]{2}):([0-9]{2}))?")
_ISO_DAY_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATETIME_FORMATS = (
    "%m-%d-%Y %H:%M:%S",
    "%m-%d-%Y",
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%m/%d/%Y",
    "%B %d, %Y",
    "%b %d, %Y",
)


def normalize_form_type(raw: object) -> str | None:
    """Return a form type like 'I-485' from 'I485', 'i-485 ', 'Form I-485'; None if absent."""
    if raw is None:
        return None
    text = str(raw).strip().upper()
    if not text:
        return None
    text = re.sub(r"^FORM\s+", "", text)
    match = _FORM_RE.match(text)
    if not match:
        raise ParseError(
            f"form type {str(raw)[:20]!r} is not a USCIS form number: "
            "write it like I-485, I-765, I-130 or N-400"
        )
    return f"{match.group(1)}-{match.group(2)}{match.group(3)}"


def parse_datetime(raw: object) -> datetime | None:
    """Read a timestamp in any format USCIS answers use; None if absent; naive UTC."""
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    if "T" in text:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            parsed = _parse_offset_iso(text)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return parsed
    quick = _quick_datetime(text)
    if quick is not None:
        return quick
    for fmt in _DATETIME_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ParseError(
        f"date {text[:30]!r} is not in a recognised format "
        "(expected e.g. 2024-05-29, 05-29-2024 00:00:00 or May 29, 2024)"
    )


def _quick_datetime(text: str) -> datetime | None:
    """Read the two formats USCIS answers use most without strptime (same result, ~10x faster)."""
    if (match := _US_STAMP_RE.fullmatch(text)) is not None:
        month, day, year, hour, minute, second = match.groups()
        fields = (int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    elif (match := _ISO_DAY_RE.fullmatch(text)) is not None:
        fields = (int(match.group(1)), int(match.group(2)), int(match.group(3)), 0, 0, 0)
    else:
        return None
    try:
        return datetime(*fields)
    except ValueError:
        return None  # let the strptime loop produce its usual answer or error


def _parse_offset_iso(text: str) -> datetime:
    # '2024-05-30T02:09:53.542+0000': Python < 3.12 wants '+00:00'
    fixed = re.sub(r"([+-][0-9]{2})([0-9]{2})$", r"\1:\2", text)
    try:
        return datetime.fromisoformat(fixed)
    except ValueError as exc:
        raise ParseError(f"timestamp {text[:40]!r} is not a valid date and time") from exc


def parse_date(raw: object) -> date | None:
    """Read a calendar date from any supported format; None if absent."""
    parsed = parse_datetime(raw)
    return parsed.date() if parsed else None


def date_in_text(text: str | None) -> date | None:
    """Find the status date in a description ('On September 5, 2023, ...', 'As of ...')."""
    if not text:
        return None
    match = _TEXT_DATE_RE.search(text) or _ANY_TEXT_DATE_RE.search(text)
    if not match:
        return None
    month = _MONTHS.index(match.group(1).lower()) + 1
    try:
        return date(int(match.group(3)), month, int(match.group(2)))
    except ValueError:
        return None


def parse_bool(raw: object) -> bool | None:
    """Read a yes/no flag from JSON booleans, 0/1 or words; None if absent."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in {"1", "true", "yes", "y"}:
        return True
    if text in {"0", "false", "no", "n"}:
        return False
    return None
