"""Estimate how long cases take when many are still pending.

Trackers that report the median of finished cases only look at the fast cases: a case filed
recently can only be in the "finished" set if it was quick. Here a pending case counts as
right-censored at the day it was last seen, so it says "took at least this long", and the
Kaplan–Meier curve uses that. Conventions (tie order, confidence bands, quantile crossings)
follow lifelines so figures can be checked against it; the tests do so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import polars as pl

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_Array = TypeVar("_Array", bound=np.ndarray[Any, Any])

# Float slack when a curve is compared with a level: S(t) = 0.5 exactly in exact arithmetic
# (e.g. 2 of 4 decided) must count as "reached", whatever the last bit of the product says.
_LEVEL_TOLERANCE = 1e-10


@dataclass(frozen=True, eq=False)
class KaplanMeier:
    """Kaplan–Meier curve S(t) = P(still pending after t days), with its bands.

    Row i is time timeline[i]: 0 first, then each distinct duration. at_risk counts the cases
    with duration >= t; on a tie, decisions come before pendings, so a case last seen on the day
    others were decided is in their risk set (lifelines' convention). ci_low/ci_high are the
    pointwise log(-log) bands at level 1 - alpha.
    """

    timeline: FloatArray
    survival: FloatArray
    at_risk: IntArray
    events: IntArray
    censored: IntArray
    greenwood_var: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    alpha: float


@dataclass(frozen=True, eq=False)
class QuantileEstimate:
    """A time by which a share of cases is decided; None means not reached yet."""

    value: float | None
    ci_low: float | None
    ci_high: float | None

    @property
    def reached(self) -> bool:
        """Say whether the curve has gone low enough to give a value."""
        return self.value is not None


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


@dataclass(frozen=True, eq=False)
class DecisionChance:
    """P(decided within `horizon_days` more days | still pending now); None if not estimable."""

    horizon_days: float
    probability: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True, eq=False)
class RemainingTime:
    """What the curve says about a case that has already waited `waited_days`."""

    waited_days: float
    n_at_risk: int
    still_pending_share: float
    chances: tuple[DecisionChance, ...]
    quantiles: tuple[float, ...]
    remaining_days: tuple[QuantileEstimate, ...]


def _z(alpha: float) -> float:
    """Return the two-sided normal critical value for level alpha."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


def _frozen(array: _Array) -> _Array:
    """Mark an array read-only so a frozen result stays frozen."""
    array.setflags(write=False)
    return array


def _validate_durations(durations: npt.ArrayLike) -> FloatArray:
    """Return durations as a 1-d float array, refusing NaN, infinities and negatives."""
    values = np.asarray(durations, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(values)):
        raise ValueError("durations must be finite numbers of days")
    if np.any(values < 0):
        raise ValueError("durations must be >= 0 days")
    return values


def _validate_observed(observed: npt.ArrayLike, n: int) -> npt.NDArray[np.bool_]:
    """Return the decided/pending flags as bools, refusing anything but 0/1."""
    raw = np.asarray(observed).reshape(-1)
    if raw.shape[0] != n:
        raise ValueError(f"observed has {raw.shape[0]} values, durations has {n}")
    if raw.dtype != np.bool_ and not np.all(np.isin(raw, (0, 1))):
        raise ValueError("observed must be boolean (True = decided, False = still pending)")
    return raw.astype(np.bool_)


def _loglog_bands(survival: FloatArray, greenwood_sum: FloatArray, z: float) -> tuple[
    FloatArray, FloatArray
]:
    """Return the exponential-Greenwood (log(-log S)) pointwise band, as lifelines computes it.

    The band is S ** exp(±z·σ/log S) with σ² the Greenwood sum Σ d/(n(n-d)); it always stays
    inside [0, 1], unlike the plain Greenwood band S ± z·√Var. Where S is 1 the band is
    [1, 1], where S is 0 it is [0, 0].
    """
    low = np.where(survival <= 0.0, 0.0, 1.0)
    high = low.copy()
    inside = (survival > 0.0) & (survival < 1.0)
    log_s = np.log(survival[inside])
    spread = z * np.sqrt(greenwood_sum[inside]) / log_s
    low[inside] = np.exp(-np.exp(np.log(-log_s) - spread))
    high[inside] = np.exp(-np.exp(np.log(-log_s) + spread))
    return low, high


def _km_from_counts(
    timeline: FloatArray,
    at_risk: IntArray,
    events: IntArray,
    censored: IntArray,
    alpha: float,
) -> KaplanMeier:
    """Build the curve, Greenwood variance and bands from a table of counts per time."""
    z = _z(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(at_risk > 0, 1.0 - events / np.maximum(at_risk, 1), 1.0)
        survival: FloatArray = np.cumprod(step, dtype=np.float64)
        # lifelines counts d/(n(n-d)) as 0 when everyone left is decided (n == d): S is 0 then.
        free = at_risk - events
        term = np.where(free > 0, events / (at_risk * np.maximum(free, 1)).astype(float), 0.0)
    greenwood_sum: FloatArray = np.cumsum(term, dtype=np.float64)
    ci_low, ci_high = _loglog_bands(survival, greenwood_sum, z)
    return KaplanMeier(
        timeline=_frozen(timeline),
        survival=_frozen(survival),
        at_risk=_frozen(at_risk),
        events=_frozen(events),
        censored=_frozen(censored),
        greenwood_var=_frozen(survival**2 * greenwood_sum),
        ci_low=_frozen(ci_low),
        ci_high=_frozen(ci_high),
        alpha=alpha,
    )


def _count_table(
    durations: FloatArray, flags: npt.NDArray[np.bool_]
) -> tuple[FloatArray, IntArray, IntArray, IntArray]:
    """Return distinct times (with 0 first), number at risk, decided and censored at each."""
    times, inverse = np.unique(durations, return_inverse=True)
    removed = np.bincount(inverse, minlength=times.size).astype(np.int64)
    events = np.bincount(inverse, weights=flags, minlength=times.size).astype(np.int64)
    if times.size == 0 or times[0] > 0.0:
        times = np.concatenate(([0.0], times))
        removed = np.concatenate(([0], removed)).astype(np.int64)
        events = np.concatenate(([0], events)).astype(np.int64)
    # At risk at t: everyone whose duration is >= t; decisions at t come before censorings at t.
    at_risk = durations.size - np.concatenate(([0], np.cumsum(removed)[:-1])).astype(np.int64)
    return times.astype(np.float64), at_risk, events, removed - events


def kaplan_meier(
    durations: npt.ArrayLike, observed: npt.ArrayLike, alpha: float = 0.05
) -> KaplanMeier:
    """Estimate S(t) from days waited and whether each case was decided (False = pending)."""
    values = _validate_durations(durations)
    flags = _validate_observed(observed, values.size)
    timeline, at_risk, events, censored = _count_table(values, flags)
    return _km_from_counts(timeline, at_risk, events, censored, alpha)


def _first_time_at_or_below(timeline: FloatArray, curve: FloatArray, level: float) -> float | None:
    """Return the first time the curve is at or below level, or None if it never is.

    lifelines binary-searches the curve, which assumes it never rises; the bands can rise a
    little after a big jump in the Greenwood sum, and the first crossing is then the answer.
    """
    hits = np.flatnonzero(curve <= level + _LEVEL_TOLERANCE)
    return float(timeline[hits[0]]) if hits.size else None


def survival_quantile(km: KaplanMeier, q: float) -> QuantileEstimate:
    """Return the time by which a share q of cases is decided, with its confidence interval.

    The value is the smallest t with S(t) <= 1 - q. The interval inverts the pointwise bands
    (Brookmeyer–Crowley, as lifelines' `qth_survival_times(confidence_interval_)` does): its
    ends are where the lower and the upper band first reach 1 - q. A missing upper end means
    the data cannot yet rule out an arbitrarily long wait.
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q}")
    level = 1.0 - q
    return QuantileEstimate(
        value=_first_time_at_or_below(km.timeline, km.survival, level),
        ci_low=_first_time_at_or_below(km.timeline, km.ci_low, level),
        ci_high=_first_time_at_or_below(km.timeline, km.ci_high, level),
    )


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
) -> CumulativeIncidence:
    """Estimate P(outcome k by day t) when approval, denial and withdrawal compete.

    Aalen–Johansen: F_k(t) = Σ_{t_i <= t} S(t_i-) d_k(t_i) / n(t_i), with S the Kaplan–Meier
    curve of "any outcome". 1 - KM with the other outcomes treated as censored would overstate
    F_k, as if a denied case could still be approved later. Ties between outcomes need no
    jitter: each decision in a tied block adds S(t-)/n whatever order it is put in.

    The variance is the Greenwood-type delta-method one in Collett (3rd ed., p. 411), which
    lifelines' AalenJohansenFitter reports, and the band is log(-log F) like lifelines'.
    Where F is 0 the band is [0, 0] (lifelines gives NaN there).
    """
    if event_of_interest <= 0:
        raise ValueError("event_of_interest must be a positive outcome code (0 is pending)")
    values = _validate_durations(durations)
    codes = _validate_event_types(event_type, values.size)
    timeline, at_risk, events_any, censored = _count_table(values, codes != 0)
    _, _, events_k, _ = _count_table(values, codes == event_of_interest)
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


def _condition_on_waiting(km: KaplanMeier, waited_days: float) -> KaplanMeier:
    """Return the curve of remaining days for cases still pending after waited_days.

    It is S(w + r) / S(w): the Kaplan–Meier factors after w only, so its Greenwood sum runs over
    those steps alone (the Greenwood variance of the ratio), and it equals kaplan_meier() on the
    cases with duration > w, shifted by w.
    """
    after = km.timeline > waited_days
    n_pending = int(km.at_risk[after][0]) if after.any() else 0
    return _km_from_counts(
        np.concatenate(([0.0], km.timeline[after] - waited_days)),
        np.concatenate(([n_pending], km.at_risk[after])).astype(np.int64),
        np.concatenate(([0], km.events[after])).astype(np.int64),
        np.concatenate(([0], km.censored[after])).astype(np.int64),
        km.alpha,
    )


def _survival_at(km: KaplanMeier, t: float) -> float | None:
    """Return S(t) from the step curve, or None past the last follow-up while S > 0."""
    if t > km.timeline[-1] and km.survival[-1] > 0.0:
        return None
    return float(km.survival[np.searchsorted(km.timeline, t, side="right") - 1])


def remaining_time(
    km: KaplanMeier,
    waited_days: float,
    horizons: Sequence[float] = (30, 60, 90),
    quantiles: Sequence[float] = (0.25, 0.5, 0.75),
) -> RemainingTime:
    """Say how much longer a case pending after `waited_days` is likely to wait.

    P(decided within h | pending at w) = 1 - S(w+h)/S(w), with the log(-log) band of the
    conditional curve turned around. A horizon past the longest follow-up gets None: nobody
    was watched that long, so the curve there is unknown, not flat. `n_at_risk` is the number
    of cases still pending after w, the sample every figure here rests on.
    """
    if waited_days < 0:
        raise ValueError("waited_days must be >= 0")
    idx = int(np.searchsorted(km.timeline, waited_days, side="right") - 1)
    still_pending = float(km.survival[idx])
    cond = _condition_on_waiting(km, waited_days)
    n_at_risk = int(cond.at_risk[0])

    chances = []
    for horizon in horizons:
        if horizon < 0:
            raise ValueError("horizons must be >= 0 days")
        s = _survival_at(cond, horizon) if n_at_risk else None
        if s is None:
            chances.append(DecisionChance(float(horizon), None, None, None))
            continue
        j = int(np.searchsorted(cond.timeline, horizon, side="right") - 1)
        chances.append(
            DecisionChance(
                horizon_days=float(horizon),
                probability=1.0 - s,
                ci_low=1.0 - float(cond.ci_high[j]),
                ci_high=1.0 - float(cond.ci_low[j]),
            )
        )
    if n_at_risk:
        remaining = tuple(survival_quantile(cond, q) for q in quantiles)
    else:
        remaining = tuple(QuantileEstimate(None, None, None) for _ in quantiles)
    return RemainingTime(
        waited_days=float(waited_days),
        n_at_risk=n_at_risk,
        still_pending_share=still_pending,
        chances=tuple(chances),
        quantiles=tuple(float(q) for q in quantiles),
        remaining_days=remaining,
    )


def summarize(
    durations: npt.ArrayLike, observed: npt.ArrayLike, alpha: float = 0.05
) -> dict[str, int | float | None]:
    """Return counts, KM median/p80/p90 with intervals, and the naive finished-only median."""
    values = _validate_durations(durations)
    flags = _validate_observed(observed, values.size)
    km = kaplan_meier(values, flags, alpha)
    decided = values[flags]
    summary: dict[str, int | float | None] = {
        "n": int(values.size),
        "n_decided": int(flags.sum()),
        "n_pending": int(values.size - flags.sum()),
    }
    for name, q in (("median", 0.5), ("p80", 0.8), ("p90", 0.9)):
        estimate = survival_quantile(km, q)
        summary[f"{name}_days"] = estimate.value
        summary[f"{name}_ci_low"] = estimate.ci_low
        summary[f"{name}_ci_high"] = estimate.ci_high
    summary["naive_median_days"] = float(np.median(decided)) if decided.size else None
    return summary


def _loglog_band_exprs(z: float) -> tuple[pl.Expr, pl.Expr]:
    """Return polars expressions for the same band as `_loglog_bands`."""
    s = pl.col("survival")
    log_s = s.log()
    spread = z * pl.col("_greenwood_sum").sqrt() / log_s
    edge = pl.when(s <= 0.0).then(0.0).when(s >= 1.0).then(1.0)
    low = edge.otherwise((-((-log_s).log() - spread).exp()).exp())
    high = edge.otherwise((-((-log_s).log() + spread).exp()).exp())
    return low.alias("ci_low"), high.alias("ci_high")


def kaplan_meier_by_group(
    frame: pl.DataFrame,
    group_cols: Sequence[str],
    duration_col: str,
    observed_col: str,
    alpha: float = 0.05,
) -> pl.DataFrame:
    """Return one Kaplan–Meier curve per group as a tidy frame, in one pass over the cases.

    Columns: the group columns, time, at_risk, events, censored, survival, ci_low, ci_high;
    rows sorted by group then time, each curve starting at time 0 like `kaplan_meier`.
    """
    z = _z(alpha)
    keys = list(group_cols) or ["_all"]
    cases = frame.select(
        *[pl.col(c) for c in group_cols],
        pl.col(duration_col).cast(pl.Float64).alias("time"),
        pl.col(observed_col).alias("_observed"),
    )
    if not group_cols:
        cases = cases.with_columns(pl.lit(0).alias("_all"))
    _check_group_frame(cases, duration_col, observed_col)

    counts = cases.group_by([*keys, "time"]).agg(
        pl.len().cast(pl.Int64).alias("_removed"),
        pl.col("_observed").cast(pl.Int64).sum().alias("events"),
    )
    starts = counts.select(keys).unique().with_columns(
        pl.lit(0.0).alias("time"),
        pl.lit(0, dtype=pl.Int64).alias("_removed"),
        pl.lit(0, dtype=pl.Int64).alias("events"),
    )
    table = (
        pl.concat([counts, starts])
        .group_by([*keys, "time"])
        .agg(pl.col("_removed").sum(), pl.col("events").sum())
        .sort([*keys, "time"], nulls_last=True)
    )
    n_at_risk = (
        pl.col("_removed").sum().over(keys)
        - pl.col("_removed").cum_sum().over(keys)
        + pl.col("_removed")
    )
    table = table.with_columns(
        n_at_risk.alias("at_risk"),
        (pl.col("_removed") - pl.col("events")).alias("censored"),
    )
    free = pl.col("at_risk") - pl.col("events")
    table = table.with_columns(
        (1.0 - pl.col("events") / pl.col("at_risk")).cum_prod().over(keys).alias("survival"),
        pl.when(free > 0)
        .then(pl.col("events") / (pl.col("at_risk") * free).cast(pl.Float64))
        .otherwise(0.0)
        .cum_sum()
        .over(keys)
        .alias("_greenwood_sum"),
    )
    low, high = _loglog_band_exprs(z)
    return table.with_columns(low, high).select(
        *group_cols, "time", "at_risk", "events", "censored", "survival", "ci_low", "ci_high"
    )


def _check_group_frame(cases: pl.DataFrame, duration_col: str, observed_col: str) -> None:
    """Refuse missing, negative or infinite durations and missing decided flags."""
    bad = cases.select(
        (pl.col("time").is_null() | ~pl.col("time").is_finite() | (pl.col("time") < 0))
        .any()
        .alias("time"),
        (pl.col("_observed").is_null() | ~pl.col("_observed").cast(pl.Int64).is_in([0, 1]))
        .any()
        .alias("observed"),
    ).row(0)
    if bad[0]:
        raise ValueError(f"{duration_col} must be finite numbers of days >= 0, with no nulls")
    if bad[1]:
        raise ValueError(f"{observed_col} must be True/False for every case, with no nulls")
