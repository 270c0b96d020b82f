"""Property: on random data, no difference of published figures yields 1..k-1.

For every total and its parts (all offices and the offices, for both office bases; a form and
its filing months; a month over all offices and its offices), published total minus its
published parts is 0 or at least k, for cases, decided, pending and outcome counts; a hidden
total is never the sum of published parts; every published group has k contributors and no
submission of several cases holds more than the documented share of it.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.analytics import figures
from pipeline.analytics.disclosure import GROUP_RELATIONS, apply_group_rules
from pipeline.analytics.stats import grouped_statistics
from pipeline.analytics.suppression import DEFAULT_MAX_SHARE, Relation, leaks

K = 5
MONTHS = [date(2025, m, 1) for m in (1, 2, 3)]
case = st.tuples(
    st.sampled_from(["I-485", "I-765"]), st.sampled_from(["NSC", "TSC", "VSC", "NBC"]),
    st.sampled_from(["NSC", "TSC", "VSC", "NBC"]), st.sampled_from(MONTHS),
    st.integers(1, 400), st.sampled_from(["approved", "denied", "pending", "withdrawn"]),
    st.booleans(), st.booleans(), st.integers(0, 6),
    st.sampled_from(["regular", "premium"]), st.sampled_from(["E21", "E11", None]),
)


SCHEMA = {"form_type": pl.String, "intake_office": pl.String, "current_office": pl.String,
          "received_month": pl.Date, "decision_month": pl.Date, "outcome": pl.String,
          "duration_days": pl.Int64, "decided": pl.Boolean, "had_rfe": pl.Boolean,
          "transferred": pl.Boolean, "synthetic": pl.Boolean, "contributor": pl.String,
          "verified": pl.Boolean, "processing": pl.String, "category": pl.String}


def _durations(rows: list[tuple[object, ...]]) -> pl.DataFrame:
    records = []
    for i, (form, intake, current, month, days, outcome, rfe, moved, team, processing,
            category) in enumerate(rows):
        records.append({
            "form_type": form, "intake_office": intake,
            "current_office": current if moved else intake, "received_month": month,
            "decision_month": month if outcome in ("approved", "denied") else None,
            "outcome": outcome, "duration_days": days,
            "decided": outcome in ("approved", "denied"), "had_rfe": rfe,
            "transferred": bool(moved and current != intake), "synthetic": False,
            # team 0: a case of its own; 1..6: self-reported cases of one of six submissions
            "contributor": f"c{i}" if team == 0 else f"s{team}", "verified": team == 0,
            "processing": processing, "category": category,
        })
    return pl.DataFrame(records, schema=SCHEMA)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(case, min_size=0, max_size=160))
def test_no_published_difference_reveals_a_small_count(rows: list[tuple[object, ...]]) -> None:
    durations = _durations(rows)
    groups = grouped_statistics(durations, K, datetime(2026, 1, 1))
    ruled = apply_group_rules(groups, durations, K, DEFAULT_MAX_SHARE)
    assert leaks(ruled, GROUP_RELATIONS, K) == []
    published = ruled.filter(~pl.col("suppressed"))
    assert (published["n_contributors"] >= K).all()
    assert (published["n_cases"] >= K).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(case, min_size=0, max_size=120))
def test_the_dashboard_table_never_reveals_an_office_by_subtraction(
    rows: list[tuple[object, ...]]
) -> None:
    durations = _durations(rows)
    table = figures.percentile_table(durations, "intake_office", K, all_label="All offices")
    if table.height == 0:
        return
    relation = Relation(pl.col("intake_office") == "All offices",
                        pl.col("intake_office") != "All offices", ())
    # counts of suppressed rows are blanked: put the true ones back to test what a reader sees
    truth = figures.group_statistics(durations, ["intake_office"], 1, datetime(2026, 1, 1))
    everyone = figures.group_statistics(
        durations.with_columns(pl.lit("All offices").alias("intake_office")), ["intake_office"],
        1, datetime(2026, 1, 1))
    full = pl.concat([everyone, truth]).drop("suppressed").join(
        table.select("intake_office", "suppressed"), on="intake_office")
    assert leaks(full, [relation], K) == []
