"""Statistics per form type x office (x filing month), recomputed into materialized tables.

Durations run from receipt to the first decision (an approval, a card produced or mailed,
which imply one, or a denial). A case still pending, withdrawn or rejected is right-censored
at the last date it was seen (or closed), so the estimates count the wait of cases that are
not done yet. One refresh rebuilds every statistics table in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from pipeline.analytics.disclosure import apply_publication_rules
from pipeline.analytics.group_estimates import SUMMARY_COLUMNS, summarize_by_group, wilson_exprs
from pipeline.analytics.outcomes import outcome_curves
from pipeline.analytics.silent_updates import SILENT_UPDATES_SQL
from pipeline.analytics.stage_times import STAGE_DURATIONS_SQL, stage_statistics
from pipeline.analytics.suppression import DEFAULT_MAX_SHARE
from pipeline.analytics.trends import decision_trends
from pipeline.store.db import query_frame, transaction

DURATIONS_SQL = """
WITH firsts AS (
    SELECT case_id,
           min(event_date) FILTER (WHERE stage IN ('approved', 'card_production', 'card_mailed'))
               AS approved_on,
           min(event_date) FILTER (WHERE stage = 'denied') AS denied_on,
           min(event_date) FILTER (WHERE stage IN ('withdrawn', 'rejected')) AS closed_on,
           min(event_date) FILTER (WHERE stage = 'biometrics') AS biometrics_on,
           min(event_date) FILTER (WHERE stage = 'interview') AS interview_on,
           min(event_date) FILTER (WHERE stage = 'rfe') AS rfe_on,
           min(event_date) FILTER (WHERE stage = 'rfe_response') AS rfe_response_on,
           min(event_date) FILTER (WHERE stage = 'card_production') AS card_produced_on,
           min(event_date) FILTER (WHERE stage = 'card_mailed') AS card_mailed_on,
           max(event_date) AS last_event,
           bool_or(stage = 'transferred') AS transferred_event
    FROM status_events GROUP BY case_id
), decided AS (
    SELECT c.*, f.* EXCLUDE (case_id),
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
       rfe_on IS NOT NULL AS had_rfe,
       interview_on IS NOT NULL AS had_interview,
       coalesce(transferred_event, false)
           OR coalesce(current_office, intake_office) <> intake_office AS transferred,
       premium, synthetic, seen_until,
       CASE WHEN decided_on IS NULL THEN closed_on END AS closed_on,
       biometrics_on, interview_on, rfe_on, rfe_response_on, card_produced_on, card_mailed_on,
       biometrics_on IS NOT NULL AS had_biometrics,
       rfe_response_on IS NOT NULL AS had_rfe_response
FROM decided
"""

# grouping name -> (office column or None for all offices, with the filing cohort?)
GROUPINGS: dict[str, tuple[bool, bool]] = {
    "office": (True, False),
    "cohort": (True, True),
    "form": (False, False),
    "form_cohort": (False, True),
}
OFFICE_BASES: dict[str, str] = {"intake": "intake_office", "current": "current_office"}
SHARE_NAMES = ("approval", "denial", "rfe", "transfer")
FIGURES: tuple[str, ...] = (
    *SUMMARY_COLUMNS[3:],
    *(f"{name}_{part}" for name in SHARE_NAMES for part in ("rate", "ci_low", "ci_high")),
)
_STAT_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "n_cases": pl.Int32, "n_decided": pl.Int32, "n_pending": pl.Int32, "suppressed": pl.Boolean,
    **dict.fromkeys(FIGURES, pl.Float64),
    "synthetic_share": pl.Float64,
    "computed_at": pl.Datetime("us"),
}


@dataclass(frozen=True)
class RefreshResult:
    """What a refresh computed."""

    n_cases: int
    n_groups: int
    n_suppressed: int
    n_group_rows: int = 0
    n_stage_rows: int = 0


def group_statistics(
    durations: pl.DataFrame, group_cols: list[str], min_group_size: int, computed_at: datetime
) -> pl.DataFrame:
    """One row of Kaplan-Meier figures and outcome shares per group; small groups suppressed.

    A group with fewer than min_group_size cases keeps its counts (the database is private)
    but gets no figures; publishing and the CLI blank the counts as well.
    """
    schema = {c: durations.schema[c] for c in group_cols} | _STAT_SCHEMA
    if durations.height == 0:
        return pl.DataFrame(schema=schema)
    summary = summarize_by_group(durations, group_cols)
    decided = pl.col("decided")
    shares = durations.group_by(group_cols).agg(
        (decided & (pl.col("outcome") == "approved")).sum().alias("_approved"),
        (decided & (pl.col("outcome") == "denied")).sum().alias("_denied"),
        pl.col("had_rfe").sum().alias("_rfe"),
        pl.col("transferred").sum().alias("_transfer"),
        pl.col("synthetic").cast(pl.Float64).mean().alias("synthetic_share"),
    )
    n_all, n_decided = pl.col("n_cases"), pl.col("n_decided")
    table = summary.join(shares, on=group_cols, nulls_equal=True).with_columns(
        *wilson_exprs(pl.col("_approved"), n_decided, "approval"),
        *wilson_exprs(pl.col("_denied"), n_decided, "denial"),
        *wilson_exprs(pl.col("_rfe"), n_all, "rfe"),
        *wilson_exprs(pl.col("_transfer"), n_all, "transfer"),
        (n_all < min_group_size).alias("suppressed"),
        pl.lit(computed_at).cast(pl.Datetime("us")).alias("computed_at"),
    )
    table = table.with_columns(
        [pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c) for c in FIGURES]
    )
    return table.select(schema.keys()).cast(schema).sort(group_cols)  # type: ignore[arg-type]


def grouped_statistics(
    durations: pl.DataFrame, min_group_size: int, computed_at: datetime
) -> pl.DataFrame:
    """Every grouping of the group_stats table: form x office (intake and current) x cohort."""
    parts: list[pl.DataFrame] = []
    for grouping, (by_office, by_cohort) in GROUPINGS.items():
        bases = OFFICE_BASES if by_office else {"all": None}
        for basis, office_col in bases.items():
            keys = ["form_type", *([office_col] if office_col else []),
                    *(["received_month"] if by_cohort else [])]
            table = group_statistics(durations, keys, min_group_size, computed_at)
            renames = ({"received_month": "cohort"} if by_cohort else {}) | (
                {office_col: "office"} if office_col else {}
            )
            table = table.rename(renames)
            parts.append(table.with_columns(
                pl.lit(grouping).alias("grouping"),
                pl.lit(basis).alias("office_basis"),
                *([] if office_col else [pl.lit(None, dtype=pl.String).alias("office")]),
                *([] if by_cohort else [pl.lit(None, dtype=pl.Date).alias("cohort")]),
            ).select("grouping", "office_basis", "form_type", "office", "cohort", *_STAT_SCHEMA))
    return pl.concat(parts)


def _replace_table(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    """Swap a materialized table's rows for `frame` (inside the caller's transaction)."""
    con.execute(f"DELETE FROM {table}")
    if frame.height:
        con.register("new_rows", frame)
        try:
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM new_rows")
        finally:
            con.unregister("new_rows")


def refresh_statistics(
    con: duckdb.DuckDBPyConnection, min_group_size: int, computed_at: datetime | None = None,
    max_contributor_share: float = DEFAULT_MAX_SHARE,
) -> RefreshResult:
    """Rebuild case_durations and every statistics table in one transaction, then apply the
    publication rules (k contributors, share cap, complementary suppression)."""
    computed_at = computed_at or datetime.now()
    k = min_group_size
    with transaction(con):
        con.execute("DELETE FROM case_durations")
        con.execute(f"INSERT INTO case_durations BY NAME {DURATIONS_SQL}")
        durations = query_frame(
            con,
            "SELECT form_type, intake_office, current_office, received_month, decision_month,"
            " outcome, duration_days, decided, had_rfe, transferred, synthetic FROM case_durations",
        )
        groups = grouped_statistics(durations, k, computed_at)
        _replace_table(con, "group_stats", groups)
        headline = groups.filter(
            (pl.col("grouping") == "office") & (pl.col("office_basis") == "intake")
        ).drop("grouping", "office_basis", "cohort")
        _replace_table(con, "case_stats", headline)
        stages = stage_statistics(query_frame(con, STAGE_DURATIONS_SQL), k, computed_at)
        _replace_table(con, "stage_stats", stages)
        _replace_table(con, "outcome_curves", outcome_curves(durations, k, computed_at))
        _replace_table(con, "decision_trends", decision_trends(con, durations, k, computed_at))
        con.execute("DELETE FROM silent_updates")
        con.execute(f"INSERT INTO silent_updates BY NAME {SILENT_UPDATES_SQL}", [k, computed_at])
        apply_publication_rules(con, k, computed_at, grouped_statistics, max_contributor_share)
    return RefreshResult(
        n_cases=durations.height,
        n_groups=headline.height,
        n_suppressed=int(headline["suppressed"].sum()),
        n_group_rows=groups.height,
        n_stage_rows=stages.height,
    )
