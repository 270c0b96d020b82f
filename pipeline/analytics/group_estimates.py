"""Vectorized counterparts of `survival.summarize` and `competing.proportion_ci`, many groups at once.

A refresh summarizes thousands of groups (form x office x filing month, twice over for the
intake and the current office); one Python call per group would dominate its run time.
These functions compute the same figures for every group in a few polars passes; the tests
check them against the one-group functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import NormalDist

import polars as pl

from pipeline.analytics.survival import kaplan_meier_by_group

# Same slack as survival._LEVEL_TOLERANCE: S(t) = 0.5 exactly must count as reached.
_LEVEL_TOLERANCE = 1e-10
QUANTILES: tuple[tuple[str, float], ...] = (("median", 0.5), ("p80", 0.8), ("p90", 0.9))
SUMMARY_COLUMNS: tuple[str, ...] = (
    "n_cases", "n_decided", "n_pending",
    *(f"{name}_{part}" for name, _ in QUANTILES for part in ("days", "ci_low", "ci_high")),
    "naive_median_days",
)


def summarize_by_group(
    frame: pl.DataFrame,
    group_cols: Sequence[str],
    duration_col: str = "duration_days",
    observed_col: str = "decided",
    alpha: float = 0.05,
    entry_col: str | None = None,
    pool: tuple[str, str] | None = None,
) -> pl.DataFrame:
    """Return `summarize` for every group: counts, KM quantiles with intervals, naive median.

    Columns: the group columns, then SUMMARY_COLUMNS (n_cases for summarize's n). A quantile
    the curve (or a band) never reaches is null, as summarize's None. `entry_col` gives each
    case's entry day (delayed entry), as summarize's entry. `pool` = (group column, label)
    adds the groups pooled over that column under `label`, as if the cases were given twice.
    """
    if not group_cols:
        raise ValueError("summarize_by_group needs at least one group column")
    keys = list(group_cols)
    observed = pl.col(observed_col)
    aggregates = (
        pl.len().cast(pl.Int32).alias("n_cases"),
        observed.cast(pl.Int32).sum().alias("n_decided"),
        pl.col(duration_col).filter(observed).cast(pl.Float64).median().alias("naive_median_days"),
    )
    counts = frame.group_by(keys).agg(*aggregates)
    if pool is not None:
        relabeled = frame.select(*keys, duration_col, observed_col).with_columns(
            pl.lit(pool[1]).cast(frame.schema[pool[0]]).alias(pool[0])
        )
        counts = pl.concat([counts, relabeled.group_by(keys).agg(*aggregates)])
    counts = counts.with_columns((pl.col("n_cases") - pl.col("n_decided")).alias("n_pending"))
    if frame.height == 0:
        return counts.with_columns(
            [pl.lit(None, dtype=pl.Float64).alias(c) for c in SUMMARY_COLUMNS[3:-1]]
        ).select(*keys, *SUMMARY_COLUMNS)
    curves = kaplan_meier_by_group(
        frame, keys, duration_col, observed_col, alpha, entry_col, pool
    )
    first_time: list[pl.Expr] = []
    for name, q in QUANTILES:
        level = 1.0 - q + _LEVEL_TOLERANCE
        for part, column in (("days", "survival"), ("ci_low", "ci_low"), ("ci_high", "ci_high")):
            first_time.append(
                pl.col("time").filter(pl.col(column) <= level).min().alias(f"{name}_{part}")
            )
    quantiles = curves.group_by(keys).agg(first_time)
    return counts.join(quantiles, on=keys, how="left", nulls_equal=True).select(
        *keys, *SUMMARY_COLUMNS
    )


def wilson_exprs(
    successes: pl.Expr, n: pl.Expr, name: str, alpha: float = 0.05
) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Return expressions for (share, low, high) of the Wilson interval, null when n is 0.

    The same interval as `competing.proportion_ci`, whose docstring says why Wilson.
    """
    z = NormalDist().inv_cdf(1.0 - alpha / 2.0)
    k = successes.cast(pl.Float64)
    total = n.cast(pl.Float64)
    p = k / total
    z2n = z * z / total
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * (p * (1.0 - p) / total + z2n / (4.0 * total)).sqrt()
    empty = total <= 0
    share = pl.when(empty).then(None).otherwise(p)
    low = (
        pl.when(empty).then(None).when(k <= 0).then(0.0)
        .otherwise(pl.max_horizontal(pl.lit(0.0), centre - half))
    )
    high = (
        pl.when(empty).then(None).when(k >= total).then(1.0)
        .otherwise(pl.min_horizontal(pl.lit(1.0), centre + half))
    )
    return share.alias(f"{name}_rate"), low.alias(f"{name}_ci_low"), high.alias(f"{name}_ci_high")
