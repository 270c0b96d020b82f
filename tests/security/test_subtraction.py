"""Attack: subtract published parts from a published total to uncover a suppressed group.

The adversarial review took the all-offices row minus the published office rows and got a
suppressed office exactly (5 cases, 3 decided, 2 pending, 3 of 3 approved), in the CLI, in
processing_times.csv and on the dashboard; and 14-day histogram bins showed single durations.
Expected now: no difference of published figures is 1..k-1, wherever the figures appear.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from pipeline.analytics import figures
from pipeline.settings import Settings
from tests.security.attack_data import K, cli_json, outcome_count, refresh, residuals, victim_store
from tests.support.cli import timelines
from tests.support.dashboard import APP

COUNTS = ("n_cases", "n_decided", "n_pending", "approved")


def _with_outcomes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r | {"approved": outcome_count(r, "approval_rate", "n_decided")} if not r["suppressed"]
            else r for r in rows]


def _no_reveal(total: dict[str, Any], parts: list[dict[str, Any]]) -> None:
    for column, value in residuals(total, parts, COUNTS).items():
        assert value == 0 or value >= K, f"all offices minus published offices: {column} = {value}"


def test_cli_all_offices_minus_offices_reveals_nothing(settings: Settings) -> None:
    victim_store(settings)
    refresh(settings.home)
    offices = _with_outcomes(cli_json(settings.home, "stats", "--form", "I-485"))
    [total] = _with_outcomes(cli_json(settings.home, "stats", "--form", "I-485", "--by", "form"))
    assert total["n_cases"] == 75 and not total["suppressed"]
    assert {r["office"] for r in offices if r["suppressed"]} >= {"TSC"}
    _no_reveal(total, offices)


def test_export_processing_times_minus_its_parts_reveals_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    victim_store(settings)
    refresh(settings.home)
    done = timelines("export", str(tmp_path / "open"), home=settings.home)
    assert done.returncode == 0, done.stderr
    with (tmp_path / "open" / "processing_times.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["form_type"] == "I-485"]
    parse = [{**r, "suppressed": r["suppressed"] == "true",
              **{c: int(r[c]) if r[c] else 0 for c in ("n_cases", "n_decided", "n_pending")}}
             for r in rows]
    kinds = {r.get("processing", "") for r in parse}
    for basis in ("intake", "current"):
        for kind in kinds:
            [total] = [r for r in parse if r["grouping"] == "form" and r.get("processing", "") == kind]
            parts = [r for r in parse if r["grouping"] == "office" and r["office_basis"] == basis
                     and r.get("processing", "") == kind]
            _no_reveal(_with_outcomes([total])[0], _with_outcomes(parts))


def test_dashboard_all_offices_row_minus_offices_reveals_nothing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim_store(settings)
    refresh(settings.home)
    monkeypatch.setenv("TIMELINES_HOME", str(settings.home))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["form"] = "I-485"
    at.run()
    at.switch_page("views/processing_times.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    rows = {r["office"]: r for r in pl.from_pandas(table).iter_rows(named=True)}
    assert rows["All offices"]["cases"] == "75"
    shown = [r for name, r in rows.items() if name != "All offices" and r["cases"][0].isdigit()]
    for column in ("cases", "decided", "still waiting"):
        residual = int(rows["All offices"][column]) - sum(int(r[column]) for r in shown)
        assert residual == 0 or residual >= K, (column, residual)
    assert rows["TSC"]["cases"] == f"fewer than {K}"


def test_histogram_bins_never_hold_fewer_than_k_cases() -> None:
    # 16 cases of which some stand alone in a 14-day bin: each bin shown must hold k or more
    durations = pl.DataFrame({
        "duration_days": [30, 31, 33, 35, 36, 40, 41, 44, 47, 49, 120, 250, 251, 252, 400, 401],
        "decided": [True] * 12 + [False] * 4,
        "outcome": ["approved"] * 12 + ["pending"] * 4,
    })
    bins = figures.duration_histogram(durations, k=K)
    per_bin = bins.group_by("bin_start").agg(pl.col("n").sum())
    assert per_bin.height >= 1 and per_bin["n"].min() >= K  # type: ignore[operator]
    assert bins.filter((pl.col("n") > 0) & (pl.col("n") < K)).height == 0
    assert figures.duration_histogram(durations.head(K - 1), k=K).height == 0
