"""Blanking personal identifiers in text before any of it is shown in storage or logs.

Nothing free-text is stored by design; this is the second line of defence for the few
strings that are (rejection reasons, origins) and the detector the privacy tests use.
"""

from __future__ import annotations

import re

# A-number: "A" + 8 or 9 digits, often written A-123-456-789 or A 123 456 789.
A_NUMBER_RE = re.compile(r"\bA[-\s#]?(?:[0-9][-\s]?){7,8}[0-9]\b", re.IGNORECASE)
RECEIPT_LIKE_RE = re.compile(r"\b[A-Za-z]{3}[-\s]?\*?(?:[0-9][-\s]?){8,9}[0-9]\b")
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
PHONE_RE = re.compile(r"(?<![0-9-])(?:\+?1[-.\s]?)?\(?[0-9]{3}\)?[-.\s][0-9]{3}[-.\s][0-9]{4}(?![0-9])")
SSN_RE = re.compile(r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b")

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (EMAIL_RE, "<e-mail>"),
    (RECEIPT_LIKE_RE, "<receipt>"),
    (A_NUMBER_RE, "<A-number>"),
    (SSN_RE, "<number>"),
    (PHONE_RE, "<phone>"),
)


def redact(text: str) -> str:
    """Replace receipt numbers, A-numbers, e-mails, phone and social security numbers."""
    for pattern, placeholder in _PATTERNS:
        text = pattern.sub(placeholder, text)
    return text


def personal_identifiers(text: str) -> list[str]:
    """Every receipt number, A-number or e-mail address found in a text (for audits)."""
    return [m.group(0) for p in (RECEIPT_LIKE_RE, A_NUMBER_RE, EMAIL_RE) for m in p.finditer(text)]


# A value quoted in a message ('...' or "..."), not an apostrophe inside a word (USCIS's).
_QUOTED_RE = re.compile(r"(?<![\w])'[^'\n]{0,200}'(?![\w])|(?<![\w])\"[^\"\n]{0,200}\"(?![\w])")


def redact_for_storage(message: str) -> str:
    """A message fit to be stored: identifiers redacted and every quoted input value blanked.

    Error messages quote what the user gave ('GONZALEZ, MARIA' is not a form number), which
    helps on screen but may be personal data, so stored copies keep only the words around it.
    """
    return redact(_QUOTED_RE.sub("'…'", message))
