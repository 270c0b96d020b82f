"""Simulations with a known processing-time distribution and heavy administrative censoring.

Cases are filed on staggered days over a window and looked at on one fixed "today": a case
filed late can only be seen finished if it was quick, which is how our data is censored and
why the median of finished cases runs short. Each scenario is simulated R times; the tests
check that the Kaplan–Meier intervals cover the true values about as often as they claim and
that the naive median does not.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
import pytest

from pipeline.analytics.remaining import remaining_time
from pipeline.analytics.survival import kaplan_meier, survival_quantile

REPETITIONS = 400
CASES_PER_REPETITION = 300
QUANTILES = (0.5, 0.8, 0.9)
WAITED, HORIZON = 150, 60  # a case pending for 150 days: decided within 60 more?

Sampler = Callable[[np.random.Generator, int], npt.NDArray[np.float64]]
Quantile = Callable[[float], float]


@dataclass(frozen=True)
class Scenario:
    """A processing-time distribution with its true quantiles and a filing window."""

    name: str
    sample: Sampler
    quantile: Quantile
    window_days: int

    def cdf_between(self, after: float, by: float) -> float:
        """Return P(T <= by | T > after) by bisection on the known quantile function."""
        return (self._cdf(by) - self._cdf(after)) / (1.0 - self._cdf(after))

    def _cdf(self, t: float) -> float:
        low, high = 1e-12, 1 - 1e-12
        for _ in range(100):
            mid = (low + high) / 2
            low, high = (mid, high) if self.quantile(mid) < t else (low, mid)
        return (low + high) / 2


LOG_MEDIAN, LOG_SIGMA = math.log(200), 0.5
WEIBULL_SHAPE = 2.0
WEIBULL_SCALE = 200 / math.log(2) ** (1 / WEIBULL_SHAPE)

SCENARIOS = [
    Scenario(
        name="log-normal",
        sample=lambda rng, n: rng.lognormal(LOG_MEDIAN, LOG_SIGMA, n),
        quantile=lambda q: math.exp(LOG_MEDIAN + LOG_SIGMA * NormalDist().inv_cdf(q)),
        window_days=450,
    ),
    Scenario(
        name="weibull",
        sample=lambda rng, n: WEIBULL_SCALE * rng.weibull(WEIBULL_SHAPE, n),
        quantile=lambda q: WEIBULL_SCALE * (-math.log(1 - q)) ** (1 / WEIBULL_SHAPE),
        window_days=430,
    ),
]


@dataclass(frozen=True)
class Outcome:
    """What R repetitions of one scenario gave."""

    pending_share: float
    km_coverage: dict[float, float]
    km_median_error: float
    naive_median_error: float
    naive_coverage: float
    remaining_coverage: float


def _naive_median_interval(decided: npt.NDArray[np.float64], z: float) -> tuple[float, float]:
    """Return the usual order-statistic interval for the median of finished cases only."""
    ordered = np.sort(decided)
    m = ordered.size
    low = max(math.floor(m / 2 - z * math.sqrt(m) / 2), 0)
    high = min(math.ceil(m / 2 + z * math.sqrt(m) / 2), m - 1)
    return float(ordered[low]), float(ordered[high])


def _covers(low: float | None, high: float | None, truth: float) -> bool:
    """Say whether [low, high] holds truth; a missing upper end is unbounded."""
    return low is not None and low <= truth <= (math.inf if high is None else high)


def simulate(scenario: Scenario, seed: int) -> Outcome:
    """Run the scenario R times with whole-day durations and one fixed 'today'."""
    rng = np.random.default_rng(seed)
    z = NormalDist().inv_cdf(0.975)
    # Durations are whole days, ceil(T); its quantiles are the ceilings of T's.
    truth = {q: math.ceil(scenario.quantile(q)) for q in QUANTILES}
    true_chance = scenario.cdf_between(WAITED, WAITED + HORIZON)
    covered = dict.fromkeys(QUANTILES, 0)
    km_errors: list[float] = []
    naive_errors: list[float] = []
    pending: list[float] = []
    naive_covered = remaining_covered = 0
    for _ in range(REPETITIONS):
        wait = scenario.sample(rng, CASES_PER_REPETITION)
        days_since_filing = rng.integers(0, scenario.window_days + 1, CASES_PER_REPETITION)
        decided = wait <= days_since_filing
        durations = np.where(decided, np.ceil(wait), days_since_filing).astype(float)
        pending.append(1 - decided.mean())

        km = kaplan_meier(durations, decided)
        for q in QUANTILES:
            estimate = survival_quantile(km, q)
            covered[q] += _covers(estimate.ci_low, estimate.ci_high, truth[q])
        median = survival_quantile(km, 0.5).value
        assert median is not None, "median should be reached with this follow-up"
        km_errors.append(median - truth[0.5])

        finished = durations[decided]
        naive_errors.append(float(np.median(finished)) - truth[0.5])
        naive_covered += _covers(*_naive_median_interval(finished, z), truth[0.5])

        chance = remaining_time(km, WAITED, horizons=(HORIZON,)).chances[0]
        remaining_covered += _covers(chance.ci_low, chance.ci_high, true_chance)
    return Outcome(
        pending_share=float(np.mean(pending)),
        km_coverage={q: c / REPETITIONS for q, c in covered.items()},
        km_median_error=float(np.mean(km_errors)),
        naive_median_error=float(np.mean(naive_errors)),
        naive_coverage=naive_covered / REPETITIONS,
        remaining_coverage=remaining_covered / REPETITIONS,
    )


@pytest.fixture(scope="module", params=SCENARIOS, ids=[s.name for s in SCENARIOS])
def outcome(request: pytest.FixtureRequest) -> Outcome:
    scenario: Scenario = request.param
    return simulate(scenario, seed=20240 + SCENARIOS.index(scenario))


def test_simulation_is_heavily_censored(outcome: Outcome) -> None:
    assert 0.4 <= outcome.pending_share <= 0.6


@pytest.mark.parametrize("q", QUANTILES)
def test_km_intervals_cover_the_true_quantile(outcome: Outcome, q: float) -> None:
    # Nominal 95%; with R = 400 the Monte Carlo standard error is about 1.1 points.
    assert outcome.km_coverage[q] >= 0.90


def test_km_median_is_close_to_unbiased(outcome: Outcome) -> None:
    assert abs(outcome.km_median_error) < 5.0


def test_naive_median_of_finished_cases_runs_short(outcome: Outcome) -> None:
    assert outcome.naive_median_error < -15.0
    assert outcome.naive_coverage < 0.5
    assert outcome.km_coverage[0.5] - outcome.naive_coverage > 0.4


def test_remaining_time_chance_interval_covers_the_truth(outcome: Outcome) -> None:
    assert outcome.remaining_coverage >= 0.90

