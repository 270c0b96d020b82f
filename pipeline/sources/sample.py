"""A seeded generator of SYNTHETIC case histories in the real input formats.

Every document it writes carries "_synthetic": true, and the dashboard labels any figure
that rests on such cases as synthetic. Durations follow log-normal bodies with a heavy right
tail, scaled to the order of the processing times USCIS publishes; cases whose decision lies
after the `as_of` date are written as still pending, so a share of every group is censored.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import orjson

# form -> (typical days to decision, offices that handle it, has biometrics, interview share,
#          card produced on approval, premium share)
FORMS: dict[str, tuple[int, tuple[str, ...], bool, float, bool, float]] = {
    "I-485": (330, ("NBC", "NSC", "TSC", "ELIS"), True, 0.45, True, 0.0),
    "I-765": (140, ("NBC", "NSC", "TSC", "VSC", "CSC", "PSC", "ELIS"), True, 0.0, True, 0.0),
    "I-130": (420, ("NBC", "CSC", "NSC", "TSC", "VSC", "PSC", "ELIS"), False, 0.0, False, 0.0),
    "I-131": (260, ("NBC", "NSC", "TSC", "ELIS"), True, 0.0, True, 0.0),
    "N-400": (190, ("ELIS", "NBC"), True, 0.98, False, 0.0),
    "I-140": (240, ("NSC", "TSC"), False, 0.0, False, 0.45),
    "I-129": (90, ("CSC", "VSC"), False, 0.0, False, 0.55),
    "I-751": (520, ("CSC", "VSC", "ELIS"), True, 0.08, True, 0.0),
    "I-90": (230, ("NBC", "ELIS"), True, 0.0, True, 0.0),
    "I-539": (280, ("CSC", "VSC", "TSC", "PSC"), True, 0.0, False, 0.0),
}
FORM_WEIGHTS = {"I-485": 16, "I-765": 22, "I-130": 14, "I-131": 8, "N-400": 12, "I-140": 6,
                "I-129": 7, "I-751": 6, "I-90": 5, "I-539": 4}
OFFICE_SPEED = {"NBC": 1.0, "NSC": 0.9, "TSC": 1.1, "VSC": 0.95, "CSC": 1.2, "PSC": 0.85, "ELIS": 0.8}
RECEIPT_PREFIX = {"VSC": "EAC", "CSC": "WAC", "NSC": "LIN", "TSC": "SRC", "NBC": "MSC",
                  "PSC": "YSC", "ELIS": "IOE"}
FORM_NAMES = {
    "I-485": "Application to Register Permanent Residence or Adjust Status",
    "I-765": "Application for Employment Authorization",
    "I-130": "Petition for Alien Relative",
    "I-131": "Application for Travel Document",
    "N-400": "Application for Naturalization",
    "I-140": "Immigrant Petition for Alien Worker",
    "I-129": "Petition for a Nonimmigrant Worker",
    "I-751": "Petition to Remove Conditions on Residence",
    "I-90": "Application to Replace Permanent Resident Card",
    "I-539": "Application To Extend/Change Nonimmigrant Status",
}
# stage -> (catalog title, history sentence of the Case Status API)
WORDING = {
    "received": ("Case Was Received", "We received your Form {form}, {name}."),
    "biometrics": ("Fingerprint and Biometrics Appointment Was Scheduled",
                   "We scheduled your biometrics appointment."),
    "fingerprints": ("Case Was Updated To Show Fingerprints Were Taken",
                     "We took your fingerprints and biometrics."),
    "transferred": ("Case Was Transferred And A New Office Has Jurisdiction",
                    "We transferred your case to another office."),
    "rfe": ("Request for Additional Evidence Was Sent", "We sent you a request for evidence."),
    "rfe_response": ("Response To USCIS' Request For Evidence Was Received",
                     "We received your response to our request for evidence."),
    "review": ("Case Is Being Actively Reviewed By USCIS", "We are actively reviewing your case."),
    "interview": ("Interview Was Scheduled", "We scheduled an interview for your case."),
    "approved": ("Case Was Approved", "We approved your Form {form}, {name}."),
    "denied": ("Case Was Denied", "We denied your Form {form}, {name}."),
    "withdrawn": ("Withdrawal Acknowledgement Notice Was Sent",
                  "We acknowledged the withdrawal of your case."),
    "card_production": ("New Card Is Being Produced", "We ordered your new card."),
    "card_mailed": ("Card Was Mailed To Me", "We mailed your new card."),
}
ACTION_CODES = {"received": "IAF", "biometrics": "FTA0", "fingerprints": "FTA1", "transferred": "TRF",
                "rfe": "RFE", "rfe_response": "RFER", "review": "ARV", "interview": "INT",
                "approved": "APP", "denied": "DEN", "withdrawn": "WDR", "card_production": "CPR",
                "card_mailed": "CML"}


@dataclass
class SyntheticCase:
    """One generated history, before it is written in an input format."""

    receipt: str
    form: str
    intake_office: str
    current_office: str
    received: date
    premium: bool
    events: list[tuple[date, str]] = field(default_factory=list)


class _Receipts:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def make(self, office: str, received: date) -> str:
        prefix = RECEIPT_PREFIX[office]
        while True:
            if prefix == "IOE":
                receipt = "IOE" + "".join(self.rng.choices("0123456789", k=10))
            else:
                fy = received.year + 1 if received.month >= 10 else received.year
                fy_start = date(fy - 1, 10, 1)
                workday = min(max((received - fy_start).days * 5 // 7, 1), 260)
                receipt = f"{prefix}{fy % 100:02d}{900 + workday % 100:03d}{self.rng.randrange(100000):05d}"
            if receipt not in self.used:
                self.used.add(receipt)
                return receipt


def generate_cases(n: int, seed: int, as_of: date) -> Iterator[SyntheticCase]:
    """Yield n synthetic histories with every office, several paths and pending cases."""
    rng = random.Random(seed)
    receipts = _Receipts(rng)
    forms = list(FORM_WEIGHTS)
    weights = list(FORM_WEIGHTS.values())
    for i in range(n):
        form = rng.choices(forms, weights)[0]
        typical, offices, biometrics, interview_share, card, premium_share = FORMS[form]
        # make sure every office shows up even in a small sample
        office = offices[i % len(offices)] if i < 40 else rng.choice(offices)
        received = as_of - timedelta(days=rng.randint(1, 3 * 365))
        premium = rng.random() < premium_share
        yield _history(rng, receipts, form, office, received, premium, typical, biometrics,
                       interview_share, card, as_of)


def _history(rng: random.Random, receipts: _Receipts, form: str, office: str, received: date,
             premium: bool, typical: int, biometrics: bool, interview_share: float, card: bool,
             as_of: date) -> SyntheticCase:
    scale = typical * OFFICE_SPEED[office] * (0.12 if premium else 1.0)
    days = rng.lognormvariate(math.log(scale), 0.45)
    if rng.random() < 0.08:  # the long right tail: stuck cases
        days *= rng.uniform(2.0, 4.0)
    days = max(3.0, days)
    case = SyntheticCase(receipts.make(office, received), form, office, office, received, premium)
    timeline: list[tuple[int, str]] = [(0, "received")]
    if biometrics and not premium:
        bio = int(rng.uniform(12, 40))
        timeline += [(bio, "biometrics"), (bio + int(rng.uniform(14, 45)), "fingerprints")]
    if rng.random() < 0.07:
        timeline.append((int(days * rng.uniform(0.1, 0.4)), "transferred"))
        others = [o for o in FORMS[form][1] if o != office and o != "ELIS"] or [office]
        case.current_office = rng.choice(others)
    if rng.random() < (0.25 if form in {"I-129", "I-140", "I-485"} else 0.12):
        rfe = int(days * rng.uniform(0.25, 0.55))
        response = rfe + int(rng.uniform(20, 85))
        timeline += [(rfe, "rfe"), (response, "rfe_response")]
        days += rng.uniform(20, 85)
    if rng.random() < interview_share:
        timeline.append((int(days * rng.uniform(0.75, 0.95)), "interview"))
    elif rng.random() < 0.3:
        timeline.append((int(days * rng.uniform(0.6, 0.9)), "review"))
    roll = rng.random()
    outcome = "denied" if roll < 0.07 else "withdrawn" if roll < 0.085 else "approved"
    decision = int(days)
    timeline.append((decision, outcome))
    if outcome == "approved" and card:
        produced = decision + int(rng.uniform(0, 6))
        timeline += [(produced, "card_production"), (produced + int(rng.uniform(1, 6)), "card_mailed")]
    timeline.sort()
    case.events = [(received + timedelta(days=d), stage) for d, stage in timeline
                   if received + timedelta(days=d) <= as_of]
    return case


def _stamp(day: date, hour: int = 9) -> str:
    return f"{day:%m-%d-%Y} {hour:02d}:{day.day % 60:02d}:{(day.month * 7) % 60:02d}"


def _long_date(day: date) -> str:
    return f"{day:%B} {day.day}, {day.year}"


def to_case_status_api(case: SyntheticCase) -> dict[str, object]:
    """The case as an official Case Status API answer."""
    name = FORM_NAMES[case.form]
    last_day, last_stage = case.events[-1]
    title, _ = WORDING[last_stage]
    history = [
        {"date": day.isoformat(),
         "completed_text_en": WORDING[stage][1].format(form=case.form, name=name),
         "completed_text_es": "..."}
        for day, stage in case.events[:-1]
    ]
    body: dict[str, object] = {
        "receiptNumber": case.receipt,
        "formType": case.form,
        "current_case_status_text_en": title,
        "current_case_status_desc_en": (
            f"On {_long_date(last_day)}, the status of your Form {case.form}, {name}, Receipt Number "
            f"{case.receipt}, changed to &quot;{title}&quot;. If you move, go to "
            '<a href="https://egov.uscis.gov/coa/displayCOAForm.do" target="_blank">'
            "www.uscis.gov/addresschange</a> to give us your new mailing address."
        ),
        "current_case_status_text_es": "...",
        "current_case_status_desc_es": "...",
        "hist_case_status": history or None,
    }
    if case.intake_office != "ELIS":
        body["submittedDate"] = _stamp(case.received)
        body["modifiedDate"] = _stamp(last_day, 14)
    return {"case_status": body, "message": "Query was successful", "_synthetic": True}


def to_myuscis_case_status(case: SyntheticCase) -> dict[str, object]:
    """The case as a myUSCIS case_status/{receipt} answer (wrapped in {"data": ...})."""
    last_day, last_stage = case.events[-1]
    return {
        "data": {
            "receiptNumber": case.receipt,
            "formType": case.form,
            "currentActionCode": ACTION_CODES[last_stage],
            "currentActionCodeDate": f"{last_day.isoformat()}T15:04:05.000Z",
            "statusTitle": WORDING[last_stage][0],
            "statusText": f"On {_long_date(last_day)}, ... <a href=\"https://www.uscis.gov\">uscis.gov</a>",
            "jurisdiction": case.current_office,
            "jurisdictionDescription": case.current_office,
            "isPremiumProcessed": case.premium,
            "historicalCaseStatuses": [
                {"date": _stamp(day, 0), "actionCode": ACTION_CODES[stage],
                 "statusTitle": WORDING[stage][0]}
                for day, stage in case.events
            ],
        },
        "_synthetic": True,
    }


def write_sample(out_dir: Path, n: int, seed: int, as_of: date | None = None,
                 per_file: int = 5000) -> dict[str, int]:
    """Write n synthetic cases as JSON-lines files, alternating the two formats; return counts."""
    as_of = as_of or date.today()
    out_dir.mkdir(parents=True, exist_ok=True)
    formats = {"case_status_api": to_case_status_api, "myuscis": to_myuscis_case_status}
    counts = dict.fromkeys(formats, 0)
    pending: dict[str, list[bytes]] = {kind: [] for kind in formats}
    parts = dict.fromkeys(formats, 0)
    observed = datetime.combine(as_of, datetime.min.time()).timestamp()

    def flush(kind: str) -> None:
        if pending[kind]:
            parts[kind] += 1
            path = out_dir / f"{kind}-synthetic-{parts[kind]:04d}.jsonl"
            path.write_bytes(b"".join(pending[kind]))
            os.utime(path, (observed, observed))  # the histories were observed on as_of
            pending[kind] = []

    for i, case in enumerate(generate_cases(n, seed, as_of)):
        kind = "case_status_api" if i % 2 == 0 else "myuscis"
        pending[kind].append(orjson.dumps(formats[kind](case)) + b"\n")
        counts[kind] += 1
        if len(pending[kind]) >= per_file:
            flush(kind)
    for kind in formats:
        flush(kind)
    return counts
