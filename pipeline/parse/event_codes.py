"""Dated events of a myUSCIS cases/{r} answer, whose events carry codes only (IAF, FTA0, ...).

USCIS publishes no list of these codes. A code's stage is found, in this order:
1. a code->title pair learned from a case_status answer's historicalCaseStatuses (USCIS's
   own wording for that code) pasted with it;
2. a notice of the same answer: an "Appointment Scheduled" notice whose appointmentDateTime
   is the code's date means the appointment took place that day (biometrics taken); a notice
   generated on the code's date (e.g. "Card Was Mailed") names what the code did;
3. the table below of codes commonly reported in community posts (UNOFFICIAL: each entry says
   where its meaning comes from);
4. otherwise the event is kept as a dated 'other' event titled with its code, and listed.
Notices are dated events too (at their generationDate). A code or notice meaning approved,
card produced or card mailed makes the case decided (pipeline.stages.APPROVAL_IMPLIED_BY).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from pipeline.model import StatusEvent
from pipeline.parse.fields import parse_date
from pipeline.stages import classify, event_order

# code -> (title from status_titles.csv, where the meaning comes from). UNOFFICIAL.
COMMON_CODES: dict[str, tuple[str, str]] = {
    "IAF": ("Case Was Received",
            "community reports (itsericqiu/uscis-caselens docs, armanckeser/uscis-tracker): the "
            "first event of a case, dated at intake; the project's reference payload dates it the "
            "day after submissionDate"),
    "FTA0": ("Case Was Updated To Show Fingerprints Were Taken",
             "community reports; in the reference payload it is dated on the appointmentDateTime "
             "of the 'Appointment Scheduled' notice (biometrics taken)"),
    "CRD0": ("New Card Is Being Produced",
             "community reports of a card event code (card ordered / produced); unofficial, and a "
             "same-day 'Card Was Mailed' notice takes precedence"),
}
# Notice actionType (lower case) -> canonical title, when classify() would not know it.
NOTICE_TITLES: dict[str, str] = {
    "appointment scheduled": "Biometrics Appointment Was Scheduled",
    "card was mailed": "Card Was Mailed To Me",
    "card was produced": "Card Was Produced",
    "receipt notice": "Case Was Received",
    "approval notice": "Case Was Approved",
    "request for evidence": "Request for Additional Evidence Was Sent",
}
_TAKEN_TITLE = "Case Was Updated To Show Fingerprints Were Taken"
_CODE_RE = re.compile(r"^[A-Z0-9]{1,10}$")


def unmapped_title(code: str) -> str:
    """The title of an event whose code has no known meaning (the code only, never free text)."""
    return f"Event code {code} (meaning not known)"


@dataclass
class CodedEvents:
    """The dated events of one cases/{r} answer and the codes no source explained."""

    events: list[StatusEvent] = field(default_factory=list)
    unmapped: set[str] = field(default_factory=set)


def _notice_title(action: str) -> tuple[str, str]:
    known = NOTICE_TITLES.get(action.strip().lower())
    return classify(known) if known else classify(action)


def coded_events(data: dict[str, object], titles: dict[str, str]) -> CodedEvents:
    """Turn a cases/{r} answer's events and notices into dated stage events."""
    found = CodedEvents()
    notices = [n for n in data.get("notices") or [] if isinstance(n, dict)]  # type: ignore[attr-defined]
    by_generation: dict[date, tuple[str, str]] = {}
    appointments: set[date] = set()
    for notice in notices:
        action = str(notice.get("actionType") or "").strip()
        generated = _day(notice.get("generationDate"))
        if action and generated is not None:
            title, stage = _notice_title(action)
            by_generation.setdefault(generated, (title, stage))
            found.events.append(StatusEvent(generated, title, stage))
        appointment = _day(notice.get("appointmentDateTime"))
        if appointment is not None and action.lower().startswith("appointment"):
            appointments.add(appointment)
    for entry in data.get("events") or []:  # type: ignore[attr-defined]
        if not isinstance(entry, dict):
            continue
        when = _day(entry.get("eventDateTime") or entry.get("eventTimestamp"))
        code = str(entry.get("eventCode") or "").strip().upper()
        if when is None or not code:
            continue
        found.events.append(_code_event(code, when, titles, by_generation, appointments, found))
    found.events.sort(key=lambda e: event_order(e.event_date, e.stage))
    return found


def _code_event(
    code: str, when: date, titles: dict[str, str], by_generation: dict[date, tuple[str, str]],
    appointments: set[date], found: CodedEvents,
) -> StatusEvent:
    if code in titles:
        title, stage = classify(titles[code])
    elif when in appointments:
        title, stage = classify(_TAKEN_TITLE)
    elif when in by_generation:
        title, stage = by_generation[when]
    elif code in COMMON_CODES:
        title, stage = classify(COMMON_CODES[code][0])
    else:
        found.unmapped.add(code if _CODE_RE.match(code) else "?")
        name = code if _CODE_RE.match(code) else "?"
        return StatusEvent(when, unmapped_title(name), "other")
    return StatusEvent(when, title, stage)


def _day(raw: object) -> date | None:
    try:
        return parse_date(raw) if raw else None
    except ValueError:
        return None

