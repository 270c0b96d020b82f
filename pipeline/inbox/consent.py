"""The consent a submitter gives, versioned: what is stored with a submission is the
version, a hash of the exact text shown and the time it was given."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

CONSENT_VERSION = "2025-06-v1"
CONSENT_TEXT = (
    "I agree to share the anonymized timeline shown above with the uscis-timelines community "
    "statistics. I understand that only the form type, the offices, the fiscal year, the "
    "premium-processing flag and the dated stages are stored, under a keyed pseudonym instead "
    "of my receipt number; that my name, A-number, addresses, e-mail, phone, documents and "
    "any free text are not stored; that the statistics built from it are published as open "
    "data, never for groups of fewer than the minimum number of cases; and that I can remove "
    "my submission at any time with the deletion code I receive once, now. If I submit "
    "other people's timelines (a community spreadsheet), they agreed to share them."
)


@dataclass(frozen=True)
class Consent:
    """Consent as recorded: which text (version and hash) and when it was given."""

    version: str
    text_sha256: str
    given_at: datetime

    def as_json(self) -> dict[str, str]:
        """The consent as stored in the inbox."""
        return {"version": self.version, "text_sha256": self.text_sha256,
                "given_at": self.given_at.isoformat(timespec="seconds")}


def text_hash(text: str = CONSENT_TEXT) -> str:
    """SHA-256 of a consent text, identifying exactly what the submitter read."""
    return hashlib.sha256(text.encode()).hexdigest()


def give_consent(now: datetime) -> Consent:
    """Record that the current consent text was accepted at `now`."""
    return Consent(CONSENT_VERSION, text_hash(), now)
