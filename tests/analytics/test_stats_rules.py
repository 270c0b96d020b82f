"""The rules of issue 11 through refresh: processing never pooled, delayed entry in the stage
times and outcome curves, stale pending cases counted and censored at their last sighting."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from lifelines import KaplanMeierFitter

from pipeline.analytics.competing import cumulative_incidence
from pipeline.jobs import refresh as refresh_job
from pipeline.settings import Settings
from pipeline.store.db import connect, query_frame
from tests.support.analytics_data import Case, store_cases


def _table(settings: Settings, sql: str) -> pl.DataFrame:
    con = connect(settings.database_path, read_only=True)
    try:
        return query_frame(con, sql)
    finally:
        con.close()


def _tracked_cases(n: int, seed: int) -> list[Case]:
    """I-485 cases, biometrics then approval; half tracked from a day after receipt."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        bio = int(rng.integers(20, 120))
        decided = int(rng.integers(150, 500))
        seen = int(rng.integers(100, 520))
        events = [(bio, "biometrics")] if bio <= seen else []
        events += [(decided, "approved")] if decided <= seen else []
        tracked = int(rng.integers(1, min(bio, seen))) if rng.random() < 0.5 else None
        cases.append(Case(f"c{i}", office="NBC", seen_days=seen, events=events,
                          tracked_days=tracked))
    return cases


def test_stage_times_put_each_case_at_risk_from_when_it_was_tracked(settings: Settings) -> None:
    cases = _tracked_cases(300, 3)
    store_cases(settings, cases)
    refresh_job.refresh(settings)
    [row] = _table(settings, "SELECT * FROM stage_stats WHERE segment = 'receipt_to_biometrics'"
                             " AND office = 'NBC' AND processing = 'regular'").to_dicts()
    durations, decided, entry = [], [], []
    for case in cases:
        bio = next((d for d, s in case.events if s == "biometrics"), None)
        end = bio if bio is not None else max([case.seen_days, *(d for d, _ in case.events)])
        durations.append(end)
        decided.append(bio is not None)
        entry.append(case.tracked_days or 0)
    kmf = KaplanMeierFitter().fit(durations, decided, entry=entry)
    survival = kmf.survival_function_.iloc[:, 0]
    assert row["median_days"] == float(survival.index[survival.to_numpy() <= 0.5 + 1e-10][0])
    plain = KaplanMeierFitter().fit(durations, decided).median_survival_time_
    assert row["median_days"] != plain


def test_outcome_curves_use_delayed_entry(settings: Settings) -> None:
    cases = _tracked_cases(300, 4)
    store_cases(settings, cases)
    refresh_job.refresh(settings)
    curve = _table(settings, "SELECT * FROM outcome_curves WHERE office = 'NBC'"
                             " AND processing = 'regular' ORDER BY day")
    durations = _table(settings, "SELECT duration_days, entry_days, outcome FROM case_durations")
    codes = (durations["outcome"] == "approved").cast(pl.Int64).to_numpy()
    expected = cumulative_incidence(durations["duration_days"].to_numpy(), codes, 1,
                                    entry=durations["entry_days"].to_numpy())
    for row in curve.to_dicts():
        j = int(np.searchsorted(expected.timeline, row["day"], side="right") - 1)
        assert row["approved_share"] == pytest.approx(float(expected.cif[j]), abs=1e-12)
    assert int(durations["entry_days"].gt(0).sum()) > 100


def test_premium_cases_never_enter_a_regular_row(settings: Settings) -> None:
    regular = [Case(f"r{i}", form="I-140", office="TSC", events=[(150 + i, "approved")])
               for i in range(15)]
    premium = [Case(f"p{i}", form="I-140", office="TSC", processing="premium",
                    events=[(8 + i % 5, "approved")]) for i in range(15)]
    store_cases(settings, regular + premium)
    refresh_job.refresh(settings)
    rows = {r["processing"]: r for r in _table(
        settings, "SELECT * FROM group_stats WHERE grouping = 'office'"
                  " AND office_basis = 'intake'").to_dicts()}
    assert (rows["regular"]["n_cases"], rows["regular"]["median_days"]) == (15, 157)
    assert (rows["premium"]["n_cases"], rows["premium"]["median_days"]) == (15, 10)
    assert rows["any"]["n_cases"] == 30  # pooled only in the row that says so
    stages = _table(settings, "SELECT DISTINCT processing FROM stage_stats")
    assert set(stages["processing"]) == {"regular", "premium", "any"}


@pytest.mark.parametrize(("stale_after", "n_stale"), [(180, 4), (30, 10)])
def test_stale_pending_cases_are_counted_and_censored_at_their_last_sighting(
    settings: Settings, stale_after: int, n_stale: int
) -> None:
    # 10 decided cases seen until day 400; 4 pending last seen on day 100, 6 on day 350.
    cases = [Case(f"d{i}", events=[(200 + i, "approved")], seen_days=400) for i in range(10)]
    cases += [Case(f"old{i}", seen_days=100) for i in range(4)]
    cases += [Case(f"new{i}", seen_days=350) for i in range(6)]
    store_cases(settings, cases)
    refresh_job.refresh(Settings(home=settings.home, stale_after_days=stale_after))
    durations = _table(settings, "SELECT case_id, duration_days, stale FROM case_durations")
    old = durations.filter(pl.col("case_id").str.starts_with("old"))
    assert old["duration_days"].to_list() == [100] * 4  # censored where last seen, not later
    assert int(durations["stale"].sum()) == n_stale
    [row] = _table(settings, "SELECT n_stale FROM group_stats WHERE grouping = 'office'"
                             " AND office_basis = 'intake' AND processing = 'regular'").to_dicts()
    assert row["n_stale"] == n_stale


def test_pooled_groups_from_counts_equal_the_cases_given_twice() -> None:
    from pipeline.analytics.group_estimates import summarize_by_group

    rng = np.random.default_rng(12)
    n = 4000
    frame = pl.DataFrame({
        "form": rng.choice(["I-140", "I-485"], n),
        "processing": rng.choice(["regular", "premium"], n, p=[0.8, 0.2]),
        "days": rng.integers(1, 400, n), "decided": rng.random(n) < 0.6,
        "entry": rng.integers(0, 50, n) * (rng.random(n) < 0.3),
    }).with_columns(pl.min_horizontal("entry", "days").alias("entry"))
    keys = ["form", "processing"]
    doubled = pl.concat([frame, frame.with_columns(pl.lit("any").alias("processing"))])
    expected = summarize_by_group(doubled, keys, "days", "decided", entry_col="entry").sort(keys)
    pooled = summarize_by_group(frame, keys, "days", "decided", entry_col="entry",
                                pool=("processing", "any")).sort(keys)
    assert pooled.equals(expected)
    assert set(pooled["processing"]) == {"regular", "premium", "any"}
