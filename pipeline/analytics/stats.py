"""Statistics per form type x office x processing type (x filing month or category).

Durations run from receipt to the first decision (an approval, a card produced or mailed,
which imply one, or a denial). A case still pending, withdrawn or rejected is right-censored
at the last date its status was known (or closed), so the estimates count the wait of cases
that are not done yet; each case is at risk from the day it came under observation (delayed
entry). Regular and premium processing are never pooled unless asked for ('any'). A pending
case not seen for longer than the staleness limit before the data ends is `stale`: censored
at its last sighting and counted. One refresh rebuilds every statistics table in one
transaction.
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

DEFAULT_STALE_AFTER_DAYS = 180

_DURATIONS_SQL = """
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
           -- a pending case is censored on the day its status was last known
           greatest(coalesce(c.last_checked, c.last_seen::DATE), f.last_event) AS seen_until
    FROM cases c JOIN firsts f USING (case_id)
), timed AS (
    SELECT *,
           greatest(0, date_diff('day', received_date,
                    coalesce(decided_on, closed_on, seen_until)))::INTEGER AS duration_days,
           CASE WHEN decided_on IS NOT NULL AND decided_on = approved_on THEN 'approved'
                WHEN decided_on IS NOT NULL THEN 'denied'
                WHEN closed_on IS NOT NULL THEN 'withdrawn'
                ELSE 'pending' END AS outcome
    FROM decided
)
SELECT case_id, form_type, intake_office,
       coalesce(current_office, intake_office) AS current_office,
       received_date,
       date_trunc('month', received_date)::DATE AS received_month,
       decided_on,
       date_trunc('month', decided_on)::DATE AS decision_month,
       outcome, duration_days,
       decided_on IS NOT NULL AS decided,
       rfe_on IS NOT NULL AS had_rfe,
       interview_on IS NOT NULL AS had_interview,
       coalesce(transferred_event, false)
           OR coalesce(current_office, intake_office) <> intake_office AS transferred,
       premium, synthetic, seen_until,
       CASE WHEN decided_on IS NULL THEN closed_on END AS closed_on,
       biometrics_on, interview_on, rfe_on, rfe_response_on, card_produced_on, card_mailed_on,
       biometrics_on IS NOT NULL AS had_biometrics,
       rfe_response_on IS NOT NULL AS had_rfe_response,
       coalesce(processing, CASE WHEN premium THEN 'premium' ELSE 'regular' END) AS processing,
       category,
       tracked_since,
       -- delayed entry: at risk from the day the case came under observation (NULL: receipt)
       least(greatest(0, coalesce(date_diff('day', received_date, tracked_since), 0)),
             duration_days)::INTEGER AS entry_days,
       outcome = 'pending'
           AND seen_until < max(seen_until) OVER () - INTERVAL {stale_after_days} DAY AS stale
FROM timed
"""


def durations_sql(stale_after_days: int = DEFAULT_STALE_AFTER_DAYS) -> str:
    """The per-case durations query; a pending case unseen that long before the data ends is stale."""
    if stale_after_days < 1:
        raise ValueError(f"the staleness limit must be at least 1 day, got {stale_after_days}")
    return _DURATIONS_SQL.replace("{stale_after_days}", str(int(stale_after_days)))


DURATIONS_SQL = durations_sql()

# grouping name -> (by office?, by filing cohort?, by category?)
GROUPINGS: dict[str, tuple[bool, bool, bool]] = {
    "office": (True, False, False),
    "cohort": (True, True, False),
    "form": (False, False, False),
    "form_cohort": (False, True, False),
    "category": (True, False, True),
    "form_category": (False, False, True),
}
OFFICE_BASES: dict[str, str] = {"intake": "intake_office", "current": "current_office"}
# Processing types every group is split by; 'any' pools them and is shown only when asked for.
PROCESSING_GROUPS: tuple[str, ...] = ("regular", "premium", "any")
UNKNOWN_CATEGORY = "unknown"
SHARE_NAMES = ("approval", "denial", "rfe", "transfer")
FIGURES: tuple[str, ...] = (
    *SUMMARY_COLUMNS[3:],
    *(f"{name}_{part}" for name in SHARE_NAMES for part in ("rate", "ci_low", "ci_high")),
)
_STAT_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "n_cases": pl.Int32, "n_decided": pl.Int32, "n_pending": pl.Int32, "n_stale": pl.Int32,
    "suppressed": pl.Boolean,
    **dict.fromkeys(FIGURES, pl.Float64),
    "synthetic_share": pl.Float64,
    "computed_at": pl.Datetime("us"),
}
GROUP_KEYS: tuple[str, ...] = (
    "grouping", "office_basis", "form_type", "office", "cohort", "category", "processing",
)


@dataclass(frozen=True)
class RefreshResult:
    """What a refresh computed."""

    n_cases: int
    n_groups: int
    n_suppressed: int
    n_group_rows: int = 0
    n_stage_rows: int = 0
    n_stale: int = 0


def group_statistics(
    durations: pl.DataFrame, group_cols: list[str], min_group_size: int, computed_at: datetime,
    pool: tuple[str, str] | None = None,
) -> pl.DataFrame:
    """One row of Kaplan-Meier figures and outcome shares per group; small groups suppressed.

    A group with fewer than min_group_size cases keeps its counts (the database is private)
    but gets no figures; publishing and the CLI blank the counts as well. Cases are at risk
    from their `entry_days` (delayed entry) where the frame has that column; `n_stale` counts
    the pending cases flagged `stale` (0 without that column). `pool` = (group column,
    label) adds the groups pooled over that column, e.g. ('processing', 'any').
    """
    schema = {c: durations.schema[c] for c in group_cols} | _STAT_SCHEMA
    if durations.height == 0:
        return pl.DataFrame(schema=schema)
    entry = "entry_days" if "entry_days" in durations.columns else None
    summary = summarize_by_group(durations, group_cols, entry_col=entry, pool=pool)
    decided = pl.col("decided")
    stale = pl.col("stale").sum() if "stale" in durations.columns else pl.lit(0)
    aggregates = (
        (decided & (pl.col("outcome") == "approved")).sum().alias("_approved"),
        (decided & (pl.col("outcome") == "denied")).sum().alias("_denied"),
        pl.col("had_rfe").sum().alias("_rfe"),
        pl.col("transferred").sum().alias("_transfer"),
        pl.col("synthetic").cast(pl.Float64).mean().alias("synthetic_share"),
        stale.cast(pl.Int32).alias("n_stale"),
    )
    shares = durations.group_by(group_cols).agg(*aggregates)
    if pool is not None:
        pooled = durations.with_columns(
            pl.lit(pool[1]).cast(durations.schema[pool[0]]).alias(pool[0])
        )
        shares = pl.concat([shares, pooled.group_by(group_cols).agg(*aggregates)])
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
    """Every grouping of group_stats: form x office (intake, current) x cohort or category.

    Every row is one processing type (regular, premium, or 'any' for both pooled); a row
    pools categories (category NULL) unless its grouping is by category, where cases with no
    category form the group 'unknown'.
    """
    if "processing" not in durations.columns:
        raise ValueError("the durations have no processing column: run `timelines refresh`")
    cases = durations
    parts: list[pl.DataFrame] = []
    for grouping, (by_office, by_cohort, by_category) in GROUPINGS.items():
        bases = OFFICE_BASES if by_office else {"all": None}
        frame = cases.with_columns(
            pl.col("category").fill_null(UNKNOWN_CATEGORY) if by_category
            else pl.lit(None, dtype=pl.String).alias("category")
        )
        for basis, office_col in bases.items():
            keys = ["form_type", *([office_col] if office_col else []),
                    *(["received_month"] if by_cohort else []),
                    *(["category"] if by_category else []), "processing"]
            table = group_statistics(frame, keys, min_group_size, computed_at,
                                     pool=("processing", "any"))
            renames = ({"received_month": "cohort"} if by_cohort else {}) | (
                {office_col: "office"} if office_col else {}
            )
            table = table.rename(renames)
            parts.append(table.with_columns(
                pl.lit(grouping).alias("grouping"),
                pl.lit(basis).alias("office_basis"),
                *([] if office_col else [pl.lit(None, dtype=pl.String).alias("office")]),
                *([] if by_cohort else [pl.lit(None, dtype=pl.Date).alias("cohort")]),
                *([] if by_category else [pl.lit(None, dtype=pl.String).alias("category")]),
            ).select(*GROUP_KEYS, *_STAT_SCHEMA))
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
    con: duckdb.DuckDBPyConnection,
    min_group_size: int,
    computed_at: datetime | None = None,
    stale_after_days: int = DEFAULT_STALE_AFTER_DAYS,
    max_contributor_share: float = DEFAULT_MAX_SHARE,
) -> RefreshResult:
    """Rebuild case_durations and every statistics table in one transaction, then apply the
    publication rules (k contributors, share cap, complementary suppression)."""
    computed_at = computed_at or datetime.now()
    k = min_group_size
    with transaction(con):
        con.execute("DELETE FROM case_durations")
        con.execute(f"INSERT INTO case_durations BY NAME {durations_sql(stale_after_days)}")
        durations = query_frame(
            con,
            "SELECT form_type, intake_office, current_office, received_month, decision_month,"
            " outcome, duration_days, decided, had_rfe, transferred, synthetic, processing,"
            " category, entry_days, stale FROM case_durations",
        )
        groups = grouped_statistics(durations, k, computed_at)
        _replace_table(con, "group_stats", groups)
        # the headline: form x intake office, one row per processing type (none pooled)
        headline = groups.filter(
            (pl.col("grouping") == "office") & (pl.col("office_basis") == "intake")
            & (pl.col("processing") != "any")
        ).drop("grouping", "office_basis", "cohort", "category")
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
        n_stale=int(durations["stale"].sum()),
    )
