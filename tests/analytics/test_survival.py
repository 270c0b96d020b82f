"""Survival estimates: hand-computed cases, edges, and agreement with lifelines."""

from __future__ import annotations

import math
import warnings

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
from lifelines import AalenJohansenFitter, KaplanMeierFitter
from lifelines.exceptions import ApproximationWarning
from lifelines.utils import median_survival_times, qth_survival_times

from pipeline.analytics.competing import cumulative_incidence, proportion_ci
from pipeline.analytics.remaining import remaining_time
from pipeline.analytics.survival import (
    kaplan_meier,
    kaplan_meier_by_group,
    summarize,
    survival_quantile,
)


def assert_tight(actual: npt.ArrayLike, desired: npt.ArrayLike) -> None:
    """Assert equality up to float rounding (rtol 1e-10, atol 1e-12)."""
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float), np.asarray(desired, dtype=float), rtol=1e-10, atol=1e-12
    )


def _none_if_inf(value: float) -> float | None:
    """Map lifelines' 'never reached' (inf) onto ours (None)."""
    return None if math.isinf(value) else float(value)


def _administrative_sample(
    seed: int, n: int, *, whole_days: bool, window: float = 500
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Return log-normal waits censored by a fixed 'today' over `window` days of filings."""
    rng = np.random.default_rng(seed)
    wait = rng.lognormal(math.log(200), 0.5, n)
    followed = rng.uniform(0, window, n)
    if whole_days:
        wait, followed = np.ceil(wait), np.floor(followed)
    observed = wait <= followed
    return np.where(observed, wait, followed), observed


# --- Kaplan–Meier by hand -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("durations", "observed", "timeline", "at_risk", "events", "censored", "survival"),
    [
        pytest.param(
            [1, 2, 3, 4], [1, 1, 1, 1],
            [0, 1, 2, 3, 4], [4, 4, 3, 2, 1], [0, 1, 1, 1, 1], [0, 0, 0, 0, 0],
            [1, 3 / 4, 1 / 2, 1 / 4, 0],
            id="all-decided",
        ),
        pytest.param(
            [3, 5, 5, 8, 10, 12], [1, 1, 0, 1, 0, 1],
            [0, 3, 5, 8, 10, 12], [6, 6, 5, 3, 2, 1], [0, 1, 1, 1, 0, 1], [0, 0, 1, 0, 1, 0],
            [1, 5 / 6, 2 / 3, 4 / 9, 4 / 9, 0],
            id="pending-cases",
        ),
        pytest.param(
            # The case still pending on day 2 is in the risk set of the two decided that day.
            [2, 2, 2, 4], [1, 0, 1, 1],
            [0, 2, 4], [4, 4, 1], [0, 2, 1], [0, 1, 0],
            [1, 1 / 2, 0],
            id="decided-before-censored-on-a-tie",
        ),
        pytest.param(
            [0, 0, 3], [True, False, True],
            [0, 3], [3, 1], [1, 1], [1, 0],
            [2 / 3, 0],
            id="decided-on-receipt-day",
        ),
    ],
)
def test_kaplan_meier_matches_hand_computation(
    durations: list[float],
    observed: list[bool],
    timeline: list[float],
    at_risk: list[int],
    events: list[int],
    censored: list[int],
    survival: list[float],
) -> None:
    km = kaplan_meier(durations, observed)
    np.testing.assert_array_equal(km.timeline, timeline)
    np.testing.assert_array_equal(km.at_risk, at_risk)
    np.testing.assert_array_equal(km.events, events)
    np.testing.assert_array_equal(km.censored, censored)
    assert_tight(km.survival, survival)
    assert np.all(km.ci_low <= km.survival + 1e-15)
    assert np.all(km.survival <= km.ci_high + 1e-15)


def test_greenwood_variance_by_hand() -> None:
    km = kaplan_meier([3, 5, 5, 8, 10, 12], [1, 1, 0, 1, 0, 1])
    # Var S(5) = S(5)² · (1/(6·5) + 1/(5·4)) = (4/9) · (1/12)
    assert km.greenwood_var[2] == pytest.approx(1 / 27, rel=1e-12)
    # log(-log) band at day 3, S = 5/6, Greenwood sum 1/30, z = 1.959964
    log_s = math.log(5 / 6)
    spread = 1.959963984540054 * math.sqrt(1 / 30) / log_s
    assert km.ci_low[1] == pytest.approx(math.exp(-math.exp(math.log(-log_s) - spread)), rel=1e-9)
    assert km.ci_high[1] == pytest.approx(math.exp(-math.exp(math.log(-log_s) + spread)), rel=1e-9)


@pytest.mark.parametrize("n", [4, 6, 8, 14, 20])
def test_median_where_exactly_half_are_decided_is_the_first_such_day(n: int) -> None:
    # For n = 6, 8, 14, 20 lifelines computes S = 0.5000000000000001 on that day and answers
    # one day later; half of the cases are decided on day n/2, so the median is n/2.
    durations = np.arange(1, n + 1)
    assert survival_quantile(kaplan_meier(durations, np.ones(n, bool)), 0.5).value == n / 2


def test_quantile_of_zero_days_is_not_confused_with_not_reached() -> None:
    decided_on_receipt = survival_quantile(kaplan_meier([0, 0, 0, 5], [1, 1, 1, 1]), 0.5)
    all_pending = survival_quantile(kaplan_meier([10, 20, 30], [0, 0, 0]), 0.5)
    assert decided_on_receipt.value == 0.0
    assert decided_on_receipt.reached
    assert all_pending.value is None
    assert not all_pending.reached


def test_empty_input_gives_a_flat_curve_and_no_quantiles() -> None:
    km = kaplan_meier([], [])
    np.testing.assert_array_equal(km.timeline, [0.0])
    np.testing.assert_array_equal(km.survival, [1.0])
    np.testing.assert_array_equal(km.at_risk, [0])
    estimate = survival_quantile(km, 0.5)
    assert (estimate.value, estimate.ci_low, estimate.ci_high) == (None, None, None)


def test_all_pending_never_reaches_any_quantile() -> None:
    km = kaplan_meier([10, 20, 30], [False, False, False])
    np.testing.assert_array_equal(km.survival, [1.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(km.ci_low, [1.0, 1.0, 1.0, 1.0])
    for q in (0.5, 0.8, 0.9):
        estimate = survival_quantile(km, q)
        assert (estimate.value, estimate.ci_low, estimate.ci_high) == (None, None, None)


def test_all_decided_reaches_zero_with_a_closed_band() -> None:
    km = kaplan_meier([5, 7, 7, 9], [True] * 4)
    assert km.survival[-1] == 0.0
    assert (km.ci_low[-1], km.ci_high[-1]) == (0.0, 0.0)
    assert survival_quantile(km, 0.9).value == 9.0


def test_result_arrays_are_read_only() -> None:
    km = kaplan_meier([1, 2], [1, 0])
    with pytest.raises(ValueError):
        km.survival[0] = 0.5


@pytest.mark.parametrize(
    ("durations", "observed", "message"),
    [
        ([1, -2], [1, 1], ">= 0"),
        ([1, float("nan")], [1, 1], "finite"),
        ([1, 2], [1], "observed has 1"),
        ([1, 2], [1, 2], "boolean"),
    ],
)
def test_kaplan_meier_refuses_bad_input(
    durations: list[float], observed: list[int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        kaplan_meier(durations, observed)


@pytest.mark.parametrize("q", [0.0, 1.0, -0.1, 1.5])
def test_survival_quantile_refuses_q_outside_zero_one(q: float) -> None:
    with pytest.raises(ValueError, match="q must be"):
        survival_quantile(kaplan_meier([1, 2], [1, 1]), q)


# --- Kaplan–Meier against lifelines -------------------------------------------------------

LIFELINES_CASES = [
    pytest.param(1, 300, True, 500, id="whole-days-with-ties"),
    pytest.param(2, 300, False, 500, id="continuous"),
    pytest.param(3, 40, True, 500, id="small-group"),
    pytest.param(4, 2000, True, 500, id="large"),
    pytest.param(5, 60, False, 300, id="short-follow-up"),
]
CASE_ARGS = ("seed", "n", "whole_days", "window")


@pytest.mark.parametrize(CASE_ARGS, LIFELINES_CASES)
def test_curve_and_bands_match_lifelines(
    seed: int, n: int, whole_days: bool, window: float
) -> None:
    durations, observed = _administrative_sample(seed, n, whole_days=whole_days, window=window)
    km = kaplan_meier(durations, observed)
    kmf = KaplanMeierFitter().fit(durations, observed)
    assert_tight(km.timeline, kmf.timeline)
    assert_tight(km.survival, kmf.survival_function_.to_numpy()[:, 0])
    np.testing.assert_array_equal(km.at_risk, kmf.event_table["at_risk"].to_numpy())
    np.testing.assert_array_equal(km.events, kmf.event_table["observed"].to_numpy())
    np.testing.assert_array_equal(km.censored, kmf.event_table["censored"].to_numpy())
    bands = kmf.confidence_interval_.to_numpy()
    assert_tight(km.ci_low, bands[:, 0])
    assert_tight(km.ci_high, bands[:, 1])


@pytest.mark.parametrize(CASE_ARGS, LIFELINES_CASES)
def test_quantiles_and_their_intervals_match_lifelines(
    seed: int, n: int, whole_days: bool, window: float
) -> None:
    durations, observed = _administrative_sample(seed, n, whole_days=whole_days, window=window)
    km = kaplan_meier(durations, observed)
    kmf = KaplanMeierFitter().fit(durations, observed)

    median = survival_quantile(km, 0.5)
    assert median.value == _none_if_inf(kmf.median_survival_time_)
    median_ci = median_survival_times(kmf.confidence_interval_).iloc[0]
    assert (median.ci_low, median.ci_high) == tuple(_none_if_inf(v) for v in median_ci)

    for q in (0.5, 0.8, 0.9):
        estimate = survival_quantile(km, q)
        # lifelines' percentile(p) is the time where S falls to p, i.e. our q = 1 - p.
        with pytest.warns(ApproximationWarning):
            expected = kmf.percentile(1 - q)
        assert estimate.value == _none_if_inf(expected)
        band = qth_survival_times(1 - q, kmf.confidence_interval_).iloc[0]
        assert (estimate.ci_low, estimate.ci_high) == tuple(_none_if_inf(v) for v in band)


def test_lifelines_comparison_covers_not_reached_quantiles() -> None:
    durations, observed = _administrative_sample(5, 60, whole_days=False, window=300)
    km = kaplan_meier(durations, observed)
    assert survival_quantile(km, 0.5).ci_high is None
    assert survival_quantile(km, 0.9).value is None


@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.2])
def test_other_confidence_levels_match_lifelines(alpha: float) -> None:
    durations, observed = _administrative_sample(7, 200, whole_days=True)
    km = kaplan_meier(durations, observed, alpha=alpha)
    kmf = KaplanMeierFitter(alpha=alpha).fit(durations, observed)
    bands = kmf.confidence_interval_.to_numpy()
    assert_tight(km.ci_low, bands[:, 0])
    assert_tight(km.ci_high, bands[:, 1])


# --- Aalen–Johansen ------------------------------------------------------------------------


def test_cumulative_incidence_by_hand() -> None:
    # 1 = approved, 2 = denied, 0 = pending. Day 1: 1 of 5 approved, F = 1/5, S = 4/5;
    # day 2 denial: S = 3/5; day 4: S(4-)·1/2 = 3/10 more; day 5: S(5-)·1/1 = 3/10 more.
    cif = cumulative_incidence([1, 2, 3, 4, 5], [1, 2, 0, 1, 1], event_of_interest=1)
    np.testing.assert_array_equal(cif.timeline, [0, 1, 2, 3, 4, 5])
    assert_tight(cif.cif, [0, 0.2, 0.2, 0.2, 0.5, 0.8])
    np.testing.assert_array_equal(cif.events, [0, 1, 0, 0, 1, 1])
    np.testing.assert_array_equal(cif.competing_events, [0, 0, 1, 0, 0, 0])
    assert (cif.ci_low[0], cif.ci_high[0]) == (0.0, 0.0)


def test_outcome_incidences_and_pending_share_add_up_to_one() -> None:
    rng = np.random.default_rng(11)
    durations = np.ceil(rng.lognormal(5, 0.5, 400))
    outcome = rng.choice([0, 1, 2, 3], size=400, p=[0.4, 0.45, 0.1, 0.05])
    km = kaplan_meier(durations, outcome != 0)
    total = sum(cumulative_incidence(durations, outcome, k).cif for k in (1, 2, 3))
    assert_tight(total + km.survival, 1.0)


def _competing_sample(seed: int, n: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Return tie-free waits with outcomes 0 pending, 1 approved, 2 denied, 3 withdrawn."""
    rng = np.random.default_rng(seed)
    durations = rng.lognormal(math.log(200), 0.6, n)
    outcome = rng.choice([0, 1, 2, 3], size=n, p=[0.45, 0.4, 0.1, 0.05])
    return durations, outcome


@pytest.mark.parametrize(("seed", "n", "event"), [(21, 300, 1), (22, 300, 2), (23, 60, 3)])
def test_cumulative_incidence_matches_lifelines(seed: int, n: int, event: int) -> None:
    durations, outcome = _competing_sample(seed, n)
    ours = cumulative_incidence(durations, outcome, event_of_interest=event)
    ajf = AalenJohansenFitter().fit(durations, outcome, event_of_interest=event)
    assert_tight(ours.timeline, ajf.cumulative_density_.index.to_numpy())
    assert_tight(ours.cif, ajf.cumulative_density_.to_numpy()[:, 0])
    variance = ajf.variance_.to_numpy()
    # lifelines gets inf·0 = NaN where the last case left is decided (n = d); we take the limit.
    finite = np.isfinite(variance)
    assert np.all(ours.at_risk[~finite] == ours.events[~finite] + ours.competing_events[~finite])
    assert np.all(np.isfinite(ours.variance))
    np.testing.assert_allclose(ours.variance[finite], variance[finite], rtol=1e-8, atol=1e-14)
    # lifelines labels the columns (upper, lower) but fills the first with the lower end.
    band = ajf.confidence_interval_.to_numpy()
    started = (ours.cif > 0) & finite
    assert started.sum() > 10
    np.testing.assert_allclose(ours.ci_low[started], band[started, 0], rtol=1e-8)
    np.testing.assert_allclose(ours.ci_high[started], band[started, 1], rtol=1e-8)


def test_cumulative_incidence_with_ties_matches_jittered_lifelines_between_days() -> None:
    """Tied outcomes need no jitter here; lifelines jitters them by ±1e-4 day.

    Each decision in a tied block adds S(t-)/n whatever its order, so after the block both give
    the same incidence. Pending cases sit on half days, so jitter cannot reorder them.
    """
    rng = np.random.default_rng(31)
    n = 300
    outcome = rng.choice([0, 1, 2], size=n, p=[0.4, 0.45, 0.15])
    days = np.ceil(rng.lognormal(math.log(200), 0.5, n))
    durations = np.where(outcome == 0, days + 0.5, days)
    ours = cumulative_incidence(durations, outcome, event_of_interest=1)
    with pytest.warns(Warning, match="Tied event times"):
        ajf = AalenJohansenFitter(seed=5).fit(durations, outcome, event_of_interest=1)
    theirs = ajf.cumulative_density_.iloc[:, 0]
    probe = ours.timeline + 0.25
    at = np.searchsorted(theirs.index.to_numpy(), probe, side="right") - 1
    assert_tight(ours.cif, theirs.to_numpy()[at])


def test_cumulative_incidence_refuses_pending_as_outcome() -> None:
    with pytest.raises(ValueError, match="positive"):
        cumulative_incidence([1, 2], [1, 0], event_of_interest=0)


# --- Wilson interval -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "expected"),
    [
        # p = 0.8, z² = 3.8415: centre = (0.8 + 0.19207)/1.38415, half-width 0.22658
        (8, 10, (0.8, 0.49016, 0.94332)),
        # No successes: low is exactly 0, high is z²/(n + z²) = 3.8415/13.8415
        (0, 10, (0.0, 0.0, 0.27753)),
        (10, 10, (1.0, 0.72247, 1.0)),
        (1, 2, (0.5, 0.09453, 0.90547)),
    ],
)
def test_wilson_interval_by_hand(
    successes: int, n: int, expected: tuple[float, float, float]
) -> None:
    assert proportion_ci(successes, n) == pytest.approx(expected, abs=5e-5)


def test_wilson_interval_is_symmetric_and_narrows_with_n() -> None:
    _, low, high = proportion_ci(3, 40)
    _, mirrored_low, mirrored_high = proportion_ci(37, 40)
    assert (low, high) == pytest.approx((1 - mirrored_high, 1 - mirrored_low), abs=1e-12)
    _, wide_low, wide_high = proportion_ci(30, 100)
    _, narrow_low, narrow_high = proportion_ci(3000, 10000)
    assert narrow_high - narrow_low < wide_high - wide_low


@pytest.mark.parametrize(("successes", "n"), [(0, 0), (5, 4), (-1, 4)])
def test_wilson_interval_refuses_impossible_counts(successes: int, n: int) -> None:
    with pytest.raises(ValueError):
        proportion_ci(successes, n)


# --- remaining time ------------------------------------------------------------------------


def test_remaining_time_by_hand() -> None:
    km = kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1])
    # Pending at day 1.5: S = 3/4, three cases left, decided on days 2, 3 and 4.
    result = remaining_time(km, 1.5, horizons=(1, 2, 5), quantiles=(0.25, 0.5, 0.75))
    assert result.n_at_risk == 3
    assert result.still_pending_share == pytest.approx(0.75)
    probabilities = [chance.probability for chance in result.chances]
    assert probabilities == pytest.approx([1 - 0.5 / 0.75, 1 - 0.25 / 0.75, 1.0])
    assert [estimate.value for estimate in result.remaining_days] == pytest.approx(
        [0.5, 1.5, 2.5]
    )


def test_remaining_time_past_the_longest_follow_up_is_unknown() -> None:
    km = kaplan_meier([10, 20, 30, 40], [1, 1, 0, 0])
    result = remaining_time(km, 15, horizons=(10, 20, 40), quantiles=(0.5, 0.9))
    assert result.n_at_risk == 3
    assert [chance.probability for chance in result.chances] == pytest.approx(
        [1 / 3, 1 / 3, None]
    )
    assert result.chances[2].ci_low is None
    assert [estimate.value for estimate in result.remaining_days] == [None, None]


def test_remaining_time_after_everyone_left_rests_on_no_cases() -> None:
    result = remaining_time(kaplan_meier([10, 20], [1, 0]), 25)
    assert result.n_at_risk == 0
    assert all(chance.probability is None for chance in result.chances)
    assert all(not estimate.reached for estimate in result.remaining_days)


@pytest.mark.parametrize("waited", [0, 150, 200.5, 320])
def test_remaining_time_matches_lifelines_on_cases_still_waiting(waited: float) -> None:
    durations, observed = _administrative_sample(41, 600, whole_days=True)
    horizons = (30, 60, 90)
    result = remaining_time(kaplan_meier(durations, observed), waited, horizons=horizons)
    still = durations > waited
    assert result.n_at_risk == still.sum()
    kmf = KaplanMeierFitter().fit(durations[still] - waited, observed[still])
    survival = kmf.survival_function_.iloc[:, 0]
    bands = kmf.confidence_interval_
    for chance, horizon in zip(result.chances, horizons, strict=True):
        i = np.searchsorted(survival.index.to_numpy(), horizon, side="right") - 1
        assert chance.probability == pytest.approx(1 - survival.iloc[i], abs=1e-12)
        assert chance.ci_low == pytest.approx(1 - bands.iloc[i, 1], abs=1e-12)
        assert chance.ci_high == pytest.approx(1 - bands.iloc[i, 0], abs=1e-12)
    median = result.remaining_days[1]
    assert median.value == _none_if_inf(kmf.median_survival_time_)


# --- summary -------------------------------------------------------------------------------


def test_summary_reports_counts_quantiles_and_the_naive_median() -> None:
    summary = summarize([2, 4, 4, 5, 6, 6], [1, 1, 0, 1, 1, 0])
    assert summary["n"] == 6
    assert summary["n_decided"] == 4
    assert summary["n_pending"] == 2
    # S: 5/6 at day 2, 2/3 at day 4, then 3 at risk on day 5 → 4/9 ≤ 1/2.
    assert summary["median_days"] == 5.0
    assert summary["naive_median_days"] == 4.5
    assert summary["p90_days"] is None
    assert set(summary) == {
        "n", "n_decided", "n_pending", "naive_median_days",
        *(f"{name}_{part}" for name in ("median", "p80", "p90")
          for part in ("days", "ci_low", "ci_high")),
    }


def test_summary_of_nothing_is_empty_not_an_error() -> None:
    summary = summarize([], [])
    assert summary["n"] == 0
    assert summary["median_days"] is None
    assert summary["naive_median_days"] is None


# --- curves by group -----------------------------------------------------------------------


def _grouped_frame(seed: int, n: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    durations, observed = _administrative_sample(seed, n, whole_days=True)
    return pl.DataFrame(
        {
            "form": rng.choice(["I-130", "I-485", "I-765"], size=n),
            "office": [("NBC", "TSC", None)[i] for i in rng.integers(0, 3, n)],
            "days": durations.astype(np.int64),
            "decided": observed,
        }
    )


@pytest.mark.parametrize("group_cols", [["form"], ["form", "office"], []])
def test_curves_by_group_equal_one_curve_per_group(group_cols: list[str]) -> None:
    frame = _grouped_frame(51, 3000)
    curves = kaplan_meier_by_group(frame, group_cols, "days", "decided")
    assert curves.columns == [
        *group_cols, "time", "at_risk", "events", "censored", "survival", "ci_low", "ci_high"
    ]
    parts = frame.partition_by(group_cols, as_dict=True) if group_cols else {(): frame}
    assert curves.filter(pl.col("time") == 0).height == len(parts)
    for key, part in parts.items():
        curve = curves
        for column, value in zip(group_cols, key, strict=True):
            curve = curve.filter(
                pl.col(column).is_null() if value is None else pl.col(column) == value
            )
        km = kaplan_meier(part["days"].to_numpy(), part["decided"].to_numpy())
        np.testing.assert_array_equal(curve["time"].to_numpy(), km.timeline)
        np.testing.assert_array_equal(curve["at_risk"].to_numpy(), km.at_risk)
        np.testing.assert_array_equal(curve["events"].to_numpy(), km.events)
        np.testing.assert_array_equal(curve["censored"].to_numpy(), km.censored)
        for column in ("survival", "ci_low", "ci_high"):
            assert_tight(curve[column].to_numpy(), getattr(km, column))


@pytest.mark.parametrize(
    ("days", "decided", "message"),
    [
        ([3, None], [True, False], "days"),
        ([3, -1], [True, False], "days"),
        ([3, 4], [True, None], "decided"),
        ([3, 4], [1, 2], "decided"),
    ],
)
def test_curves_by_group_refuse_bad_cases(
    days: list[int | None], decided: list[object], message: str
) -> None:
    frame = pl.DataFrame({"form": ["I-130", "I-130"], "days": days, "decided": decided})
    with pytest.raises(ValueError, match=message):
        kaplan_meier_by_group(frame, ["form"], "days", "decided")


def test_no_numpy_warnings_on_edge_curves() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kaplan_meier([0, 0], [1, 1])
        kaplan_meier([5], [0])
        cumulative_incidence([1, 1], [1, 1], 1)
        cumulative_incidence([], [], 1)
