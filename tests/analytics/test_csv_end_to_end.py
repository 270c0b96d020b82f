"""A community spreadsheet as people keep it -> ingest --as-of -> stats JSON == lifelines.

The spreadsheet has office names, m/d/yy dates, '.' for empty cells, regular and premium
processing, a category column in several spellings, a last-checked date on some rows and a
tracked-since date on others. The figures `timelines stats --form I-140 --processing regular`
prints must equal an independent lifelines computation from the same rows with the documented
rules: pending rows censored at their own last-checked date, else at --as-of; each case at
risk from the day it came under observation; premium rows never in a regular row.
"""

from __future__ import annotations

import csv
import json
import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from lifelines import KaplanMeierFitter

from tests.support.cli import timelines

AS_OF = date(2014, 6, 1)
STALE_AFTER_DAYS = 180
# What the sheet writes -> the office it means (independent of our office table).
OFFICE_SPELLINGS = {"Texas": "TSC", "Texas Service Center": "TSC", "TSC": "TSC",
                    "Nebraska": "NSC", "NSC": "NSC", "Nebraska Service Center": "NSC"}
CATEGORY_SPELLINGS = {"EB2": "E21", "EB-2": "E21", "E21": "E21", "EB3": "EB-3", "NIW": "NIW",
                      ".": None}


def _mdyy(day: date) -> str:
    return f"{day.month}/{day.day}/{day:%y}"


def _write_sheet(path: Path, n: int, seed: int) -> list[dict[str, object]]:
    """Write the spreadsheet; return each row's truth in our terms."""
    rng = np.random.default_rng(seed)
    truth: list[dict[str, object]] = []
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["Form", "Service Center", "Category", "Processing", "Receipt Date",
                      "Approved", "Denied", "Last Checked", "Tracked Since"])
        for _ in range(n):
            premium = rng.random() < 0.2
            received = date(2011, 6, 1) + timedelta(days=int(rng.integers(0, 1000)))
            wait = int(rng.integers(5, 16)) if premium else math.ceil(
                rng.lognormal(math.log(200), 0.5))
            checked = None
            if rng.random() < 0.25:  # the row's own last-checked date, before --as-of
                checked = received + timedelta(days=int(rng.integers(1, (AS_OF - received).days)))
            end = checked or AS_OF
            decided_on = received + timedelta(days=wait)
            decided = decided_on <= end
            denied = decided and rng.random() < 0.1
            duration = wait if decided else (end - received).days
            tracked = None
            if rng.random() < 0.3 and duration > 2:  # came under observation while pending
                tracked = received + timedelta(days=int(rng.integers(1, duration)))
            office = str(rng.choice(list(OFFICE_SPELLINGS)))
            category = str(rng.choice(list(CATEGORY_SPELLINGS)))
            out.writerow([
                "I-140", office, category, "premium" if premium else "regular",
                _mdyy(received),
                _mdyy(decided_on) if decided and not denied else ".",
                _mdyy(decided_on) if denied else ".",
                _mdyy(checked) if checked else ".",
                _mdyy(tracked) if tracked else ".",
            ])
            truth.append({
                "office": OFFICE_SPELLINGS[office], "category": CATEGORY_SPELLINGS[category],
                "processing": "premium" if premium else "regular", "duration": duration,
                "decided": decided, "entry": (tracked - received).days if tracked else 0,
                "stale": not decided and (AS_OF - end).days > STALE_AFTER_DAYS,
            })
    return truth


def _lifelines(rows: list[dict[str, object]]) -> dict[str, float | None]:
    """Median, p80, p90 and their intervals from lifelines' own curve and bands."""
    kmf = KaplanMeierFitter().fit(
        [r["duration"] for r in rows], [r["decided"] for r in rows],
        entry=[r["entry"] for r in rows],
    )
    curves = {"days": kmf.survival_function_.iloc[:, 0],
              "ci_low": kmf.confidence_interval_.iloc[:, 0],
              "ci_high": kmf.confidence_interval_.iloc[:, 1]}
    figures: dict[str, float | None] = {}
    for name, q in (("median", 0.5), ("p80", 0.8), ("p90", 0.9)):
        level = 1 - q + 1e-10  # S = 0.5 exactly (up to rounding) has reached the median
        for part, curve in curves.items():
            hit = curve.index[curve.to_numpy() <= level]
            figures[f"{name}_{part}"] = float(hit[0]) if len(hit) else None
    return figures


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, object]]]:
    folder = tmp_path_factory.mktemp("sheet")
    sheet = folder / "i140_timelines.csv"
    truth = _write_sheet(sheet, 700, seed=140)
    home = folder / "home"
    loaded = timelines("ingest", str(sheet), "--as-of", AS_OF.isoformat(), "--format", "json",
                       home=home)
    assert loaded.returncode == 0, loaded.stderr
    summary = json.loads(loaded.stdout)
    assert summary["stored"] == len(truth), summary
    refreshed = timelines("refresh", home=home)
    assert refreshed.returncode == 0, refreshed.stderr
    return home, truth


def _stats(home: Path, *args: str) -> list[dict[str, object]]:
    result = timelines("stats", "--form", "I-140", "--format", "json", *args, home=home)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def test_regular_figures_equal_lifelines_with_the_same_rules(
    ingested: tuple[Path, list[dict[str, object]]],
) -> None:
    home, truth = ingested
    rows = _stats(home, "--processing", "regular")
    assert {r["office"] for r in rows} == {"TSC", "NSC"}
    sensitive = 0
    for row in rows:
        assert row["processing"] == "regular" and row["category"] == "all categories"
        group = [t for t in truth if t["office"] == row["office"]
                 and t["processing"] == "regular"]
        decided = sum(bool(t["decided"]) for t in group)
        assert (row["n_cases"], row["n_decided"], row["n_pending"]) == (
            len(group), decided, len(group) - decided)
        assert row["n_stale"] == sum(bool(t["stale"]) for t in group) > 0
        expected = _lifelines(group)
        got = {key: row[key] for key in expected}
        assert got == expected, row["office"]
        # the rules matter here: without delayed entry some figure comes out different
        sensitive += _lifelines([t | {"entry": 0} for t in group]) != expected
    assert sensitive >= 1


def test_premium_rows_stand_apart_and_any_pools_them_only_when_asked(
    ingested: tuple[Path, list[dict[str, object]]],
) -> None:
    home, truth = ingested
    default = _stats(home)
    assert {(r["office"], r["processing"]) for r in default} == {
        (o, p) for o in ("TSC", "NSC") for p in ("regular", "premium")}
    premium = [r for r in default if r["processing"] == "premium"]
    assert all(float(str(r["median_days"])) < 20 for r in premium)
    pooled = _stats(home, "--processing", "any")
    assert [r["n_cases"] for r in pooled] == [
        sum(t["office"] == office for t in truth) for office in ("NSC", "TSC")]


def test_by_category_counts_each_spelling_once(
    ingested: tuple[Path, list[dict[str, object]]],
) -> None:
    home, truth = ingested
    rows = _stats(home, "--by", "form-category", "--processing", "regular")
    got = {r["category"]: r["n_cases"] for r in rows}
    expected: dict[str, int] = {}
    for t in truth:
        if t["processing"] == "regular":
            key = str(t["category"] or "unknown")
            expected[key] = expected.get(key, 0) + 1
    assert got == expected
    [eb2] = _stats(home, "--category", "EB-2", "--by", "form", "--processing", "regular")
    assert eb2["category"] == "E21" and eb2["n_cases"] == expected["E21"]
    ambiguous = timelines("stats", "--category", "eb2", "--by", "form", home=home)
    assert ambiguous.returncode == 2
    assert "E21 for I-140" in ambiguous.stderr and "add --form" in ambiguous.stderr


def test_the_table_says_when_pending_cases_are_stale(
    ingested: tuple[Path, list[dict[str, object]]],
) -> None:
    home, _ = ingested
    result = timelines("stats", "--form", "I-140", "--processing", "regular", home=home)
    assert result.returncode == 0, result.stderr
    assert "had not been seen for more than 180 days" in result.stdout
