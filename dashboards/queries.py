"""Cached page queries: the figures module's functions, keyed on the snapshot and the filters.

The cache key includes the snapshot folder, so a newly published snapshot is a cache miss
and never mixes with figures of the previous one. Only small aggregated results are cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import streamlit as st

from dashboards import data
from pipeline.analytics import figures
from pipeline.analytics.comparisons import (
    CohortChange,
    OfficeMedian,
    cohort_changes,
    office_medians,
)

CACHE = {"ttl": 3600, "max_entries": 256, "show_spinner": False}


def durations_of(folder: str) -> pl.DataFrame:
    """The snapshot's one-row-per-case durations table (the page checked it is published)."""
    try:
        return data.cached_parquet(str(Path(folder) / "durations.parquet"))
    except FileNotFoundError:
        raise data.SnapshotGoneError(f"snapshot {Path(folder).name} was removed") from None


@dataclass(frozen=True)
class ProcessingView:
    """Everything the processing-times page draws for one selection."""

    n_cases: int
    table: pl.DataFrame
    histogram: pl.DataFrame
    curves: pl.DataFrame
    too_small: list[str]
    group_col: str


def processing_view(durations: pl.DataFrame, selection: figures.Selection, k: int) -> ProcessingView:
    """Compute the percentile table, histogram and survival curves of a selection."""
    cases = figures.select_cases(durations, selection)
    group_col = selection.office_column
    table = figures.percentile_table(cases, group_col, k, all_label="All offices")
    if selection.office:
        table = table.filter(pl.col(group_col) == selection.office)
    curves, too_small = figures.survival_curves(cases, group_col, k)
    return ProcessingView(cases.height, table, figures.duration_histogram(cases, k=k), curves,
                          too_small, group_col)


@st.cache_data(**CACHE)  # type: ignore[call-overload, untyped-decorator]
def cached_processing_view(
    folder: str, form: str | None, office: str | None, cohort: str | None, kind: str, k: int,
    processing: str = "any", verified_only: bool = False,
) -> ProcessingView:
    """processing_view, cached per snapshot and selection."""
    selection = figures.Selection(form, office, cohort, kind, verified_only, processing)
    return processing_view(durations_of(folder), selection, k)


@dataclass(frozen=True)
class TrendView:
    """The trends page's two series for one selection."""

    n_cases: int
    cohorts: pl.DataFrame
    decisions: pl.DataFrame


def trend_view(
    durations: pl.DataFrame, selection: figures.Selection, k: int, period: str = "month"
) -> TrendView:
    """Compute the filing-cohort and decision-period series of a selection."""
    cases = figures.select_cases(durations, selection)
    return TrendView(cases.height, figures.cohort_trend(cases, k, period),
                     figures.decision_trend(cases, k, period))


@st.cache_data(**CACHE)  # type: ignore[call-overload, untyped-decorator]
def cached_trend_view(
    folder: str, form: str | None, office: str | None, kind: str, k: int, period: str
) -> TrendView:
    """trend_view, cached per snapshot, selection and period."""
    return trend_view(durations_of(folder), figures.Selection(form, office, None, kind), k, period)


@dataclass(frozen=True)
class OverviewView:
    """The overview page's per-form waits and latest decisions."""

    waits: pl.DataFrame
    latest: pl.DataFrame


def overview_view(durations: pl.DataFrame, k: int) -> OverviewView:
    """Compute typical waits per form and the latest month's decisions."""
    return OverviewView(figures.typical_waits(durations, k), figures.latest_decisions(durations, k))


@st.cache_data(**CACHE)  # type: ignore[call-overload, untyped-decorator]
def cached_overview_view(folder: str, k: int) -> OverviewView:
    """overview_view, cached per snapshot."""
    return overview_view(durations_of(folder), k)


@st.cache_data(**CACHE)  # type: ignore[call-overload, untyped-decorator]
def cached_cohort_changes(folder: str, form: str, as_of: date, k: int) -> list[CohortChange]:
    """Recent filing months against a year earlier, all offices then each, cached."""
    cases = figures.select_cases(durations_of(folder), figures.Selection(form=form))
    return cohort_changes(cases, as_of, k)


@st.cache_data(**CACHE)  # type: ignore[call-overload, untyped-decorator]
def cached_office_medians(folder: str, form: str, cohort: str | None, kind: str,
                          k: int) -> list[OfficeMedian]:
    """Median wait per office with its interval, for one form (and filing cohort), cached."""
    selection = figures.Selection(form=form, cohort=cohort, office_kind=kind)
    return office_medians(figures.select_cases(durations_of(folder), selection), k,
                          selection.office_column)
