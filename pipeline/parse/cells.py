"""Reading single cells of typed timelines and spreadsheets: missing markers, dates in the
ways people write them, offices by code, prefix, name or city, receipt numbers, yes/no."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import lru_cache

from pipeline.parse.errors import ParseError
from pipeline.parse.redact import A_NUMBER_RE
from pipeline.receipts import OFFICE_NAMES, InvalidReceiptError, normalize_receipt, office_of

MISSING_MARKERS = {"", ".", "-", "--", "–", "—", "n/a", "na", "none", "null", "nil", "pending",
                   "tbd", "?", "not yet", "no", "nope"}
_HTML_RE = re.compile(r"<\s*/?\s*[a-z!][^>]*>|javascript:|\bon[a-z]+\s*=", re.IGNORECASE)
_OFFICE_WORDS = {name.split()[0].upper(): code for code, name in OFFICE_NAMES.items()} | {
    "ONLINE": "ELIS", "ELECTRONIC": "ELIS", "NATIONAL BENEFITS": "NBC",
}
_MONTH_NAMES = ("%b %d, %Y", "%B %d, %Y", "%b %d %Y", "%B %d %Y", "%d %b %Y", "%d %B %Y",
                "%d-%b-%y", "%d-%b-%Y", "%d %b %y")
_EXCEL_EPOCH = date(1899, 12, 30)
# The cities the service centers are in, as spreadsheets often name them ("Dallas").
SERVICE_CENTER_CITIES: dict[str, str] = {
    "DALLAS": "TSC", "MESQUITE": "TSC", "LINCOLN": "NSC", "ST ALBANS": "VSC",
    "ST. ALBANS": "VSC", "SAINT ALBANS": "VSC", "ESSEX": "VSC", "LAGUNA NIGUEL": "CSC",
    "LAGUNA": "CSC", "LEE'S SUMMIT": "NBC", "LEES SUMMIT": "NBC", "OVERLAND PARK": "NBC",
    "ARLINGTON": "PSC", "TEXAS": "TSC", "NEBRASKA": "NSC", "VERMONT": "VSC",
    "CALIFORNIA": "CSC", "MISSOURI": "NBC",
}
# Stray punctuation around a cell ('I-130,' or '"NSC";') is not part of the value.
_STRAY = " \t,;:.'\"`"


def clean_cell(raw: object) -> str:
    """A cell's text with whitespace squeezed and stray punctuation around it removed."""
    text = " ".join(str(raw).split())
    stripped = text.strip(_STRAY)
    return stripped if stripped else text

def is_missing(value: object) -> bool:
    """Tell whether a cell means 'no value' (blank, '.', '-', 'n/a', 'pending', ...)."""
    if value is None:
        return True
    text = str(value).strip().lower()
    return text in MISSING_MARKERS or text.strip(_STRAY) in MISSING_MARKERS


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
    text = clean_cell(raw)
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
    return _office_of_text(clean_cell(raw), where)


@lru_cache(maxsize=4096)  # a sheet repeats a few dozen spellings of its offices
def _office_of_text(text: str, where: str) -> str:
    check_plain(text, where)
    upper = text.upper()
    bare = re.sub(r"\s*\b(SERVICE CENTER|SC|USCIS|OFFICE|CENTER)\b\s*", " ", upper).strip(_STRAY + " ")
    code = office_of(upper) or office_of(bare) or SERVICE_CENTER_CITIES.get(bare)
    if code is None:
        code = next((c for word, c in _OFFICE_WORDS.items() if upper.startswith(word)), None)
    if code is None:
        raise ParseError(
            f"{where} {text[:30]!r} is not a USCIS service center or lockbox we know: use NSC, "
            "TSC, VSC, CSC, NBC, PSC or ELIS, a center's city (Dallas, Lincoln, St. Albans, "
            "Laguna Niguel, Lee's Summit), or the first three letters of the receipt number "
            "(e.g. LIN). A field office (where interviews take place) is not the office that "
            "has the case file: put it in a column named field_office (never read), or map the "
            "column away with --columns 'Office=ignore'"
        )
    return code


def parse_receipt_field(raw: object, where: str) -> str | None:
    """Read an optional receipt number; an A-number typed there gets its own message."""
    if is_missing(raw):
        return None
    text = clean_cell(raw)
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




def parse_processing(raw: object, where: str = "processing") -> bool | None:
    """Read premium processing from 'premium', 'regular', 'PP', 'yes', 'no', 'x'; None if absent."""
    if raw is None or (is_missing(raw) and str(raw).strip().lower() != "no"):
        return None
    text = clean_cell(raw).lower()
    if text in {"premium", "premium processing", "pp", "x", "✓", "✔", "1", "true", "yes", "y",
                "expedited premium"}:
        return True
    if text in {"regular", "standard", "normal", "rp", "non-premium", "non premium", "no pp",
                "0", "false", "no", "n"}:
        return False
    check_plain(text, where)
    raise ParseError(f"{where} {text[:20]!r} is not a processing type: write premium or regular")
