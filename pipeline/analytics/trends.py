"""Trends by decision month: how many cases were decided, how long they took, what is left.

The days of cases decided in a month are a completions view, the one USCIS publishes: it
says how old the cases finished that month were, not how long a case filed now will take.
Beside it stands the backlog we know of: cases still pending at the end of the month.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from pipeline.analytics.group_estimates import summarize_by_group
from pipeline.store.db import query_frame

# Months in which a case was known to be pending at the month's end: from its filing month up
# to (not including) the month it was decided, closed, or last seen in.
PENDING_AT_MONTH_END_SQL = """
WITH spans AS (
    SELECT form_type, intake_office, processing,
           unnest(range(received_month,
                        date_trunc('month', coalesce(decided_on, closed_on, seen_until + 1)),
                        INTERVAL 1 MONTH))::DATE AS decision_month
    FROM case_durations
)
SELECT form_type, intake_office, processing, decision_month, count(*)::INTEGER AS n_pending_end
FROM spans GROUP BY ALL
"""
_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "form_type": pl.String, "office": pl.String, "processing": pl.String, "decision_month": pl.Date,
    "n_decided": pl.Int32, "n_pending_end": pl.Int32, "suppressed": pl.Boolean,
    "median_days": pl.Float64, "p80_days": pl.Float64, "approval_rate": pl.Float64,
    "computed_at": pl.Datetime("us"),
}


def decision_trends(
    con: duckdb.DuckDBPyConnection, durations: pl.DataFrame, min_group_size: int,
    computed_at: datetime,
) -> pl.DataFrame:
    """Per form x intake office (and per form) x processing x decision month, under k hidden.

    Processing 'any' pools regular and premium.
    """
    decided = durations.filter(pl.col("decided"))
    decided = pl.concat([decided, decided.with_columns(pl.lit("any").alias("processing"))])
    pending = query_frame(con, PENDING_AT_MONTH_END_SQL)
    pending = pl.concat([pending, pending.with_columns(pl.lit("any").alias("processing"))])
    parts = []
    for office in ("intake_office", None):
        keys = ["form_type", *([office] if office else []), "processing", "decision_month"]
        stats = summarize_by_group(decided, keys).select(
            *keys, pl.col("n_cases").alias("n_decided"), "median_days", "p80_days"
        )
        approvals = decided.group_by(keys).agg(
            (pl.col("outcome") == "approved").mean().alias("approval_rate")
        )
        backlog = pending.group_by(keys).agg(pl.col("n_pending_end").sum())
        table = (
            stats.join(approvals, on=keys)
            .join(backlog, on=keys, how="left")
            .with_columns(pl.col("n_pending_end").fill_null(0))
        )
        if office:
            table = table.rename({office: "office"})
        else:
            table = table.with_columns(pl.lit(None, dtype=pl.String).alias("office"))
        parts.append(table.select("form_type", "office", "processing", "decision_month", "n_decided",
                                  "n_pending_end", "median_days", "p80_days", "approval_rate"))
    figures = ["median_days", "p80_days", "approval_rate"]
    table = (
        pl.concat(parts)
        .with_columns(
            (pl.col("n_decided") < min_group_size).alias("suppressed"),
            pl.lit(computed_at).cast(pl.Datetime("us")).alias("computed_at"),
        )
        .with_columns(
            [pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c) for c in figures]
        )
    )
    return table.select(_SCHEMA.keys()).cast(_SCHEMA).sort(  # type: ignore[arg-type]
        "form_type", "office", "processing", "decision_month", nulls_last=True
    )
