"""Statistics per form type x office, recomputed into materialized tables.

Durations run from receipt to the first decision (an approval, a card produced or mailed,
which imply one, or a denial). A case still pending, withdrawn or rejected is right-censored
at the last date it was seen, so the estimates count the wait of cases that are not done yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from pipeline.analytics.survival import summarize
from pipeline.store.db import query_frame

DURATIONS_SQL = """
WITH firsts AS (
    SELECT case_id,
           min(event_date) FILTER (WHERE stage IN ('approved', 'card_production', 'card_mailed'))
               AS approved_on,
           min(event_date) FILTER (WHERE stage = 'denied') AS denied_on,
           min(event_date) FILTER (WHERE stage IN ('withdrawn', 'rejected')) AS closed_on,
           max(event_date) AS last_event,
           bool_or(stage = 'rfe') AS had_rfe,
           bool_or(stage = 'interview') AS had_interview,
           bool_or(stage = 'transferred') AS transferred
    FROM status_events GROUP BY case_id
), decided AS (
    SELECT c.*, f.*,
           least(f.approved_on, f.denied_on) AS decided_on,
           greatest(c.last_seen::DATE, f.last_event) AS seen_until
    FROM cases c JOIN firsts f USING (case_id)
)
SELECT case_id, form_type, intake_office,
       coalesce(current_office, intake_office) AS current_office,
       received_date,
       date_trunc('month', received_date)::DATE AS received_month,
       decided_on,
       date_trunc('month', decided_on)::DATE AS decision_month,
       CASE WHEN decided_on IS NOT NULL AND decided_on = approved_on THEN 'approved'
            WHEN decided_on IS NOT NULL THEN 'denied'
            WHEN closed_on IS NOT NULL THEN 'withdrawn'
            ELSE 'pending' END AS outcome,
       greatest(0, date_diff('day', received_date,
                coalesce(decided_on, closed_on, seen_until)))::INTEGER AS duration_days,
       decided_on IS NOT NULL AS decided,
       coalesce(had_rfe, false) AS had_rfe,
       coalesce(had_interview, false) AS had_interview,
       coalesce(transferred, false)
           OR coalesce(current_office, intake_office) <> intake_office AS transferred,
       premium, synthetic
FROM decided
"""


@dataclass(frozen=True)
class RefreshResult:
    """What a refresh computed."""

    n_cases: int
    n_groups: int
    n_suppressed: int


def group_statistics(
    durations: pl.DataFrame, group_cols: list[str], min_group_size: int, computed_at: datetime
) -> pl.DataFrame:
    """One row of Kaplan-Meier figures per group; groups under min_group_size are suppressed."""
    rows: list[dict[str, object]] = []
    for keys, group in durations.group_by(group_cols, maintain_order=True):
        summary = summarize(group["duration_days"].to_numpy(), group["decided"].to_numpy())
        n = int(summary["n"] or 0)
        decided = group.filter(pl.col("decided"))
        row: dict[str, object] = dict(zip(group_cols, keys, strict=True))
        row |= {
            "n_cases": n,
            "n_decided": summary["n_decided"],
            "n_pending": summary["n_pending"],
            "suppressed": n < min_group_size,
            **{k: summary[k] for k in _FIGURES if k in summary},
            "approval_rate": (decided["outcome"] == "approved").mean() if decided.height else None,
            "rfe_rate": group["had_rfe"].mean(),
            "synthetic_share": group["synthetic"].mean(),
            "computed_at": computed_at,
        }
        if n < min_group_size:
            row |= dict.fromkeys((*_FIGURES, "approval_rate", "rfe_rate"))
        rows.append(row)
    schema = {c: durations.schema[c] for c in group_cols} | _STAT_SCHEMA
    return pl.DataFrame(rows, schema=schema).sort(group_cols)


_FIGURES = (
    "median_days", "median_ci_low", "median_ci_high",
    "p80_days", "p80_ci_low", "p80_ci_high",
    "p90_days", "p90_ci_low", "p90_ci_high",
    "naive_median_days",
)
_STAT_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "n_cases": pl.Int32, "n_decided": pl.Int32, "n_pending": pl.Int32, "suppressed": pl.Boolean,
    **dict.fromkeys(_FIGURES, pl.Float64),
    "approval_rate": pl.Float64, "rfe_rate": pl.Float64, "synthetic_share": pl.Float64,
    "computed_at": pl.Datetime("us"),
}


def refresh_statistics(
    con: duckdb.DuckDBPyConnection, min_group_size: int, computed_at: datetime | None = None
) -> RefreshResult:
    """Rebuild case_durations and case_stats in one transaction."""
    computed_at = computed_at or datetime.now()
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM case_durations")
        con.execute(f"INSERT INTO case_durations BY NAME {DURATIONS_SQL}")
        durations = query_frame(con, "SELECT * FROM case_durations")
        stats = group_statistics(
            durations, ["form_type", "intake_office"], min_group_size, computed_at
        ).rename({"intake_office": "office"})
        con.register("new_stats", stats)
        con.execute("DELETE FROM case_stats")
        con.execute("INSERT INTO case_stats BY NAME SELECT * FROM new_stats")
        con.unregister("new_stats")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return RefreshResult(durations.height, stats.height, int(stats["suppressed"].sum()))
