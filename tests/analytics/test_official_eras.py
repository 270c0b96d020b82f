"""Official figures across eras: legacy office codes, categories, what a legacy range means.

2018-era answers name offices WSC, NSC, SSC, ESC, MSC, YSC and give a range whose values are the
median and the 93rd percentile (not an 80% figure); today's give CSC, NSC, TSC, VSC, NBC, PSC and
the 80% figure. Figures are per form and category (`136A-E11`, "Extraordinary ability (E11)").
They must meet the community figures of the same office and category, regular processing.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from pipeline.analytics.official import read_official
from pipeline.jobs import refresh as refresh_job
from pipeline.jobs.official import import_official_times
from pipeline.parse.offices import FIELD_OFFICES, office_code, office_label
from pipeline.publish.reader import current_snapshot
from pipeline.settings import Settings
from tests.support.analytics_data import Case, store_cases

LEGACY_OFFICES = {"WSC": "CSC", "NSC": "NSC", "SSC": "TSC", "ESC": "VSC", "MSC": "NBC",
                  "YSC": "PSC"}


def _answer_2018(form: str, office: str, subtypes: list[tuple[str, str, float, float]],
                 published: str = "October 15, 2018") -> dict[str, object]:
    """A 2018-era legacy answer: range[0] the upper value, range[1] the lower one (months)."""
    return {"data": {"processing_time": {"form_name": form, "office_code": office, "subtypes": [
        {"form_type": key, "publication_date": published, "subtype_info_en": info,
         "service_request_date": "January 02, 2018",
         "range": [{"value": upper, "unit": "Months"}, {"value": lower, "unit": "Months"}]}
        for key, info, upper, lower in subtypes]}}}


@pytest.mark.parametrize(("raw", "code"), [
    *LEGACY_OFFICES.items(), ("CSC", "CSC"), ("TSC", "TSC"), ("VSC", "VSC"), ("NBC", "NBC"),
    ("PSC", "PSC"), ("SRC", "TSC"), ("EAC", "VSC"), ("Texas Service Center", "TSC"),
    ("DAL", "DAL"), ("Dallas", "DAL"), ("Dallas, TX", "DAL"), ("dallas field office", "DAL"),
    ("New York City", "NYC"), ("San Francisco CA", "SFR"),
])
def test_every_legacy_current_and_field_office_code_maps(raw: str, code: str) -> None:
    assert office_code(raw) == code


def test_unknown_offices_are_none_and_every_field_office_has_a_name() -> None:
    assert office_code("Atlantis") is None and office_code("") is None
    assert all(office_code(code) == code for code in FIELD_OFFICES)
    assert office_label("DAL") == "Dallas TX" and office_label("TSC") == "Texas Service Center"


def test_a_2018_answer_is_read_as_a_median_and_93rd_percentile_range(tmp_path: Path) -> None:
    path = tmp_path / "i140_ssc.json"
    path.write_text(json.dumps(_answer_2018("I-140", "SSC", [
        ("136A-E11", "Extraordinary ability (E11)", 8, 6),
        ("136A-E21", "Advanced degree or exceptional ability (E21)", 9, 7)])))
    rows = {r["subtype"]: r for r in read_official(path).rows}
    e11 = rows["136A-E11"]
    assert (e11["office"], e11["office_raw"], e11["category"]) == ("TSC", "SSC", "E11")
    assert e11["range_method"] == "legacy_50_93"
    assert e11["official_p80_days"] is None  # not an 80% figure
    assert e11["official_median_days"] == pytest.approx(182.6)  # 6 months
    assert e11["official_p93_days"] == pytest.approx(243.5)  # 8 months
    assert rows["136A-E21"]["category"] == "E21"


def test_the_current_shapes_keep_their_80_percent_figure(tmp_path: Path) -> None:
    path = tmp_path / "now.json"
    path.write_text(json.dumps([
        _answer_2018("I-140", "TSC", [("136A-E11", "Extraordinary ability (E11)", 8, 6)],
                     published="March 3, 2025"),
        {"data": {"data": {"processingTime": {"formName": "I-765", "officeCode": "NSC",
         "subtypes": [{"formType": "765-C8", "publicationDate": "2026-04-20",
                       "subtypeInfoEn": "Based on a pending asylum application [(c)(8)]",
                       "range": [{"value": 7.5, "unitEn": "Months"}]}]}}}},
    ]))
    rows = {(r["form_type"], r["category"]): r for r in read_official(path).rows}
    assert rows[("I-140", "E11")]["range_method"] == "p80"
    assert rows[("I-140", "E11")]["official_p80_days"] == pytest.approx(243.5)
    assert rows[("I-765", "(c)(8)")]["official_p80_days"] == pytest.approx(228.3)
    assert rows[("I-765", "(c)(8)")]["official_median_days"] is None


def _community(settings: Settings) -> None:
    """I-140 regular cases at TSC (E11 and E21), premium E11 ones, and VSC cases of no category."""
    cases = [Case(f"e11-{i}", form="I-140", office="TSC", category="E11",
                  events=[(120 + 10 * i, "approved")]) for i in range(12)]
    cases += [Case(f"e21-{i}", form="I-140", office="TSC", category="E21",
                   events=[(300 + 10 * i, "approved")]) for i in range(12)]
    cases += [Case(f"pp-{i}", form="I-140", office="TSC", category="E11", processing="premium",
                   events=[(10, "approved")]) for i in range(12)]
    cases += [Case(f"v-{i}", form="I-140", office="VSC", events=[(200 + i, "approved")])
              for i in range(12)]
    store_cases(settings, cases)
    refresh_job.refresh(settings)


def test_legacy_answers_meet_the_community_figures_of_the_same_office_and_category(
    settings: Settings, tmp_path: Path
) -> None:
    _community(settings)
    path = tmp_path / "answers_2018"
    path.mkdir()
    (path / "ssc.json").write_text(json.dumps(_answer_2018("I-140", "SSC", [
        ("136A-E11", "Extraordinary ability (E11)", 8, 6),
        ("136A-E21", "Advanced degree or exceptional ability (E21)", 12, 10),
        ("136A-E99", "A category we have no code for", 5, 4)])))
    (path / "esc.json").write_text(json.dumps(_answer_2018("I-140", "ESC", [
        ("", "All I-140 petitions", 7, 5)])))
    import_official_times(settings, path)
    table = current_snapshot(settings.published_dir).table("official_comparison")
    rows = {(r["office"], r["subtype"]): r for r in table.to_dicts()}

    e11 = rows[("TSC", "136A-E11")]
    assert (e11["office_raw"], e11["category"], e11["community_category"]) == ("SSC", "E11",
                                                                               "E11")
    assert e11["processing"] == "regular"
    assert e11["community_n_cases"] == 12  # the premium E11 cases stay out
    assert e11["community_median_days"] == 170  # 6th of 120, 130, ..., 230
    assert e11["compared_on"] == "median"
    assert e11["difference_days"] == pytest.approx(170 - 182.6)
    assert "93%" in e11["method_note"]
    assert rows[("TSC", "136A-E21")]["community_median_days"] == 350

    unknown = rows[("TSC", "136A-E99")]
    assert unknown["community_category"] is None and unknown["community_n_cases"] is None

    pooled = rows[("VSC", "")]
    assert pooled["official_category"] == pooled["community_category"] == "all categories"
    assert pooled["community_n_cases"] == 12


def test_a_current_answer_for_one_category_meets_that_category_only(
    settings: Settings, tmp_path: Path
) -> None:
    _community(settings)
    path = tmp_path / "now.json"
    path.write_text(json.dumps(_answer_2018(
        "I-140", "TSC", [("136A-E11", "Extraordinary ability (E11)", 8, 6)],
        published="March 3, 2025")))
    import_official_times(settings, path)
    [row] = current_snapshot(settings.published_dir).table("official_comparison").to_dicts()
    assert (row["range_method"], row["compared_on"], row["community_n_cases"]) == (
        "p80", "p80", 12)
    assert row["publication_date"] == date(2025, 3, 3)
    assert row["difference_days"] == pytest.approx(row["community_p80_days"] - 243.5)


def test_the_import_command_says_what_each_era_s_figures_are(
    settings: Settings, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    import timelines.commands.analytics  # noqa: F401  (registers the commands)
    from timelines.cli import app

    path = tmp_path / "mixed.json"
    path.write_text(json.dumps([
        _answer_2018("I-140", "SSC", [("136A-E11", "Extraordinary ability (E11)", 8, 6),
                                      ("136A-E99", "Something new", 5, 4)]),
        _answer_2018("I-140", "TSC", [("136A-E11", "Extraordinary ability (E11)", 8, 6)],
                     published="March 3, 2025"),
    ]))
    result = CliRunner().invoke(app, ["import-official", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 figures: 2018-2022 range: the lower value is the median" in result.output
    assert "1 figure: 80% of the cases completed in the last six months" in result.output
    assert "no community category matches I-140 Something new" in result.output
    data = json.loads(CliRunner().invoke(
        app, ["import-official", str(path), "--format", "json"]).output)
    assert data["range_methods"] == {"legacy_50_93": 2, "p80": 1}
