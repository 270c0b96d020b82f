"""Case categories: one canonical code per form and category, read from what people write.

USCIS publishes processing times per form and category, and names each category with a code:
I-140 by preference classification (E11 "Extraordinary ability", E12, E13, E21, E21 with a
National Interest Waiver, E31/E32, EW3), I-765 by eligibility code ((c)(9), (c)(8), (a)(12)),
I-130 by relationship (immediate relative, F1, F2A, F2B, F3, F4), I-485 by basis. The
canonical codes below are those codes; spellings seen in spreadsheets and on myUSCIS (EB2,
EB-2, E21, NIW, c9, C09, 147-C9, "(c)(9)") are read into them. The table is documented in
docs/data-model.md ("Categories").
"""

from __future__ import annotations

import re
from functools import cache

from pipeline.parse.errors import ParseError

# form -> canonical code -> what it means (the official wording where USCIS has one)
VOCABULARY: dict[str, dict[str, str]] = {
    "I-140": {
        "E11": "EB-1A, extraordinary ability (E11)",
        "E12": "EB-1B, outstanding professor or researcher (E12)",
        "E13": "EB-1C, multinational executive or manager (E13)",
        "EB-1": "EB-1, subcategory not given (E11, E12 or E13)",
        "E21": "EB-2, advanced degree or exceptional ability, without a National Interest Waiver (E21)",
        "NIW": "EB-2 with a National Interest Waiver (E21 NIW)",
        "E31": "EB-3, skilled worker (E31)",
        "E32": "EB-3, professional (E32)",
        "EB-3": "EB-3, skilled worker or professional, subcategory not given (E31 or E32)",
        "EW3": "EB-3, other (unskilled) worker (EW3)",
    },
    "I-485": {
        "employment": "employment-based adjustment (EB-1, EB-2, EB-3, ...)",
        "family": "family-based adjustment (immediate relative or family preference)",
        "asylee": "based on a grant of asylum",
        "refugee": "based on refugee admission",
        "diversity": "diversity visa (lottery) winner",
    },
    "I-130": {
        "IR": "U.S. citizen for a spouse, parent or child under 21 (immediate relative: IR1, CR1, IR2, IR5)",
        "F1": "U.S. citizen for an unmarried son or daughter 21 or over (F1)",
        "F2A": "permanent resident for a spouse or child under 21 (F2A)",
        "F2B": "permanent resident for an unmarried son or daughter 21 or over (F2B)",
        "F3": "U.S. citizen for a married son or daughter (F3)",
        "F4": "U.S. citizen for a brother or sister (F4)",
    },
}
# I-765 eligibility codes are many; any (a)(N) or (c)(N)[(X)] code is accepted.
_ELIGIBILITY_FORMS = {"I-765"}
_ELIGIBILITY_RE = re.compile(
    r"^\(?\s*([AC])\s*\)?\s*[-(]?\s*0*(\d{1,2})\s*\)?\s*(?:\(?\s*([A-Z]|II?I?|IV)\s*\)?)?$"
)

_SPELLINGS: dict[str, dict[str, str]] = {
    "I-140": {
        "EB1A": "E11", "E11": "E11", "EB1EA": "E11", "EXTRAORDINARYABILITY": "E11", "EA": "E11",
        "EB1B": "E12", "E12": "E12", "OR": "E12", "OUTSTANDINGRESEARCHER": "E12",
        "OUTSTANDINGPROFESSORORRESEARCHER": "E12",
        "EB1C": "E13", "E13": "E13", "MNC": "E13", "MULTINATIONALMANAGER": "E13",
        "MULTINATIONALEXECUTIVEORMANAGER": "E13",
        "EB1": "EB-1", "E1": "EB-1",
        "EB2NIW": "NIW", "NIW": "NIW", "E21NIW": "NIW", "NATIONALINTERESTWAIVER": "NIW",
        "EB2": "E21", "E21": "E21", "EB2PERM": "E21", "E21NONNIW": "E21", "EB2NONNIW": "E21",
        "EB3": "EB-3", "EB3PERM": "EB-3", "E3": "EB-3", "E31E32": "EB-3",
        "E31": "E31", "EB3SKILLED": "E31", "SKILLEDWORKER": "E31",
        "E32": "E32", "EB3PROFESSIONAL": "E32", "PROFESSIONAL": "E32",
        "EW3": "EW3", "EW": "EW3", "EB3EW": "EW3", "EB3OTHER": "EW3", "EB3UNSKILLED": "EW3",
        "OTHERWORKER": "EW3", "UNSKILLEDWORKER": "EW3",
    },
    "I-485": {
        **{k: "employment" for k in (
            "EMPLOYMENT", "EMPLOYMENTBASED", "EB", "EB1", "EB1A", "EB1B", "EB1C", "EB2", "EB2NIW",
            "NIW", "EB3", "EB4", "EB5", "E11", "E12", "E13", "E21", "E31", "E32", "EW3")},
        **{k: "family" for k in (
            "FAMILY", "FAMILYBASED", "FB", "MARRIAGE", "MARRIAGEBASED", "SPOUSE", "IR", "IR1",
            "CR1", "IR2", "IR5", "F1", "F2A", "F2B", "F3", "F4", "IMMEDIATERELATIVE")},
        "ASYLUM": "asylee", "ASYLEE": "asylee", "ASYLUMBASED": "asylee",
        "REFUGEE": "refugee", "REFUGEEBASED": "refugee",
        "DV": "diversity", "DIVERSITY": "diversity", "DIVERSITYVISA": "diversity",
        "LOTTERY": "diversity",
    },
    "I-130": {
        **{k: "IR" for k in (
            "IR", "IR1", "CR1", "IR2", "CR2", "IR5", "IMMEDIATERELATIVE", "USCSPOUSE",
            "USCPARENT", "USCCHILD", "SPOUSEOFUSC", "PARENTOFUSC")},
        "F1": "F1", "F2A": "F2A", "LPRSPOUSE": "F2A", "SPOUSEOFLPR": "F2A", "F2B": "F2B",
        "F3": "F3", "F4": "F4", "SIBLING": "F4", "BROTHERORSISTER": "F4",
    },
}


def has_categories(form_type: str | None) -> bool:
    """Tell whether we know categories for a form."""
    return form_type in VOCABULARY or form_type in _ELIGIBILITY_FORMS


@cache
def all_categories() -> frozenset[str]:
    """Every canonical code of a fixed vocabulary (I-765 codes are checked by pattern)."""
    return frozenset(code for codes in VOCABULARY.values() for code in codes)


def _key(text: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "", text.upper())


def eligibility_code(text: str) -> str | None:
    """The canonical I-765 eligibility code of '(c)(9)', 'c9', 'C09', '147-C9', 'c-3-b'."""
    cleaned = re.sub(r"^\s*\d{3}[A-Z]?\s*-\s*", "", text.upper().strip())  # '147-C9'
    cleaned = re.sub(r"[\[\]]", "", cleaned).replace("-", " ")
    match = _ELIGIBILITY_RE.match(cleaned.strip())
    if match is None:
        return None
    letter, number, sub = match.groups()
    suffix = f"({sub})" if sub else ""
    return f"({letter.lower()})({int(number)}){suffix}"


def is_category(form_type: str | None, code: str) -> bool:
    """Tell whether a code is canonical for a form."""
    if form_type in _ELIGIBILITY_FORMS:
        return eligibility_code(code) == code
    return code in VOCABULARY.get(form_type or "", {})


def read_category(form_type: str | None, raw: object) -> str | None:
    """Read a category as people write it; None if absent, or ParseError saying what fits."""
    if raw is None:
        return None
    text = " ".join(str(raw).split()).strip(" ,;.")
    if not text or text.lower() in {"-", "n/a", "na", "none", "unknown", "?"}:
        return None
    found = category_in(form_type, text)
    if found is not None:
        return found
    if not has_categories(form_type):
        raise ParseError(
            f"category {text[:30]!r}: we have no categories for {form_type or 'this form'}; "
            "leave the category empty (categories are known for "
            f"{', '.join(sorted({*VOCABULARY, *_ELIGIBILITY_FORMS}))})"
        )
    raise ParseError(f"category {text[:30]!r} is not a category we know for {form_type}; {hint(form_type)}")


def category_in(form_type: str | None, text: str) -> str | None:
    """The canonical category a text names for a form, or None."""
    if form_type in _ELIGIBILITY_FORMS:
        bracketed = re.search(r"\(\s*[ac]\s*\)\s*\(\s*\d{1,2}\s*\)(?:\s*\(\s*[a-z]{1,3}\s*\))?", text, re.I)
        return eligibility_code(bracketed.group(0) if bracketed else text)
    spellings = _SPELLINGS.get(form_type or "", {})
    key = _key(text)
    if key in spellings:
        return spellings[key]
    for word in re.findall(r"\(([^)]+)\)", text):  # 'Extraordinary ability (E11)'
        if _key(word) in spellings:
            return spellings[_key(word)]
    return None


def hint(form_type: str | None) -> str:
    """What a category of a form looks like, for a message."""
    if form_type in _ELIGIBILITY_FORMS:
        return "write the eligibility code from Part 2 of the form, e.g. (c)(9), (c)(8) or (a)(12)"
    codes = VOCABULARY.get(form_type or "", {})
    return "use one of " + ", ".join(codes) + " (or leave it empty)"


def category_of_subtype(form_type: str | None, subtype: object) -> str | None:
    """The category of a myUSCIS receipt_info subtype ('147-C9') or an official subtype label."""
    if not isinstance(subtype, str) or not subtype.strip():
        return None
    text = subtype.strip()
    found = category_in(form_type, text)
    if found is None:
        tail = re.sub(r"^\s*\d{2,3}[A-Z]?\s*-\s*", "", text)  # '136A-E11' -> 'E11'
        found = category_in(form_type, tail)
    return found
