"""Is it getting worse, do offices differ: against cohorts and offices built with known answers."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from pipeline.analytics.comparisons import (
    cohort_changes,
    office_medians,
    offices_statement,
    recent_window,
)

AS_OF = date(2026, 12, 1)


def cases(month: date, days: list[int], decided: list[bool], office: str = "NBC") -> pl.DataFrame:
    """Cases filed in one month with these waits."""
    n = len(days)
    return pl.DataFrame({"received_month": [month] * n, "intake_office": [office] * n,
                         "duration_days": days, "decided": decided},
                        schema_overrides={"duration_days": pl.Int32})


def test_the_recent_window_has_sixty_days_of_follow_up() -> None:
    # data seen until Dec 1: months filed before Oct 2 have >= 60 days; the window is Jul-Sep
    assert recent_window(AS_OF) == (date(2026, 7, 1), date(2026, 10, 1), 61)


def test_a_slow_form_is_compared_at_its_typical_wait() -> None:
    # median wait 400 days: the recent months are those filed by Oct 2025 (Jul-Sep 2025)
    frame = cases(date(2024, 8, 1), [400] * 50 + [800] * 50, [True] * 100)
    frame = pl.concat([frame, cases(date(2025, 8, 1), [300] * 50 + [500] * 50, [True] * 100)])
    change = cohort_changes(frame, AS_OF, k=10)[0]
    assert (change.recent_start, change.recent_end) == (date(2025, 7, 1), date(2025, 10, 1))
    assert change.horizon_days == 426  # Oct 1, 2025 to Dec 1, 2026
    assert change.recent is not None and change.recent.share == pytest.approx(0.5)


def test_a_slower_recent_cohort_is_called_slower_with_both_figures() -> None:
    # a year earlier: 60 of 100 decided on day 10 (within 61 days: 60%); now 20 of 100 (20%)
    before = cases(date(2025, 8, 1), [10] * 60 + [200] * 40, [True] * 100)
    recent = cases(date(2026, 8, 1), [10] * 20 + [70] * 80, [True] * 20 + [False] * 80)
    change = cohort_changes(pl.concat([before, recent]), AS_OF, k=10, min_days=60)[0]
    assert change.recent is not None and change.year_before is not None
    assert change.recent.share == pytest.approx(0.2)
    assert change.year_before.share == pytest.approx(0.6)
    assert change.verdict == "slower"
    sentence = change.sentence("I-130")
    assert sentence.startswith("Slower than a year earlier: 20% of I-130 cases filed in Jul–Sep 2026")
    assert "n=100" in sentence and "Jul–Sep 2025" in sentence


def test_equal_cohorts_show_no_clear_change() -> None:
    same = ([10] * 50 + [200] * 50, [True] * 100)
    frame = pl.concat([cases(date(2025, 8, 1), *same), cases(date(2026, 8, 1), *same)])
    change = cohort_changes(frame, AS_OF, k=10, min_days=60)[0]
    assert change.verdict == "no clear change"
    assert "No clear change" in change.sentence("I-130")


def test_offices_are_compared_one_by_one_and_small_ones_are_too_few() -> None:
    big = pl.concat([cases(date(2025, 8, 1), [10] * 100, [True] * 100),
                     cases(date(2026, 8, 1), [10] * 100, [True] * 100)])
    small = pl.concat([cases(date(2025, 8, 1), [10] * 5, [True] * 5, "TSC"),
                       cases(date(2026, 8, 1), [10] * 5, [True] * 5, "TSC")])
    changes = {c.group: c for c in cohort_changes(pl.concat([big, small]), AS_OF, k=10,
                                                   min_days=60)}
    assert changes["NBC"].verdict == "no clear change"
    assert changes["TSC"].verdict == "too few cases"
    assert changes["TSC"].sentence("I-130").startswith("Too few I-130 cases at TSC")


def exponential(office: str, median: float, n: int, seed: int) -> pl.DataFrame:
    """n decided cases whose waits are exponential with this median."""
    rng = np.random.default_rng(seed)
    days = np.ceil(rng.exponential(median / np.log(2), n)).astype(int).tolist()
    return cases(date(2025, 1, 1), days, [True] * n, office)


def test_offices_with_separate_intervals_are_named_and_close_ones_are_not() -> None:
    frame = pl.concat([exponential("NBC", 100, 400, 1), exponential("TSC", 200, 400, 2),
                       exponential("VSC", 205, 400, 3)])
    medians = office_medians(frame, k=10)
    assert [m.office for m in medians] == ["NBC", "TSC", "VSC"] or \
        [m.office for m in medians] == ["NBC", "VSC", "TSC"]
    assert medians[0].median_days == pytest.approx(100, rel=0.2)
    statement = offices_statement("I-130", medians)
    assert "NBC is faster than TSC, VSC" in statement
    assert "TSC is faster" not in statement and "VSC is faster" not in statement


def test_offices_that_do_not_differ_get_no_claim() -> None:
    frame = pl.concat([exponential("NBC", 150, 200, 4), exponential("TSC", 150, 200, 5)])
    statement = offices_statement("I-130", office_medians(frame, k=10))
    assert statement.startswith("The data do not show that I-130 offices differ")


def test_the_difference_interval_claims_a_change_about_5_percent_of_the_time_when_there_is_none() -> None:
    # both cohorts from the same process (median 90 days, pending cases censored at random):
    # a 95% interval for the difference should call a change in about 5% of repetitions
    rng = np.random.default_rng(2026)
    claims = 0
    repetitions = 300
    for _ in range(repetitions):
        frames = []
        for month in (date(2025, 8, 1), date(2026, 8, 1)):
            wait = np.ceil(rng.exponential(90 / np.log(2), 150))
            seen = rng.uniform(40, 400, 150)
            frames.append(cases(month, np.minimum(wait, seen).astype(int).tolist(),
                                (wait <= seen).tolist()))
        claims += cohort_changes(pl.concat(frames), AS_OF, k=10,
                                 min_days=60)[0].verdict != "no clear change"
    assert 0.02 <= claims / repetitions <= 0.09


def test_premium_cases_are_not_pooled_with_regular_ones_when_the_table_tells_them_apart() -> None:
    regular = exponential("NBC", 150, 200, 6).with_columns(pl.lit("regular").alias("processing"))
    premium = exponential("TSC", 10, 200, 7).with_columns(pl.lit("premium").alias("processing"))
    medians = office_medians(pl.concat([regular, premium]), k=10)
    assert [m.office for m in medians] == ["NBC"]
