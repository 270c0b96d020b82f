"""The USCIS forms a case (and so a receipt number) can be opened for.

Used to turn away a typo such as I-458 instead of accepting it as a new, empty group.
If USCIS adds a form, add it here; `timelines submit` names this file in its message.
"""

from __future__ import annotations

from pipeline.parse.errors import ParseError
from pipeline.parse.fields import normalize_form_type

_FORMS_TEXT = """
    EOIR-29
    G-28 G-639 G-845 G-884 G-1041 G-1041A G-1055 G-1145 G-1256 G-1450 G-1566 G-1650
    I-90 I-102 I-129 I-129CW I-129F I-129S I-130 I-130A I-131 I-131A I-134 I-134A I-140
    I-191 I-192 I-193 I-212 I-290B I-360 I-361 I-363 I-407 I-485 I-485J I-508 I-526 I-526E
    I-539 I-539A I-566 I-589 I-590 I-600 I-600A I-601 I-601A I-602 I-612 I-690 I-693 I-694
    I-698 I-730 I-751 I-765 I-765V I-800 I-800A I-817 I-821 I-821D I-824 I-829 I-864 I-881
    I-907 I-910 I-912 I-914 I-918 I-924 I-924A I-929 I-941 I-942 I-945 I-956 I-956F I-956G
    I-956H I-956K
    N-300 N-336 N-400 N-426 N-470 N-565 N-600 N-600K N-644 N-648
"""
KNOWN_FORMS: frozenset[str] = frozenset(_FORMS_TEXT.split())
COMMON_FORMS = ("I-485", "I-765", "I-131", "I-130", "I-140", "I-129", "I-751", "N-400", "I-90")


def known_form_type(raw: object, where: str = "form type") -> str | None:
    """Normalize a form type and refuse one USCIS does not have; None when absent."""
    try:
        form = normalize_form_type(raw)
    except ParseError as error:
        raise ParseError(f"{where}: {error}") from error
    if form is not None and form not in KNOWN_FORMS:
        raise ParseError(
            f"{where} {form} is not a USCIS form we know (common ones: {', '.join(COMMON_FORMS)}). "
            "Check for a typo; if it is a real USCIS form, tell us so we add it to "
            "pipeline/parse/forms.py"
        )
    return form
