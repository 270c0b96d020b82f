"""The answer card of My case: is my wait normal, when will I hear, what comes next.

Plain functions of the published tables (no Streamlit): a verdict against similar cases, the
chance of a decision within 30/60/90 days, a likely window, the cases filed the same month,
the next stage with its typical time, USCIS's case-inquiry date where official figures are
imported, and a citation line. Every figure carries the n it rests on; groups under k give none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

import numpy as np
import polars as pl

from pipeline.analytics.comparisons import regular_only
from pipeline.analytics.estimate import STAGE_FILTERS, CaseEstimate, estimate_case
from pipeline.analytics.survival import kaplan_meier

# (numerator, denominator) phrases a reader takes in at a glance, e.g. "2 in 3"
_PLAIN_SHARES = (Fraction(1, 10), Fraction(1, 5), Fraction(1, 4), Fraction(1, 3), Fraction(1, 2),
                 Fraction(2, 3), Fraction(3, 4), Fraction(4, 5), Fraction(9, 10))
# current stage -> the stage-to-stage segments that say what comes next, tried in order
NEXT_SEGMENTS: dict[str, tuple[str, ...]] = {
    "received": ("receipt_to_biometrics", "receipt_to_decision"),
    "biometrics": ("biometrics_to_interview", "receipt_to_decision"),
    "interview": ("receipt_to_decision",),
    "rfe": ("rfe_to_response", "rfe_to_decision"),
    "rfe_response": ("response_to_decision",),
    "review": ("receipt_to_decision",),
    "transferred": ("receipt_to_decision",),
    "other": ("receipt_to_decision",),
    "approved": ("approval_to_card_mailed",),
    "card_production": ("approval_to_card_mailed",),
}
NEXT_NAMES = {
    "receipt_to_biometrics": ("biometrics appointment", "after receipt"),
    "biometrics_to_interview": ("interview", "after biometrics"),
    "receipt_to_decision": ("decision", "after receipt"),
    "rfe_to_response": ("your answer received by USCIS", "after the request"),
    "rfe_to_decision": ("decision", "after the request for evidence"),
    "response_to_decision": ("decision", "after USCIS received your answer"),
    "approval_to_card_mailed": ("card mailed", "after approval"),
}
BASIS_WORDS = {
    "form, office and stage": "same form and office, through the same stage",
    "form and office": "same form and office",
    "form and stage": "same form, through the same stage, all offices",
    "form": "same form, all offices",
}


def plain_share(share: float) -> str:
    """Say a share as 'N in M' with small numbers: 0.64 -> '2 in 3', 0.5 -> '1 in 2'."""
    nearest = min(_PLAIN_SHARES, key=lambda f: abs(float(f) - share))
    return f"{nearest.numerator} in {nearest.denominator}"


@dataclass(frozen=True)
class Verdict:
    """How a wait compares: the share of similar cases decided faster, with its interval."""

    share_faster: float
    ci_low: float
    ci_high: float
    n_cases: int
    waited_days: int

    @property
    def sentence(self) -> str:
        """'Your wait so far is longer than 2 in 3 similar cases.' (or shorter, or typical)."""
        if self.share_faster >= 0.55:
            return (f"Your wait is already longer than {plain_share(self.share_faster)} "
                    "similar cases took.")
        if self.share_faster <= 0.45:
            return (f"Your wait so far is shorter than {plain_share(1 - self.share_faster)} "
                    "similar cases take: it is normal so far.")
        return "Your wait so far is typical: about half of similar cases took longer."

    @property
    def unusual(self) -> bool:
        """Longer than 9 in 10 similar cases, beyond doubt of the interval."""
        return self.ci_low >= 0.9


@dataclass(frozen=True)
class NextStage:
    """The step that usually comes next and its typical time, from the stage statistics."""

    segment: str
    what: str
    since: str
    median_days: float
    ci_low: float | None
    ci_high: float | None
    n_cases: int
    expected_on: date | None  # start of the segment + median, when the start date is known


@dataclass(frozen=True)
class Peers:
    """The cases of the same form and office filed in the same month."""

    month: date
    n_cases: int
    n_decided: int


@dataclass(frozen=True)
class Inquiry:
    """USCIS's case-inquiry date for one category, from the imported official figures."""

    category: str
    inquiry_date: date  # USCIS accepts an inquiry for cases received before this date
    published: date | None
    official_p80_days: float | None

    def sentence(self, received: date, today: date) -> str:
        """Whether the person can already ask USCIS about their case, in words."""
        label = f" ({self.category})" if self.category else ""
        if received < self.inquiry_date:
            return (f"USCIS accepts a case inquiry now{label}: it takes inquiries for cases "
                    f"received before {self.inquiry_date:%b %d, %Y}, and yours was received "
                    f"{received:%b %d, %Y}.")
        wait = (received - self.inquiry_date).days
        return (f"USCIS does not take an inquiry yet{label}: its published inquiry date is "
                f"{self.inquiry_date:%b %d, %Y}, {wait:,} days before your receipt date. At the "
                f"same pace it would reach yours around {today + timedelta(days=wait):%b %Y}.")


@dataclass(frozen=True)
class AnswerCard:
    """Everything the answer card shows; None (or empty) where the data cannot tell."""

    estimate: CaseEstimate
    verdict: Verdict | None
    peers: Peers | None
    next_stage: NextStage | None
    inquiries: tuple[Inquiry, ...]
    group_words: str  # which cases are "similar"


def similar_cases(durations: pl.DataFrame, form_type: str, office: str | None,
                  stage: str | None, basis: str) -> pl.DataFrame:
    """The cases an estimate of this basis rests on (same form, maybe office and stage)."""
    cases = regular_only(durations).filter(pl.col("form_type") == form_type)
    if "office" in basis and office is not None:
        cases = cases.filter(pl.col("intake_office") == office)
    flag = STAGE_FILTERS.get(stage or "received")
    if "stage" in basis and flag is not None:
        cases = cases.filter(pl.col(flag))
    return cases


def verdict_for(cases: pl.DataFrame, waited_days: int, k: int) -> Verdict | None:
    """The share of these cases decided within waited_days (Kaplan-Meier), or None under k."""
    if cases.height < k:
        return None
    km = kaplan_meier(cases["duration_days"].to_numpy(), cases["decided"].to_numpy())
    idx = int(np.searchsorted(km.timeline, waited_days, side="right") - 1)
    return Verdict(1.0 - float(km.survival[idx]), 1.0 - float(km.ci_high[idx]),
                   1.0 - float(km.ci_low[idx]), cases.height, waited_days)


def peers_for(durations: pl.DataFrame, form_type: str, office: str | None, received: date,
              k: int) -> Peers | None:
    """Cases of the same form and office filed the same month; None under k."""
    month = received.replace(day=1)
    cases = regular_only(durations).filter((pl.col("form_type") == form_type)
                             & (pl.col("received_month") == month))
    if office is not None:
        cases = cases.filter(pl.col("intake_office") == office)
    if cases.height < k:
        return None
    return Peers(month, cases.height, int(cases["decided"].sum()))


def next_stage_for(stage_stats: pl.DataFrame | None, form_type: str, office: str | None,
                   stage: str, started_on: date | None) -> NextStage | None:
    """The first next segment with a published median (office first, then all offices)."""
    if stage_stats is None or stage_stats.height == 0:
        return None
    for segment in NEXT_SEGMENTS.get(stage, ()):
        rows = regular_only(stage_stats).filter((pl.col("segment") == segment) & (pl.col("form_type") == form_type)
                                  & ~pl.col("suppressed") & pl.col("median_days").is_not_null())
        for place in ([office] if office else []) + [None]:
            match = rows.filter(pl.col("office").is_null() if place is None
                                else pl.col("office") == place)
            if match.height:
                row = match.row(0, named=True)
                what, since = NEXT_NAMES[segment]
                expected = (None if started_on is None
                            else started_on + timedelta(days=round(row["median_days"])))
                return NextStage(segment, what, since, row["median_days"], row["median_ci_low"],
                                 row["median_ci_high"], row["n_cases"], expected)
    return None


def inquiries_for(official: pl.DataFrame | None, form_type: str,
                  office: str | None) -> tuple[Inquiry, ...]:
    """USCIS's inquiry dates for the form at the office (up to three categories)."""
    if official is None or office is None or "service_request_date" not in official.columns:
        return ()
    rows = official.filter((pl.col("form_type") == form_type) & (pl.col("office") == office)
                           & pl.col("service_request_date").is_not_null())
    return tuple(
        Inquiry(str(r["subtype_info"] or r["subtype"] or ""), r["service_request_date"],
                r["publication_date"], r["official_p80_days"])
        for r in rows.head(3).iter_rows(named=True)
    )


def answer_card(
    durations: pl.DataFrame, *, form_type: str, office: str | None, received: date,
    stage: str | None, today: date, k: int, stage_started_on: date | None = None,
    stage_stats: pl.DataFrame | None = None, official: pl.DataFrame | None = None,
) -> AnswerCard:
    """Compute the whole answer card for a pending case."""
    estimate = estimate_case(durations, form_type=form_type, office=office, received=received,
                             stage=stage, today=today, min_group_size=k)
    basis = estimate.basis if estimate.enough_data else "form and office"
    cases = similar_cases(durations, form_type, office, estimate.stage, basis)
    return AnswerCard(
        estimate=estimate,
        verdict=verdict_for(cases, estimate.waited_days, k),
        peers=peers_for(durations, form_type, office, received, k),
        next_stage=next_stage_for(stage_stats, form_type, office, estimate.stage or "received",
                                  stage_started_on),
        inquiries=inquiries_for(official, form_type, office),
        group_words=BASIS_WORDS.get(basis, basis),
    )


def citation(card: AnswerCard, snapshot_stamp: str) -> str:
    """One line to quote: figure, interval, n and the snapshot it comes from."""
    e = card.estimate
    parts = [f"{e.form_type}" + (f" at {e.office}" if e.office else "")
             + f", received {e.received:%Y-%m-%d}, day {e.waited_days:,}"]
    if card.verdict is not None:
        v = card.verdict
        parts.append(f"{100 * v.share_faster:.0f}% of similar cases decided by this day "
                     f"(95% CI {100 * v.ci_low:.0f}–{100 * v.ci_high:.0f}%, n={v.n_cases:,})")
    chance = next((c for c in e.chances if c.days == 90 and c.probability is not None), None)
    if chance is not None and chance.ci_low is not None and chance.ci_high is not None:
        parts.append(f"chance of a decision within 90 days {100 * (chance.probability or 0):.0f}% "
                     f"(95% CI {100 * chance.ci_low:.0f}–{100 * chance.ci_high:.0f}%, "
                     f"n at risk={e.n_at_risk:,})")
    parts.append(f"uscis-timelines snapshot {snapshot_stamp}")
    return "; ".join(parts)
