"""What the curve says about a case that has already waited: the chance of a decision soon.

The wait left after w days is read from the Kaplan–Meier curve conditioned on still pending at
w, S(w + r) / S(w), with its own Greenwood band.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.analytics.survival import (
    KaplanMeier,
    QuantileEstimate,
    _km_from_counts,
    survival_quantile,
)


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


def _condition_on_waiting(km: KaplanMeier, waited_days: float) -> KaplanMeier:
    """Return the curve of remaining days for cases still pending after waited_days.

    It is S(w + r) / S(w): the Kaplan–Meier factors after w only, so its Greenwood sum runs over
    those steps alone (the Greenwood variance of the ratio), and it equals kaplan_meier() on the
    cases with duration > w, shifted by w (entries before w moved to 0). With delayed entry the
    cases pending at w are those under observation by then; cases that come under observation
    later join the risk sets after their entry day, as in the full curve.
    """
    after = km.timeline > waited_days
    # at the first time after w: entered by w (at risk only after entry) and not yet left
    n_pending = int(km.at_risk[after][0]) if after.any() else 0
    return _km_from_counts(
        np.concatenate(([0.0], km.timeline[after] - waited_days)),
        np.concatenate(([n_pending], km.at_risk[after])).astype(np.int64),
        np.concatenate(([0], km.events[after])).astype(np.int64),
        np.concatenate(([0], km.censored[after])).astype(np.int64),
        km.alpha,
        np.concatenate(([n_pending], km.entered[after])).astype(np.int64),
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
