"""Statistics tables: vectorized estimates equal the one-group ones, and `timelines stats`
equals lifelines on the very rows it was computed from."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from lifelines import KaplanMeierFitter
from typer.testing import CliRunner

from pipeline.analytics.competing import cumulative_incidence, proportion_ci
from pipeline.analytics.group_estimates import summarize_by_group, wilson_exprs
from pipeline.analytics.survival import summarize
from pipeline.analytics.trends import PENDING_AT_MONTH_END_SQL
from pipeline.jobs import refresh as refresh_job
from pipeline.settings import Settings
from pipeline.store.db import connect, query_frame
from tests.support.analytics_data import Case, build_sample_home, store_cases
from timelines.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def sample_home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One synthetic sample run through ingest, refresh and publish for the whole module."""
    return build_sample_home(tmp_path_factory.mktemp("stats") / "home")


def _use(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setenv("TIMELINES_HOME", str(settings.home))


def _stats_json(*args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["stats", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.output)
    return rows


# --- vectorized == one group at a time ------------------------------------------------------


def _random_groups(seed: int, n: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    wait = np.ceil(rng.lognormal(math.log(150), 0.6, n))
    followed = np.floor(rng.uniform(0, 400, n))
    groups = rng.choice(["a", "b", "c"], n)
    frame = pl.DataFrame({"g": groups, "days": np.minimum(wait, followed).astype(np.int64),
                          "done": wait <= followed})
    # a group with nobody decided and one with everybody decided
    edge = pl.DataFrame({"g": [*["pending"] * 5, *["done"] * 4],
                         "days": [10, 20, 30, 40, 50, 5, 5, 9, 12],
                         "done": [*[False] * 5, *[True] * 4]})
    return pl.concat([frame, edge])


def test_summaries_by_group_equal_summarize_of_each_group() -> None:
    frame = _random_groups(3, 1200)
    table = summarize_by_group(frame, ["g"], "days", "done")
    assert table.height == frame["g"].n_unique()
    for row in table.iter_rows(named=True):
        part = frame.filter(pl.col("g") == row["g"])
        expected = summarize(part["days"].to_numpy(), part["done"].to_numpy())
        assert row["n_cases"] == expected["n"]
        for key, value in expected.items():
            if key != "n":
                assert row[key] == value, (row["g"], key)


@pytest.mark.parametrize(("successes", "n"), [(0, 12), (3, 12), (12, 12), (47, 300), (1, 1)])
def test_wilson_expressions_equal_proportion_ci(successes: int, n: int) -> None:
    frame = pl.DataFrame({"k": [successes], "n": [n]})
    row = frame.select(*wilson_exprs(pl.col("k"), pl.col("n"), "x")).row(0)
    assert row == pytest.approx(proportion_ci(successes, n))


def test_wilson_of_no_cases_is_empty() -> None:
    row = pl.DataFrame({"k": [0], "n": [0]}).select(*wilson_exprs(pl.col("k"), pl.col("n"), "x"))
    assert row.row(0) == (None, None, None)


# --- end to end: sample -> ingest -> refresh -> stats JSON == lifelines -----------------------


def _lifelines_quantile(kmf: KaplanMeierFitter, q: float) -> tuple[float | None, ...]:
    """The first day lifelines' curve (and each band) is at or below 1 - q.

    Read off lifelines' own survival function and bands, with the one convention we keep on
    purpose (see test_survival): a curve at exactly 1 - q, up to float rounding, has reached
    it, where lifelines' percentile() can answer a day late on S = 0.5000000000000001.
    """
    level = 1 - q + 1e-10
    curves = [kmf.survival_function_.iloc[:, 0], kmf.confidence_interval_.iloc[:, 0],
              kmf.confidence_interval_.iloc[:, 1]]
    return tuple(
        float(curve.index[curve.to_numpy() <= level][0]) if (curve <= level).any() else None
        for curve in curves
    )


def test_stats_json_equals_lifelines_on_the_case_durations_rows(
    sample_home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, sample_home)
    rows = _stats_json()
    con = connect(sample_home.database_path, read_only=True)
    try:
        durations = query_frame(con, "SELECT * FROM case_durations")
    finally:
        con.close()
    assert sum(int(str(r["n_cases"])) for r in rows if not r["suppressed"]) <= durations.height
    checked = 0
    for row in rows:
        assert row["processing"] in {"regular", "premium"}
        assert row["category"] == "all categories"
        group = durations.filter(
            (pl.col("form_type") == row["form_type"]) & (pl.col("intake_office") == row["office"])
            & (pl.col("processing") == row["processing"])
        )
        if row["suppressed"]:  # under k, or hidden so that no subtraction reveals one under k
            assert row["n_cases"] is None
            continue
        assert (row["n_cases"], row["n_decided"], row["n_pending"]) == (
            group.height, int(group["decided"].sum()), int((~group["decided"]).sum())
        )
        kmf = KaplanMeierFitter().fit(group["duration_days"].to_numpy(),
                                      group["decided"].to_numpy(),
                                      entry=group["entry_days"].to_numpy())
        for name, q in (("median", 0.5), ("p80", 0.8), ("p90", 0.9)):
            expected = _lifelines_quantile(kmf, q)
            got = (row[f"{name}_days"], row[f"{name}_ci_low"], row[f"{name}_ci_high"])
            assert got == expected, (row["form_type"], row["office"], name)
        decided = group.filter(pl.col("decided"))
        approved = int((decided["outcome"] == "approved").sum())
        assert row["approval_rate"] == pytest.approx(approved / decided.height)
        assert row["rfe_rate"] == pytest.approx(group["had_rfe"].mean())
        checked += 1
    assert checked >= 20


def test_pending_cases_make_the_median_longer_than_the_finished_only_one(
    sample_home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, sample_home)
    rows = [r for r in _stats_json("--by", "form", "--processing", "regular") if not r["suppressed"]]
    assert rows and all(r["office"] is None and r["office_basis"] == "all" for r in rows)
    longer = [r for r in rows if float(str(r["median_days"])) > float(str(r["naive_median_days"]))]
    assert len(longer) >= len(rows) - 1


def test_by_cohort_gives_one_row_per_filing_month(
    sample_home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, sample_home)
    rows = _stats_json("--by", "cohort", "--form", "I-765", "--office", "NBC")
    cohorts = [r["cohort"] for r in rows]
    assert len(cohorts) == len(set(cohorts)) > 12
    assert all(isinstance(c, str) and len(c) == 7 for c in cohorts)  # "2025-03"
    everyone = _stats_json("--form", "I-765", "--office", "NBC", "--processing", "any")[0]
    published = [r for r in rows if not r["suppressed"]]
    assert sum(int(str(r["n_cases"])) for r in published) <= int(str(everyone["n_cases"]))
    months = _stats_json("--by", "form-cohort", "--form", "I-765")
    assert all(r["office"] is None for r in months) and len(months) >= len(rows)


def test_current_office_basis_counts_transferred_cases_where_they_went(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMELINES_MIN_GROUP_SIZE", "1")
    cases = [Case(f"c{i}", office="NSC", events=[(100 + i, "approved")]) for i in range(3)]
    cases += [Case("moved", office="NSC", current_office="TSC",
                   events=[(20, "transferred"), (300, "approved")])]
    store_cases(settings, cases)
    small = Settings(home=settings.home, min_group_size=1)
    refresh_job.refresh(small)
    refresh_job.publish(small)
    intake = _stats_json("--form", "I-485")
    current = _stats_json("--form", "I-485", "--office-basis", "current")
    assert [(r["office"], r["n_cases"]) for r in intake] == [("NSC", 4)]
    assert [(r["office"], r["n_cases"]) for r in current] == [("NSC", 3), ("TSC", 1)]
    assert intake[0]["transfer_rate"] == pytest.approx(0.25)


def test_unknown_grouping_or_office_basis_is_a_clear_error(
    sample_home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, sample_home)
    for args, words in ((["--by", "week"], "--by must be one of"),
                        (["--office-basis", "mailing"], "intake or current"),
                        (["--by", "form", "--office", "NSC"], "drop --office")):
        result = runner.invoke(app, ["stats", *args])
        assert result.exit_code != 0
        assert words in str(result.exception)


# --- other tables on hand-made cases ---------------------------------------------------------


def test_stage_times_count_waiting_cases_as_censored(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_cases(settings, [
        Case("a", events=[(20, "biometrics"), (60, "rfe"), (100, "rfe_response"), (150, "approved")]),
        Case("b", events=[(30, "biometrics"), (80, "rfe"), (130, "rfe_response")], seen_days=200),
        Case("c", events=[(40, "biometrics"), (90, "rfe")], seen_days=200),  # still answering
        Case("d", seen_days=25),  # still waiting for biometrics on day 25
        Case("e", events=[(200, "denied")]),  # decided with no biometrics: left out
    ])
    monkeypatch.setenv("TIMELINES_MIN_GROUP_SIZE", "1")
    refresh_job.refresh(Settings(home=settings.home, min_group_size=1))
    con = connect(settings.database_path, read_only=True)
    try:
        stages = query_frame(con, "SELECT * FROM stage_stats WHERE office IS NULL")
    finally:
        con.close()
    by_segment = {row["segment"]: row for row in stages.iter_rows(named=True)}
    biometrics = by_segment["receipt_to_biometrics"]
    assert (biometrics["n_cases"], biometrics["n_decided"], biometrics["n_pending"]) == (4, 3, 1)
    assert biometrics["median_days"] == 30  # KM over 20, 25+, 30, 40: S drops to 1/2 on day 30
    response = by_segment["rfe_to_response"]
    assert (response["n_cases"], response["n_decided"], response["n_pending"]) == (3, 2, 1)
    assert response["median_days"] == 50  # 40, 50, 110+: S = 2/3 then 1/3
    decision = by_segment["response_to_decision"]
    assert (decision["n_cases"], decision["n_decided"]) == (2, 1)


def test_outcome_curves_are_aalen_johansen_and_add_up(
    sample_home: Settings,
) -> None:
    con = connect(sample_home.database_path, read_only=True)
    try:
        curves = query_frame(con, "SELECT * FROM outcome_curves WHERE form_type = 'I-765'"
                                  " AND office IS NULL ORDER BY day")
        cases = query_frame(con, "SELECT duration_days, outcome FROM case_durations"
                                 " WHERE form_type = 'I-765'")
    finally:
        con.close()
    codes = cases["outcome"].replace_strict(
        {"pending": 0, "approved": 1, "denied": 2, "withdrawn": 3}).to_numpy()
    denied = cumulative_incidence(cases["duration_days"].to_numpy(), codes, 2)
    for row in curves.iter_rows(named=True):
        j = int(np.searchsorted(denied.timeline, row["day"], side="right") - 1)
        assert row["denied_share"] == pytest.approx(denied.cif[j])
        total = row["approved_share"] + row["denied_share"] + row["still_pending_share"]
        assert 0.9 < total <= 1.0 + 1e-9  # the rest is withdrawn or rejected
    assert curves["approved_share"].is_sorted()
    assert curves["still_pending_share"][-1] < 0.1


def test_decision_trends_count_the_backlog_at_each_month_end(settings: Settings) -> None:
    store_cases(Settings(home=settings.home, min_group_size=1), [
        Case("a", received=date(2025, 1, 10), events=[(50, "approved")]),  # decided 1 Mar
        Case("b", received=date(2025, 1, 20), events=[(45, "approved")]),  # decided 6 Mar
        Case("c", received=date(2025, 2, 5), seen_days=100),  # pending, seen until 16 May
    ])
    refresh_job.refresh(Settings(home=settings.home, min_group_size=1))
    con = connect(settings.database_path, read_only=True)
    try:
        trends = query_frame(con, "SELECT * FROM decision_trends WHERE office IS NULL")
        backlog = query_frame(con, PENDING_AT_MONTH_END_SQL).sort("decision_month")
    finally:
        con.close()
    # end of Jan: a, b pending; Feb: a, b, c; Mar: c; Apr: c; May: not known (seen until 16 May)
    assert dict(zip(backlog["decision_month"].to_list(), backlog["n_pending_end"].to_list(),
                    strict=True)) == {
        date(2025, 1, 1): 2, date(2025, 2, 1): 3, date(2025, 3, 1): 1, date(2025, 4, 1): 1}
    march = trends.filter(pl.col("decision_month") == date(2025, 3, 1)).row(0, named=True)
    assert (march["n_decided"], march["n_pending_end"], march["median_days"]) == (2, 1, 45)


def test_refresh_runs_as_a_prefect_flow_into_the_tables(
    prefect_harness: None, settings: Settings, tmp_path: Path
) -> None:
    from flows.refresh import refresh_flow

    store_cases(settings, [Case(f"c{i}", events=[(90 + i, "approved")]) for i in range(12)])
    result = refresh_flow()
    assert (result.n_cases, result.n_groups, result.n_suppressed) == (12, 1, 0)
    con = connect(settings.database_path, read_only=True)
    try:
        counts = con.execute(
            "SELECT (SELECT count(*) FROM group_stats), (SELECT count(*) FROM stage_stats),"
            " (SELECT count(*) FROM outcome_curves), (SELECT count(*) FROM decision_trends)"
        ).fetchall()[0]
    finally:
        con.close()
    assert all(n > 0 for n in counts)
    assert _stats_json()[0]["median_days"] == 95


def test_competing_outcome_band_near_certainty_stays_quiet_and_inside_zero_one() -> None:
    # Every case left after day 211 is approved: F(approved) reaches 1 - tiny, log F ~ 0.
    days = [1, 36, 58, 90, 111, 120, 132, 137, 156, 157, 161, 172, 182, 194, 211, 214, 217, 227]
    codes = [0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1]
    curve = cumulative_incidence(np.array(days, dtype=float), np.array(codes), 1)
    assert np.all((curve.ci_low >= 0) & (curve.ci_low <= curve.cif + 1e-12))
    assert np.all((curve.ci_high <= 1) & (curve.ci_high >= curve.cif - 1e-12))


def test_through_stats_the_interval_covers_the_true_median_and_the_naive_one_misses(
    settings: Settings,
) -> None:
    # Known waits (log-normal, true median 200 days), filed over 450 days before one "today":
    # a case filed late is seen finished only if it was quick, as in real tracker data.
    rng = np.random.default_rng(2024)
    today = date(2026, 1, 1)
    cases = []
    for i in range(800):
        filed_ago = int(rng.integers(1, 450))
        wait = math.ceil(rng.lognormal(math.log(200), 0.5))
        cases.append(Case(f"s{i}", received=date.fromordinal(today.toordinal() - filed_ago),
                          seen_days=filed_ago,
                          events=[(wait, "approved")] if wait <= filed_ago else []))
    store_cases(settings, cases)
    refresh_job.refresh(settings)
    refresh_job.publish(settings)
    [row] = _stats_json("--form", "I-485")
    assert int(str(row["n_pending"])) > 250  # heavy censoring
    assert float(str(row["median_ci_low"])) <= 200 <= float(str(row["median_ci_high"]))
    assert float(str(row["naive_median_days"])) < 175
