"""Receipt numbers: their format, the office that took the case in, the fiscal year."""

from __future__ import annotations

import csv
import re
from datetime import date
from functools import cache
from importlib import resources

RECEIPT_RE = re.compile(r"^[A-Z]{3}(?:[0-9]{10}|\*[0-9]{9})$")
# Anything that looks like a receipt inside free text (used to scrub and to audit storage).
RECEIPT_IN_TEXT_RE = re.compile(r"\b[A-Za-z]{3}[-\s]?\*?[0-9]{9,10}\b")

# One set of office codes everywhere: receipt prefix or myUSCIS jurisdiction -> office code.
OFFICE_ALIASES: dict[str, str] = {
    "EAC": "VSC",
    "VSC": "VSC",
    "WAC": "CSC",
    "CSC": "CSC",
    "LIN": "NSC",
    "NSC": "NSC",
    "SRC": "TSC",
    "TSC": "TSC",
    "MSC": "NBC",
    "NBC": "NBC",
    "YSC": "PSC",
    "PSC": "PSC",
    "IOE": "ELIS",
    "ELIS": "ELIS",
}
OFFICES: tuple[str, ...] = ("VSC", "CSC", "NSC", "TSC", "NBC", "PSC", "ELIS")
OFFICE_NAMES: dict[str, str] = {
    "VSC": "Vermont Service Center",
    "CSC": "California Service Center",
    "NSC": "Nebraska Service Center",
    "TSC": "Texas Service Center",
    "NBC": "National Benefits Center",
    "PSC": "Potomac Service Center",
    "ELIS": "ELIS (online / electronic processing)",
}
_NAME_TO_OFFICE = {name.upper(): code for code, name in OFFICE_NAMES.items()} | {
    "VERMONT SERVICE CENTER": "VSC",
    "CALIFORNIA SERVICE CENTER": "CSC",
    "NEBRASKA SERVICE CENTER": "NSC",
    "TEXAS SERVICE CENTER": "TSC",
    "NATIONAL BENEFITS CENTER": "NBC",
    "POTOMAC SERVICE CENTER": "PSC",
    "POTOMAC": "PSC",
}


class InvalidReceiptError(ValueError):
    """A string that is not a USCIS receipt number."""


def normalize_receipt(raw: str) -> str:
    """Return the 13-character receipt, tolerating spaces, dashes and lower case; else raise."""
    cleaned = re.sub(r"[\s-]", "", str(raw)).upper()
    if not RECEIPT_RE.match(cleaned):
        raise InvalidReceiptError(
            f"{_preview(raw)!r} is not a USCIS receipt number: expected 3 letters and 10 digits, "
            "like EAC2190000001 (the number printed on your receipt notice, Form I-797C)"
        )
    if cleaned[:3] not in OFFICE_ALIASES:
        raise InvalidReceiptError(
            f"receipt prefix {cleaned[:3]!r} is not a known USCIS office "
            f"(known: {', '.join(sorted(k for k in OFFICE_ALIASES if len(k) == 3))})"
        )
    return cleaned


def _preview(raw: str) -> str:
    text = str(raw)
    return text if len(text) <= 20 else text[:17] + "..."


def is_receipt(raw: str) -> bool:
    """Tell whether a string is a well-formed receipt number with a known prefix."""
    try:
        normalize_receipt(raw)
    except InvalidReceiptError:
        return False
    return True


def office_of(code: str | None) -> str | None:
    """Map a receipt prefix, office code or office name to our office code, or None."""
    if not code:
        return None
    key = str(code).strip().upper()
    return OFFICE_ALIASES.get(key) or _NAME_TO_OFFICE.get(key)


def intake_office(receipt: str) -> str:
    """The office that took the case in, from the receipt prefix (does not change on transfer)."""
    office = office_of(receipt[:3])
    if office is None:
        raise InvalidReceiptError(f"unknown receipt prefix {receipt[:3]!r}")
    return office


def fiscal_year(receipt: str) -> int | None:
    """The fiscal year encoded in a legacy receipt (digits 4-5), or None for IOE receipts."""
    if receipt.startswith("IOE") or "*" in receipt:
        return None
    year = 2000 + int(receipt[3:5])
    # Two digits: 99 is 1999, not 2099 (the sandbox's staging receipts use 99).
    return year if year <= date.today().year + 1 else year - 100


@cache
def prefix_table() -> dict[str, str]:
    """The reference table of receipt prefixes and office names shipped with the package."""
    text = resources.files("pipeline.reference").joinpath("receipt_prefixes.csv").read_text()
    return {row["prefix"]: row["office"] for row in csv.DictReader(text.splitlines())}
