"""What a submission would store, computed without storing anything.

`preview_submission` is the one entry point for the submit page, the "My case" page and
`timelines submit`: it reads any supported input (JSON answers, a typed timeline, a CSV),
anonymizes it and checks it exactly as the inbox flow will, and returns the rows that would
be stored or the problems, each in words that say what to fix. It has no side effects.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from pipeline.model import CaseRecord, ParsedCase
from pipeline.parse import parse_document
from pipeline.parse.csv_import import looks_like_csv, parse_csv
from pipeline.parse.errors import ParseError
from pipeline.parse.forms import KNOWN_FORMS, known_form_type
from pipeline.parse.myuscis import flatten, myuscis_kind, unnamed_codes, unwrap
from pipeline.parse.redact import A_NUMBER_RE
from pipeline.parse.typed_form import (
    TimelineRows,
    looks_like_key_value_text,
    looks_like_typed_form,
    parse_typed_payload,
)
from pipeline.prepare.anonymize import PseudonymKey, anonymize_case
from pipeline.prepare.merge import merge_by_id, merge_parsed
from pipeline.prepare.records import date_problems, timeline_record
from pipeline.prepare.validate import to_frames, validate_frames
from pipeline.receipts import RECEIPT_IN_TEXT_RE, InvalidReceiptError

MAX_PASTE_BYTES = 1_000_000
MAX_CSV_BYTES = 10_000_000
# The public path is for one person's own cases (a family's filings); bulk files are the
# operator's `timelines ingest`. Settings.limits.max_cases overrides it.
MAX_CASES_PER_SUBMISSION = 6
KIND_LABELS: dict[str, str] = {
    "case_status_api": "an official Case Status API answer",
    "myuscis": "myUSCIS JSON",
    "simplified": "the simplified {receiptNumber, events} JSON",
    "egov_csol": "a case status page answer",
    "typed_form": "a typed timeline",
    "csv_import": "a CSV of timelines",
}
KINDS: tuple[str, ...] = ("auto", "json", "case_status_api", "myuscis", "simplified", "egov_csol",
                          "typed_form", "csv")
NOT_KEPT = (
    "Only the rows shown are stored: a keyed pseudonym instead of the receipt number, the form "
    "type, offices, fiscal year, premium flag and dated stages. Names, A-numbers, addresses, "
    "e-mails, phone numbers, document names and ids and all free text are dropped."
)
_SCRIPT_RE = re.compile(
    r"<\s*(script|svg|iframe|object|embed|img|math|style|link|meta|base|form|body)\b"
    r"|javascript:|vbscript:|data:text/html|<[^>]*[\s/\"'`]on[a-z]+\s*=",
    re.IGNORECASE,
)
_PAGE_RE = re.compile(r"^\s*(<!doctype html|<html|<head|<body)", re.IGNORECASE)


@dataclass(frozen=True)
class RejectedRecord:
    """A record that was read but cannot be stored: its anonymized form and every reason."""

    label: str
    record: CaseRecord
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class SubmissionPreview:
    """Exactly what would be stored (records) or why not (errors); nothing has been written.

    `records` are anonymized CaseRecords; `labels` names each for the submitter ("row 5",
    "case 1 (I-485)"). `rejected` holds the readable records that failed a check, which a
    bulk import may choose to skip. `pseudonymized` is False when no key was given: the
    case ids are then throwaway values and must not be stored.
    """

    kind: str | None
    records: tuple[CaseRecord, ...] = ()
    labels: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    rejected: tuple[RejectedRecord, ...] = ()
    pseudonymized: bool = True

    @property
    def ok(self) -> bool:
        """True when everything read can be stored as it is."""
        return not self.errors and bool(self.records)

    def case_rows(self) -> list[dict[str, object]]:
        """One row per case to store, as the page and the CLI show it."""
        return [
            {
                "case": label,
                "pseudonym": r.case_id if self.pseudonymized else None,
                "form_type": r.form_type,
                "intake_office": r.intake_office,
                "current_office": r.current_office,
                "fiscal_year": r.fiscal_year,
                "received_date": r.received_date,
                "premium": r.premium,
                "latest_stage": r.events[-1].stage if r.events else None,
                "n_events": len(r.events),
            }
            for label, r in zip(self.labels, self.records, strict=True)
        ]

    def event_rows(self) -> list[dict[str, object]]:
        """One row per dated stage to store."""
        return [
            {"case": label, "date": e.event_date, "stage": e.stage, "title": e.title}
            for label, r in zip(self.labels, self.records, strict=True)
            for e in r.events
        ]


@dataclass
class _Reading:
    kind: str | None = None
    parsed: list[ParsedCase] = field(default_factory=list)
    rows: TimelineRows = field(default_factory=TimelineRows)
    notes: list[str] = field(default_factory=list)


class NotUtf8Error(ValueError):
    """Bytes that are not UTF-8 text; the message says how to save them as UTF-8."""


def decode_submission(raw: bytes) -> str:
    """The text of submitted bytes: UTF-8 (a byte-order mark is fine), else NotUtf8Error."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise NotUtf8Error(
            f"this is not UTF-8 text (byte {error.start + 1} cannot be read), so nothing was "
            "read from it. Save the file as UTF-8 (in Excel: Save As, 'CSV UTF-8'; in a text "
            "editor: encoding UTF-8) and try again"
        ) from error


def preview_submission(
    text: str, kind: str | None = None, *, key: PseudonymKey | None, now: datetime,
    max_cases: int | None = MAX_CASES_PER_SUBMISSION,
) -> SubmissionPreview:
    """Read, anonymize and check a submission; return what would be stored, or the problems.

    `kind` is one of KINDS (None or "auto" detects it). With key=None no pseudonym is
    computed (for explaining a history without storing it). `now` dates the observation
    and bounds "in the future". Never raises for bad input and never writes anything.
    More than `max_cases` distinct cases (None: no limit, for an operator's import) is an
    error.
    """
    chosen = None if kind in (None, "auto") else kind
    if chosen is not None and chosen not in KINDS:
        return SubmissionPreview(None, errors=(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}",))
    problem = _refuse_text(text, chosen)
    if problem is not None:
        return SubmissionPreview(chosen, errors=(problem,))
    try:
        reading = _read(text.lstrip("\ufeff"), chosen)
    except (ParseError, InvalidReceiptError) as error:
        return SubmissionPreview(chosen, errors=(str(error),))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
        return SubmissionPreview(chosen, errors=(
            f"we could not read this input ({type(error).__name__}); check that it is a whole, "
            "unedited answer, and tell us if it is",
        ))
    preview = _checked(reading, key, now)
    n_cases = len(preview.records) + len(preview.rejected)
    if max_cases is not None and n_cases > max_cases:
        return SubmissionPreview(preview.kind, errors=(
            f"this holds {n_cases} different cases; a submission is for your own cases (a "
            f"family's filings), at most {max_cases}. Submit each person's cases separately; "
            "a community spreadsheet is imported by the site's operator (`timelines ingest`)",
        ), notes=preview.notes)
    return preview


def _refuse_text(text: str, kind: str | None) -> str | None:
    size = len(text.encode("utf-8", errors="replace"))
    limit = MAX_CSV_BYTES if kind in (None, "csv") and looks_like_csv(text[:5000]) else MAX_PASTE_BYTES
    if size > limit:
        return (
            f"the input is {size / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB "
            f"({'a CSV file' if limit == MAX_CSV_BYTES else 'a paste'}). A case history is a "
            "few kilobytes: paste only the JSON of your case, or split a large spreadsheet"
        )
    if not text.strip():
        return "nothing was given: paste your case history, type the timeline or choose a CSV file"
    if _PAGE_RE.match(text):
        return (
            "this is a web page (HTML), not the JSON answer. If a my.uscis.gov address showed a "
            "page, you were probably not signed in: sign in, open the address again and copy "
            "what it shows (it starts with {)"
        )
    found = _SCRIPT_RE.search(text)
    if found:
        return (
            f"the input contains script ({found.group(0)[:20]!r}): a case history never does. "
            "Paste only the JSON answer (it starts with {), the CSV or the typed fields"
        )
    return None


def _read(text: str, kind: str | None) -> _Reading:
    stripped = text.strip()
    if kind in ("csv",) or (kind is None and not stripped.startswith(("{", "[")) and looks_like_csv(stripped)):
        return _Reading("csv_import", rows=parse_csv(text))
    if kind == "typed_form" and not stripped.startswith("{"):
        return _Reading("typed_form", rows=parse_typed_payload(text))
    if kind is None and not stripped.startswith(("{", "[")):
        if looks_like_key_value_text(stripped):
            return _Reading("typed_form", rows=parse_typed_payload(text))
        raise ParseError(_unknown_text_message(stripped))
    return _read_json(decode_json(stripped), kind)


def _unknown_text_message(text: str) -> str:
    if RECEIPT_IN_TEXT_RE.fullmatch(text) or re.fullmatch(r"[A-Za-z]{3}[0-9]{6,12}", text):
        return (
            "this is only a receipt number; we need the case's history: paste the JSON answer "
            "from myUSCIS or the Case Status API, or type the timeline (form, office, dates)"
        )
    if A_NUMBER_RE.fullmatch(text):
        return (
            "this looks like an A-number (alien registration number): we do not need it and do "
            "not keep it. Paste the case history (JSON) or type the timeline instead"
        )
    return (
        "we could not recognise this input: paste a JSON answer (it starts with { or [), a "
        "CSV with a header row (form_type, office, received_date, ...), or typed lines such as "
        "'form: I-485', 'office: NSC', 'received: 2024-05-29'"
    )


def decode_json(text: str) -> list[object]:
    """Decode one JSON document, or several pasted one after another; else a clear ParseError."""
    try:
        return [json.loads(text)]
    except json.JSONDecodeError as first_error:
        decoder = json.JSONDecoder()
        documents: list[object] = []
        position = 0
        try:
            while position < len(text):
                document, position = decoder.raw_decode(text, position)
                documents.append(document)
                position = _skip_separators(text, position)
        except json.JSONDecodeError:
            documents = []
        if len(documents) > 1:
            return documents
        raise ParseError(
            f"this is not valid JSON: {first_error.msg} at line {first_error.lineno}, column "
            f"{first_error.colno}. Copy the whole answer, from the first {{ to the last }}"
        ) from first_error


def _skip_separators(text: str, position: int) -> int:
    while position < len(text) and (text[position].isspace() or text[position] == ","):
        position += 1
    return position


def _read_json(documents: list[object], kind: str | None) -> _Reading:
    parts: list[object] = []
    for document in documents:
        parts.extend(document if isinstance(document, list) else [document])
    reading = _Reading()
    typed = [p for p in parts if looks_like_typed_form(p)]
    others = [p for p in parts if not looks_like_typed_form(p)]
    for number, part in enumerate(typed, start=1):
        rows = parse_typed_payload(part)
        rows.errors = [f"timeline {number}: {e}" if len(typed) > 1 else e for e in rows.errors]
        reading.rows.timelines.extend(rows.timelines)
        reading.rows.errors.extend(rows.errors)
        reading.rows.ignored.extend(rows.ignored)
    if others:
        reading.parsed = merge_parsed(parse_document(others if len(others) > 1 else others[0]))
        reading.notes.extend(_myuscis_notes(others))
    found = {c.source for c in reading.parsed} | ({"typed_form"} if typed else set())
    reading.kind = "+".join(sorted(found)) or None
    if kind not in (None, "json") and found and {kind} != found:
        wanted = KIND_LABELS.get(kind, kind)
        seen = " and ".join(KIND_LABELS.get(k, k) for k in sorted(found))
        raise ParseError(f"you chose {wanted}, but this is {seen}: choose that kind, or 'auto'")
    return reading


def _myuscis_notes(parts: list[object]) -> list[str]:
    answers = flatten(p for p in parts if myuscis_kind(p) is not None)
    notes: list[str] = []
    codes = unnamed_codes(answers)
    if codes:
        notes.append(
            f"events with the codes {', '.join(sorted(codes))} are kept as dated 'other' events: "
            "no case_status history, notice or known code says what they mean. Paste the "
            "case_status/<receipt> answer too to name them"
        )
    if any(_names_a_person(unwrap(p)) for p in answers):
        notes.append("the applicant's and representative's names in the cases answer are not kept")
    return notes


def _names_a_person(answer: object) -> bool:
    return isinstance(answer, dict) and bool(
        answer.get("applicantName") or answer.get("representativeName")
    )


def _checked(reading: _Reading, key: PseudonymKey | None, now: datetime) -> SubmissionPreview:
    real_key = key if key is not None else PseudonymKey(secrets.token_bytes(32))
    errors = list(reading.rows.errors)
    notes = list(reading.notes)
    labelled: list[tuple[str, CaseRecord]] = []
    single = len(reading.parsed) == 1
    for number, case in enumerate(reading.parsed, start=1):
        label = "the case" if single else f"case {number} ({case.form_type or 'form unknown'})"
        labelled.append((label, anonymize_case(case, real_key, now)))
    identities: Counter[tuple[object, ...]] = Counter()
    for timeline in reading.rows.timelines:
        # identical timelines without a receipt are one case: the same pseudonym, merged below
        labelled.append((timeline.label, timeline_record(timeline, real_key, now)))
        if timeline.receipt_number is None and not timeline.case_ref:
            identities[(timeline.form_type, timeline.intake_office, timeline.received_date,
                        tuple(timeline.events))] += 1
    repeats = sum(n - 1 for n in identities.values())
    if repeats:
        notes.append(
            f"{repeats} timeline(s) repeat another one exactly and count once: without a "
            "receipt number, identical timelines in one submission are taken to be the same case"
        )
    without_receipt = sum(t.receipt_number is None for t in reading.rows.timelines)
    if without_receipt:
        notes.append(
            f"{'this timeline has' if without_receipt == 1 else f'{without_receipt} timelines have'} "
            "no receipt number: without one, a timeline cannot be matched with the same case "
            "submitted again or polled. To update it later, delete it with its code and submit "
            "the new version"
        )
    if reading.rows.ignored:
        notes.append(
            f"not read (and never stored): {', '.join(dict.fromkeys(reading.rows.ignored))}"
        )
    merged, merge_errors = _merge(labelled)
    errors.extend(merge_errors)
    today = now.date() + timedelta(days=1)
    accepted, rejected = _check_records(merged, today)
    errors.extend(f"{r.label}: {reason}" if len(merged) > 1 or r.label != "the case" else reason
                  for r in rejected for reason in r.reasons)
    notes.append(NOT_KEPT)
    return SubmissionPreview(
        kind=reading.kind,
        records=tuple(r for _, r in accepted),
        labels=tuple(label for label, _ in accepted),
        errors=tuple(errors),
        notes=tuple(notes),
        rejected=tuple(rejected),
        pseudonymized=key is not None,
    )


def _merge(labelled: list[tuple[str, CaseRecord]]) -> tuple[list[tuple[str, CaseRecord]], list[str]]:
    merged, conflicts = merge_by_id(labelled)
    errors = [
        f"{' and '.join(labels)} are the same case but give {problem}; fix the wrong one"
        for problem, labels in conflicts.values()
    ]
    return list(merged.values()), errors


def _check_records(
    labelled: list[tuple[str, CaseRecord]], today: date
) -> tuple[list[tuple[str, CaseRecord]], list[RejectedRecord]]:
    reasons: dict[str, list[str]] = {}
    for _, record in labelled:
        found = date_problems(record, today)
        if record.form_type is not None and record.form_type not in KNOWN_FORMS:
            try:
                known_form_type(record.form_type)
            except ParseError as error:
                found.insert(0, str(error))
        if found:
            reasons[record.case_id] = found
    remaining = [r for _, r in labelled if r.case_id not in reasons]
    if remaining:
        cases, events = to_frames(remaining)
        for case_id, messages in validate_frames(cases, events, today).reasons.items():
            reasons.setdefault(case_id, []).extend(messages)
    accepted = [(label, r) for label, r in labelled if r.case_id not in reasons]
    rejected = [RejectedRecord(label, r, tuple(dict.fromkeys(reasons[r.case_id])))
                for label, r in labelled if r.case_id in reasons]
    return accepted, rejected
