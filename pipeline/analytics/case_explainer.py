"""Explaining one person's case in plain English, from a pasted history or typed dates.

Nothing here stores anything: it reads the input, the published durations, and returns text
and small tables. The receipt number is used only to derive the intake office and to build
the myUSCIS addresses the person can open themselves; it is never kept or logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import polars as pl

from pipeline.analytics.estimate import CaseEstimate, estimate_case
from pipeline.analytics.survival import kaplan_meier
from pipeline.model import CaseRecord, StatusEvent
from pipeline.prepare.preview import preview_submission
from pipeline.receipts import OFFICE_NAMES, InvalidReceiptError, normalize_receipt, office_of
from pipeline.stages import GENERIC_TITLES

STAGE_MEANINGS: dict[str, str] = {
    "received": "USCIS has your filing and gave it a receipt number. Nothing is wrong: most "
    "cases show no visible change for a while after this.",
    "biometrics": "USCIS scheduled or took your fingerprints, photo and signature at an "
    "Application Support Center. This is a routine step, not a sign of a problem.",
    "review": "An officer (or USCIS's system) is working on your case. It is not a decision "
    "and does not by itself mean anything is missing.",
    "rfe": "USCIS asked for more evidence (a Request for Evidence, or a Notice of Intent to "
    "Deny). Answer everything it asks for by the deadline on the notice; the case waits for "
    "your answer.",
    "rfe_response": "USCIS received your answer to its request for evidence; the case goes "
    "back into review.",
    "interview": "An interview was scheduled or held. The notice says where and when, and "
    "what to bring.",
    "transferred": "Your case moved to another office, usually to balance workloads or "
    "because an interview is needed near you. The new office now handles it.",
    "approved": "USCIS approved your case. A notice follows by mail.",
    "card_production": "Your case was approved and your card is being produced.",
    "card_mailed": "Your card was mailed. Tracking usually appears within a few days.",
    "denied": "USCIS denied the case. The notice explains why and whether you can appeal or "
    "file a motion; an immigration lawyer or accredited representative can advise you.",
    "rejected": "The filing was rejected at intake (for example a missing fee or signature): "
    "it was not accepted for processing, and usually has to be filed again.",
    "withdrawn": "The case was withdrawn: USCIS acknowledged a request to stop processing it.",
    "other": "USCIS posted an update that does not fit the usual steps. Read its full text in "
    "your account.",
}

NEXT_STEPS: dict[str, str] = {
    "received": "Next, for forms that need them, a biometrics appointment; then review, "
    "sometimes a request for evidence or an interview, then a decision.",
    "biometrics": "Next comes review; some cases get a request for evidence or an interview "
    "before the decision.",
    "review": "Next is usually a decision, sometimes after a request for evidence or an "
    "interview.",
    "rfe": "Once USCIS receives your response, the case goes back into review and then to a "
    "decision.",
    "rfe_response": "Next is usually a decision, sometimes after another request or an "
    "interview.",
    "interview": "After the interview a decision often follows soon; sometimes USCIS asks for "
    "more evidence first.",
    "transferred": "The new office continues where the case was; a transfer rarely restarts "
    "the wait.",
    "approved": "Nothing more to wait for on this case, apart from the notice and any card.",
    "card_production": "The card is usually mailed within a few weeks.",
    "card_mailed": "Nothing more to wait for on this case.",
    "denied": "The case is closed unless you appeal, file a motion or file again.",
    "rejected": "The case is closed; it can be filed again once the problem is fixed.",
    "withdrawn": "The case is closed.",
    "other": "Check your account for the full text of the update.",
}

DECIDED_STAGES = frozenset({"approved", "card_production", "card_mailed", "denied"})
CLOSED_STAGES = DECIDED_STAGES | {"rejected", "withdrawn"}


class CaseInputError(ValueError):
    """Input the explainer cannot read, with what to fix."""


@dataclass(frozen=True)
class CaseFacts:
    """What the explainer knows about one case (no receipt number)."""

    form_type: str | None
    intake_office: str | None
    current_office: str | None
    received_date: date | None
    events: tuple[StatusEvent, ...] = field(default=())
    undated_stage: str | None = None  # a current stage typed without its date

    @property
    def stage(self) -> str:
        """The current stage: the one typed without a date, else the latest event's."""
        if self.undated_stage:
            return self.undated_stage
        return self.events[-1].stage if self.events else "received"

    @property
    def decided_on(self) -> date | None:
        """The first approval or denial, if any."""
        return next((e.event_date for e in self.events if e.stage in DECIDED_STAGES), None)


def myuscis_addresses(receipt: str) -> list[tuple[str, str]]:
    """The four myUSCIS addresses a signed-in person can open to copy their own JSON."""
    r = normalize_receipt(receipt)
    return [
        ("Case details (form, dates, event codes)",
         f"https://my.uscis.gov/account/case-service/api/cases/{r}"),
        ("Case status and its history, with the office",
         f"https://my.uscis.gov/account/case-service/api/case_status/{r}"),
        ("Notices and documents list",
         f"https://my.uscis.gov/account/case-service/api/cases/{r}/documents"),
        ("Receipt details",
         f"https://my.uscis.gov/secure-messaging/api/case-service/receipt_info/{r}"),
    ]


def office_from_receipt(receipt: str) -> str:
    """The intake office code a receipt number names (raises InvalidReceiptError)."""
    office = office_of(normalize_receipt(receipt)[:3])
    if office is None:  # normalize_receipt already refuses unknown prefixes
        raise InvalidReceiptError(f"unknown receipt prefix in {receipt[:3]!r}")
    return office


@dataclass(frozen=True)
class PasteReading:
    """The cases read from a paste, and what the reader should know about it."""

    cases: tuple[CaseFacts, ...]
    problems: tuple[str, ...]
    notes: tuple[str, ...]


def read_paste(text: str, now: datetime) -> PasteReading:
    """Read any input the submit page accepts into cases, storing nothing.

    Records that fail a storage check (e.g. a decision dated before the receipt) are still
    explained, with the problem shown beside them.
    """
    preview = preview_submission(text, None, key=None, now=now)
    records = [*preview.records, *(r.record for r in preview.rejected)]
    notes = tuple(n for n in preview.notes if not n.startswith("Only the rows shown"))
    return PasteReading(tuple(facts_from_record(r) for r in records), preview.errors, notes)


def facts_from_record(record: CaseRecord) -> CaseFacts:
    """Keep what explaining needs from an anonymized record."""
    return CaseFacts(
        form_type=record.form_type,
        intake_office=record.intake_office,
        current_office=record.current_office,
        received_date=record.received_date,
        events=tuple(sorted(record.events, key=lambda e: (e.event_date, e.stage))),
    )


def facts_from_typed(
    form_type: str, office: str, received: date, milestones: dict[str, date],
    undated_stage: str | None = None,
) -> CaseFacts:
    """Build a case from a form, an office, the receipt date, dated milestones and,
    optionally, a current stage whose date is not known."""
    events = [StatusEvent(received, GENERIC_TITLES["received"], "received")]
    events += [StatusEvent(d, GENERIC_TITLES[s], s) for s, d in milestones.items() if s != "received"]
    for event in events:
        if event.event_date < received:
            raise CaseInputError(
                f"the {event.stage.replace('_', ' ')} date {event.event_date} is before the "
                f"receipt date {received}: check both dates"
            )
    return CaseFacts(form_type, office, None, received,
                     tuple(sorted(events, key=lambda e: (e.event_date, e.stage))),
                     undated_stage if undated_stage not in (None, "received") else None)


def timeline_rows(facts: CaseFacts) -> pl.DataFrame:
    """The case's events with the days since receipt and what each means."""
    start = facts.received_date
    return pl.DataFrame(
        {
            "date": [f"{e.event_date:%b %d, %Y}" for e in facts.events],
            "status": [e.title for e in facts.events],
            "days since receipt": [(e.event_date - start).days if start else None
                                   for e in facts.events],
            "what it means": [STAGE_MEANINGS.get(e.stage, STAGE_MEANINGS["other"]).split(". ")[0]
                              for e in facts.events],
        },
        schema={"date": pl.String, "status": pl.String, "days since receipt": pl.Int64,
                "what it means": pl.String},
    )


def office_sentence(facts: CaseFacts) -> str:
    """Say which office took the case in and which has it now."""
    if facts.intake_office is None:
        return "The office is not known from this input."
    text = f"Taken in by the {OFFICE_NAMES.get(facts.intake_office, facts.intake_office)}"
    if facts.current_office and facts.current_office != facts.intake_office:
        name = OFFICE_NAMES.get(facts.current_office, facts.current_office)
        return f"{text}; now handled by the {name}."
    return f"{text}."


def estimate_wait(durations: pl.DataFrame, facts: CaseFacts, today: date, k: int) -> CaseEstimate:
    """The "cases like mine" estimate for a pending case (pipeline.analytics.estimate)."""
    if facts.form_type is None or facts.received_date is None:
        raise CaseInputError("the form type and the receipt date are needed to compare")
    stage = facts.stage if facts.stage not in {"other", "rejected"} else None
    return estimate_case(durations, form_type=facts.form_type, office=facts.intake_office,
                         received=facts.received_date, stage=stage, today=today,
                         min_group_size=k)


@dataclass(frozen=True)
class WaitComparison:
    """How a case's wait so far compares with cases like it; share None when suppressed."""

    scope: str
    n_cases: int
    waited_days: int
    share_decided_within: float | None


def compare_wait(durations: pl.DataFrame, facts: CaseFacts, today: date, k: int) -> WaitComparison:
    """The share of similar cases decided within the days this case took (or has waited)."""
    if facts.form_type is None or facts.received_date is None:
        raise CaseInputError("the form type and the receipt date are needed to compare")
    waited = max(0, ((facts.decided_on or today) - facts.received_date).days)
    same_form = durations.filter(pl.col("form_type") == facts.form_type)
    scope, cases = f"{facts.form_type} cases at all offices", same_form
    if facts.intake_office:
        same_office = same_form.filter(pl.col("intake_office") == facts.intake_office)
        if same_office.height >= k:
            scope, cases = f"{facts.form_type} cases taken in by {facts.intake_office}", same_office
    if cases.height < k:
        return WaitComparison(scope, cases.height, waited, None)
    km = kaplan_meier(cases["duration_days"].to_numpy(), cases["decided"].to_numpy())
    idx = int(np.searchsorted(km.timeline, waited, side="right") - 1)
    return WaitComparison(scope, cases.height, waited, 1.0 - float(km.survival[idx]))
