"""The chance of approval, and of denial, by day t, with the other outcomes competing.

"Share denied" computed as denied / decided looks only at finished cases; while many are
pending, and if denials come faster or slower than approvals, it is off. The Aalen-Johansen
estimate counts pending cases as censored and withdrawals as a competing outcome, so
approved + denied + withdrawn + still pending add up to one at every day.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from pipeline.analytics.competing import CumulativeIncidence, cumulative_incidence

CURVE_DAYS: tuple[int, ...] = (
    30, 60, 90, 120, 150, 180, 240, 300, 365, 450, 540, 630, 730, 910, 1095, 1460,
)
OUTCOME_CODES: dict[str, int] = {"pending": 0, "approved": 1, "denied": 2, "withdrawn": 3}
_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "form_type": pl.String, "office": pl.String, "processing": pl.String, "day": pl.Int32,
    "n_cases": pl.Int32, "n_pending": pl.Int32, "n_stale": pl.Int32, "n_at_risk": pl.Int32,
    "suppressed": pl.Boolean,
    "approved_share": pl.Float64, "approved_ci_low": pl.Float64, "approved_ci_high": pl.Float64,
    "denied_share": pl.Float64, "denied_ci_low": pl.Float64, "denied_ci_high": pl.Float64,
    "still_pending_share": pl.Float64, "computed_at": pl.Datetime("us"),
}


def _at(curve: CumulativeIncidence, day: int) -> tuple[float, float, float]:
    """The curve's value and band at `day` (a step function of the distinct times)."""
    j = int(np.searchsorted(curve.timeline, day, side="right") - 1)
    return float(curve.cif[j]), float(curve.ci_low[j]), float(curve.ci_high[j])


def group_outcome_curve(
    durations: np.ndarray, codes: np.ndarray, days: tuple[int, ...] = CURVE_DAYS,
    entry: np.ndarray | None = None,
) -> list[dict[str, object]]:
    """Rows of approved/denied/still-pending shares at each day up to the longest follow-up.

    `entry` is each case's day of coming under observation (delayed entry); n_at_risk counts
    the cases under observation and still open after `day` days.
    """
    approved = cumulative_incidence(durations, codes, OUTCOME_CODES["approved"], entry=entry)
    denied = cumulative_incidence(durations, codes, OUTCOME_CODES["denied"], entry=entry)
    withdrawn = cumulative_incidence(durations, codes, OUTCOME_CODES["withdrawn"], entry=entry)
    starts = np.zeros_like(durations) if entry is None else entry
    rows: list[dict[str, object]] = []
    longest = float(durations.max()) if durations.size else 0.0
    for day in days:
        if day > longest:
            break
        a, a_low, a_high = _at(approved, day)
        d, d_low, d_high = _at(denied, day)
        w, _, _ = _at(withdrawn, day)
        rows.append({
            "day": day, "n_at_risk": int(((durations > day) & (starts <= day)).sum()),
            "approved_share": a, "approved_ci_low": a_low, "approved_ci_high": a_high,
            "denied_share": d, "denied_ci_low": d_low, "denied_ci_high": d_high,
            "still_pending_share": max(0.0, 1.0 - a - d - w),
        })
    return rows


def outcome_curves(
    durations: pl.DataFrame, min_group_size: int, computed_at: datetime
) -> pl.DataFrame:
    """Competing-outcome curves per form x intake office x processing, and per form.

    Processing 'any' pools regular and premium; each case is at risk from its entry day.
    """
    coded = durations.select(
        "form_type", "intake_office", "processing", "duration_days", "entry_days",
        pl.col("stale").cast(pl.Int32),
        pl.col("outcome").replace_strict(OUTCOME_CODES, default=0).alias("code"),
    )
    coded = pl.concat([coded, coded.with_columns(pl.lit("any").alias("processing"))])
    everyone = coded.with_columns(pl.lit(None, dtype=pl.String).alias("intake_office"))
    rows: list[dict[str, object]] = []
    for frame in (coded, everyone):
        for (form, office, processing), group in frame.group_by(
            ["form_type", "intake_office", "processing"], maintain_order=True
        ):
            n = group.height
            n_pending = int((group["code"] == 0).sum())
            head = {"form_type": form, "office": office, "processing": processing,
                    "n_cases": n, "n_pending": n_pending, "n_stale": int(group["stale"].sum()),
                    "suppressed": n < min_group_size, "computed_at": computed_at}
            if n < min_group_size:
                rows.append(head | {"day": CURVE_DAYS[0], "n_at_risk": 0})
                continue
            curve = group_outcome_curve(
                group["duration_days"].to_numpy().astype(float), group["code"].to_numpy(),
                entry=group["entry_days"].to_numpy().astype(float),
            )
            rows.extend(head | row for row in curve)
    if not rows:
        return pl.DataFrame(schema=_SCHEMA)
    return pl.DataFrame(rows, schema=_SCHEMA).sort(
        "form_type", "office", "processing", "day", nulls_last=True
    )
