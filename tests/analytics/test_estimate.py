"""'Cases like mine': the remaining-time estimate, its fallbacks and `timelines estimate`."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

import timelines.commands.analytics  # noqa: F401  (registers the commands)
from pipeline.analytics.estimate import estimate_case, normalize_stage
from pipeline.analytics.remaining import remaining_time
from pipeline.analytics.survival import kaplan_meier
from pipeline.jobs import refresh as refresh_job
from pipeline.settings import Settings
from tests.support.analytics_data import Case, store_cases
from timelines.cli import app

TODAY = date(2026, 6, 1)
runner = CliRunner()


def _durations(rows: list[tuple[str, str, int, bool, bool]]) -> pl.DataFrame:
    """(form, office, days, decided, had_rfe) rows in the published durations' shape."""
    frame = pl.DataFrame(rows, schema=["form_type", "intake_office", "duration_days", "decided",
                                       "had_rfe"], orient="row")
    return frame.with_columns(
        pl.col("intake_office").alias("current_office"),
        pl.lit(False).alias("had_interview"), pl.lit(False).alias("had_biometrics"),
        pl.lit(False).alias("had_rfe_response"), pl.lit(False).alias("transferred"),
    )


def _group(form: str, office: str, n: int, seed: int, rfe_share: float = 0.0) -> list[tuple]:
    rng = np.random.default_rng(seed)
    wait = np.ceil(rng.lognormal(np.log(200), 0.4, n)).astype(int)
    seen = rng.integers(50, 500, n)
    rfe = rng.random(n) < rfe_share
    return [(form, office, int(min(w, s)), bool(w <= s), bool(r))
            for w, s, r in zip(wait, seen, rfe, strict=True)]


def test_estimate_is_the_conditional_curve_of_the_same_form_and_office() -> None:
    rows = _group("I-485", "NBC", 300, 1) + _group("I-485", "NSC", 300, 2)
    durations = _durations(rows)
    received = TODAY - timedelta(days=150)
    result = estimate_case(durations, form_type="I-485", office="NBC", received=received,
                           stage=None, today=TODAY, min_group_size=10)
    nbc = durations.filter(pl.col("intake_office") == "NBC")
    expected = remaining_time(
        kaplan_meier(nbc["duration_days"].to_numpy(), nbc["decided"].to_numpy()), 150,
        (30, 60, 90), (0.25, 0.5, 0.75),
    )
    assert result.enough_data and result.basis == "form and office"
    assert (result.n_cases, result.n_at_risk) == (300, expected.n_at_risk)
    assert [c.probability for c in result.chances] == [c.probability for c in expected.chances]
    assert result.chances[0].probability < result.chances[2].probability  # type: ignore[operator]
    q25, q50, _ = (q.value for q in expected.remaining_days)
    assert result.likely_from == TODAY + timedelta(days=round(q25 or 0))
    assert result.median_date == TODAY + timedelta(days=round(q50 or 0))
    assert result.notes == ()


def test_stage_narrows_to_cases_that_went_through_it() -> None:
    durations = _durations(_group("I-485", "NBC", 600, 3, rfe_share=0.3))
    result = estimate_case(durations, form_type="I-485", office="NBC",
                           received=TODAY - timedelta(days=100), stage="Request for Evidence Was Sent",
                           today=TODAY, min_group_size=10)
    assert result.stage == "rfe" and result.basis == "form, office and stage"
    assert result.n_cases == int(durations["had_rfe"].sum())


def test_small_office_falls_back_to_the_form_with_a_note() -> None:
    durations = _durations(_group("I-765", "NSC", 200, 4) + _group("I-765", "PSC", 6, 5))
    result = estimate_case(durations, form_type="I-765", office="PSC",
                           received=TODAY - timedelta(days=60), stage=None, today=TODAY,
                           min_group_size=10)
    assert result.enough_data and result.basis == "form"
    assert result.n_cases == 206
    assert any("fewer than 10 cases of the same form and office" in n for n in result.notes)
    assert any("same form only" in n for n in result.notes)


def test_a_wait_longer_than_almost_anyone_watched_says_not_enough_data() -> None:
    durations = _durations(_group("I-130", "CSC", 100, 6))
    result = estimate_case(durations, form_type="I-130", office="CSC",
                           received=TODAY - timedelta(days=2000), stage=None, today=TODAY,
                           min_group_size=10)
    assert not result.enough_data and result.basis == "none"
    assert result.chances == () and result.n_cases is None and result.n_at_risk is None
    assert "not enough data" in result.notes[-1]


@pytest.mark.parametrize(
    ("received", "stage", "message"),
    [
        (TODAY + timedelta(days=1), None, "after today"),
        (TODAY - timedelta(days=10), "Case Was Approved", "is decided"),
        (TODAY - timedelta(days=10), "waiting for godot", "unknown stage"),
    ],
)
def test_impossible_questions_are_refused_in_words(
    received: date, stage: str | None, message: str
) -> None:
    durations = _durations(_group("I-485", "NBC", 50, 7))
    with pytest.raises(ValueError, match=message):
        estimate_case(durations, form_type="I-485", office="NBC", received=received, stage=stage,
                      today=TODAY, min_group_size=10)


@pytest.mark.parametrize(("raw", "stage"), [("RFE", "rfe"), ("rfe response", "rfe_response"),
                                            ("fingerprints", "biometrics"), ("", None)])
def test_stage_names_are_forgiving(raw: str, stage: str | None) -> None:
    assert normalize_stage(raw) == stage


def test_estimate_command_prints_json_from_the_published_snapshot(settings: Settings) -> None:
    cases = [Case(f"c{i}", received=date(2025, 1, 1) + timedelta(days=i), seen_days=400 - i,
                  events=[(100 + 3 * i, "approved")] if i % 3 else []) for i in range(60)]
    store_cases(settings, cases)
    refresh_job.refresh(settings)
    refresh_job.publish(settings)
    result = runner.invoke(app, ["estimate", "--form", "i485", "--office", "MSC", "--received",
                                 "2025-03-01", "--today", "2025-06-01", "--format", "json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["office"] == "NBC" and answer["waited_days"] == 92
    assert answer["enough_data"] and [c["days"] for c in answer["chances"]] == [30, 60, 90]
    assert answer["n_cases"] == 60 and answer["n_pending"] == 20
    text = runner.invoke(app, ["estimate", "--form", "I-485", "--office", "NBC", "--received",
                               "2025-03-01", "--today", "2025-06-01"])
    assert "decision within 30 days" in text.output
    bad = runner.invoke(app, ["estimate", "--form", "I-485", "--received", "03/01/2025"])
    assert bad.exit_code != 0 and "YYYY-MM-DD" in str(bad.exception)


def test_estimate_uses_the_readers_processing_type_and_delayed_entry() -> None:
    regular = _durations(_group("I-140", "TSC", 300, 5)).with_columns(
        pl.lit("regular").alias("processing"))
    rng = np.random.default_rng(6)
    premium = _durations([("I-140", "TSC", int(d), True, False)
                          for d in rng.integers(3, 15, 60)]).with_columns(
        pl.lit("premium").alias("processing"))
    entry = np.where(np.arange(300) % 3 == 0, regular["duration_days"].to_numpy() // 2, 0)
    durations = pl.concat([regular.with_columns(pl.Series("entry_days", entry)),
                           premium.with_columns(pl.lit(0, dtype=pl.Int64).alias("entry_days"))])
    durations = durations.with_columns(
        (~pl.col("decided") & (pl.col("duration_days") < 100)).alias("stale"))
    received = TODAY - timedelta(days=5)
    fast = estimate_case(durations, form_type="I-140", office="TSC", received=received,
                         stage=None, today=TODAY, min_group_size=10, processing="premium")
    assert fast.enough_data and fast.n_cases == 60 and fast.processing == "premium"
    slow = estimate_case(durations, form_type="I-140", office="TSC", received=received,
                         stage=None, today=TODAY, min_group_size=10)
    assert slow.n_cases == 300 and slow.likely_from > fast.likely_from  # type: ignore[operator]
    expected = remaining_time(kaplan_meier(regular["duration_days"].to_numpy(),
                                           regular["decided"].to_numpy(), entry=entry), 5)
    assert [c.probability for c in slow.chances] == [c.probability for c in expected.chances]
    assert slow.n_stale and any("had not been seen" in note for note in slow.notes)
    with pytest.raises(ValueError, match="regular or premium"):
        estimate_case(durations, form_type="I-140", office="TSC", received=received,
                      stage=None, today=TODAY, min_group_size=10, processing="any")
