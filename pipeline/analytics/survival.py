"""Estimate how long cases take when many are still pending and many were found late.

Trackers that report the median of finished cases only look at the fast cases: a case filed
recently can only be in the "finished" set if it was quick. Here a pending case counts as
right-censored at the day it was last seen, so it says "took at least this long", and the
Kaplan–Meier curve uses that. People also start tracking while they wait, so a case decided
before anyone watched it is never seen: each case is at risk only from the day it came under
observation (delayed entry, or left truncation), otherwise the slow cases weigh too much.
Conventions (tie order, entry order, confidence bands, quantile crossings) follow lifelines so
figures can be checked against it; the tests do so. Competing outcomes live in competing.py,
the wait left for a case that has already waited in remaining.py.
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

    Row i is time timeline[i]: 0 first, then each distinct duration or entry day. at_risk counts
    the cases under observation at t: entered before t (or on day 0), with duration >= t. On a
    tie, decisions come before pendings (a case last seen on the day others were decided is in
    their risk set); a case first seen on day e is at risk after e (lifelines' conventions). `entered` counts the cases coming under observation at each time
    (all at 0 without delayed entry). ci_low/ci_high are the pointwise log(-log) bands at
    level 1 - alpha.
    """

    timeline: FloatArray
    survival: FloatArray
    at_risk: IntArray
    events: IntArray
    censored: IntArray
    entered: IntArray
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


def _validate_entry(entry: npt.ArrayLike | None, durations: FloatArray) -> FloatArray:
    """Return entry days (0 for None), refusing negatives and entries after the duration."""
    if entry is None:
        return np.zeros_like(durations)
    values = np.asarray(entry, dtype=np.float64).reshape(-1)
    if values.shape[0] != durations.shape[0]:
        raise ValueError(f"entry has {values.shape[0]} values, durations has {durations.shape[0]}")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("entry must be finite numbers of days >= 0")
    if np.any(values > durations):
        raise ValueError(
            "entry must not be later than the duration: a case cannot come under observation "
            "after it was decided or last seen"
        )
    return values


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
    entered: IntArray | None = None,
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
        entered=_frozen(
            entered if entered is not None
            else np.concatenate(([at_risk[0]], np.zeros(at_risk.size - 1, dtype=np.int64)))
        ),
        greenwood_var=_frozen(survival**2 * greenwood_sum),
        ci_low=_frozen(ci_low),
        ci_high=_frozen(ci_high),
        alpha=alpha,
    )


def _count_table(
    durations: FloatArray, flags: npt.NDArray[np.bool_], entry: FloatArray | None = None
) -> tuple[FloatArray, IntArray, IntArray, IntArray, IntArray]:
    """Return distinct times (0 first), at risk, decided, censored and entering at each.

    At risk at t: the cases that entered before t (on day 0 for t = 0) whose duration is t or
    more, so decisions at t come before censorings at t and a case first seen on day e is at
    risk from the next time on (lifelines' convention). A case first seen on the day it left
    (entry = duration > 0) was never watched while waiting: it adds nothing to the curve.
    """
    if entry is None:
        entry = np.zeros_like(durations)
    watched = (entry < durations) | (entry == 0)
    durations, flags, entry = durations[watched], flags[watched], entry[watched]
    times = np.unique(np.concatenate(([0.0], durations, entry)))
    slot = np.searchsorted(times, durations)
    removed = np.bincount(slot, minlength=times.size).astype(np.int64)
    events = np.bincount(slot, weights=flags, minlength=times.size).astype(np.int64)
    entered = np.bincount(np.searchsorted(times, entry), minlength=times.size).astype(np.int64)
    before = np.concatenate(([entered[0]], np.cumsum(entered)[:-1]))
    at_risk = before - (np.cumsum(removed) - removed)
    return times.astype(np.float64), at_risk, events, removed - events, entered


def kaplan_meier(
    durations: npt.ArrayLike,
    observed: npt.ArrayLike,
    alpha: float = 0.05,
    entry: npt.ArrayLike | None = None,
) -> KaplanMeier:
    """Estimate S(t) from days waited and whether each case was decided (False = pending).

    `entry` is the day (counted like the durations) each case came under observation; a case
    is at risk from then on only. None: every case was watched from day 0.
    """
    values = _validate_durations(durations)
    flags = _validate_observed(observed, values.size)
    starts = _validate_entry(entry, values)
    timeline, at_risk, events, censored, entered = _count_table(values, flags, starts)
    return _km_from_counts(timeline, at_risk, events, censored, alpha, entered)


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


def summarize(
    durations: npt.ArrayLike,
    observed: npt.ArrayLike,
    alpha: float = 0.05,
    entry: npt.ArrayLike | None = None,
) -> dict[str, int | float | None]:
    """Return counts, KM median/p80/p90 with intervals, and the naive finished-only median."""
    values = _validate_durations(durations)
    flags = _validate_observed(observed, values.size)
    km = kaplan_meier(values, flags, alpha, entry)
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
    entry_col: str | None = None,
    pool: tuple[str, str] | None = None,
) -> pl.DataFrame:
    """Return one Kaplan–Meier curve per group as a tidy frame, in one pass over the cases.

    Columns: the group columns, time, at_risk, events, censored, survival, ci_low, ci_high;
    each group's rows together and sorted by time, starting at time 0 like `kaplan_meier`.
    `entry_col` holds each case's entry day (delayed entry), as `kaplan_meier`'s entry.
    `pool` = (group column, label) adds, for every group, the curve of its cases pooled over
    that column's values under `label` (e.g. ('processing', 'any')), from the counts.
    """
    z = _z(alpha)
    keys = list(group_cols) or ["_all"]
    cases = frame.select(
        *[pl.col(c) for c in group_cols],
        pl.col(duration_col).cast(pl.Float64).alias("time"),
        pl.col(observed_col).alias("_observed"),
        (pl.col(entry_col).cast(pl.Float64) if entry_col else pl.lit(0.0)).alias("_entry"),
    )
    if not group_cols:
        cases = cases.with_columns(pl.lit(0).alias("_all"))
    _check_group_frame(cases, duration_col, observed_col, entry_col)
    # Text keys grouped as categoricals (about twice as fast), turned back to text at the end.
    text_keys = [c for c in group_cols if cases.schema[c] == pl.String]
    cases = cases.with_columns([pl.col(c).cast(pl.Categorical) for c in text_keys])
    coded = [c for c in group_cols if cases.schema[c] == pl.Categorical]

    # A case first seen on the day it left (entry = duration > 0) was never watched waiting.
    cases = cases.filter((pl.col("_entry") < pl.col("time")) | (pl.col("_entry") == 0))
    zero = pl.lit(0, dtype=pl.Int64)
    removals = cases.group_by([*keys, "time"]).agg(
        pl.len().cast(pl.Int64).alias("_removed"),
        pl.col("_observed").cast(pl.Int64).sum().alias("events"),
        zero.alias("_entered"),
    )
    # Cases watched from day 0 (most) enter on each curve's first row; only later entries
    # need rows of their own.
    late = cases.filter(pl.col("_entry") > 0)
    entries = late.group_by([*keys, pl.col("_entry").alias("time")]).agg(
        zero.alias("_removed"), zero.alias("events"), pl.len().cast(pl.Int64).alias("_entered"),
    )
    starts = cases.group_by(keys).agg(
        pl.lit(0.0).alias("time"), zero.alias("_removed"), zero.alias("events"),
        (pl.col("_entry") == 0).sum().cast(pl.Int64).alias("_entered"),
    )
    columns = [*keys, "time", "_removed", "events", "_entered"]
    parts = [removals.select(columns), entries.select(columns), starts.select(columns)]
    if pool is not None:
        if pool[0] not in group_cols:
            raise ValueError(f"pool column {pool[0]!r} is not a group column")
        label = pl.lit(pool[1]).cast(cases.schema[pool[0]]).alias(pool[0])
        parts += [part.with_columns(label) for part in parts]
    table = (
        pl.concat(parts)
        .group_by([*keys, "time"])
        .agg(pl.col("_removed").sum(), pl.col("events").sum(), pl.col("_entered").sum())
        # groups in the categoricals' code order (contiguous, cheap to sort), each by time
        .sort([*(pl.col(c).to_physical() if c in coded else pl.col(c) for c in keys),
               pl.col("time")], nulls_last=True)
    )
    # entered before t (entries on day 0 count at 0), minus removed before t
    n_at_risk = (
        pl.col("_entered").cum_sum().over(keys)
        - pl.when(pl.col("time") > 0).then(pl.col("_entered")).otherwise(0)
        - pl.col("_removed").cum_sum().over(keys)
        + pl.col("_removed")
    )
    table = table.with_columns(
        n_at_risk.alias("at_risk"),
        (pl.col("_removed") - pl.col("events")).alias("censored"),
    )
    free = pl.col("at_risk") - pl.col("events")
    step = pl.when(pl.col("at_risk") > 0).then(1.0 - pl.col("events") / pl.col("at_risk"))
    table = table.with_columns(
        step.otherwise(1.0).cum_prod().over(keys).alias("survival"),
        pl.when(free > 0)
        .then(pl.col("events") / (pl.col("at_risk") * free).cast(pl.Float64))
        .otherwise(0.0)
        .cum_sum()
        .over(keys)
        .alias("_greenwood_sum"),
    )
    low, high = _loglog_band_exprs(z)
    curves = table.with_columns(low, high).select(
        *group_cols, "time", "at_risk", "events", "censored", "survival", "ci_low", "ci_high"
    )
    return curves.with_columns([pl.col(c).cast(pl.String) for c in text_keys])


def _check_group_frame(
    cases: pl.DataFrame, duration_col: str, observed_col: str, entry_col: str | None
) -> None:
    """Refuse missing, negative or infinite durations and entries, and missing decided flags."""
    bad = cases.select(
        (pl.col("time").is_null() | ~pl.col("time").is_finite() | (pl.col("time") < 0))
        .any()
        .alias("time"),
        (pl.col("_observed").is_null() | ~pl.col("_observed").cast(pl.Int64).is_in([0, 1]))
        .any()
        .alias("observed"),
        (pl.col("_entry").is_null() | ~pl.col("_entry").is_finite() | (pl.col("_entry") < 0)
         | (pl.col("_entry") > pl.col("time")))
        .any()
        .alias("entry"),
    ).row(0)
    if bad[0]:
        raise ValueError(f"{duration_col} must be finite numbers of days >= 0, with no nulls")
    if bad[1]:
        raise ValueError(f"{observed_col} must be True/False for every case, with no nulls")
    if bad[2]:
        raise ValueError(
            f"{entry_col} must be days >= 0, no later than {duration_col}, with no nulls"
        )
