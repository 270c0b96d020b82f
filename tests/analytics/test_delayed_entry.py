"""Delayed entry (left truncation): each case is at risk only from the day it came under observation.

Checked against lifelines' `entry=` to 1e-10, and by simulation with a known answer: cases
decided before anyone tracked them are never seen, so plain Kaplan–Meier overweights the slow
ones; with entry the median comes back to the truth and its interval covers it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
from lifelines import AalenJohansenFitter, KaplanMeierFitter
from lifelines.utils import qth_survival_times

from pipeline.analytics.competing import cumulative_incidence
from pipeline.analytics.remaining import remaining_time
from pipeline.analytics.survival import (
    kaplan_meier,
    kaplan_meier_by_group,
    summarize,
    survival_quantile,
)

FloatArray = npt.NDArray[np.float64]
TRUE_MEDIAN = 150.0
SIGMA = 0.5


def assert_tight(actual: npt.ArrayLike, desired: npt.ArrayLike) -> None:
    """Assert equality up to float rounding (rtol 1e-10, atol 1e-12)."""
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float), np.asarray(desired, dtype=float), rtol=1e-10, atol=1e-12
    )


def tracked_sample(
    rng: np.random.Generator, n: int, *, from_receipt: float = 0.05, late: float = 400,
    window: float = 900, whole_days: bool = True,
) -> tuple[FloatArray, npt.NDArray[np.bool_], FloatArray]:
    """Return (durations, decided, entry) of the cases a tracker would see.

    Waits are log-normal with median 150 days; filings spread over `window` days before
    "today". A share `from_receipt` is tracked from receipt, the others from a uniform day in
    [0, late). A case decided (or not yet filed long enough) before its tracking starts is
    never seen: that is the truncation. (A case first seen on the day it left adds nothing to
    the curve; lifelines counts its decision but not the case, so it is left out here.)
    """
    wait = rng.lognormal(math.log(TRUE_MEDIAN), SIGMA, n)
    follow = rng.uniform(0, window, n)
    entry = np.where(rng.random(n) < from_receipt, 0.0, rng.uniform(0, late, n))
    if whole_days:
        wait, follow, entry = np.ceil(wait), np.floor(follow), np.floor(entry)
    seen = (entry < np.minimum(wait, follow)) | (entry == 0)
    wait, follow, entry = wait[seen], follow[seen], entry[seen]
    decided = wait <= follow
    return np.where(decided, wait, follow), decided, entry


LIFELINES_CASES = [
    pytest.param(1, 800, True, id="whole-days-with-ties"),
    pytest.param(2, 800, False, id="continuous"),
    pytest.param(3, 120, True, id="small-group"),
    pytest.param(4, 6000, True, id="large"),
]


@pytest.mark.parametrize(("seed", "n", "whole_days"), LIFELINES_CASES)
def test_curve_counts_and_bands_match_lifelines_with_entry(
    seed: int, n: int, whole_days: bool
) -> None:
    durations, decided, entry = tracked_sample(
        np.random.default_rng(seed), n, whole_days=whole_days
    )
    km = kaplan_meier(durations, decided, entry=entry)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kmf = KaplanMeierFitter().fit(durations, decided, entry=entry)
    assert_tight(km.timeline, kmf.timeline)
    table = kmf.event_table
    # lifelines' table counts entrants at t in at_risk but its estimate leaves them out (but
    # on the first row): ours is the estimate's risk set.
    entrants = table["entrance"].to_numpy().copy()
    entrants[0] = 0
    np.testing.assert_array_equal(km.at_risk, table["at_risk"].to_numpy() - entrants)
    np.testing.assert_array_equal(km.entered, table["entrance"].to_numpy())
    np.testing.assert_array_equal(km.events, table["observed"].to_numpy())
    np.testing.assert_array_equal(km.censored, table["censored"].to_numpy())
    assert_tight(km.survival, kmf.survival_function_.to_numpy()[:, 0])
    bands = kmf.confidence_interval_.to_numpy()
    assert_tight(km.ci_low, bands[:, 0])
    assert_tight(km.ci_high, bands[:, 1])


@pytest.mark.parametrize(("seed", "n", "whole_days"), LIFELINES_CASES)
def test_quantiles_and_intervals_match_lifelines_with_entry(
    seed: int, n: int, whole_days: bool
) -> None:
    durations, decided, entry = tracked_sample(
        np.random.default_rng(seed), n, whole_days=whole_days
    )
    km = kaplan_meier(durations, decided, entry=entry)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kmf = KaplanMeierFitter().fit(durations, decided, entry=entry)
        for q in (0.5, 0.8, 0.9):
            ours = survival_quantile(km, q)
            value = float(qth_survival_times(1 - q, kmf.survival_function_))
            band = qth_survival_times(1 - q, kmf.confidence_interval_).iloc[0]
            expected = [None if math.isinf(v) else float(v) for v in (value, *band)]
            assert [ours.value, ours.ci_low, ours.ci_high] == expected


def test_entry_by_hand() -> None:
    # Entries 0,4,5,0,9,2: on day 3 three cases are watched (entered 0, 0, 2), one decided;
    # the case first seen on day 5, the day it was last seen, was never watched waiting.
    km = kaplan_meier([3, 5, 5, 8, 10, 12], [1, 1, 0, 1, 0, 1], entry=[0, 4, 5, 0, 9, 2])
    np.testing.assert_array_equal(km.timeline, [0, 2, 3, 4, 5, 8, 9, 10, 12])
    np.testing.assert_array_equal(km.at_risk, [2, 2, 3, 2, 3, 2, 1, 2, 1])
    assert_tight(km.survival, [1, 1, 2 / 3, 2 / 3, 4 / 9, 2 / 9, 2 / 9, 2 / 9, 0])


def test_no_entry_equals_entry_zero_and_entry_changes_the_answer() -> None:
    durations, decided, entry = tracked_sample(np.random.default_rng(5), 3000)
    plain = kaplan_meier(durations, decided)
    zero = kaplan_meier(durations, decided, entry=np.zeros_like(durations))
    assert_tight(plain.survival, zero.survival)
    truncated = kaplan_meier(durations, decided, entry=entry)
    plain_median = survival_quantile(plain, 0.5).value
    truncated_median = survival_quantile(truncated, 0.5).value
    assert plain_median is not None and truncated_median is not None
    assert truncated_median < plain_median


@pytest.mark.parametrize(
    ("entry", "message"),
    [([0, 6], "later than the duration"), ([0, -1], ">= 0"), ([0], "1 values"),
     ([0, float("nan")], "finite")],
)
def test_impossible_entries_are_refused(entry: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        kaplan_meier([3, 5], [1, 0], entry=entry)


def test_curves_by_group_with_entry_equal_one_curve_per_group() -> None:
    rng = np.random.default_rng(8)
    durations, decided, entry = tracked_sample(rng, 6000)
    frame = pl.DataFrame({
        "form": rng.choice(["I-130", "I-485"], size=durations.size),
        "days": durations.astype(np.int64), "decided": decided, "entry": entry.astype(np.int64),
    })
    curves = kaplan_meier_by_group(frame, ["form"], "days", "decided", entry_col="entry")
    for (form,), part in frame.partition_by(["form"], as_dict=True).items():
        curve = curves.filter(pl.col("form") == form)
        km = kaplan_meier(part["days"], part["decided"], entry=part["entry"])
        np.testing.assert_array_equal(curve["time"].to_numpy(), km.timeline)
        np.testing.assert_array_equal(curve["at_risk"].to_numpy(), km.at_risk)
        for column in ("survival", "ci_low", "ci_high"):
            assert_tight(curve[column].to_numpy(), getattr(km, column))
    late = frame.with_columns(pl.col("days").alias("entry") + 1)
    with pytest.raises(ValueError, match="no later than days"):
        kaplan_meier_by_group(late, ["form"], "days", "decided", entry_col="entry")


@pytest.mark.parametrize("event", [1, 2])
def test_cumulative_incidence_matches_lifelines_with_entry(event: int) -> None:
    rng = np.random.default_rng(21 + event)
    durations, decided, entry = tracked_sample(rng, 1500, whole_days=False)
    outcome = np.where(decided, rng.choice([1, 2], size=durations.size, p=[0.85, 0.15]), 0)
    ours = cumulative_incidence(durations, outcome, event, entry=entry)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ajf = AalenJohansenFitter().fit(durations, outcome, event_of_interest=event, entry=entry)
    # Continuous days: no entry falls on an outcome's day, where lifelines' incidence step
    # (entrants in n) and its survival step (entrants out of n) disagree.
    assert_tight(ours.timeline, ajf.cumulative_density_.index.to_numpy())
    assert_tight(ours.cif, ajf.cumulative_density_.to_numpy()[:, 0])
    variance = ajf.variance_.to_numpy()
    finite = np.isfinite(variance)
    np.testing.assert_allclose(ours.variance[finite], variance[finite], rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("waited", [0, 90, 150, 260])
def test_remaining_time_with_entry_matches_lifelines_on_cases_watched_and_waiting(
    waited: float,
) -> None:
    durations, decided, entry = tracked_sample(np.random.default_rng(41), 3000)
    horizons = (30, 60, 90)
    km = kaplan_meier(durations, decided, entry=entry)
    result = remaining_time(km, waited, horizons=horizons)
    still = durations > waited
    assert result.n_at_risk == int((still & (entry <= waited)).sum())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kmf = KaplanMeierFitter().fit(
            durations[still] - waited, decided[still],
            entry=np.maximum(entry[still] - waited, 0),
        )
    survival = kmf.survival_function_.iloc[:, 0]
    bands = kmf.confidence_interval_
    for chance, horizon in zip(result.chances, horizons, strict=True):
        i = np.searchsorted(survival.index.to_numpy(), horizon, side="right") - 1
        assert chance.probability == pytest.approx(1 - survival.iloc[i], abs=1e-12)
        assert chance.ci_low == pytest.approx(1 - bands.iloc[i, 1], abs=1e-12)
        assert chance.ci_high == pytest.approx(1 - bands.iloc[i, 0], abs=1e-12)


def test_summary_takes_entry() -> None:
    durations, decided, entry = tracked_sample(np.random.default_rng(9), 2000)
    with_entry = summarize(durations, decided, entry=entry)
    km = kaplan_meier(durations, decided, entry=entry)
    assert with_entry["median_days"] == survival_quantile(km, 0.5).value
    assert with_entry["n"] == durations.size


# --- simulation with a known answer ----------------------------------------------------------


def test_one_large_tracker_recovers_the_median_where_plain_km_is_far_off() -> None:
    durations, decided, entry = tracked_sample(np.random.default_rng(2026), 40_000)
    truncated = survival_quantile(kaplan_meier(durations, decided, entry=entry), 0.5)
    plain = survival_quantile(kaplan_meier(durations, decided), 0.5)
    assert truncated.value is not None and plain.value is not None
    assert abs(truncated.value / TRUE_MEDIAN - 1) < 0.05
    assert truncated.ci_low is not None and truncated.ci_high is not None
    assert truncated.ci_low <= TRUE_MEDIAN <= truncated.ci_high
    assert plain.value / TRUE_MEDIAN - 1 >= 0.20


def test_over_many_trackers_the_interval_covers_the_truth_and_bias_is_small() -> None:
    rng = np.random.default_rng(7)
    true_p80 = TRUE_MEDIAN * math.exp(SIGMA * 0.8416212335729143)
    covered = {0.5: 0, 0.8: 0}
    errors = []
    runs = 200
    for _ in range(runs):
        durations, decided, entry = tracked_sample(rng, 4000)
        km = kaplan_meier(durations, decided, entry=entry)
        for q, truth in ((0.5, TRUE_MEDIAN), (0.8, true_p80)):
            estimate = survival_quantile(km, q)
            low, high = estimate.ci_low, estimate.ci_high
            covered[q] += low is not None and high is not None and low <= truth <= high
        median = survival_quantile(km, 0.5).value
        assert median is not None
        errors.append(median / TRUE_MEDIAN - 1)
    # 95% intervals; whole days make them a little conservative. 200 runs: 0.90 is > 4 SE below.
    assert covered[0.5] / runs >= 0.90
    assert covered[0.8] / runs >= 0.90
    assert abs(float(np.mean(errors))) < 0.02


def test_chance_of_a_decision_soon_covers_the_truth_with_entry() -> None:
    from statistics import NormalDist

    waited, horizon = 150.0, 60.0
    dist = NormalDist(math.log(TRUE_MEDIAN), SIGMA)
    # Waits are whole days (ceil): P(T <= w + h | T > w) with T = ceil(lognormal).
    truth = 1 - (1 - dist.cdf(math.log(waited + horizon))) / (1 - dist.cdf(math.log(waited)))
    rng = np.random.default_rng(17)
    runs, covered = 150, 0
    for _ in range(runs):
        durations, decided, entry = tracked_sample(rng, 4000)
        [chance] = remaining_time(
            kaplan_meier(durations, decided, entry=entry), waited, horizons=(horizon,)
        ).chances
        assert chance.ci_low is not None and chance.ci_high is not None
        covered += chance.ci_low <= truth <= chance.ci_high
    assert covered / runs >= 0.88
