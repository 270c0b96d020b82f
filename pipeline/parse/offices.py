"""Office codes across eras and sources: service centers, their legacy codes, field offices.

USCIS's processing-time answers name offices by era: 2018-era answers use the old service-center
codes (WSC California, NSC Nebraska, SSC Texas, ESC Vermont, MSC National Benefits Center, YSC
Potomac), current ones CSC, NSC, TSC, VSC, NBC, PSC; field offices have 3-letter codes of their
own (DAL Dallas). Community spreadsheets write names ("Dallas", "Texas Service Center"). Every
one of them becomes one office code: the current service-center code, or a field office's
3-letter code. The field-office table below is ours, compiled from the offices USCIS lists on its
processing-times page and field-office pages; it is not an official code list (USCIS publishes
none), so an unknown 3-letter code is kept as written rather than refused.
"""

from __future__ import annotations

import re

from pipeline.receipts import OFFICE_NAMES, office_of

# Official processing-time office codes, legacy (2018 era) and current -> our service-center code.
SERVICE_CENTER_CODES: dict[str, str] = {
    "WSC": "CSC", "CSC": "CSC",  # California (Laguna Niguel)
    "NSC": "NSC",  # Nebraska (Lincoln)
    "SSC": "TSC", "TSC": "TSC",  # Texas (Dallas / Mesquite)
    "ESC": "VSC", "VSC": "VSC",  # Vermont (St. Albans)
    "MSC": "NBC", "NBC": "NBC",  # National Benefits Center (Lee's Summit, MO)
    "YSC": "PSC", "PSC": "PSC",  # Potomac (Arlington, VA)
}
LEGACY_CODES: frozenset[str] = frozenset({"WSC", "SSC", "ESC", "MSC", "YSC"})

# USCIS field offices: code -> "City ST". Ours (see the module docstring), not an official list.
FIELD_OFFICES: dict[str, str] = {
    "AGA": "Agana GU", "ALB": "Albany NY", "ANC": "Anchorage AK", "ATL": "Atlanta GA",
    "BAL": "Baltimore MD", "BOI": "Boise ID", "BOS": "Boston MA", "BRO": "Brownsville TX",
    "BUF": "Buffalo NY", "CHA": "Charleston SC", "CHL": "Charlotte NC", "CHI": "Chicago IL",
    "CHR": "Christiansted VI", "CIN": "Cincinnati OH", "CLE": "Cleveland OH",
    "COL": "Columbus OH", "DAL": "Dallas TX", "DEN": "Denver CO", "DES": "Des Moines IA",
    "DET": "Detroit MI", "ELP": "El Paso TX", "FRE": "Fresno CA", "FTM": "Fort Myers FL",
    "FTS": "Fort Smith AR", "GRR": "Grand Rapids MI", "HAR": "Hartford CT",
    "HLG": "Harlingen TX", "HON": "Honolulu HI", "HOU": "Houston TX", "IND": "Indianapolis IN",
    "JAC": "Jacksonville FL", "KAN": "Kansas City MO", "KEN": "Kendall FL",
    "LAS": "Las Vegas NV", "LAW": "Lawrence MA", "LOS": "Los Angeles CA",
    "LOU": "Louisville KY", "MEM": "Memphis TN",
    "MIA": "Miami FL", "MIL": "Milwaukee WI", "MIN": "Minneapolis-St. Paul MN",
    "MOB": "Mobile AL", "MTL": "Mount Laurel NJ", "NEW": "Newark NJ", "NOL": "New Orleans LA",
    "NYC": "New York City NY", "OAK": "Oakland Park FL", "OKC": "Oklahoma City OK",
    "OMA": "Omaha NE", "ORL": "Orlando FL", "PHI": "Philadelphia PA", "PHO": "Phoenix AZ",
    "PIT": "Pittsburgh PA", "POO": "Portland OR", "POM": "Portland ME", "PRO": "Providence RI",
    "QNS": "Queens NY", "RAL": "Raleigh-Durham NC", "RNO": "Reno NV", "SAA": "San Antonio TX",
    "SAC": "Sacramento CA", "SAJ": "San Juan PR", "SDC": "San Diego CA",
    "SEA": "Seattle WA", "SFR": "San Francisco CA", "SJO": "San Jose CA",
    "SLC": "Salt Lake City UT", "SNA": "Santa Ana CA", "SPM": "St. Paul MN",
    "SPO": "Spokane WA", "STL": "St. Louis MO", "TAM": "Tampa FL", "TUC": "Tucson AZ",
    "WAS": "Washington DC", "WPB": "West Palm Beach FL", "YAK": "Yakima WA",
}

_SUFFIX = re.compile(r"\s+(?:field\s+office|fo|office|uscis)$", re.IGNORECASE)


def _name_key(text: str) -> str:
    """Return an upper-case key of a place name without state, punctuation or 'field office'."""
    cleaned = _SUFFIX.sub("", re.sub(r"[.\s]+", " ", text.strip()))
    cleaned = re.sub(r",\s*[A-Za-z]{2}$|\s+[A-Z]{2}$", "", cleaned)
    return re.sub(r"[^A-Z]", "", cleaned.upper())


_NAMES: dict[str, str] = {}
for _code, _name in FIELD_OFFICES.items():
    _NAMES.setdefault(_name_key(re.sub(r"\s+[A-Z]{2}$", "", _name)), _code)
for _code, _name in OFFICE_NAMES.items():
    _NAMES.setdefault(_name_key(_name), _code)
_NAMES |= {"VERMONT": "VSC", "CALIFORNIA": "CSC", "NEBRASKA": "NSC", "TEXAS": "TSC",
           "POTOMAC": "PSC", "NATIONALBENEFITS": "NBC", "NATIONALBENEFITSCENTER": "NBC",
           "NEWYORK": "NYC", "MINNEAPOLIS": "MIN", "SAINTPAUL": "SPM", "STPAUL": "SPM",
           "RALEIGH": "RAL", "DURHAM": "RAL", "WASHINGTONDC": "WAS", "SANJUAN": "SAJ"}


def office_code(raw: object) -> str | None:
    """Return our office code for any way of naming an office, or None when unknown.

    Accepts current and legacy service-center codes (SSC -> TSC), receipt prefixes (SRC ->
    TSC), field-office codes (DAL) and names ("Dallas", "Dallas, TX", "Dallas Field Office",
    "Texas Service Center").
    """
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    upper = text.upper()
    if upper in SERVICE_CENTER_CODES:
        return SERVICE_CENTER_CODES[upper]
    if upper in FIELD_OFFICES:
        return upper
    known = office_of(text)
    if known is not None:
        return known
    return _NAMES.get(_name_key(text))


def office_label(code: str | None) -> str:
    """Return a readable name for an office code (the code itself when unknown)."""
    if code is None:
        return "all offices"
    return OFFICE_NAMES.get(code) or FIELD_OFFICES.get(code) or code
