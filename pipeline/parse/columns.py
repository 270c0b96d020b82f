"""The field vocabulary of typed timelines and spreadsheet columns, and header synonyms.

A header or key is lower-cased, gaps become '_', and a leading 'date of' or trailing
'date'/'dt'/'on' is dropped before it is looked up ('Receipt Date' -> received_date). An
operator can add or override mappings with `timelines ingest --columns SOURCE=OURS,...`.
"""

from __future__ import annotations

import re

# Canonical field -> stage for the milestone dates, in timeline order.
MILESTONES: dict[str, str] = {
    "received_date": "received",
    "biometrics_date": "biometrics",
    "interview_date": "interview",
    "rfe_date": "rfe",
    "rfe_response_date": "rfe_response",
    "transferred_date": "transferred",
    "approved_date": "approved",
    "denied_date": "denied",
    "card_produced_date": "card_production",
    "card_mailed_date": "card_mailed",
    "withdrawn_date": "withdrawn",
}
FIELDS: tuple[str, ...] = (
    "receipt_number", "case_ref", "form_type", "office", "current_office", "premium",
    "category", "processing", *MILESTONES, "last_checked", "tracked_since", "status",
    "status_date",
)
# Spellings seen in community spreadsheets, after normalization (lower case, '_' for gaps).
_ALIASES: dict[str, str] = {
    "receipt_number": "receipt_number", "receipt": "receipt_number", "receipt_no": "receipt_number",
    "receipt_num": "receipt_number", "receipt_number_number": "receipt_number",
    "case_number": "receipt_number",
    "case_ref": "case_ref", "ref": "case_ref", "reference": "case_ref", "row_id": "case_ref",
    "form_type": "form_type", "form": "form_type", "form_number": "form_type", "type": "form_type",
    "office": "office", "intake_office": "office", "service_center": "office", "center": "office",
    "sc": "office", "receipt_office": "office", "processing_center": "office",
    "current_office": "current_office", "office_now": "current_office",
    "premium": "premium", "premium_processing": "premium", "pp": "premium",
    "received": "received_date", "receipt_date": "received_date", "rd": "received_date",
    "date_of_receipt": "received_date", "receipt_notice_date": "received_date",
    "biometrics": "biometrics_date", "bio": "biometrics_date", "biometric": "biometrics_date",
    "biometrics_appointment": "biometrics_date", "fingerprints": "biometrics_date",
    "fp": "biometrics_date", "bio_appointment": "biometrics_date",
    "interview": "interview_date",
    "rfe": "rfe_date", "rfe_issued": "rfe_date", "rfe_sent": "rfe_date",
    "rfe_response": "rfe_response_date", "rfe_responded": "rfe_response_date",
    "rfe_reply": "rfe_response_date", "response_to_rfe": "rfe_response_date",
    "rfe_response_received": "rfe_response_date",
    "transferred": "transferred_date", "transfer": "transferred_date",
    "approved": "approved_date", "approval": "approved_date",
    "denied": "denied_date", "denial": "denied_date",
    "card_produced": "card_produced_date", "card_production": "card_produced_date",
    "card_ordered": "card_produced_date",
    "card_mailed": "card_mailed_date", "card_sent": "card_mailed_date",
    "card_delivered": "card_mailed_date", "card_received": "card_mailed_date",
    "withdrawn": "withdrawn_date", "withdrawal": "withdrawn_date",
    "last_checked": "last_checked", "as_of": "last_checked", "status_as_of": "last_checked",
    "last_updated": "last_checked", "checked": "last_checked", "last_seen": "last_checked",
    "category": "category", "classification": "category", "preference": "category",
    "preference_category": "category", "eb_category": "category", "visa_category": "category",
    "eligibility": "category", "eligibility_category": "category", "eligibility_code": "category",
    "subtype": "category", "sub_category": "category", "subcategory": "category",
    "basis": "category", "relationship": "category",
    "processing": "processing", "processing_type": "processing", "processing_speed": "processing",
    "tracked_since": "tracked_since", "tracking_since": "tracked_since",
    "tracked_from": "tracked_since", "tracking_started": "tracked_since",
    "observed_since": "tracked_since", "observed_from": "tracked_since",
    "first_checked": "tracked_since", "joined": "tracked_since", "added": "tracked_since",
    "status": "status", "current_status": "status", "case_status": "status",
    "status_title": "status",
    "status_date": "status_date", "action_date": "status_date", "status_updated": "status_date",
}
IGNORED = "ignore"  # --columns NAME=ignore: never read that column



def header_key(header: str) -> str:
    """A header normalized for lookup: lower case, '_' for every gap."""
    key = header.replace("\ufeff", "").strip().lower().replace("#", " number ")
    return re.sub(r"[^a-z0-9]+", "_", key).strip("_")


def field_name(header: str) -> str | None:
    """The canonical field a header or key means ('Receipt Date' -> 'received_date'), or None."""
    key = header_key(header)
    if key in _ALIASES:
        return _ALIASES[key]
    base = re.sub(r"^date_(of_)?|_(date|dt|on|day)$", "", key)
    return _ALIASES.get(base)





def parse_column_map(spec: str | None) -> dict[str, str | None]:
    """Read `SOURCE=OURS,SOURCE2=OURS2` (OURS a field name or 'ignore'); raise ValueError."""
    mapping: dict[str, str | None] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        source, sep, ours = part.partition("=")
        if not sep or not source.strip() or not ours.strip():
            raise ValueError(f"--columns: {part.strip()!r} is not SOURCE=OURS (e.g. 'Filed=received_date')")
        target = ours.strip().lower()
        if target != IGNORED and target not in FIELDS:
            named = field_name(target)
            if named is None:
                raise ValueError(
                    f"--columns: {ours.strip()!r} is not one of our columns: use one of "
                    f"{', '.join(FIELDS)}, or 'ignore'"
                )
            target = named
        mapping[header_key(source)] = None if target == IGNORED else target
    return mapping


def column_field(header: str, overrides: dict[str, str | None] | None = None) -> str | None:
    """The field a column header means, the operator's --columns first; None = not read."""
    if overrides:
        key = header_key(header)
        if key in overrides:
            return overrides[key]
    return field_name(header)
