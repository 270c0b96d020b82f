"""`timelines import-official`: both USCIS shapes, unit conversion, idempotence, comparison."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import timelines.commands.analytics  # noqa: F401  (registers the commands)
from pipeline.analytics.official import read_official, to_days
from pipeline.jobs import refresh as refresh_job
from pipeline.publish.reader import current_snapshot
from pipeline.settings import Settings
from pipeline.store.db import connect, query_frame
from tests.conftest import REFERENCE_PAYLOADS
from tests.support.analytics_data import Case, store_cases
from timelines.cli import app

LEGACY = REFERENCE_PAYLOADS / "processing_times_api_legacy.json"
runner = CliRunner()


def _camel_answer(form: str, office: str, value: float, unit: str, published: str) -> dict:
    """The 2026 Next.js server-action answer ($.data.data.processingTime, camelCase)."""
    return {"data": {"data": {"processingTime": {
        "formName": form, "officeCode": office, "formNoteEn": "",
        "subtypes": [{"formType": "REG", "publicationDate": published,
                      "range": [{"value": value, "unitEn": unit}, {"value": 2, "unitEn": unit}],
                      "serviceRequestDate": "2025-01-15", "subtypeInfoEn": "All applications"}],
    }}}}


def _legacy_answer(form: str, office: str, value: float, unit: str) -> dict:
    return {"data": {"processing_time": {"form_name": form, "office_code": office, "subtypes": [
        {"form_type": "C8", "publication_date": "March 3, 2025", "service_request_date":
         "October 01, 2024", "range": [{"value": value, "unit": unit},
                                       {"value": 1, "unit": unit}]}]}}}


def _import(path: Path) -> dict:
    result = runner.invoke(app, ["import-official", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _official(settings: Settings) -> pl.DataFrame:
    con = connect(settings.database_path, read_only=True)
    try:
        return query_frame(con, "SELECT * FROM official_processing_times ORDER BY form_type")
    finally:
        con.close()


@pytest.mark.parametrize(("value", "unit", "days"), [
    (7.5, "Months", 228.28125), (1, "Month", 30.4375), (10, "Weeks", 70.0), (45, "Days", 45.0),
    ("3.5", "months", 106.53125), (1, "Years", 365.25),
])
def test_units_become_days(value: object, unit: str, days: float) -> None:
    assert to_days(value, unit) == pytest.approx(days)


def test_unknown_units_and_non_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown time unit"):
        to_days(3, "Fortnights")
    with pytest.raises(ValueError, match="not a number"):
        to_days("N/A", "Months")


def test_the_legacy_payload_gives_the_upper_figure_as_the_80_percent_one() -> None:
    read = read_official(LEGACY)
    [row] = read.rows
    assert (row["form_type"], row["office"], row["publication_date"]) == (
        "I-765", "NSC", date(2024, 8, 17))
    assert row["official_p80_days"] == pytest.approx(228.3)  # 7.5 months, range[0]
    assert row["official_other_days"] == pytest.approx(91.3)  # 3 months, range[1]
    assert row["service_request_date"] == date(2024, 1, 2)


def test_a_file_of_many_answers_in_both_shapes_is_read(tmp_path: Path) -> None:
    many = tmp_path / "many.json"
    many.write_text(json.dumps([
        _legacy_answer("I-485", "NBC", 10, "Months"),
        _camel_answer("I-130", "CSC", 20, "Weeks", "2026-04-20"),
        {"office": "VSC", "response": _camel_answer("I-751", "", 18.5, "Months", "April 1, 2026")},
    ]))
    read = read_official(many)
    figures = {(r["form_type"], r["office"]): r["official_p80_days"] for r in read.rows}
    assert figures == {("I-485", "NBC"): pytest.approx(304.4), ("I-130", "CSC"): 140.0,
                       ("I-751", "VSC"): pytest.approx(563.1)}
    lines = tmp_path / "answers.jsonl"
    lines.write_text("\n".join(json.dumps(_legacy_answer(f, "TSC", 4, "Months"))
                               for f in ("I-140", "I-90")))
    assert sorted(r["form_type"] for r in read_official(lines).rows) == ["I-140", "I-90"]


def test_importing_twice_changes_nothing_and_a_new_figure_updates(
    settings: Settings, tmp_path: Path
) -> None:
    first = _import(LEGACY)
    assert (first["new"], first["unchanged"]) == (1, 0)
    before = _official(settings)
    again = _import(LEGACY)
    assert (again["new"], again["updated"], again["unchanged"]) == (0, 0, 1)
    assert _official(settings).equals(before)
    revised = json.loads(LEGACY.read_text())
    revised["processingtime_example"]["data"]["processing_time"]["subtypes"][0]["range"][0][
        "value"] = 8
    path = tmp_path / "revised.json"
    path.write_text(json.dumps(revised))
    assert _import(path)["updated"] == 1
    assert _official(settings)["official_p80_days"].to_list() == [pytest.approx(243.5)]


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ('{"data": {"forms": []}}', "no USCIS processing-time answers"),
    ('{"data": {"processing_time": {"form_name": "I-765", "office_code": "NSC", "subtypes":'
     ' [{"form_type": "x", "publication_date": "", "range": [{"value": 3, "unit": "Months"}]}]}}}',
     "no publication date"),
])
def test_bad_files_are_refused_in_words_and_leave_the_store_alone(
    settings: Settings, tmp_path: Path, content: str, message: str
) -> None:
    _import(LEGACY)
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = runner.invoke(app, ["import-official", str(path)])
    assert result.exit_code != 0
    assert message in str(result.exception)
    assert _official(settings).height == 1


def test_official_figure_is_published_beside_the_community_p80(settings: Settings) -> None:
    cases = [Case(f"c{i}", form="I-765", office="NSC", events=[(150 + 5 * i, "approved")],
                  category="(c)(8)") for i in range(14)]
    cases += [Case(f"p{i}", form="I-765", office="NSC", seen_days=200, category="(c)(8)")
              for i in range(6)]
    store_cases(settings, cases)
    refresh_job.refresh(settings)
    _import(LEGACY)
    [row] = current_snapshot(settings.published_dir).table("official_comparison").to_dicts()
    assert row["official_p80_days"] == pytest.approx(228.3)
    assert (row["community_n_cases"], row["community_n_pending"]) == (20, 6)
    assert row["community_p80_days"] is not None
    assert row["difference_days"] == pytest.approx(row["community_p80_days"] - 228.3)
    assert "Methods differ" in row["method_note"] and "pending" in row["method_note"]


def test_community_figures_of_a_small_group_stay_empty_beside_the_official_one(
    settings: Settings,
) -> None:
    store_cases(settings, [Case(f"c{i}", form="I-765", office="NSC",
                                events=[(100, "approved")], category="(c)(8)") for i in range(3)])
    refresh_job.refresh(settings)
    _import(LEGACY)
    [row] = current_snapshot(settings.published_dir).table("official_comparison").to_dicts()
    assert row["community_suppressed"] is True
    assert row["community_n_cases"] is None and row["community_p80_days"] is None
    assert row["official_p80_days"] == pytest.approx(228.3)
