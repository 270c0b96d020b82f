"""Stage-to-stage times: receipt -> biometrics -> interview, RFE -> response -> decision, cards.

Each interval starts when a case first reached its start stage; a case is at risk from the
later of that day and the day it came under observation (delayed entry), and regular and
premium processing are separate groups ('any' pools them). A case that reached the end
stage counts as done on that day; a case still open that has not reached it is right-censored
on the day it was last seen; a case closed (decided, withdrawn) without ever reaching the end
stage is left out, since the stage did not happen for it. The cards' intervals keep approved
cases open: their card can still come.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from pipeline.analytics.group_estimates import SUMMARY_COLUMNS, summarize_by_group

# name -> (start column, end column, what still counts as waiting, in words)
STAGE_INTERVALS: dict[str, tuple[str, str, str]] = {
    "receipt_to_biometrics": ("received_date", "biometrics_on", "Receipt to biometrics"),
    "biometrics_to_interview": ("biometrics_on", "interview_on", "Biometrics to interview"),
    "receipt_to_interview": ("received_date", "interview_on", "Receipt to interview"),
    "rfe_to_response": ("rfe_on", "rfe_response_on", "RFE sent to response received"),
    "response_to_decision": ("rfe_response_on", "decided_on", "RFE response to decision"),
    "rfe_to_decision": ("rfe_on", "decided_on", "RFE sent to decision"),
    "receipt_to_decision": ("received_date", "decided_on", "Receipt to decision"),
    "receipt_to_card_produced": ("received_date", "card_produced_on", "Receipt to card produced"),
    "receipt_to_card_mailed": ("received_date", "card_mailed_on", "Receipt to card mailed"),
    "approval_to_card_mailed": ("approved_on", "card_mailed_on", "Approval to card mailed"),
}
_CARD_ENDS = {"card_produced_on", "card_mailed_on"}


def _interval_sql(name: str, start: str, end: str) -> str:
    """One interval's per-case rows: duration to the end stage or to the censoring day."""
    still_open = "outcome IN ('pending', 'approved')" if end in _CARD_ENDS else "outcome = 'pending'"
    if end == "decided_on":  # the main estimate's rule: withdrawn cases censored at closing
        still_open = "outcome IN ('pending', 'withdrawn')"
    duration = f"greatest(0, date_diff('day', {start}, coalesce({end}, closed_on, seen_until)))"
    return f"""
    SELECT '{name}' AS segment, form_type, intake_office, processing,
           {duration}::INTEGER AS duration_days,
           {end} IS NOT NULL AS decided,
           least(greatest(0, coalesce(date_diff('day', {start}, tracked_since), 0)),
                 {duration})::INTEGER AS entry_days,
           stale AND {end} IS NULL AS stale
    FROM with_approval
    WHERE {start} IS NOT NULL AND ({end} IS NOT NULL OR {still_open})"""


STAGE_DURATIONS_SQL = (
    "WITH with_approval AS (SELECT *, CASE WHEN outcome = 'approved' THEN decided_on END"
    " AS approved_on FROM case_durations)"
    + "\nUNION ALL".join(_interval_sql(n, s, e) for n, (s, e, _) in STAGE_INTERVALS.items())
)

_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "segment": pl.String, "form_type": pl.String, "office": pl.String, "processing": pl.String,
    "n_cases": pl.Int32, "n_decided": pl.Int32, "n_pending": pl.Int32, "n_stale": pl.Int32,
    "suppressed": pl.Boolean,
    **dict.fromkeys(SUMMARY_COLUMNS[3:], pl.Float64),
    "computed_at": pl.Datetime("us"),
}


def stage_statistics(
    stage_durations: pl.DataFrame, min_group_size: int, computed_at: datetime
) -> pl.DataFrame:
    """Kaplan-Meier figures per interval x form x intake office x processing, and all offices.

    Each case is at risk from the later of the interval's start and the day it came under
    observation (delayed entry). Processing 'any' pools regular and premium. Intervals nobody
    in a group finished (a form with no interviews) are left out.
    """
    if stage_durations.height == 0:
        return pl.DataFrame(schema=_SCHEMA)
    keys = ["segment", "form_type", "intake_office", "processing"]
    pool = ("processing", "any")
    any_processing = pl.lit("any").alias("processing")

    def n_stale(cases: pl.DataFrame) -> pl.DataFrame:
        stale = pl.col("stale").sum().cast(pl.Int32).alias("n_stale")
        return pl.concat([cases.group_by(keys).agg(stale),
                          cases.with_columns(any_processing).group_by(keys).agg(stale)])

    everyone = stage_durations.with_columns(pl.lit(None, dtype=pl.String).alias("intake_office"))
    parts = [
        summarize_by_group(cases, keys, entry_col="entry_days", pool=pool)
        .join(n_stale(cases), on=keys, nulls_equal=True)
        .rename({"intake_office": "office"})
        for cases in (stage_durations, everyone)
    ]
    by_office, all_offices = parts
    figures = list(SUMMARY_COLUMNS[3:])
    table = (
        pl.concat([by_office, all_offices.select(by_office.columns)])
        .filter(pl.col("n_decided") > 0)
        .with_columns(
            (pl.col("n_cases") < min_group_size).alias("suppressed"),
            pl.lit(computed_at).cast(pl.Datetime("us")).alias("computed_at"),
        )
        .with_columns(
            [pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c) for c in figures]
        )
    )
    return table.select(_SCHEMA.keys()).cast(_SCHEMA).sort(  # type: ignore[arg-type]
        "segment", "form_type", "office", "processing", nulls_last=True
    )
