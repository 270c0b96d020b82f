"""Which groups may be published: k contributors, no dominant submission, no subtraction.

Three rules, applied to every statistics table by its dimension columns, after the figures
are computed and before anything is published:

1. **k contributors.** A group needs at least k distinct contributors: a verified or
   operator case is its own contributor, self-reported cases count once per submission.
   Eight made-up rows in one submission therefore never lift a 2-case group over k.
2. **No dominant submission.** No single submission of several cases may carry more than
   `max_share` of a published group's cases (TIMELINES_MAX_CONTRIBUTOR_SHARE).
3. **Complementary suppression.** Where a published total (all offices, all filing months)
   has parts (one office, one month), the total minus its published parts must not reveal
   1..k-1 of anything: cases, decided, pending or outcome counts. While it would, the
   smallest published part is suppressed as well; a hidden total with every part published
   gets one part hidden too. This runs to a fixed point, since one row can be a part in one
   relation and a total in another.

Suppressed rows keep their counts in the private database; publishing blanks them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl

# Key columns another analysis may add to the statistics tables; relations hold within them.
EXTRA_KEYS: tuple[str, ...] = ("processing", "category", "entry")
DEFAULT_MAX_SHARE = 0.25


@dataclass(frozen=True)
class Relation:
    """Rows matching `total` are the sum of the rows matching `parts` that agree on `on`."""

    total: pl.Expr
    parts: pl.Expr
    on: tuple[str, ...]
    free: tuple[str, ...] = ()  # extra key columns the parts differ in (not matched)


def outcome_counts(table: pl.DataFrame) -> pl.DataFrame:
    """Add the counts that published rates imply (approvals = rate x decided, ...)."""
    derived = {"_approved": ("approval_rate", "n_decided"), "_denied": ("denial_rate", "n_decided"),
               "_rfe": ("rfe_rate", "n_cases"), "_transferred": ("transfer_rate", "n_cases")}
    return table.with_columns(
        (pl.col(rate) * pl.col(base)).round(0).fill_null(0).cast(pl.Int64).alias(name)
        for name, (rate, base) in derived.items()
        if rate in table.columns and base in table.columns
    )


def count_columns(table: pl.DataFrame) -> list[str]:
    """The count columns of a statistics table a difference could reveal."""
    names = ("n_cases", "n_decided", "n_pending", "n_pending_end", "n_at_risk",
             "_approved", "_denied", "_rfe", "_transferred")
    return [c for c in names if c in table.columns]


def _groups(table: pl.DataFrame, relation: Relation) -> list[tuple[int, list[int]]]:
    """(total row, part rows) for every total matched by the relation."""
    on = [c for c in dict.fromkeys((*relation.on, *EXTRA_KEYS))
          if c in table.columns and c not in relation.free]
    indexed = table.with_row_index("_row")
    try:
        totals = indexed.filter(relation.total)
        parts = indexed.filter(relation.parts)
    except pl.exceptions.ColumnNotFoundError:  # a table without that dimension
        return []
    if totals.height == 0:
        return []
    by_key: dict[tuple[object, ...], list[int]] = defaultdict(list)
    for row in parts.select(*on, "_row").iter_rows():
        by_key[tuple(row[:-1])].append(int(row[-1]))
    return [(int(row[-1]), by_key.get(tuple(row[:-1]), []))
            for row in totals.select(*on, "_row").iter_rows()]


def complementary(
    table: pl.DataFrame, relations: Iterable[Relation], k: int, suppressed: str = "suppressed"
) -> pl.Series:
    """The suppressed flags after complementary suppression (see the module's rule 3)."""
    if table.height == 0:
        return table[suppressed] if suppressed in table.columns else pl.Series(suppressed, [], pl.Boolean)
    counted = outcome_counts(table)
    columns = count_columns(counted)
    values = [[int(v or 0) for v in row] for row in counted.select(columns).iter_rows()]
    size = [row[0] for row in values]
    hidden = [bool(v) for v in table[suppressed].to_list()]
    groups = [g for relation in relations for g in _groups(table, relation)]
    changed = True
    while changed:
        changed = False
        for total, parts in groups:
            if not parts:
                continue
            shown = [p for p in parts if not hidden[p]]
            if hidden[total]:
                if len(shown) == len(parts):  # the total would be the sum of its parts
                    hidden[min(shown, key=lambda p: (size[p], p))] = True
                    changed = True
                continue
            if not shown:
                continue
            residual = [values[total][i] - sum(values[p][i] for p in shown)
                        for i in range(len(columns))]
            if any(0 < r < k for r in residual):
                hidden[min(shown, key=lambda p: (size[p], p))] = True
                changed = True
    return pl.Series(suppressed, hidden, dtype=pl.Boolean)


def leaks(table: pl.DataFrame, relations: Iterable[Relation], k: int) -> list[str]:
    """Every published difference that reveals 1..k-1 (for tests and checks): empty if none."""
    counted = outcome_counts(table)
    columns = count_columns(counted)
    values = [[int(v or 0) for v in row] for row in counted.select(columns).iter_rows()]
    hidden = [bool(v) for v in table["suppressed"].to_list()]
    found: list[str] = []
    for relation in relations:
        for total, parts in _groups(table, relation):
            shown = [p for p in parts if not hidden[p]]
            if not parts:
                continue
            if hidden[total] and len(shown) == len(parts):
                found.append(f"row {total}: hidden total is the sum of its published parts")
            if hidden[total] or not shown:
                continue
            for i, column in enumerate(columns):
                residual = values[total][i] - sum(values[p][i] for p in shown)
                if 0 < residual < k:
                    found.append(f"row {total}: {column} minus published parts = {residual}")
    return found


def contributor_counts(
    cases: pl.DataFrame, keys: Sequence[str], contributor: str = "contributor"
) -> pl.DataFrame:
    """Per group: distinct contributors, verified cases and the largest contributor's share."""
    keys = list(keys)
    if "verified" not in cases.columns:
        cases = cases.with_columns(pl.lit(False).alias("verified"))
    per = cases.group_by([*keys, contributor]).agg(pl.len().alias("_n"),
                                                    pl.col("verified").sum().alias("_v"))
    return per.group_by(keys).agg(
        pl.len().cast(pl.Int32).alias("n_contributors"),
        pl.col("_v").sum().cast(pl.Int32).alias("n_verified"),
        # one case is never "dominant": the k rule covers it; a submission of several can be
        pl.when(pl.col("_n").max() > 1).then(pl.col("_n").max() / pl.col("_n").sum())
        .otherwise(0.0).alias("max_contributor_share"),
    )


def contributor_rule(
    table: pl.DataFrame, counts: pl.DataFrame, keys: Sequence[str], k: int, max_share: float
) -> pl.DataFrame:
    """Join contributor counts to a group table and suppress groups failing rules 1 and 2.

    Adds n_contributors and n_verified; a group missing from `counts` keeps its flag.
    """
    joined = table.drop([c for c in ("n_contributors", "n_verified") if c in table.columns]).join(
        counts, on=list(keys), how="left", nulls_equal=True)
    failing = (pl.col("n_contributors") < k) | (pl.col("max_contributor_share") > max_share)
    return joined.with_columns(
        (pl.col("suppressed") | failing.fill_null(False)).alias("suppressed")
    ).drop("max_contributor_share")


def merge_small_bins(bins: pl.DataFrame, k: int) -> pl.DataFrame:
    """Histogram bins (bin_start, bin_end, status, n) with every bin's total at least k.

    Neighbouring bins are merged, from the shortest waits up, until each holds k cases; a
    last remainder under k joins the bin before it, and a histogram of fewer than k cases
    in all is hidden (empty). Within a merged bin each status is shown only with its share
    of the bin if it has at least k cases or none; smaller status counts are merged into
    the bin's other statuses under 'other'.
    """
    if bins.height == 0:
        return bins
    totals = bins.group_by("bin_start", "bin_end").agg(pl.col("n").sum()).sort("bin_start")
    if int(totals["n"].sum()) < k:
        return bins.clear()
    edges: list[tuple[int, int]] = []
    start, running = None, 0
    for bin_start, bin_end, n in totals.iter_rows():
        start = bin_start if start is None else start
        running += int(n)
        if running >= k:
            edges.append((int(start), int(bin_end)))
            start, running = None, 0
    if start is not None:  # a remainder under k joins the last full bin
        last_start, _ = edges.pop()
        edges.append((last_start, int(totals["bin_end"][-1])))
    starts = pl.DataFrame({"merged_start": [a for a, _ in edges], "merged_end": [b for _, b in edges]},
                          schema={"merged_start": pl.Int64, "merged_end": pl.Int64})
    merged = (
        bins.sort("bin_start").join_asof(starts.sort("merged_start"), left_on="bin_start",
                                         right_on="merged_start")
        .group_by("merged_start", "merged_end", "status").agg(pl.col("n").sum())
    )
    small = (pl.col("n") > 0) & (pl.col("n") < k)
    has_small = merged.group_by("merged_start").agg(small.any().alias("_small"))
    merged = merged.join(has_small, on="merged_start").with_columns(
        pl.when(pl.col("_small")).then(pl.lit("all cases")).otherwise(pl.col("status")).alias("status")
    ).group_by("merged_start", "merged_end", "status").agg(pl.col("n").sum())
    return (merged.rename({"merged_start": "bin_start", "merged_end": "bin_end"})
            .select(bins.columns).cast(bins.schema).sort("bin_start", "status"))
