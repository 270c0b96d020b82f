"""The dashboard's figures: filters, suppression under k, curves, histograms and trends."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from dashboards.formatting import days_with_interval, percentile_cells
from pipeline.analytics import figures
from pipeline.analytics.survival import kaplan_meier, survival_quantile


def cases(rows: list[tuple[str, str, str, date, int, bool]]) -> pl.DataFrame:
    """Durations rows from (form, intake office, current office, received month, days, decided)."""
    return pl.DataFrame(
        [
            {"form_type": f, "intake_office": o, "current_office": c, "received_month": m,
             "decision_month": None, "outcome": "approved" if d else "pending",
             "duration_days": n, "decided": d, "had_rfe": False, "had_interview": False,
             "transferred": o != c, "premium": None, "synthetic": True}
            for f, o, c, m, n, d in rows
        ],
        schema_overrides={"decision_month": pl.Date, "premium": pl.Boolean},
    )


def random_cases(n: int, seed: int = 1, office: str = "NSC", form: str = "I-485") -> pl.DataFrame:
    """n cases with exponential waits, a third still pending."""
    rng = np.random.default_rng(seed)
    months = [date(2024 + i % 2, 1 + i % 12, 1) for i in range(n)]
    return cases([
        (form, office, office, months[i], int(rng.exponential(200)), bool(rng.random() > 0.33))
        for i in range(n)
    ])


@pytest.mark.parametrize(
    ("cohort", "start", "end"),
    [
        ("2025", date(2025, 1, 1), date(2026, 1, 1)),
        ("2025-Q1", date(2025, 1, 1), date(2025, 4, 1)),
        ("2025-Q2", date(2025, 4, 1), date(2025, 7, 1)),
        ("2025-Q4", date(2025, 10, 1), date(2026, 1, 1)),
    ],
)
def test_cohort_bounds(cohort: str, start: date, end: date) -> None:
    assert figures.cohort_bounds(cohort) == (start, end)


@pytest.mark.parametrize("bad", ["25", "2025-Q5", "2025Q1", "latest"])
def test_a_malformed_cohort_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="year like 2025"):
        figures.cohort_bounds(bad)


def test_cohort_labels_in_words() -> None:
    assert figures.cohort_label("2025") == "filed in 2025"
    assert figures.cohort_label("2025-Q2") == "filed Apr–Jun 2025"


def test_cohort_options_are_years_then_their_quarters_newest_first() -> None:
    frame = cases([("I-485", "NSC", "NSC", date(2024, 11, 1), 10, True),
                   ("I-485", "NSC", "NSC", date(2025, 2, 1), 10, True)])
    assert figures.cohort_options(frame) == ["2025", "2025-Q1", "2024", "2024-Q4"]


def test_selection_filters_form_office_kind_and_cohort() -> None:
    frame = cases([
        ("I-485", "NSC", "TSC", date(2025, 2, 1), 10, True),
        ("I-485", "NSC", "NSC", date(2024, 2, 1), 10, True),
        ("I-765", "NSC", "NSC", date(2025, 2, 1), 10, True),
    ])
    by_intake = figures.Selection("I-485", "NSC", None, "intake")
    by_current = figures.Selection("I-485", "TSC", "2025-Q1", "current")
    assert figures.select_cases(frame, by_intake).height == 2
    assert figures.select_cases(frame, by_current)["current_office"].to_list() == ["TSC"]


def test_percentile_table_suppresses_groups_under_k() -> None:
    frame = pl.concat([random_cases(40, office="NSC"), random_cases(30, office="VSC"),
                       random_cases(6, office="TSC")])
    table = figures.percentile_table(frame, "intake_office", 10, all_label="All offices")
    rows = {r["intake_office"]: r for r in table.iter_rows(named=True)}
    assert rows["All offices"]["n_cases"] == 76
    assert rows["TSC"]["suppressed"] and rows["TSC"]["median_days"] is None
    # All offices minus NSC and VSC would give TSC's 6: the smaller of the two is hidden too
    assert rows["VSC"]["suppressed"] and rows["VSC"]["n_cases"] is None
    shown = [r for r in rows.values() if r["intake_office"] != "All offices" and not r["suppressed"]]
    for column in ("n_cases", "n_decided", "n_pending"):
        residual = rows["All offices"][column] - sum(r[column] for r in shown)
        assert residual == 0 or residual >= 10, (column, residual)
    cells = percentile_cells(table, "intake_office", "office", 10)
    tsc = cells.filter(pl.col("office") == "TSC").row(0, named=True)
    assert tsc["median days (95% CI)"] == "too few cases to publish"
    assert tsc["cases"] == "fewer than 10"
    assert not any(ch.isdigit() for v in tsc.values() for ch in v if v != "fewer than 10")


def test_percentile_table_matches_kaplan_meier() -> None:
    frame = random_cases(200, seed=3)
    row = figures.percentile_table(frame, "intake_office", 10).row(0, named=True)
    km = kaplan_meier(frame["duration_days"].to_numpy(), frame["decided"].to_numpy())
    median = survival_quantile(km, 0.5)
    assert (row["median_days"], row["median_ci_low"], row["median_ci_high"]) == (
        median.value, median.ci_low, median.ci_high)


def test_survival_curves_leave_out_small_groups_and_thin_tails() -> None:
    frame = pl.concat([random_cases(300, office="NSC"), random_cases(5, office="TSC")])
    curves, too_small = figures.survival_curves(frame, "intake_office", 10, max_points=50)
    assert too_small == ["TSC"]
    assert curves["intake_office"].unique().to_list() == ["NSC"]
    assert curves["at_risk"].min() >= 10, "no point rests on fewer than k cases"
    assert curves.height <= 52
    assert curves["survival"].is_sorted(descending=True)
    assert (curves["ci_low"] <= curves["survival"]).all() and (curves["survival"] <= curves["ci_high"]).all()


def test_curve_quantiles_equal_survival_quantile() -> None:
    frame = random_cases(150, seed=5)
    from pipeline.analytics.survival import kaplan_meier_by_group

    curves = kaplan_meier_by_group(frame, ["form_type"], "duration_days", "decided")
    got = figures.curve_quantiles(curves, ["form_type"], 0.8).row(0, named=True)
    km = kaplan_meier(frame["duration_days"].to_numpy(), frame["decided"].to_numpy())
    expected = survival_quantile(km, 0.8)
    assert (got["value"], got["ci_low"], got["ci_high"]) == (
        expected.value, expected.ci_low, expected.ci_high)


def test_histogram_counts_every_case_once_by_status() -> None:
    frame = random_cases(500, seed=2)
    bins = figures.duration_histogram(frame)
    assert bins["n"].sum() == 500
    decided = bins.filter(pl.col("status") == "decided")["n"].sum()
    assert decided == frame["decided"].sum()
    widths = (bins["bin_end"] - bins["bin_start"]).unique().to_list()
    assert len(widths) == 1 and widths[0] in (7, 14, 30, 60, 90)


@pytest.mark.parametrize(("span", "width"), [(20, 1), (200, 7), (400, 14), (900, 30), (2000, 60)])
def test_nice_bin_width(span: int, width: int) -> None:
    assert figures.nice_bin_width(span, 36) == width


def test_cohort_trend_suppresses_thin_months_and_keeps_counts_of_the_rest() -> None:
    thick = cases([("I-485", "NSC", "NSC", date(2025, 1, 1), 30 + i, i % 2 == 0) for i in range(20)])
    thin = cases([("I-485", "NSC", "NSC", date(2025, 2, 1), 30, True) for _ in range(3)])
    trend = figures.cohort_trend(pl.concat([thick, thin]), 10)
    january, february = trend.rows(named=True)
    assert not january["suppressed"] and january["n_pending"] == 10
    assert january["pending_share"] == pytest.approx(0.5)
    assert february["suppressed"] and february["median_days"] is None and february["n_pending"] is None


def test_quarters_gather_months() -> None:
    frame = cases([("I-485", "NSC", "NSC", date(2025, m, 1), 30, True) for m in (1, 2, 3) for _ in range(4)])
    assert figures.cohort_trend(frame, 10)["suppressed"].all()
    quarterly = figures.cohort_trend(frame, 10, "quarter")
    assert quarterly["received_month"].to_list() == [date(2025, 1, 1)]
    assert quarterly["n_cases"].to_list() == [12] and not quarterly["suppressed"][0]


def test_decision_trend_counts_decisions_per_month() -> None:
    frame = random_cases(100).with_columns(
        pl.when(pl.col("decided")).then(pl.lit(date(2025, 5, 1))).otherwise(None).alias("decision_month")
    )
    trend = figures.decision_trend(frame, 10)
    assert trend["n_decisions"].to_list() == [int(frame["decided"].sum())]


def test_days_with_interval_formats_open_ends() -> None:
    assert days_with_interval(183.0, 170.0, 195.0) == "183 (170–195)"
    assert days_with_interval(183.0, 170.0, None) == "183 (170–?)"
    assert days_with_interval(None, None, None) == "not reached yet"
