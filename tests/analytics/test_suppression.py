"""Groups under k show no figures anywhere: CLI table and JSON, the snapshot, estimates."""

from __future__ import annotations

import json
from datetime import date

import polars as pl
import pytest
from typer.testing import CliRunner

import timelines.commands.analytics  # noqa: F401  (registers the commands)
from pipeline.jobs import refresh as refresh_job
from pipeline.publish.reader import current_snapshot
from pipeline.settings import Settings, load_settings
from tests.support.analytics_data import Case, store_cases
from timelines.cli import app

runner = CliRunner()
FIGURES = ("n_cases", "n_decided", "n_pending", "median_days", "median_ci_low", "median_ci_high",
           "p80_days", "p80_ci_low", "p80_ci_high", "p90_days", "approval_rate", "rfe_rate")


def _store(settings: Settings) -> None:
    """12 I-485 cases at NBC (published at k=10) and 4 at NSC (too few)."""
    big = [Case(f"n{i}", office="NBC", events=[(100 + 10 * i, "approved")] if i < 9 else [],
                seen_days=300) for i in range(12)]
    small = [Case(f"s{i}", office="NSC", events=[(50 + i, "approved")]) for i in range(4)]
    store_cases(settings, big + small)
    refresh_job.refresh(settings)
    refresh_job.publish(settings)


def test_json_of_a_small_group_has_null_figures_and_says_suppressed(settings: Settings) -> None:
    _store(settings)
    result = runner.invoke(app, ["stats", "--form", "I-485", "--format", "json"])
    rows = {row["office"]: row for row in json.loads(result.output)}
    assert rows["NSC"]["suppressed"] is True
    assert all(rows["NSC"][f] is None for f in FIGURES)
    # the all-offices row (16) minus NBC's 12 would give NSC's 4: NBC is hidden as well
    assert rows["NBC"]["suppressed"] is True and rows["NBC"]["n_cases"] is None
    form = json.loads(runner.invoke(app, ["stats", "--form", "I-485", "--by", "form",
                                          "--format", "json"]).output)
    assert [(r["n_cases"], r["n_pending"]) for r in form] == [(16, 3)]
    assert form[0]["median_days"] is not None


def test_table_says_too_few_cases_and_shows_no_numbers(settings: Settings) -> None:
    _store(settings)
    result = runner.invoke(app, ["stats", "--form", "I-485", "--office", "NSC"])
    assert result.exit_code == 0
    assert "too few cases to publish" in result.output
    assert "4" not in result.output.split("NSC", 1)[1].split("\n", 1)[0].replace("< 10", "")


def test_k_comes_from_the_environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMELINES_MIN_GROUP_SIZE", "3")
    small_k = load_settings()
    _store(small_k)
    rows = json.loads(runner.invoke(app, ["stats", "--form", "I-485", "--format", "json"]).output)
    assert [row["suppressed"] for row in rows] == [False, False]
    monkeypatch.setenv("TIMELINES_MIN_GROUP_SIZE", "20")  # raised: applies before a refresh
    rows = json.loads(runner.invoke(app, ["stats", "--form", "I-485", "--format", "json"]).output)
    assert [row["suppressed"] for row in rows] == [True, True]
    assert all(row["n_cases"] is None for row in rows)
    refresh_job.refresh(load_settings())
    refresh_job.publish(load_settings())
    rows = json.loads(runner.invoke(app, ["stats", "--form", "I-485", "--format", "json"]).output)
    assert [row["suppressed"] for row in rows] == [True, True]


def test_the_published_snapshot_holds_no_count_of_a_small_group(settings: Settings) -> None:
    _store(settings)
    snapshot = current_snapshot(settings.published_dir)
    for table in ("case_stats", "group_stats", "stage_stats", "outcome_curves"):
        frame = snapshot.table(table)
        hidden = frame.filter(pl.col("suppressed"))
        assert hidden.height > 0, table
        assert hidden["n_cases"].null_count() == hidden.height, table
        visible = frame.filter(~pl.col("suppressed"))
        assert visible["n_cases"].null_count() == 0, table


def test_an_estimate_never_rests_on_a_small_group(settings: Settings) -> None:
    _store(settings)
    result = runner.invoke(app, ["estimate", "--form", "I-485", "--office", "NSC", "--received",
                                 "2025-02-01", "--today", "2025-03-01", "--format", "json"])
    answer = json.loads(result.output)
    assert answer["basis"] == "form" and answer["n_cases"] == 16
    assert "fewer than 10 cases of the same form and office" in answer["notes"][0]
    late = runner.invoke(app, ["estimate", "--form", "I-485", "--office", "NBC", "--received",
                               "2025-01-01", "--today", str(date(2025, 11, 1)), "--format",
                               "json"])
    answer = json.loads(late.output)
    assert answer["enough_data"] is False and answer["chances"] == []
