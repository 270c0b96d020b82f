"""Status titles and history sentences mapped to processing stages."""

from __future__ import annotations

import csv
import html
import re
from functools import cache, lru_cache
from importlib import resources

STAGES: tuple[str, ...] = (
    "received",
    "biometrics",
    "review",
    "rfe",
    "rfe_response",
    "interview",
    "transferred",
    "approved",
    "card_production",
    "card_mailed",
    "denied",
    "rejected",
    "withdrawn",
    "other",
)
# Typical order within a case; used to order events that share a date.
STAGE_ORDER: dict[str, int] = {stage: rank for rank, stage in enumerate((
    "received", "biometrics", "transferred", "review", "rfe", "rfe_response", "interview",
    "other", "approved", "denied", "rejected", "withdrawn", "card_production", "card_mailed",
))}


def event_order(event_date: object, stage: str) -> tuple[object, int]:
    """Sort key for events: by date, then by the stage's usual place in a case."""
    return (event_date, STAGE_ORDER.get(stage, len(STAGE_ORDER)))


# Stages that close the adjudication: the end point of "receipt -> decision".
DECISION_STAGES: frozenset[str] = frozenset({"approved", "denied"})
# A card being produced or mailed implies an approval, even when the history skips "approved".
APPROVAL_IMPLIED_BY: frozenset[str] = frozenset({"approved", "card_production", "card_mailed"})
TERMINAL_STAGES: frozenset[str] = frozenset(
    {"approved", "card_production", "card_mailed", "denied", "rejected", "withdrawn"}
)

# The title we store for an event whose wording is not in the catalog: never free text.
GENERIC_TITLES: dict[str, str] = {
    "received": "Case Was Received",
    "biometrics": "Biometrics Appointment Was Scheduled",
    "review": "Case Is Being Actively Reviewed By USCIS",
    "rfe": "Request for Additional Evidence Was Sent",
    "rfe_response": "Response To USCIS' Request For Evidence Was Received",
    "interview": "Interview Was Scheduled",
    "transferred": "Case Was Transferred And A New Office Has Jurisdiction",
    "approved": "Case Was Approved",
    "card_production": "Card Was Produced",
    "card_mailed": "Card Was Mailed To Me",
    "denied": "Case Was Denied",
    "rejected": "Case Was Rejected",
    "withdrawn": "Withdrawal Acknowledgement Notice Was Sent",
    "other": "Other Status Update",
}

# Keyword fallback for unknown titles and for the sentences of hist_case_status.
# Order matters: the first pattern that matches wins.
_KEYWORD_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), stage)
    for pattern, stage in (
        (r"response to (our|the|uscis'?)? ?request|received (your|the) (rfe )?response", "rfe_response"),
        (r"request (for|of) (additional |initial )?evidence|\brfe\b|notice of intent to deny", "rfe"),
        (r"fingerprint|biometric", "biometrics"),
        (r"interview", "interview"),
        (r"transfer|relocated|new office|another (uscis )?office|has jurisdiction", "transferred"),
        (r"withdr[ae]w", "withdrawn"),
        (r"reject", "rejected"),
        (r"\bden(y|ied|ial)\b|dismiss|terminat|revoked|abandon", "denied"),
        (r"(card|document|permit).{0,30}(mailed|delivered|picked up)|mailed your (new )?(card|document)", "card_mailed"),
        (r"(card|document|permit).{0,30}(produc|ordered)|(produc|order)\w* your (new )?(card|document)", "card_production"),
        (r"approv|affirmed|oath|naturalized", "approved"),
        (r"receiv|accepted", "received"),
        (r"review|reopen|on hold|pending|processing", "review"),
    )
)

_TAG_RE = re.compile(r"<[^>]*>")
_SPACE_RE = re.compile(r"\s+")


def clean_text(raw: str) -> str:
    """Unescape HTML entities, strip tags and squeeze whitespace."""
    text = html.unescape(html.unescape(str(raw)))
    text = _TAG_RE.sub(" ", text)
    return _SPACE_RE.sub(" ", text).strip()


@cache
def title_catalog() -> dict[str, tuple[str, str]]:
    """Lower-cased title -> (canonical title, stage), from the shipped status_titles.csv."""
    text = resources.files("pipeline.reference").joinpath("status_titles.csv").read_text()
    return {
        row["title"].strip().lower(): (row["title"].strip(), row["stage"].strip())
        for row in csv.DictReader(text.splitlines())
    }


def classify(raw_title: str) -> tuple[str, str]:
    """Return (normalized title, stage) for a status title or history sentence."""
    return _classify_text(str(raw_title))


@lru_cache(maxsize=65_536)  # a few hundred distinct wordings recur across millions of events
def _classify_text(raw_title: str) -> tuple[str, str]:
    text = clean_text(raw_title)
    known = title_catalog().get(text.lower())
    if known is not None:
        return known
    for pattern, stage in _KEYWORD_RULES:
        if pattern.search(text):
            return GENERIC_TITLES[stage], stage
    return GENERIC_TITLES["other"], "other"


def stage_of(raw_title: str) -> str:
    """Return only the stage of a title or sentence."""
    return classify(raw_title)[1]
