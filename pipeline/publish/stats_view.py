"""What `timelines stats` shows: the published group statistics, filtered and suppressed."""

from __future__ import annotations

from typing import Any

import polars as pl

from pipeline.analytics.disclosure import GROUP_RELATIONS
from pipeline.analytics.suppression import complementary
from pipeline.publish.reader import Snapshot

# --by value -> the grouping of group_stats it reads
BY_GROUPING: dict[str, str] = {
    "office": "office", "cohort": "cohort", "form": "form", "form-cohort": "form_cohort",
    "category": "category", "form-category": "form_category",
}
# With --category, the grouping by category that matches each --by.
_CATEGORY_GROUPING: dict[str, str] = {
    "office": "category", "category": "category", "form": "form_category",
    "form_category": "form_category",
}
OFFICE_BASES = ("intake", "current")
PROCESSING_CHOICES = ("regular", "premium", "any")
STATS_FIELDS: tuple[str, ...] = (
    "form_type", "office", "office_basis", "cohort", "category", "processing",
    "n_cases", "n_decided", "n_pending", "n_stale", "suppressed",
    "median_days", "median_ci_low", "median_ci_high",
    "p80_days", "p80_ci_low", "p80_ci_high",
    "p90_days", "p90_ci_low", "p90_ci_high",
    "naive_median_days",
    "approval_rate", "approval_ci_low", "approval_ci_high",
    "denial_rate", "denial_ci_low", "denial_ci_high",
    "rfe_rate", "rfe_ci_low", "rfe_ci_high",
    "transfer_rate", "transfer_ci_low", "transfer_ci_high",
    "synthetic_share", "n_verified", "n_contributors",
)
_KEYS = {"form_type", "office", "office_basis", "cohort", "category", "processing", "suppressed"}


class StaleSnapshotError(LookupError):
    """The published snapshot predates these statistics."""


def stats_rows(
    snapshot: Snapshot,
    *,
    form: str | None = None,
    office: str | None = None,
    by: str = "office",
    office_basis: str = "intake",
    min_group_size: int | None = None,
    processing: str | None = None,
    category: str | None = None,
    verified_only: bool = False,
) -> list[dict[str, Any]]:
    """Rows of published statistics, every figure and count empty for groups under k.

    Groups were suppressed at the k of the refresh; min_group_size (the reader's k) hides
    groups under it as well. processing None gives a regular and a premium row per group
    (never pooled); 'any' gives the pooled row. Rows pool categories unless `by` is a
    category grouping or `category` picks one.
    With min_group_size above the snapshot's k, complementary suppression runs again at
    that k. `verified_only` reads the statistics of verified (polled) cases only.
    """
    if by not in BY_GROUPING:
        raise ValueError(f"--by must be one of {', '.join(BY_GROUPING)}, not {by!r}")
    if office_basis not in OFFICE_BASES:
        raise ValueError(f"--office-basis must be intake or current, not {office_basis!r}")
    if processing is not None and processing not in PROCESSING_CHOICES:
        raise ValueError(f"--processing must be regular, premium or any, not {processing!r}")
    source = "group_stats_verified" if verified_only else "group_stats"
    if not (snapshot.path / f"{source}.parquet").exists():
        raise StaleSnapshotError(
            "the published statistics predate this version: run `timelines refresh`"
        )
    grouping = BY_GROUPING[by]
    if category is not None:
        if grouping not in _CATEGORY_GROUPING:
            raise ValueError(f"--by {by} has no categories: use --by office, form or category")
        grouping = _CATEGORY_GROUPING[grouping]
    basis = office_basis if grouping in {"office", "cohort", "category"} else "all"
    conditions = [pl.col("grouping") == grouping, pl.col("office_basis") == basis]
    if form:
        conditions.append(pl.col("form_type") == form)
    if office:
        if basis == "all":
            raise ValueError(f"--by {by} groups all offices together: drop --office")
        conditions.append(pl.col("office") == office)
    if category is not None:
        conditions.append(pl.col("category") == category)
    scan = snapshot.scan(source)
    if "processing" not in scan.collect_schema().names():
        raise StaleSnapshotError(
            "the published statistics predate processing types: run `timelines refresh`"
        )
    if processing is None:
        conditions.append(pl.col("processing").is_in(["regular", "premium"]))
    else:
        conditions.append(pl.col("processing") == processing)
    table = scan.collect()
    for column in ("n_verified", "n_contributors"):
        if column not in table.columns:
            table = table.with_columns(pl.lit(None, dtype=pl.Int32).alias(column))
    published_k = int(str(snapshot.meta.get("min_group_size") or 1))
    if min_group_size is not None and min_group_size > published_k:
        table = table.with_columns(
            (pl.col("suppressed") | (pl.col("n_cases") < min_group_size)).alias("suppressed")
        )
        table = table.with_columns(complementary(table, GROUP_RELATIONS, min_group_size))
    table = blank_suppressed(table.filter(*conditions)).sort(
        "form_type", "office", "cohort", "category", "processing", nulls_last=True
    )
    rows = table.select(STATS_FIELDS).to_dicts()
    for row in rows:
        cohort = row.pop("cohort")
        if grouping in {"cohort", "form_cohort"}:
            row["cohort"] = f"{cohort:%Y-%m}" if cohort is not None else None
        if grouping not in {"category", "form_category"}:
            row["category"] = "all categories"
    return rows


def stale_notice(rows: list[dict[str, Any]], stale_after_days: int) -> str | None:
    """A sentence about the stale pending cases behind these rows, or None when there are none."""
    n_stale = sum(int(row.get("n_stale") or 0) for row in rows)
    if not n_stale:
        return None
    return (
        f"{n_stale} pending case{'s' if n_stale != 1 else ''} in these rows had not been seen for "
        f"more than {stale_after_days} days before the data ends: each counts as waiting only "
        "until it was last seen (censored there), not until today"
    )


def blank_suppressed(table: pl.DataFrame) -> pl.DataFrame:
    """Empty every figure and count of a suppressed row (the snapshot already does; be sure)."""
    return table.with_columns(
        [pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c)
         for c in table.columns if c not in _KEYS and c in STATS_FIELDS]
    )
