"""Open data: the aggregated, suppressed statistics as CSV and Parquet, with a data dictionary.

Only group-level tables leave: never a case id, never a row per case. Groups under k come
out as a row that says `suppressed = true` and holds no count and no figure.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.analytics.disclosure import relations_of
from pipeline.analytics.suppression import complementary
from pipeline.publish.reader import Snapshot

# exported name -> (published table, what a row is)
EXPORTED_TABLES: dict[str, tuple[str, str]] = {
    "processing_times": (
        "group_stats",
        "Days from receipt to first decision per form x office x processing type (x filing month "
        "or category), Kaplan-Meier with pending cases censored and each case at risk from the "
        "day it came under observation, and outcome shares. `grouping` says which keys are set.",
    ),
    "stage_times": (
        "stage_stats",
        "Days between two stages per form x intake office (office empty = all offices); "
        "cases still waiting for the end stage are censored.",
    ),
    "outcome_curves": (
        "outcome_curves",
        "Share approved, denied and still pending by day t after receipt per form x intake "
        "office (Aalen-Johansen: outcomes compete, pending cases censored).",
    ),
    "decision_trends": (
        "decision_trends",
        "Cases decided per decision month, how long those took, and cases known to be still "
        "pending at the month's end, per form x intake office.",
    ),
    "official_comparison": (
        "official_comparison",
        "USCIS's published processing time beside the community figures per form x office x "
        "category, regular processing on both sides; `range_method` says what USCIS's figure is.",
    ),
    "silent_updates": (
        "silent_updates",
        "Per office and week: cases USCIS modified, and modifications with no status change.",
    ),
}
FORBIDDEN_COLUMNS = frozenset({"case_id", "receipt_number", "received_date", "decided_on"})

COLUMN_DOCS: dict[str, str] = {
    "grouping": "office | cohort | form | form_cohort | category | form_category: which keys "
                "of the row are set",
    "office_basis": "intake (office of the receipt prefix), current (office holding the case, "
                    "intake where unknown) or all (all offices together)",
    "form_type": "USCIS form, e.g. I-485",
    "office": "office code (NSC, TSC, VSC, CSC, NBC, PSC, ELIS, or a field office such as DAL); "
              "empty = all offices",
    "processing": "regular | premium | any (both pooled): regular and premium processing are "
                  "separate populations and never pooled in a regular or premium row",
    "category": "form category (e.g. E21, NIW, (c)(9)); empty = all categories pooled; "
                "'unknown' in the category groupings = cases that give no category",
    "n_stale": "pending cases not seen for longer than the staleness limit before the data "
               "ends: counted as waiting only until their last sighting (empty when suppressed)",
    "office_raw": "the office code as USCIS's answer wrote it (legacy SSC, ESC, WSC, MSC, YSC)",
    "official_category": "USCIS's category of the figure, or 'all categories'",
    "community_category": "the category of the community figure beside it: the same category, "
                          "'all categories', or empty when we have no matching category",
    "range_method": "what USCIS's range means in the figure's era: p80 (80% of cases completed "
                    "in the last six months, since May 2022) or legacy_50_93 (2018-2022: median "
                    "and 93rd percentile)",
    "official_median_days": "legacy range only: its lower value, the median (50%) in days",
    "official_p93_days": "legacy range only: its upper value, 93% of cases completed, in days",
    "community_n_stale": "our stale pending cases in the community group",
    "community_median_ci_low": "our median's 95% interval, low end",
    "community_median_ci_high": "our median's 95% interval, high end",
    "compared_on": "which figure difference_days compares: p80, or median for a legacy range",
    "cohort": "filing month (first day of the month the case was received)",
    "segment": "which stage-to-stage time, e.g. receipt_to_biometrics, rfe_to_response",
    "n_cases": "cases in the group (empty when suppressed)",
    "n_decided": "cases that reached the end point (decision, or the segment's end stage)",
    "n_pending": "cases still waiting, counted as censored on the day last seen",
    "suppressed": "true when the group has fewer than k cases: no counts or figures published",
    "median_days": "Kaplan-Meier median days (empty: not reached yet, or suppressed)",
    "median_ci_low": "lower end of the median's 95% confidence interval",
    "median_ci_high": "upper end of the median's 95% interval (empty: could be longer)",
    "p80_days": "Kaplan-Meier 80th percentile days (the share USCIS publishes)",
    "p80_ci_low": "lower end of the 80th percentile's 95% interval",
    "p80_ci_high": "upper end of the 80th percentile's 95% interval (empty: could be longer)",
    "p90_days": "Kaplan-Meier 90th percentile days",
    "p90_ci_low": "lower end of the 90th percentile's 95% interval",
    "p90_ci_high": "upper end of the 90th percentile's 95% interval (empty: could be longer)",
    "naive_median_days": "median of finished cases only, for contrast (biased short)",
    "approval_rate": "approved / decided",
    "approval_ci_low": "Wilson 95% interval, low end", "approval_ci_high": "Wilson 95%, high end",
    "denial_rate": "denied / decided",
    "denial_ci_low": "Wilson 95% interval, low end", "denial_ci_high": "Wilson 95%, high end",
    "rfe_rate": "cases with a request for evidence so far / all cases",
    "rfe_ci_low": "Wilson 95% interval, low end", "rfe_ci_high": "Wilson 95%, high end",
    "transfer_rate": "cases transferred to another office so far / all cases",
    "transfer_ci_low": "Wilson 95% interval, low end", "transfer_ci_high": "Wilson 95%, high end",
    "synthetic_share": "share of the group's cases that are synthetic sample data",
    "n_verified": "cases of the group whose history comes from the official Case Status API "
                  "(polled); the others are self-reported or imported by the operator",
    "n_contributors": "distinct contributors: a self-reported case counts once per submission",
    "computed_at": "when the statistics were computed",
    "day": "days after receipt",
    "n_at_risk": "cases still open after `day` days (what the shares at that day rest on)",
    "approved_share": "estimated share approved within `day` days",
    "approved_ci_low": "95% interval, low end", "approved_ci_high": "95% interval, high end",
    "denied_share": "estimated share denied within `day` days",
    "denied_ci_low": "95% interval, low end", "denied_ci_high": "95% interval, high end",
    "still_pending_share": "estimated share not yet decided, withdrawn or rejected by `day`",
    "decision_month": "month of the decision (first day of the month)",
    "n_pending_end": "cases known to be still pending at the end of the month",
    "subtype": "USCIS's form category key",
    "subtype_info": "USCIS's description of the category",
    "publication_date": "when USCIS published the figure",
    "official_p80_days": "USCIS: 80% of cases completed in the last six months took at most "
                         "this many days (months converted at 30.44 days); empty for a "
                         "legacy range, which is not an 80% figure",
    "official_p80_value": "USCIS's figure as published", "official_p80_unit": "its unit",
    "official_other_days": "the second value of USCIS's range, in days (not a minimum)",
    "service_request_date": "USCIS's case inquiry date: receipts before it may ask about delay",
    "community_n_cases": "our regular-processing cases of this form and category at this "
                         "(current) office",
    "community_n_pending": "... of which still pending",
    "community_suppressed": "true when we have fewer than k cases: no community figures",
    "community_p80_days": "our Kaplan-Meier 80th percentile, pending cases censored",
    "community_p80_ci_low": "its 95% interval, low end",
    "community_p80_ci_high": "its 95% interval, high end",
    "community_median_days": "our Kaplan-Meier median",
    "recent_completed_n": "our cases decided in the six months before the data ends",
    "recent_completed_p80_days": "80th percentile days of those: closest to USCIS's method",
    "difference_days": "community_p80_days - official_p80_days (legacy range: "
                       "community_median_days - official_median_days)",
    "method_note": "how the two figures differ",
    "week": "Monday of the week USCIS modified the cases",
    "n_modifications": "times a case's last-modified stamp moved between two polls",
    "n_silent_updates": "of those, with no new status",
}


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    directory: Path
    files: tuple[Path, ...]
    n_rows: dict[str, int]


# The count a row's group size is judged by, per published table.
GROUP_SIZE_COLUMN: dict[str, str] = {
    "group_stats": "n_cases", "case_stats": "n_cases", "stage_stats": "n_cases",
    "outcome_curves": "n_cases", "decision_trends": "n_decided", "silent_updates": "n_cases",
}
_ROW_KEYS = frozenset({"grouping", "office_basis", "form_type", "office", "cohort", "segment",
                       "day", "decision_month", "week", "suppressed", "computed_at",
                       "processing", "category"})
_COMMUNITY = ("community_n_cases", "community_n_pending", "community_n_stale",
              "community_p80_days", "community_p80_ci_low", "community_p80_ci_high",
              "community_median_days", "community_median_ci_low", "community_median_ci_high",
              "difference_days")


def public_table(snapshot: Snapshot, table: str, min_group_size: int | None = None) -> pl.DataFrame:
    """A published table with suppressed rows emptied again, refusing any case-level column.

    With min_group_size (the reader's k), groups under it are suppressed too, so raising
    TIMELINES_MIN_GROUP_SIZE takes effect before the next refresh.
    """
    frame = snapshot.table(table)
    leaked = FORBIDDEN_COLUMNS & set(frame.columns)
    if leaked:
        raise ValueError(f"{table} holds case-level columns {sorted(leaked)}: not exportable")
    size = GROUP_SIZE_COLUMN.get(table)
    published_k = int(str(snapshot.meta.get("min_group_size") or 1))
    if min_group_size is not None and size in frame.columns and min_group_size > published_k:
        frame = frame.with_columns(
            (pl.col("suppressed") | (pl.col(size) < min_group_size)).alias("suppressed")
        )
        frame = frame.with_columns(complementary(frame, relations_of(table), min_group_size))
    if min_group_size is not None and "community_n_cases" in frame.columns:
        small = pl.col("community_suppressed") | (pl.col("community_n_cases") < min_group_size)
        frame = frame.with_columns(small.fill_null(pl.col("community_suppressed"))
                                   .alias("community_suppressed"))
        frame = frame.with_columns(
            [pl.when(pl.col("community_suppressed")).then(None).otherwise(pl.col(c)).alias(c)
             for c in _COMMUNITY]
        )
    if "suppressed" in frame.columns:
        frame = frame.with_columns(
            [pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c)
             for c in frame.columns if c not in _ROW_KEYS]
        )
    return frame


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def neutralise_cell(value: str | None) -> str | None:
    """Prefix a text cell a spreadsheet would run as a formula with ' (OWASP CSV injection)."""
    if value is None or not value.startswith(_FORMULA_START) or _NUMBER_RE.match(value):
        return value
    return "'" + value


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text column with formula-looking cells neutralised, for CSV files people open."""
    return frame.with_columns(
        pl.col(name).map_elements(neutralise_cell, return_dtype=pl.String)
        for name, dtype in frame.schema.items() if dtype == pl.String
    )


def export_tables(
    snapshot: Snapshot, directory: Path, min_group_size: int | None = None
) -> ExportResult:
    """Write every exported table as CSV and Parquet plus data_dictionary.{md,csv}."""
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{directory} is a file, not a folder")
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o700)
    staging = directory / f".export-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    written: list[Path] = []
    counts: dict[str, int] = {}
    try:
        tables: dict[str, pl.DataFrame] = {}
        for name, (source, _) in EXPORTED_TABLES.items():
            if not (snapshot.path / f"{source}.parquet").exists():
                continue
            tables[name] = public_table(snapshot, source, min_group_size)
            tables[name].write_parquet(staging / f"{name}.parquet")
            neutralise_formulas(tables[name]).write_csv(staging / f"{name}.csv")
            counts[name] = tables[name].height
        _write_dictionary(staging, tables, snapshot, min_group_size)
        for path in sorted(staging.iterdir()):
            os.chmod(path, 0o600)
            os.replace(path, directory / path.name)
            written.append(directory / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(directory, tuple(written), counts)


def _write_dictionary(
    folder: Path, tables: dict[str, pl.DataFrame], snapshot: Snapshot, k_reader: int | None
) -> None:
    k = max(int(str(snapshot.meta.get("min_group_size") or 1)), k_reader or 1)
    lines = [
        "# uscis-timelines open data",
        "",
        f"Snapshot {snapshot.stamp}; statistics computed {snapshot.meta.get('stats_computed_at')};"
        f" data seen until {snapshot.meta.get('data_seen_until')}.",
        f"Groups with fewer than {k} cases are suppressed: they appear with `suppressed = true`"
        " and no counts or figures. No case identifiers and no per-case rows are included.",
        "Durations are Kaplan-Meier estimates with still-pending cases right-censored at the"
        " day they were last seen; intervals are 95%. See docs/methodology.md.",
    ]
    if snapshot.is_synthetic:
        lines += ["", "**SYNTHETIC SAMPLE DATA: these figures are not about real USCIS cases.**"]
    rows: list[list[str]] = [["table", "column", "type", "description"]]
    for name, frame in tables.items():
        lines += ["", f"## {name} ({name}.csv, {name}.parquet)", "", EXPORTED_TABLES[name][1], "",
                  "| column | type | description |", "|---|---|---|"]
        for column, dtype in frame.schema.items():
            doc = COLUMN_DOCS.get(column, "")
            lines.append(f"| {column} | {dtype} | {doc} |")
            rows.append([name, column, str(dtype), doc])
    (folder / "data_dictionary.md").write_text("\n".join(lines) + "\n")
    with (folder / "data_dictionary.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    (folder / "meta.json").write_text(json.dumps(
        {"snapshot": snapshot.stamp, "min_group_size": k, "synthetic": snapshot.is_synthetic,
         "tables": {name: frame.height for name, frame in tables.items()}}, indent=2))
