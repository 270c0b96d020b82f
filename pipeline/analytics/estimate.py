""""Cases like mine": how much longer a pending case is likely to wait, given how long it has.

`estimate_case` takes the published `durations` table (one anonymous row per case), keeps
the cases like the reader's (same form, processing type and office, through the same stage),
and reads the Kaplan-Meier curve (each case at risk from the day it came under observation)
from the day the reader's case has reached: the chance of a decision
within 30, 60 and 90 more days and a likely date range. Every figure rests on the cases
still waiting after that long (n at risk); when they are fewer than k it widens the group
(form only), says so, and else says there is not enough data rather than guess.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import polars as pl

from pipeline.analytics.remaining import remaining_time
from pipeline.analytics.survival import kaplan_meier
from pipeline.stages import STAGES, stage_of

HORIZONS: tuple[int, ...] = (30, 60, 90)
# current stage -> durations flag of the cases that went through it (None: no narrowing)
STAGE_FILTERS: dict[str, str | None] = {
    "received": None, "review": None, "other": None,
    "biometrics": "had_biometrics", "interview": "had_interview", "rfe": "had_rfe",
    "rfe_response": "had_rfe_response", "transferred": "transferred",
}
DECIDED_STAGES = frozenset(
    {"approved", "denied", "card_production", "card_mailed", "withdrawn", "rejected"}
)
OFFICE_COLUMNS = {"intake": "intake_office", "current": "current_office"}


@dataclass(frozen=True)
class Chance:
    """P(decided within `days` more days | still waiting now), with its 95% interval."""

    days: int
    probability: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class CaseEstimate:
    """What the cases like the reader's say about the wait left; None where not estimable."""

    form_type: str
    office: str | None
    stage: str | None
    received: date
    today: date
    waited_days: int
    enough_data: bool
    basis: str  # which cases: "form, office and stage", "form and office", "form", "none"
    processing: str = "regular"  # the reader's processing type: only such cases are used
    n_cases: int | None = None  # cases like this one
    n_stale: int | None = None  # ... of which pending but not seen for long (censored there)
    n_pending: int | None = None  # ... of which still pending
    n_at_risk: int | None = None  # ... still waiting after waited_days: what the figures rest on
    still_waiting_share: float | None = None  # share of such cases not decided this late
    chances: tuple[Chance, ...] = ()
    likely_from: date | None = None  # 25% of such cases are decided by then
    likely_by: date | None = None  # 75% ... (None: not reached yet, could be later)
    median_date: date | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (dates as ISO strings)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, date):
                data[key] = value.isoformat()
        return data


def normalize_stage(raw: str | None) -> str | None:
    """Return a stage name from 'rfe', 'RFE response', or a status title; None for none."""
    if raw is None or not raw.strip():
        return None
    key = raw.strip().lower().replace("-", "_").replace(" ", "_")
    aliases = {"fingerprints": "biometrics", "evidence_response": "rfe_response",
               "response": "rfe_response", "pending": "received"}
    key = aliases.get(key, key)
    if key in STAGES:
        return key
    stage = stage_of(raw)
    if stage == "other":
        known = ", ".join(s for s in STAGES if s not in DECIDED_STAGES and s != "other")
        raise ValueError(f"unknown stage {raw!r}: use one of {known}, or a status title")
    return stage


def estimate_case(
    durations: pl.DataFrame,
    *,
    form_type: str,
    office: str | None,
    received: date,
    stage: str | None,
    today: date,
    min_group_size: int,
    office_basis: str = "intake",
    processing: str = "regular",
) -> CaseEstimate:
    """Estimate the wait left for a pending case from the published `durations` table.

    `stage` is the case's current stage (None or 'received' for no narrowing); a decided
    stage is an error. Only cases of the reader's `processing` type count ('regular' or
    'premium': premium runs on its own clock). Groups and at-risk sets under
    min_group_size give no figures.
    """
    if processing not in {"regular", "premium"}:
        raise ValueError(f"processing must be regular or premium, not {processing!r}")
    if received > today:
        raise ValueError(f"the receipt date {received} is after today ({today})")
    stage = normalize_stage(stage)
    if stage in DECIDED_STAGES:
        raise ValueError(f"a case at stage {stage!r} is decided: there is no wait left to estimate")
    waited = (today - received).days
    k = min_group_size
    same_form = durations.filter(pl.col("form_type") == form_type)
    if "processing" in durations.columns:
        same_form = same_form.filter(pl.col("processing") == processing)
    office_col = OFFICE_COLUMNS[office_basis]
    flag = STAGE_FILTERS.get(stage or "received")
    candidates: list[tuple[str, pl.DataFrame]] = []
    if office is not None:
        same_office = same_form.filter(pl.col(office_col) == office)
        if flag is not None:
            candidates.append(("form, office and stage", same_office.filter(pl.col(flag))))
        candidates.append(("form and office", same_office))
    if flag is not None:
        candidates.append(("form and stage", same_form.filter(pl.col(flag))))
    candidates.append(("form", same_form))

    notes: list[str] = []
    unknown = CaseEstimate(form_type=form_type, office=office, stage=stage, received=received,
                           today=today, waited_days=waited, enough_data=False, basis="none",
                           processing=processing)
    for basis, cases in candidates:
        if cases.height < k:
            notes.append(f"fewer than {k} cases of the same {basis} in the data")
            continue
        entry = cases["entry_days"].to_numpy() if "entry_days" in cases.columns else None
        km = kaplan_meier(cases["duration_days"].to_numpy(), cases["decided"].to_numpy(),
                          entry=entry)
        left = remaining_time(km, waited, HORIZONS, (0.25, 0.5, 0.75))
        if left.n_at_risk < k:
            notes.append(
                f"fewer than {k} cases of the same {basis} were still waiting after "
                f"{waited} days"
            )
            continue
        if basis != candidates[0][0]:
            notes.append(f"estimate based on cases of the same {basis} only")
        n_stale = int(cases["stale"].sum()) if "stale" in cases.columns else 0
        if n_stale:
            notes.append(
                f"{n_stale} of these cases are pending but had not been seen for a long time "
                "before the data ends: they count as waiting only until they were last seen"
            )
        q25, q50, q75 = (q.value for q in left.remaining_days)
        return replace(
            unknown, enough_data=True, basis=basis,
            n_cases=cases.height, n_pending=int((~cases["decided"]).sum()), n_stale=n_stale,
            n_at_risk=left.n_at_risk, still_waiting_share=left.still_pending_share,
            chances=tuple(
                Chance(int(c.horizon_days), c.probability, c.ci_low, c.ci_high)
                for c in left.chances
            ),
            likely_from=_after(today, q25), median_date=_after(today, q50),
            likely_by=_after(today, q75), notes=tuple(notes),
        )
    notes.append("not enough data to estimate: figures would rest on too few cases")
    return replace(unknown, notes=tuple(notes))


def _after(today: date, days: float | None) -> date | None:
    return None if days is None else today + timedelta(days=round(days))
