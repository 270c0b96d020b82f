"""The My case answer card's numbers, against answers worked out by hand."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from pipeline.analytics.answer_card import (
    Inquiry,
    answer_card,
    citation,
    next_stage_for,
    peers_for,
    plain_share,
    verdict_for,
)

TODAY = date(2026, 12, 1)


def durations(days: list[int], decided: list[bool] | None = None, office: str = "NBC",
              received: date = date(2025, 9, 1), biometrics: bool = True) -> pl.DataFrame:
    """A durations table of I-485 cases with these waits (all decided unless told)."""
    n = len(days)
    flags = decided if decided is not None else [True] * n
    return pl.DataFrame({
        "form_type": ["I-485"] * n, "intake_office": [office] * n, "current_office": [office] * n,
        "received_month": [received.replace(day=1)] * n, "duration_days": days,
        "decided": flags, "had_biometrics": [biometrics] * n, "had_interview": [False] * n,
        "had_rfe": [False] * n, "had_rfe_response": [False] * n, "transferred": [False] * n,
    }, schema_overrides={"duration_days": pl.Int32})


@pytest.mark.parametrize(("share", "words"), [
    (0.64, "2 in 3"), (0.5, "1 in 2"), (0.91, "9 in 10"), (0.26, "1 in 4"), (0.05, "1 in 10"),
])
def test_plain_share_picks_the_nearest_small_fraction(share: float, words: str) -> None:
    assert plain_share(share) == words


def test_verdict_counts_the_cases_decided_within_the_wait() -> None:
    # 30 cases decided on days 1..30: by day 20, 20 of them (2 in 3) were decided
    verdict = verdict_for(durations(list(range(1, 31))), 20, k=10)
    assert verdict is not None
    assert verdict.share_faster == pytest.approx(20 / 30)
    assert verdict.ci_low < 20 / 30 < verdict.ci_high
    assert verdict.n_cases == 30
    assert verdict.sentence == "Your wait is already longer than 2 in 3 similar cases took."


def test_a_short_wait_is_called_normal_and_pending_cases_count_as_waiting() -> None:
    # 10 decided on day 100, 10 still waiting after 300 days: by day 50 nobody was decided
    frame = durations([100] * 10 + [300] * 10, [True] * 10 + [False] * 10)
    verdict = verdict_for(frame, 50, k=10)
    assert verdict is not None and verdict.share_faster == 0.0
    assert "normal so far" in verdict.sentence
    late = verdict_for(frame, 200, k=10)
    assert late is not None and late.share_faster == pytest.approx(0.5)


def test_no_verdict_under_k() -> None:
    assert verdict_for(durations([5] * 9), 5, k=10) is None


def test_peers_are_the_same_form_office_and_month() -> None:
    frame = pl.concat([
        durations([10] * 8 + [400] * 4, [True] * 8 + [False] * 4, received=date(2025, 9, 3)),
        durations([10] * 20, received=date(2025, 10, 3)),
        durations([10] * 20, office="NSC", received=date(2025, 9, 3)),
    ])
    peers = peers_for(frame, "I-485", "NBC", date(2025, 9, 15), k=10)
    assert peers is not None and (peers.n_cases, peers.n_decided) == (12, 8)
    assert peers_for(frame, "I-485", "NBC", date(2025, 11, 15), k=10) is None


STAGES = pl.DataFrame({
    "segment": ["biometrics_to_interview", "biometrics_to_interview", "receipt_to_decision"],
    "form_type": ["I-485"] * 3, "office": ["NBC", None, None], "suppressed": [False] * 3,
    "median_days": [120.0, 150.0, 400.0], "median_ci_low": [100.0, 140.0, 380.0],
    "median_ci_high": [140.0, 160.0, 420.0], "n_cases": [40, 200, 900],
})


def test_next_stage_prefers_the_office_and_dates_it_from_the_stage() -> None:
    step = next_stage_for(STAGES, "I-485", "NBC", "biometrics", date(2026, 1, 1))
    assert step is not None
    assert (step.what, step.median_days, step.n_cases) == ("interview", 120.0, 40)
    assert step.expected_on == date(2026, 1, 1) + timedelta(days=120)
    other = next_stage_for(STAGES, "I-485", "TSC", "biometrics", None)
    assert other is not None and other.median_days == 150.0 and other.expected_on is None
    assert next_stage_for(STAGES, "I-485", "NBC", "interview", None).what == "decision"  # type: ignore[union-attr]


def test_inquiry_says_now_or_not_yet() -> None:
    inquiry = Inquiry("", date(2025, 10, 1), date(2026, 11, 20), 420.0)
    assert "accepts a case inquiry now" in inquiry.sentence(date(2025, 9, 15), TODAY)
    later = inquiry.sentence(date(2025, 11, 1), TODAY)
    assert "does not take an inquiry yet" in later and "31 days before" in later


def test_the_card_for_a_pending_case_cites_its_figures_and_snapshot() -> None:
    # 40 decided on days 100..490 (every 10 days), 20 still waiting at day 500
    frame = durations(list(range(100, 500, 10)) + [500] * 20, [True] * 40 + [False] * 20)
    official = pl.DataFrame({
        "form_type": ["I-485"], "office": ["NBC"], "subtype": ["x"], "subtype_info": [None],
        "publication_date": [date(2026, 11, 1)], "official_p80_days": [400.0],
        "service_request_date": [date(2025, 10, 1)],
    })
    card = answer_card(frame, form_type="I-485", office="NBC", received=TODAY - timedelta(days=300),
                       stage="biometrics", today=TODAY, k=10, stage_stats=STAGES,
                       official=official)
    assert card.verdict is not None and card.verdict.n_cases == 60
    # by day 300, the cases decided on days 100..300 (21 of 60) were decided
    assert card.verdict.share_faster == pytest.approx(21 / 60)
    # the odds rest on the cases still waiting after day 300: 310..490 (19) and the 20 pending
    assert card.estimate.enough_data and card.estimate.n_at_risk == 39
    assert card.next_stage is not None and card.next_stage.what == "interview"
    assert len(card.inquiries) == 1
    line = citation(card, "20261201T000000")
    assert "n=60" in line and "snapshot 20261201T000000" in line and "95% CI" in line
