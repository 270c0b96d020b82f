"""The publication rules applied to the statistics tables at the end of every refresh.

Refresh computes the figures; this pass decides which rows may be published
(`pipeline.analytics.suppression`): it tells each case's contributor and provenance, counts
distinct contributors and verified cases per group, suppresses groups that fail the
contributor rules, then runs complementary suppression over each table's totals and parts,
and writes the verified-only variant of group_stats. It works on the tables by their
dimension columns, so columns another analysis adds travel through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import duckdb
import polars as pl

from pipeline.analytics.suppression import (
    DEFAULT_MAX_SHARE,
    Relation,
    complementary,
    contributor_counts,
    contributor_rule,
)
from pipeline.store.db import query_frame

_ANNOTATE = """
UPDATE case_durations d SET provenance = c.provenance,
    contributor = CASE WHEN c.provenance = 'self_reported'
                       THEN coalesce(s.submission_id, d.case_id) ELSE d.case_id END
FROM cases c LEFT JOIN (
    SELECT case_id, min(submission_id) AS submission_id FROM submission_cases GROUP BY case_id
) s USING (case_id)
WHERE d.case_id = c.case_id
"""
_CASES = (
    "SELECT form_type, intake_office, current_office, received_month, decision_month, decided,"
    " provenance = 'verified' AS verified, contributor FROM case_durations"
)

office, grouping, basis = pl.col("office"), pl.col("grouping"), pl.col("office_basis")
GROUP_RELATIONS: tuple[Relation, ...] = (
    # all offices = sum of the offices (for each office basis); the same for filing months
    *(Relation(grouping == "form", (grouping == "office") & (basis == b), ("form_type",))
      for b in ("intake", "current")),
    *(Relation((grouping == "office") & (basis == b), (grouping == "cohort") & (basis == b),
               ("form_type", "office")) for b in ("intake", "current")),
    Relation(grouping == "form", grouping == "form_cohort", ("form_type",)),
    *(Relation(grouping == "form_cohort", (grouping == "cohort") & (basis == b),
               ("form_type", "cohort")) for b in ("intake", "current")),
    # processing 'any' = regular + premium; all categories = the sum of the categories
    Relation(pl.col("processing") == "any", pl.col("processing").is_in(["regular", "premium"]),
             ("grouping", "office_basis", "form_type", "office", "cohort"), ("processing",)),
    # a form x office row pools the categories of its per-category rows (and the form's too)
    *(Relation((grouping == "office") & (basis == b), (grouping == "category") & (basis == b),
               ("form_type", "office"), ("category",)) for b in ("intake", "current")),
    Relation(grouping == "form", grouping == "form_category", ("form_type",), ("category",)),
)
OFFICE_TOTALS: dict[str, tuple[str, ...]] = {
    "stage_stats": ("segment", "form_type"),
    "decision_trends": ("form_type", "decision_month"),
    "outcome_curves": ("form_type", "day"),
}


def office_relation(on: tuple[str, ...]) -> Relation:
    """All offices (office empty) = the sum of the office rows, within `on`."""
    return Relation(office.is_null(), office.is_not_null(), on)


def relations_of(table: str) -> tuple[Relation, ...]:
    """The totals-and-parts relations of a published statistics table (none if it has none)."""
    if table in ("group_stats", "group_stats_verified"):
        return GROUP_RELATIONS
    if table in OFFICE_TOTALS:
        return (office_relation(OFFICE_TOTALS[table]),)
    return ()


# grouping -> (office column of case_durations or None, with the filing month?)
_GROUP_KEYS: dict[str, tuple[bool, bool]] = {
    "office": (True, False), "cohort": (True, True), "form": (False, False),
    "form_cohort": (False, True),
}


def _group_contributors(cases: pl.DataFrame) -> pl.DataFrame:
    """Contributor counts for every row key of group_stats."""
    parts = []
    for name, (by_office, by_cohort) in _GROUP_KEYS.items():
        bases = {"intake": "intake_office", "current": "current_office"} if by_office else {"all": None}
        for basis_name, column in bases.items():
            keys = ["form_type", *([column] if column else []), *(["received_month"] if by_cohort else [])]
            counts = contributor_counts(cases, keys).rename(
                {**({column: "office"} if column else {}),
                 **({"received_month": "cohort"} if by_cohort else {})})
            parts.append(counts.with_columns(
                pl.lit(name).alias("grouping"), pl.lit(basis_name).alias("office_basis"),
                *([] if column else [pl.lit(None, dtype=pl.String).alias("office")]),
                *([] if by_cohort else [pl.lit(None, dtype=pl.Date).alias("cohort")]),
            ).select("grouping", "office_basis", "form_type", "office", "cohort",
                     "n_contributors", "n_verified", "max_contributor_share"))
    return pl.concat(parts)


GROUP_KEYS = ["grouping", "office_basis", "form_type", "office", "cohort"]


def apply_group_rules(
    groups: pl.DataFrame, cases: pl.DataFrame, k: int, max_share: float
) -> pl.DataFrame:
    """group_stats rows with contributor counts, the contributor rules and complementary
    suppression applied."""
    if groups.height == 0:
        return groups.with_columns(pl.lit(None, dtype=pl.Int32).alias("n_contributors"),
                                   pl.lit(None, dtype=pl.Int32).alias("n_verified"))
    ruled = contributor_rule(groups, _group_contributors(cases), GROUP_KEYS, k, max_share)
    return ruled.with_columns(complementary(ruled, GROUP_RELATIONS, k))


def _parent_failures(groups: pl.DataFrame, k: int) -> pl.DataFrame:
    """form x intake office (office empty: the form) groups that fail the contributor rules."""
    return groups.filter(
        (grouping.is_in(["office", "form"])) & basis.is_in(["intake", "all"])
        & ((pl.col("n_contributors") < k) | pl.col("n_contributors").is_null())
    ).select("form_type", "office").with_columns(pl.lit(True).alias("_parent_fails"))


def _read(con: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    return query_frame(con, f"SELECT * FROM {table}")


def _write(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    con.execute(f"DELETE FROM {table}")
    if frame.height:
        con.register("ruled_rows", frame)
        try:
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM ruled_rows")
        finally:
            con.unregister("ruled_rows")


GroupFigures = Callable[[pl.DataFrame, int, datetime], pl.DataFrame]


def apply_publication_rules(
    con: duckdb.DuckDBPyConnection, k: int, computed_at: datetime,
    grouped_statistics: GroupFigures, max_share: float = DEFAULT_MAX_SHARE,
) -> int:
    """Apply the rules to every statistics table (inside the refresh's transaction).

    `grouped_statistics` computes group_stats rows from durations (for the verified-only
    variant). Returns how many group_stats rows are suppressed.
    """
    con.execute(_ANNOTATE)
    cases = query_frame(con, _CASES)
    groups = apply_group_rules(_read(con, "group_stats"), cases, k, max_share)
    _write(con, "group_stats", groups)
    con.execute(
        "UPDATE case_stats c SET suppressed = g.suppressed, n_verified = g.n_verified,"
        " n_contributors = g.n_contributors FROM group_stats g"
        " WHERE g.grouping = 'office' AND g.office_basis = 'intake'"
        " AND g.form_type = c.form_type AND g.office = c.office"
        " AND g.processing IS NOT DISTINCT FROM c.processing"
        " AND g.category = 'all categories'")
    parents = _parent_failures(groups, k)
    for table, on in OFFICE_TOTALS.items():
        frame = _read(con, table)
        if frame.height == 0:
            continue
        if table == "decision_trends":
            decided = cases.filter(pl.col("decided") & pl.col("decision_month").is_not_null())
            counts = pl.concat([
                contributor_counts(decided, ["form_type", "intake_office", "decision_month"])
                .rename({"intake_office": "office"}),
                contributor_counts(decided, ["form_type", "decision_month"])
                .with_columns(pl.lit(None, dtype=pl.String).alias("office")),
            ], how="diagonal")
            frame = contributor_rule(frame, counts, ["form_type", "office", "decision_month"],
                                     k, max_share).drop("n_contributors", "n_verified")
        else:
            frame = frame.join(parents, on=["form_type", "office"], how="left", nulls_equal=True)
            frame = frame.with_columns(
                (pl.col("suppressed") | pl.col("_parent_fails").fill_null(False)).alias("suppressed")
            ).drop("_parent_fails")
        frame = frame.with_columns(complementary(frame, [office_relation(on)], k))
        _write(con, table, frame)
    verified_cases = query_frame(
        con, "SELECT * FROM case_durations WHERE provenance = 'verified'")
    verified = grouped_statistics(verified_cases, k, computed_at)
    verified = apply_group_rules(verified, cases.filter(pl.col("verified")), k, max_share)
    # the same columns as group_stats, whatever another analysis added to it
    con.execute("CREATE OR REPLACE TABLE group_stats_verified AS SELECT * FROM group_stats LIMIT 0")
    _write(con, "group_stats_verified", verified)
    return int(groups["suppressed"].sum()) if groups.height else 0
