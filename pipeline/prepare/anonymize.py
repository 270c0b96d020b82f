"""Keyed pseudonyms and the whitelist of what is kept about a case.

A receipt number is low-entropy: a plain hash of it is reversed by enumerating receipts,
so the pseudonym is an HMAC under a secret key. The key is generated on first use into
TIMELINES_HOME (mode 0600) or given by TIMELINES_PSEUDONYM_KEY; the polling registry and
the submissions use the same key, so a case that is both polled and submitted is one case.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.model import CaseRecord, ParsedCase
from pipeline.receipts import fiscal_year, intake_office, normalize_receipt
from pipeline.settings import Secret, Settings
from pipeline.stages import event_order

KEY_ENV = "TIMELINES_PSEUDONYM_KEY"
MIN_KEY_CHARS = 32


@dataclass(frozen=True)
class PseudonymKey:
    """The secret behind every pseudonym; its repr never shows the secret."""

    secret: bytes

    def __repr__(self) -> str:
        return "PseudonymKey(<secret>)"


def key_of(settings: Settings) -> PseudonymKey:
    """The pseudonym key these settings name: TIMELINES_PSEUDONYM_KEY, else the key file."""
    return load_key(settings.key_path, settings.pseudonym_key)


def load_key(key_path: Path, secret: Secret | None = None) -> PseudonymKey:
    """Return the given key, else the one in key_path, creating it (0600) if absent."""
    if secret is not None:
        given = secret.reveal()
        if len(given) < MIN_KEY_CHARS:
            raise ValueError(
                f"{KEY_ENV} is set but too short: use at least {MIN_KEY_CHARS} random characters "
                "(e.g. the output of `python -c 'import secrets; print(secrets.token_hex(32))'`)"
            )
        return PseudonymKey(given.encode())
    if not key_path.exists():
        _create_key_file(key_path)
    text = key_path.read_text().strip()
    if len(text) < MIN_KEY_CHARS:
        raise ValueError(f"the pseudonym key file {key_path} is empty or damaged; restore it from backup")
    return PseudonymKey(text.encode())


def _create_key_file(key_path: Path) -> None:
    """Write a new random key, whole, under key_path, unless another process already has.

    The key is written and flushed to a file of its own first, then linked under its name:
    a process starting at the same moment sees no key file or the whole one, never a file
    still being written; the first link wins and every process reads that key."""
    key_path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    fd, scratch = tempfile.mkstemp(prefix=".pseudonym-", dir=key_path.parent)  # 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secret)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(scratch, key_path)
        except FileExistsError:
            pass  # another process created it first: read theirs
        except OSError:  # a file system without hard links: create it in place
            with suppress(FileExistsError), os.fdopen(
                    os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
                handle.write(secret)
    finally:
        os.unlink(scratch)


def keyed_id(identity: str, key: PseudonymKey) -> str:
    """The one pseudonym function: `c_` + 32 hex digits of HMAC-SHA256 under the key."""
    digest = hmac.new(key.secret, identity.encode(), hashlib.sha256).hexdigest()
    return "c_" + digest[:32]


def pseudonymize(receipt: str, key: PseudonymKey) -> str:
    """The stable keyed pseudonym of a receipt number."""
    return keyed_id(normalize_receipt(receipt), key)


def anonymize_case(case: ParsedCase, key: PseudonymKey, observed_at: datetime) -> CaseRecord:
    """Keep only the whitelisted facts of a parsed case, under its pseudonym."""
    return CaseRecord(
        case_id=pseudonymize(case.receipt_number, key),
        source=case.source,
        form_type=case.form_type,
        intake_office=intake_office(case.receipt_number),
        current_office=case.current_office,
        fiscal_year=fiscal_year_of(case),
        received_date=case.received_date,
        premium=case.premium,
        observed_at=case.observed_at or observed_at,
        last_modified=case.last_modified,
        synthetic=case.synthetic,
        events=sorted(set(case.events), key=lambda e: event_order(e.event_date, e.stage)),
        category=case.category,
        tracked_since=case.tracked_since,
        last_checked=case.last_checked,
        received_estimated=case.received_estimated,
    )


def fiscal_year_of(case: ParsedCase) -> int | None:
    """Fiscal year (starts Oct 1) from the receipt, else from the received date."""
    from_receipt = fiscal_year(case.receipt_number)
    if from_receipt is not None:
        return from_receipt
    if case.received_date is None:
        return None
    received = case.received_date
    return received.year + 1 if received.month >= 10 else received.year
