"""The canonical data model every source is turned into.

A ParsedCase is what a parser reads from one input; it may still hold the receipt number.
A CaseRecord is what the anonymizer keeps: a keyed pseudonym instead of the receipt, the
form type, category, processing type, offices, fiscal year, dates and dated stage events,
nothing else.

Case attributes shared with the estimators (docs/data-model.md, "Case attributes"):
- `category`: the canonical per-form category code (pipeline.parse.categories), or None.
- `processing`: 'premium' when an input says the case is premium processed, else 'regular'
  (forms without premium processing, and cases that do not say, count as regular).
- `tracked_since`: the day the case came under observation while pending (first poll of a
  receipt opted in while pending, a CSV `tracked_since` column); None = from the receipt.
- `received_estimated`: the received date was estimated from a legacy receipt number (a
  status snapshot without a receipt date), not given by USCIS or the submitter.
- `last_checked`: the day the case's status was last known (a row's own `last_checked`,
  else ingest's --as-of, else when the input was observed); pending cases are censored there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

# Where a record came from. Kept on the case (a case may have several) and on each event.
SOURCES: tuple[str, ...] = (
    "case_status_api",  # official developer.uscis.gov Case Status API (polled or pasted)
    "myuscis",  # JSON copied from a signed-in myUSCIS account
    "simplified",  # {receiptNumber, formType, currentStatus, events:[...]} shape
    "typed_form",  # a timeline typed into the submit form
    "csv_import",  # a row of a community spreadsheet
    "egov_csol",  # the public case-status page's backend JSON
    "status_snapshot",  # one current status per receipt (receipt-range crawlers)
)

FORM_TYPE_PATTERN = r"^(I|N|G|EOIR)-[0-9]{1,4}[A-Z]{0,3}$"
PROCESSING_TYPES: tuple[str, ...] = ("regular", "premium")


def processing_of(premium: bool | None) -> str:
    """The processing type: premium only when an input says so, else regular."""
    return "premium" if premium is True else "regular"


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """One dated status of a case: normalized title and its stage."""

    event_date: date
    title: str
    stage: str


@dataclass(slots=True)
class ParsedCase:
    """One case as read from an input, before anonymization."""

    receipt_number: str
    source: str
    form_type: str | None = None
    received_date: date | None = None
    current_office: str | None = None
    premium: bool | None = None
    events: list[StatusEvent] = field(default_factory=list)
    last_modified: datetime | None = None
    observed_at: datetime | None = None
    synthetic: bool = False
    category: str | None = None
    tracked_since: date | None = None
    last_checked: date | None = None
    received_estimated: bool = False

    @property
    def processing(self) -> str:
        """'premium' when the input says premium, else 'regular'."""
        return processing_of(self.premium)


@dataclass(slots=True)
class CaseRecord:
    """One anonymized case ready for validation and storage."""

    case_id: str
    source: str
    form_type: str | None
    intake_office: str | None
    current_office: str | None
    fiscal_year: int | None
    received_date: date | None
    premium: bool | None
    observed_at: datetime
    last_modified: datetime | None
    synthetic: bool
    events: list[StatusEvent] = field(default_factory=list)
    category: str | None = None
    tracked_since: date | None = None
    last_checked: date | None = None
    received_estimated: bool = False

    @property
    def processing(self) -> str:
        """'premium' when an input said premium, else 'regular' (never None)."""
        return processing_of(self.premium)

    @property
    def checked_on(self) -> date:
        """The day the case was last seen: its own last_checked, else the observation day;
        never before its latest event (a case with a status on day X was seen on day X)."""
        seen = self.last_checked or self.observed_at.date()
        latest = max((e.event_date for e in self.events), default=seen)
        return max(seen, latest)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that was not stored, with every reason in words a user understands.

    `attempt` is the anonymized record (never the raw payload, which may hold personal
    data); `fingerprint` is a keyed hash that makes re-ingesting the same input a no-op.
    """

    origin: str
    reasons: tuple[str, ...]
    fingerprint: str
    case_id: str | None = None
    attempt: dict[str, object] | None = None
