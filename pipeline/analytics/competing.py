"""Outcomes that compete (approval, denial, withdrawal) and shares with honest intervals.

A share of denials among finished cases is biased while many are pending; the Aalen–Johansen
cumulative incidence counts pending cases as censored and the other outcomes as competing.
Proportions of small groups get Wilson intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.analytics.survival import (
    FloatArray,
    IntArray,
    _count_table,
    _frozen,
    _validate_durations,
    _validate_entry,
    _z,
)


@dataclass(frozen=True, eq=False)
class CumulativeIncidence:
    """Aalen–Johansen cumulative incidence of one outcome when others compete with it."""

    timeline: FloatArray
    cif: FloatArray
    variance: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    at_risk: IntArray
    events: IntArray
    competing_events: IntArray
    censored: IntArray
    event_of_interest: int
    alpha: float


def _validate_event_types(event_type: npt.ArrayLike, n: int) -> IntArray:
    """Return outcome codes as ints (0 = still pending), refusing negatives and fractions."""
    raw = np.asarray(event_type).reshape(-1)
    if raw.shape[0] != n:
        raise ValueError(f"event_type has {raw.shape[0]} values, durations has {n}")
    codes = raw.astype(np.int64)
    if np.any(codes != raw) or np.any(codes < 0):
        raise ValueError("event_type must be integer codes >= 0 (0 = still pending)")
    return codes


def cumulative_incidence(
    durations: npt.ArrayLike,
    event_type: npt.ArrayLike,
    event_of_interest: int,
    alpha: float = 0.05,
    entry: npt.ArrayLike | None = None,
) -> CumulativeIncidence:
    """Estimate P(outcome k by day t) when approval, denial and withdrawal compete.

    Aalen–Johansen: F_k(t) = Σ_{t_i <= t} S(t_i-) d_k(t_i) / n(t_i), with S the Kaplan–Meier
    curve of "any outcome". 1 - KM with the other outcomes treated as censored would overstate
    F_k, as if a denied case could still be approved later. Ties between outcomes need no
    jitter: each decision in a tied block adds S(t-)/n whatever order it is put in.

    The variance is the Greenwood-type delta-method one in Collett (3rd ed., p. 411), which
    lifelines' AalenJohansenFitter reports, and the band is log(-log F) like lifelines'.
    Where F is 0 the band is [0, 0] (lifelines gives NaN there). `entry` is each case's day of
    coming under observation (delayed entry): the risk sets n(t) count a case only from then on.
    """
    if event_of_interest <= 0:
        raise ValueError("event_of_interest must be a positive outcome code (0 is pending)")
    values = _validate_durations(durations)
    codes = _validate_event_types(event_type, values.size)
    starts = _validate_entry(entry, values)
    timeline, at_risk, events_any, censored, _ = _count_table(values, codes != 0, starts)
    _, _, events_k, _, _ = _count_table(values, codes == event_of_interest, starts)
    z = _z(alpha)

    n = at_risk.astype(np.float64)
    d = events_any.astype(np.float64)
    dk = events_k.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.cumprod(np.where(n > 0, 1.0 - d / n, 1.0))
        lag_s = np.concatenate(([1.0], survival[:-1]))
        cif = np.cumsum(np.where(n > 0, lag_s * dk / n, 0.0))
        a = np.where(n > d, d / (n * (n - d)), 0.0)
        second = np.where(n > 0, lag_s**2 * dk * (n - dk) / n**3, 0.0)
        c = np.where(n > 0, lag_s * dk / n**2, 0.0)
    # Var F(t) = Σ a_i (F(t) - F_i)² + Σ second_i - 2 Σ c_i (F(t) - F_i), sums over t_i <= t,
    # expanded into running sums so it is one pass (lifelines' accumulators do the same).
    cum_a, cum_af, cum_aff = np.cumsum(a), np.cumsum(a * cif), np.cumsum(a * cif**2)
    cum_c, cum_cf = np.cumsum(c), np.cumsum(c * cif)
    variance = (
        cif**2 * cum_a - 2.0 * cif * cum_af + cum_aff
        + np.cumsum(second)
        - 2.0 * (cif * cum_c - cum_cf)
    )
    variance = np.maximum(variance, 0.0)

    ci_low = np.where(cif >= 1.0, 1.0, 0.0)
    ci_high = ci_low.copy()
    inside = (cif > 0.0) & (cif < 1.0)
    log_f = np.log(cif[inside])
    centre = np.log(-log_f)
    se = np.sqrt(variance[inside]) / (cif[inside] * np.abs(log_f))
    # Near F = 1 (log F ~ 0) the spread overflows exp: the band's end is then 0, its limit.
    with np.errstate(over="ignore"):
        ci_low[inside] = np.exp(-np.exp(centre + z * se))
        ci_high[inside] = np.exp(-np.exp(centre - z * se))
    return CumulativeIncidence(
        timeline=_frozen(timeline),
        cif=_frozen(cif),
        variance=_frozen(variance),
        ci_low=_frozen(ci_low),
        ci_high=_frozen(ci_high),
        at_risk=_frozen(at_risk),
        events=_frozen(events_k),
        competing_events=_frozen(events_any - events_k),
        censored=_frozen(censored),
        event_of_interest=int(event_of_interest),
        alpha=alpha,
    )


def proportion_ci(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float, float]:
    """Return (share, low, high) with the Wilson score interval.

    Wilson rather than the textbook p ± z√(p(1-p)/n): that one collapses to [0, 0] for 0 of 12
    and spills outside [0, 1] near the edges, and its coverage is poor for the small groups and
    rare outcomes (denials, transfers) we report. Wilson inverts the score test, so it stays in
    [0, 1] and keeps close to nominal coverage even for n of ten or so.
    """
    if n <= 0:
        raise ValueError("n must be positive: a share of no cases has no value")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}, got {successes}")
    z = _z(alpha)
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * np.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    low = 0.0 if successes == 0 else max(0.0, float(centre - half))
    high = 1.0 if successes == n else min(1.0, float(centre + half))
    return p, low, high
